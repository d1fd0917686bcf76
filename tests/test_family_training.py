"""The four stages train every architecture of the family: FS-VTON's and DM-VTON's warps and
generators, as teachers (45 / 8 input channels) and as students, and a student of another
architecture or width than its teacher (random start, 1x1 feature adapters)."""

import pytest
import torch

from data.synthetic import make_dataset
from models.distillation import FeatureAdapter, distillation_loss
from tests.test_stages import _args
from train_pb_gen import ParserBasedGenerator
from train_pb_warp import ParserBasedWarp
from train_pf_gen import ParserFreeGenerator
from train_pf_warp import ParserFreeWarp
from utils.checkpoint import CheckpointError, read_checkpoint
from utils.inference.model import load_tryon_model
from utils.training.engine import run

NARROW_MOBILE = ("--warp_arch", "mobile", "--fpn_dim", "16", "--mobile_width", "0.25",
                 "--head_channels", "16,8,8")


@pytest.fixture(scope="module")
def train_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("family_train")
    return make_dataset(str(out), num_train=4, num_test=0, seed=2, height=64, width=64)["train"]


@pytest.fixture(scope="module")
def pfafn_teacher(train_root, tmp_path_factory):
    runs = tmp_path_factory.mktemp("pfafn_teacher")
    return runs, teacher(train_root, runs)


def teacher(train_root, runs, warp_flags=(), gen_flags=()):
    """Stage 1 with the warp's architecture flags, stage 2 (which continues that warp) with
    the generator's; returns the stage-2 file."""
    run(ParserBasedWarp(), _args(train_root, runs, "pb_warp", *warp_flags))
    run(ParserBasedGenerator(), _args(train_root, runs, "pb_gen", "--pb_warp_checkpoint",
                                      str(runs / "pb_warp" / "final.pth"), *gen_flags))
    return runs / "pb_gen" / "final.pth"


def student(train_root, runs, pb_gen, name, warp_flags=(), gen_flags=()):
    run(ParserFreeWarp(), _args(train_root, runs, f"{name}_warp", "--pb_checkpoint",
                                str(pb_gen), *warp_flags))
    result = run(ParserFreeGenerator(), _args(
        train_root, runs, f"{name}_gen", "--pb_checkpoint", str(pb_gen), "--pf_warp_checkpoint",
        str(runs / f"{name}_warp" / "final.pth"), *gen_flags))
    return runs / f"{name}_gen" / "final.pth", result


@pytest.mark.parametrize("warp_arch, gen_arch", [("fsvton", "resunet"), ("mobile", "mobile")])
def test_teachers_of_each_architecture(train_root, tmp_path, warp_arch, gen_arch):
    runs = tmp_path / "runs"
    pb_gen = teacher(train_root, runs, ("--warp_arch", warp_arch), ("--gen_arch", gen_arch))
    saved = read_checkpoint(pb_gen)
    assert (saved["arch"]["warp"]["type"], saved["arch"]["warp"]["input_nc"]) == (warp_arch, 45)
    assert (saved["arch"]["gen"]["type"], saved["arch"]["gen"]["input_nc"]) == (gen_arch, 8)
    # The same student on that teacher: it starts from the teacher's warp.
    checkpoint, result = student(train_root, runs, pb_gen, "same",
                                 ("--warp_arch", warp_arch), ("--gen_arch", gen_arch))
    assert result.finished and all(torch.isfinite(torch.tensor(v)) for v in result.terms.values())
    model = load_tryon_model(str(checkpoint), str(checkpoint))
    assert (model.warp.arch["type"], model.gen.arch["type"]) == (warp_arch, gen_arch)


def test_a_narrow_mobile_student_of_a_pfafn_teacher(train_root, pfafn_teacher):
    runs, pb_gen = pfafn_teacher
    checkpoint, result = student(train_root, runs, pb_gen, "mobile", NARROW_MOBILE,
                                 ("--gen_arch", "mobile"))
    stage3 = read_checkpoint(runs / "mobile_warp" / "final.pth")
    assert set(stage3["model"]) == {"warp", "adapter"}      # the teacher's 32 vs the student's 16
    assert stage3["arch"]["warp"]["fpn_dim"] == 16 and stage3["arch"]["adapter"] is None
    # Stage 3 trained everything from the first step: one optimiser group, the whole warp.
    assert [g["name"] for g in stage3["optimizer"]["param_groups"]] == ["warp", "adapter"]
    assert "distill_feature" in result.terms and result.terms["distill_feature"] > 0
    model = load_tryon_model(str(checkpoint), str(checkpoint))
    assert (model.warp.arch["type"], model.gen.arch["type"]) == ("mobile", "mobile")
    # The warp alone, as a released file holds it: its missing adapter was named as keys that
    # did not fit, as if the warp were wrong.
    plain = runs / "mobile_warp" / "plain_warp.pth"
    torch.save(stage3["model"]["warp"], plain)
    with pytest.raises(CheckpointError, match=r"plain_warp.pth: no adapter from the student's "
                                              r"16-channel pyramid to the teacher's 32 in it"):
        run(ParserFreeGenerator(), _args(train_root, runs, "plain_gen", "--pb_checkpoint",
                                         str(pb_gen), "--pf_warp_checkpoint", str(plain)))


def test_an_fsvton_student_of_a_pfafn_teacher(train_root, pfafn_teacher):
    runs, pb_gen = pfafn_teacher
    _, result = student(train_root, runs, pb_gen, "style", ("--warp_arch", "fsvton"))
    saved = read_checkpoint(runs / "style_warp" / "final.pth")
    assert saved["arch"]["warp"]["type"] == "fsvton" and "adapter" not in saved["model"]
    assert result.finished


def test_adapted_distillation_trains_the_adapter():
    torch.manual_seed(0)
    from models.afwm import WarpLevel

    def levels(channels, requires_grad=False):
        out = []
        for i in range(5):
            size = 2 ** (i + 1)
            feature = torch.randn(2, channels, size, size, requires_grad=requires_grad)
            flow = torch.randn(2, 2, 2 * size, 2 * size, requires_grad=requires_grad)
            zeros = torch.zeros(1)
            out.append(WarpLevel(flow=flow, cond_feature=feature, delta_main=zeros,
                                 delta_refine=zeros, flow_dx=zeros, flow_dy=zeros))
        return out
    teacher_levels, student_levels = levels(32), levels(8, requires_grad=True)
    adapter = FeatureAdapter(8, 32)
    terms = distillation_loss(teacher_levels, student_levels, torch.ones(2), adapter=adapter)
    terms["distill_feature"].backward()
    assert adapter.levels[0].weight.grad.abs().sum() > 0
    assert student_levels[0].cond_feature.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="pass an adapter"):
        distillation_loss(teacher_levels, levels(8), torch.ones(2))
