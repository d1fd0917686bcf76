import numpy as np
import pytest
import torch

from data import inputs as I
from data.files import DatasetError
from data.synthetic import LABEL, PART, draw_sample


def tiny_batch():
    """Two 4x5 samples whose every pixel's class is known."""
    label = torch.tensor([[[0, 1, 2, 3, 4],
                           [5, 6, 7, 8, 9],
                           [10, 11, 12, 13, 4],
                           [7, 7, 0, 0, 0]],
                          [[12, 12, 4, 4, 11],
                           [0, 0, 0, 0, 0],
                           [0, 0, 0, 0, 0],
                           [0, 0, 0, 0, 13]]])
    densepose = torch.tensor([[[0, 1, 2, 3, 4],
                               [5, 6, 7, 8, 9],
                               [14, 15, 16, 17, 18],
                               [19, 20, 21, 22, 23]],
                              [[24, 24, 2, 2, 3],
                               [0, 0, 0, 0, 0],
                               [0, 0, 0, 0, 0],
                               [0, 0, 0, 0, 15]]])
    image = torch.linspace(-1, 1, 2 * 3 * 4 * 5).view(2, 3, 4, 5)
    keypoints = torch.zeros(2, 18, 3)
    keypoints[0, 0] = torch.tensor([2.0, 2.0, 1.0])
    return dict(image=image, garment=torch.ones(2, 3, 4, 5),
                garment_edge=(label[:, None] == 4).float(),
                unpaired_garment=-torch.ones(2, 3, 4, 5),
                unpaired_garment_edge=(label[:, None] == 12).float(),
                label=label, densepose=densepose, keypoints=keypoints,
                id=["a", "b"])


def test_masks_on_known_pixels():
    batch = tiny_batch()
    label = I.merge_noise_label(batch["label"])
    assert label.dtype == torch.int64
    assert label[0, 1, 2] == 4 and (label[0, 3, :2] == 4).all() and (label != 7).all()
    clothes = I.person_clothes_edge(label)
    assert clothes.shape == (2, 1, 4, 5) and clothes.dtype == torch.float32
    assert torch.nonzero(clothes[0, 0]).tolist() == [[0, 4], [1, 2], [2, 4], [3, 0], [3, 1]]
    assert torch.nonzero(I.face_mask(label)[0, 0]).tolist() == [[0, 1], [2, 2]]
    assert torch.nonzero(I.other_clothes_mask(label)[0, 0]).tolist() == \
        [[1, 0], [1, 1], [1, 3], [1, 4], [2, 0]]
    assert torch.nonzero(I.arm_mask(label)[0, 0]).tolist() == [[2, 1], [2, 3]]
    assert torch.nonzero(I.hand_mask(batch["densepose"])[0, 0]).tolist() == [[0, 3], [0, 4]]
    dense_arms = I.dense_preserve_mask(batch["densepose"])[0, 0]
    assert dense_arms.sum() == 8 and dense_arms[2, 1:].sum() == 4 and dense_arms[3, :4].sum() == 4
    assert torch.nonzero(I.dense_preserve_mask(batch["densepose"])[1, 0]).tolist() == [[3, 4]]


def test_densepose_onehot():
    densepose = tiny_batch()["densepose"]
    onehot = I.densepose_onehot(densepose)
    assert onehot.shape == (2, 25, 4, 5)
    assert (onehot.sum(1) == 1).all()
    assert torch.equal(onehot.argmax(1), densepose)
    assert torch.equal(I.densepose_onehot(densepose[:, None]), onehot)


def test_tryon_inputs_fields():
    batch = tiny_batch()
    inputs = I.TryOnInputs.from_batch(batch, "cpu")
    assert torch.equal(inputs.garment, batch["garment"] * batch["garment_edge"])
    assert torch.equal(inputs.unpaired_garment[:, 0], -batch["unpaired_garment_edge"][:, 0])
    assert torch.equal(inputs.person_clothes, batch["image"] * inputs.person_clothes_edge)
    # Hand: arm label and DensePose hand at once: only sample 1's pixel (0, 4).
    assert torch.nonzero(inputs.hand).tolist() == [[1, 0, 0, 4]]
    expected = batch["image"] * (inputs.face_mask + inputs.other_clothes_mask + inputs.hand)
    assert torch.equal(inputs.preserve_region, expected)
    condition = inputs.pb_condition
    assert condition.shape == (2, 45, 4, 5)
    assert torch.equal(condition[:, 0:1], inputs.face_mask)
    assert torch.equal(condition[:, 1:2], inputs.other_clothes_mask)
    assert torch.equal(condition[:, 2:27], inputs.densepose_onehot)
    assert torch.equal(condition[:, 27:], inputs.pose)
    # Keypoint 0 of sample 0 at (2, 2): its 11x11 square covers the whole 4x5 map.
    assert (inputs.pose[0, 0] == 1).all() and (inputs.pose[0, 1:] == -1).all()
    assert (inputs.pose[1] == -1).all()
    # Computed once: the cached tensor is the same object.
    assert inputs.face_mask is inputs.face_mask
    outside = I.arms_outside(inputs.dense_preserve_mask, inputs.person_clothes_edge)
    assert torch.equal(outside, inputs.dense_preserve_mask * (1 - inputs.person_clothes_edge))


def test_test_batch_has_no_parser_inputs():
    batch = {k: v for k, v in tiny_batch().items() if k in ("image", "garment", "garment_edge")}
    inputs = I.TryOnInputs.from_batch(batch)
    assert inputs.garment.shape == (2, 3, 4, 5)
    try:
        _ = inputs.face_mask
    except KeyError as error:
        assert "'label'" in str(error)
    else:
        raise AssertionError("a test batch has no labels")


def test_masks_on_generated_person():
    """The generator's anatomy, seen through the masks at the keypoints it drew."""
    for seed in range(50):                 # a person with both hands in the picture
        sample = draw_sample(np.random.default_rng(seed), 256, 192)
        if (sample["keypoints"][[4, 7], 2] > 0).all():
            break
    k = torch.from_numpy(sample["keypoints"]).float()
    batch = dict(image=torch.zeros(1, 3, 256, 192), garment=torch.zeros(1, 3, 256, 192),
                 garment_edge=torch.zeros(1, 1, 256, 192),
                 label=torch.from_numpy(sample["label"]).long()[None],
                 densepose=torch.from_numpy(sample["densepose"]).long()[None], keypoints=k[None])
    inputs = I.TryOnInputs.from_batch(batch)

    def at(mask, point):
        x, y = int(point[0]), int(point[1])
        return mask[0, 0, y, x].item()

    assert at(inputs.face_mask, k[0]) == 1                     # nose
    torso = (k[1] + k[8] + k[11]) / 3                          # neck and hips
    assert at(inputs.person_clothes_edge, torso) == 1
    for knee in (9, 12):
        assert at(inputs.other_clothes_mask, k[knee]) == 1     # pants or leg
    assert at(inputs.face_mask, (0, 0)) == 0 and at(inputs.person_clothes_edge, (0, 0)) == 0
    for wrist, elbow in ((4, 3), (7, 6)):
        hand = k[wrist] + (k[wrist] - k[elbow]) / (k[wrist] - k[elbow]).norm() * 6
        assert at(inputs.hand_mask, hand) == 1 and at(inputs.arm_mask, hand) == 1
        assert at(inputs.hand, hand) == 1
    assert at(inputs.dense_preserve_mask, (k[6] + k[7]) / 2) == 1   # left forearm
    assert set(np.unique(sample["densepose"][sample["label"] == LABEL["face"]])) <= \
        {PART["head_right"], PART["head_left"]}
    squares = (inputs.pose[0] > 0).sum((1, 2))
    assert (squares[k[:, 0] > 12] >= 66).all()                  # drawn, maybe clipped


def test_category_decides_garment_region_other_clothes_and_skin():
    # One row of known labels per category: hair, face, shirt, noise, pants, legs, arms, shoes.
    row = torch.tensor([1, 12, 4, 7, 8, 9, 10, 11, 13, 5, 6, 0])
    label = row.view(1, 1, -1).repeat(3, 1, 1)
    densepose = torch.tensor([23, 23, 2, 2, 7, 9, 12, 15, 20, 5, 6, 0]).view(1, 1, -1).repeat(
        3, 1, 1)
    batch = dict(image=torch.zeros(3, 3, 1, 12), garment=torch.zeros(3, 3, 1, 12),
                 garment_edge=torch.zeros(3, 1, 1, 12), label=label, densepose=densepose,
                 keypoints=torch.zeros(3, 18, 3),
                 category=torch.tensor([0, 1, 2]))   # upper_body, lower_body, dresses
    inputs = I.TryOnInputs.from_batch(batch)

    def where(mask):
        return [int(v) for v in row[mask[0, 0, 0].bool()]]

    upper, lower, dress = (inputs.person_clothes_edge[k:k + 1] for k in range(3))
    assert where(upper) == [4, 7]                 # the shirt (noise merged into it)
    assert where(lower) == [8]                    # the pants / skirt, not the shirt
    assert where(dress) == [4, 7, 8]
    others = inputs.other_clothes_mask
    assert where(others[0:1]) == [8, 9, 10, 5, 6]            # the release's
    assert where(others[1:2]) == [4, 7, 11, 13, 5, 6]        # shirt, arms, shoes kept
    assert where(others[2:3]) == [5, 6]
    skin = inputs.dense_preserve_mask                          # DensePose: arms / legs
    assert where(skin[0:1]) == [11, 13] and where(skin[1:2]) == [8, 9, 10]
    assert where(skin[2:3]) == [8, 9, 10, 11, 13]
    # Preserved pixels stay 0/1 even where other clothes and hands overlap (lower body).
    assert inputs.preserve_region.abs().max() <= 1


def test_without_densepose_the_replacement_is_used():
    label = torch.zeros(2, 20, 20, dtype=torch.int64)
    label[:, 5:15, 2:6] = 11                      # an arm, vertical, x 2..5
    keypoints = torch.zeros(2, 18, 3)
    keypoints[:, 3] = torch.tensor([3.0, 6.0, 1.0])    # right elbow
    keypoints[:, 4] = torch.tensor([3.0, 14.0, 1.0])   # right wrist: forearm 8 px, reach 4 px
    densepose = torch.zeros(2, 20, 20, dtype=torch.int64)
    densepose[:, 5:15, 2:6] = 16
    densepose[0, 12:15, 2:6] = 3                  # sample 0's DensePose hand
    batch = dict(image=torch.zeros(2, 3, 20, 20), garment=torch.zeros(2, 3, 20, 20),
                 garment_edge=torch.zeros(2, 1, 20, 20), label=label, densepose=densepose,
                 keypoints=keypoints, has_densepose=torch.tensor([True, False]))
    inputs = I.TryOnInputs.from_batch(batch)
    onehot = inputs.densepose_onehot
    assert onehot[0].sum() == 400 and onehot[1].sum() == 0      # empty channels without it
    hands = inputs.hand
    assert hands[0, 0].sum() == 12                                # DensePose's 3 x 4 hand
    replacement = hands[1, 0]
    rows, cols = torch.nonzero(replacement, as_tuple=True)
    assert rows.min() == 10 and rows.max() == 14                 # within 4 px of the wrist
    assert ((rows - 14) ** 2 + (cols - 3) ** 2 <= 16).all()
    assert torch.equal(inputs.dense_preserve_mask[1, 0], (label[1] == 11).float())
    assert torch.equal(inputs.dense_preserve_mask[0, 0], (densepose[0] == 16).float())
    assert inputs.pb_condition.shape == (2, 45, 20, 20)


def test_pose_radius_scales_with_height():
    assert I.pose_radius_for(256) == 5 and I.pose_radius_for(512) == 10
    assert I.pose_radius_for(1024) == 20 and I.pose_radius_for(64) == 1


def test_neck_is_repainted_skin_except_in_lower_body_try_on():
    label = torch.full((3, 1, 1), 3)                         # a neck pixel per category
    category = torch.tensor([0, 1, 2])
    assert I.parsing_skin_mask(label, category).flatten().tolist() == [1.0, 0.0, 1.0]
    assert I.other_clothes_mask(label, category).flatten().tolist() == [0.0, 1.0, 0.0]
    assert I.face_mask(label).flatten().tolist() == [0.0, 0.0, 0.0]
    assert I.person_clothes_edge(label, category).flatten().tolist() == [0.0, 0.0, 0.0]


def test_a_warp_wanting_dci_vtons_condition_without_it_is_a_dataset_error():
    # It was a KeyError traceback at the first step of training on VITON-HD without the folders.
    batch = {"image": torch.zeros(1, 3, 8, 6), "garment": torch.zeros(1, 3, 8, 6),
             "garment_edge": torch.ones(1, 1, 8, 6)}
    with pytest.raises(DatasetError, match=r"image-parse-agnostic-v3.2/ and image-densepose/"):
        I.TryOnInputs.from_batch(batch).warp_condition("dcivton")
