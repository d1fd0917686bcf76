import numpy as np
import torch

from data import inputs as I
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
    return dict(image=image, garment=torch.ones(2, 3, 4, 5), garment_edge=(label[:, None] == 4).float(),
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
        inputs.face_mask
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
