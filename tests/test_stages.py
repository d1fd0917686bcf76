"""The four stage scripts on the engine: chaining, checkpoints, logs, and learning."""

import pytest
import torch

from data.inputs import TryOnInputs
from data.synthetic import make_dataset
from data.viton import VitonTrainDataset
from models import AFWM
from models.losses import VGGLoss, warp_loss
from train_pb_gen import ParserBasedGenerator
from train_pb_warp import ParserBasedWarp
from train_pf_gen import ParserFreeGenerator
from train_pf_warp import STUDENT_NEW_PARTS, ParserFreeWarp
from utils.checkpoint import CheckpointError, read_checkpoint
from utils.engine import run


@pytest.fixture(scope="module")
def train_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    make_dataset(str(out), num_train=6, num_test=0, seed=1, height=64, width=64)
    return str(out / "VITON_traindata")


def _args(root, runs, name, *extra):
    return ["--config", "configs/tiny.yaml", "--dataroot", root, "--checkpoints_dir", str(runs),
            "--name", name, "--max_steps", "2", "--vgg_layers", "1", "--log_every", "1",
            "--sample_every", "2", "--device", "cpu", *extra]


def test_four_stages_chain_and_write_checkpoints_and_events(train_root, tmp_path):
    runs = tmp_path / "runs"
    run(ParserBasedWarp(), _args(train_root, runs, "s1"))
    run(ParserBasedGenerator(), _args(train_root, runs, "s2",
                                      "--pb_warp_checkpoint", str(runs / "s1/final.pth")))
    s3 = run(ParserFreeWarp(), _args(train_root, runs, "s3",
                                     "--pb_checkpoint", str(runs / "s2/final.pth")))
    s4 = run(ParserFreeGenerator(), _args(train_root, runs, "s4",
                                          "--pb_checkpoint", str(runs / "s2/final.pth"),
                                          "--pf_warp_checkpoint", str(runs / "s3/final.pth")))
    for name, stage, models in (("s1", "pb_warp", {"warp"}), ("s2", "pb_gen", {"warp", "gen"}),
                                ("s3", "pf_warp", {"warp"}), ("s4", "pf_gen", {"warp", "gen"})):
        data = read_checkpoint(runs / name / "final.pth")
        assert data["stage"] == stage and set(data["model"]) == models and data["step"] == 2
        assert list((runs / name / "tensorboard").glob("events.out.tfevents.*"))
        assert list((runs / name / "samples").glob("*.png"))
    for key in ("distill_feature", "distill_flow", "teacher_better_fraction", "warp_l1"):
        assert key in s3.terms
    for key in ("skin_l1", "gen_l1", "mask_l1", "distill_flow"):
        assert key in s4.terms
    # The student's condition encoder takes the 3-channel tutor image.
    student = s3.models["warp"].state_dict()
    assert student["cond_features.encoders.0.0.block.2.weight"].shape[1] == 3


def test_stage3_first_epochs_train_only_the_new_parts(train_root, tmp_path):
    runs = tmp_path / "runs"
    run(ParserBasedWarp(), _args(train_root, runs, "s1"))
    run(ParserBasedGenerator(), _args(train_root, runs, "s2",
                                      "--pb_warp_checkpoint", str(runs / "s1/final.pth")))
    teacher = read_checkpoint(runs / "s2/final.pth")["model"]["warp"]
    s3 = run(ParserFreeWarp(), _args(train_root, runs, "s3",
                                     "--pb_checkpoint", str(runs / "s2/final.pth")))
    student = s3.models["warp"].state_dict()
    for name, value in student.items():
        if not value.is_floating_point() or "running" in name:
            continue
        carried = not any(part in name for part in STUDENT_NEW_PARTS)
        if carried:  # loaded from the teacher and frozen during the first niter epochs
            assert torch.equal(value, teacher[name]), name
    changed = [n for n in student if n.startswith("cond_features") and "weight" in n
               and n in teacher and student[n].shape == teacher[n].shape
               and not torch.equal(student[n], teacher[n])]
    assert changed, "the condition encoder should have trained"


def test_missing_or_wrong_earlier_checkpoints_stop_at_start(train_root, tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(CheckpointError, match="--pb_warp_checkpoint is required"):
        run(ParserBasedGenerator(), _args(train_root, runs, "a"))
    with pytest.raises(CheckpointError, match=r"--pb_warp_checkpoint: file not found: .*nope"):
        run(ParserBasedGenerator(), _args(train_root, runs, "b", "--pb_warp_checkpoint",
                                          str(tmp_path / "nope.pth")))
    run(ParserBasedWarp(), _args(train_root, runs, "s1"))
    with pytest.raises(CheckpointError, match=r"--pb_checkpoint: .*'pb_warp' checkpoint; "
                                              r"expected one of \['pb_gen'\]"):
        run(ParserFreeWarp(), _args(train_root, runs, "c", "--pb_checkpoint",
                                    str(runs / "s1/final.pth")))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        run(ParserBasedGenerator(), _args(train_root, runs, "d", "--pb_warp_checkpoint",
                                          str(runs / "s1/final.pth"), "--fpn_dim", "16"))


def test_warp_loss_falls_on_a_fixed_batch(train_root):
    torch.manual_seed(0)
    dataset = VitonTrainDataset(train_root, 64, 64, seed=0)
    batch = {k: torch.stack([dataset[i][k] for i in range(2)]) for k in
             ("image", "garment", "garment_edge", "label", "densepose", "keypoints",
              "unpaired_garment", "unpaired_garment_edge")}
    inputs = TryOnInputs.from_batch(batch)
    model = AFWM(45, channels=(16, 32, 32, 32, 32), fpn_dim=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    no_vgg = VGGLoss(None, 0)
    totals, data_terms = [], []
    for _ in range(50):
        out = model(inputs.pb_condition, inputs.garment, inputs.garment_edge, return_levels=True)
        terms = warp_loss(out.levels, inputs.person_clothes, inputs.person_clothes_edge, no_vgg)
        loss = sum(terms.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(loss.item())
        data_terms.append((terms["warp_l1"] + terms["warp_edge"]).item())
    # The appearance and edge terms fall to well under half their start. At 64x64 the
    # second-order term of the coarsest (4x4, 8x8) flows, dominated by their borders, falls
    # slowly, so the total falls by less.
    assert min(data_terms[-5:]) < 0.4 * data_terms[0], data_terms[::10]
    assert min(totals[-5:]) < 0.75 * totals[0], totals[::10]
