"""Number formats of inference: the flow and the sampling stay float32 under autocast, the
--precision flags, the start-up choice of the fastest format, the int8 ONNX export and the
quality report, and the formats offered by default as the committed measurement says."""

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch

import test as test_script
from data.synthetic import make_dataset
from models.flow import offset_to_grid, sample
from tests.small_models import small_models, stage4_checkpoint
from tests.test_fast_paths import randomise_batchnorms
from utils.inference.model import load_tryon_model
from utils.inference.precision import (
    DEFAULT_CANDIDATES,
    MAX_SSIM_LOSS,
    Choice,
    choose_fastest,
    unsupported,
)

ROOT = Path(__file__).resolve().parents[1]
QUALITY_REPORT = ROOT / "docs" / "benchmarks" / "precision_quality_cpu.json"


@pytest.fixture(scope="module")
def test_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    make_dataset(str(out), num_train=0, num_test=4, seed=5, height=64, width=64)
    return out / "VITON_test"


@pytest.fixture(scope="module")
def calibration_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("calibration")
    make_dataset(str(out), num_train=0, num_test=4, seed=6, height=64, width=64)
    return out / "VITON_test"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    warp, gen = small_models(2)
    return stage4_checkpoint(tmp_path_factory.mktemp("ckpt") / "final.pth",
                             randomise_batchnorms(warp, 2), randomise_batchnorms(gen, 3))


# ------------------------------------------------------------------ float32 flow arithmetic


def test_flow_and_sampling_stay_float32_under_bf16_autocast():
    torch.manual_seed(0)
    offset = (torch.randn(1, 2, 16, 192) * 3).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        grid = offset_to_grid(offset)
        image = torch.randn(1, 3, 16, 192).bfloat16()
        warped = sample(image, grid)
    assert grid.dtype == warped.dtype == torch.float32
    # Positions from the bf16 offset, computed in float32: exact to float32, not to bf16's
    # third of a pixel at 192 wide.
    torch.testing.assert_close(grid, offset_to_grid(offset.float()), atol=0, rtol=0)
    torch.testing.assert_close(warped, sample(image.float(), grid), atol=0, rtol=0)


def test_the_warp_module_returns_float32_flows_under_autocast():
    warp, _ = small_models(0)
    inputs = torch.rand(1, 3, 64, 64) * 2 - 1, torch.rand(1, 3, 64, 64) * 2 - 1
    edge = torch.ones(1, 1, 64, 64)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = warp(inputs[0], inputs[1] * edge)
    assert out.flow.dtype == torch.float32
    assert out.warped.dtype == torch.float32


# ------------------------------------------------------------------------------- the flags


def test_precision_flags_and_their_errors(capsys):
    base = ["--dataroot", "d", "--results_dir", "r", "--checkpoint", "c.pth"]
    assert test_script.parse_args(base).precision is None          # fp32
    assert test_script.parse_args(base + ["--precision", "bf16"]).precision == "bf16"
    with pytest.raises(SystemExit):          # the earlier name answers with its replacement
        test_script.parse_args(base + ["--amp", "none"])
    assert "--amp: removed; use --precision" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        test_script.parse_args(base + ["--precision", "int8"])
    assert stop.value.code == 2
    assert "--precision int8 runs an ONNX graph" in capsys.readouterr().err


def test_unsupported_says_why():
    cpu = torch.device("cpu")
    assert unsupported("fp32", cpu) is None
    assert "GPUs" in unsupported("fp16", cpu)
    assert "ONNX" in unsupported("int8", cpu)
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert (unsupported("bf16", cpu) is None) == native


def test_choose_fastest_times_the_offered_formats_and_keeps_the_fastest(checkpoint):
    model = load_tryon_model(str(checkpoint), str(checkpoint), "cpu")
    choice = choose_fastest(model, candidates=("fp32", "bf16", "int8"), repeats=1)
    assert model.precision == choice.precision
    assert choice.precision == min(choice.milliseconds, key=choice.milliseconds.get)
    assert "int8" in choice.skipped and "int8" not in choice.milliseconds
    native = unsupported("bf16", torch.device("cpu")) is None
    assert ("bf16" in choice.milliseconds) == native
    assert all(ms > 0 for ms in choice.milliseconds.values())
    assert choice.describe().startswith(choice.precision)


def test_choice_description():
    text = Choice("bf16", {"fp32": 80.0, "bf16": 60.0}).describe()
    assert text.startswith("bf16 (fastest of fp32 80 ms, bf16 60 ms")
    text = Choice("fp32", {"fp32": 80.0}, {"bf16": "no bf16 here"}).describe()
    assert "only format offered" in text and "bf16: no bf16 here" in text


def test_default_candidates_are_the_formats_the_committed_measurement_offers():
    report = json.loads(QUALITY_REPORT.read_text())
    assert report["max_ssim_loss"] == MAX_SSIM_LOSS
    offered = {name for name, ok in report["offered"].items() if ok}
    assert set(DEFAULT_CANDIDATES) == offered
    for entry in report["runs"]:                 # the verdicts follow from the figures
        fp32 = entry["precisions"]["fp32"]
        for name, found in entry["precisions"].items():
            if "skipped" in found or name not in offered:
                continue
            assert 1 - found["ssim_vs_fp32"] <= MAX_SSIM_LOSS
            assert fp32["paired_ssim"] - found["paired_ssim"] <= MAX_SSIM_LOSS


# ------------------------------------------------------------------------ quality report


def test_quality_report_compares_each_format_with_fp32(checkpoint, test_root, calibration_root,
                                                       tmp_path):
    # int8 is left out here: its graph is the export's (utils.quantize.export_int8, above).
    from scripts import precision_quality
    out = tmp_path / "quality.json"
    with contextlib.redirect_stdout(io.StringIO()):
        report = precision_quality.main(
            ["--model", f"small={checkpoint}", "--dataroot", str(test_root),
             "--calibration", str(calibration_root), "--calibration_samples", "2",
             "--precisions", "fp32,bf16", "--force", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert [run["model"] for run in report["runs"]] == ["small"]
    found = report["runs"][0]["precisions"]
    assert found["fp32"]["ssim_vs_fp32"] == 1.0 and found["fp32"]["levels_max"] == 0
    bf16 = found["bf16"]
    assert 0 < bf16["ssim_vs_fp32"] <= 1.0 and 0 < bf16["paired_ssim"] <= 1.0
    assert bf16["levels_max"] >= bf16["levels_p99.9"] >= 0
    ok = (1 - bf16["ssim_vs_fp32"] <= MAX_SSIM_LOSS
          and found["fp32"]["paired_ssim"] - bf16["paired_ssim"] <= MAX_SSIM_LOSS)
    assert report["offered"] == {"fp32": True, "bf16": ok}
