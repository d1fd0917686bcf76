"""What a newcomer meets first: one default number format for test.py and the page, chosen
from the device and the committed quality report; test.py --eval refusing missing metric
weights and misspelt metrics before writing any try-on; data.check at the size of a training
configuration."""

import json
from pathlib import Path

import pytest
import torch

import test as test_script
from data.check import main as check_main
from data.synthetic import make_dataset
from scripts import evaluate, serve
from tests.small_models import small_models, stage4_checkpoint
from utils.inference import precision
from utils.metrics.images import MetricsError
from utils.weights import MissingWeightsError, WeightsFileError

REPORT = Path(precision.QUALITY_REPORTS["cpu"])


def _report(tmp_path, bf16_worst: float) -> Path:
    """The committed quality report with every bf16 image's SSIM against fp32 set."""
    report = json.loads(REPORT.read_text())
    for run in report["runs"]:
        run["precisions"]["bf16"]["ssim_vs_fp32_worst"] = bf16_worst
        run["precisions"]["bf16"]["paired_ssim"] = run["precisions"]["fp32"]["paired_ssim"]
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    return path


def test_the_default_format_follows_the_device_and_the_worst_image(tmp_path, monkeypatch):
    # The committed report: bf16's worst image (a mobile student's) lost 0.07 SSIM.
    assert precision.default_precision("cpu")[0] == "fp32"
    native = {"fp32": None, "bf16": None, "fp16": "not here", "int8": "not here"}
    monkeypatch.setattr(precision, "unsupported", lambda name, device: native[name])
    choice, why = precision.default_precision("cpu", {"cpu": _report(tmp_path, 0.995)})
    assert choice == "bf16" and "within 0.01" in why
    choice, why = precision.default_precision("cpu", {"cpu": _report(tmp_path, 0.95)})
    assert choice == "fp32" and "lost 0.050 SSIM" in why and "--precision bf16" in why
    native["bf16"] = "this CPU has no native bf16"
    choice, why = precision.default_precision("cpu", {"cpu": _report(tmp_path, 0.995)})
    assert choice == "fp32" and "no native bf16" in why
    # No report for a kind of device: fp32, whatever the hardware runs.
    assert precision.default_precision("cuda", {"cpu": REPORT})[0] == "fp32"


def test_test_py_and_the_page_share_the_default(tmp_path):
    base = ["--checkpoint", "c.pth"]
    page = serve.parse_args(base)
    tryon = test_script.parse_args(base + ["--dataroot", "d", "--results_dir", "r"])
    assert page.precision is tryon.precision is None


def test_the_model_runs_in_the_default_format_and_says_why(tmp_path):
    checkpoint = stage4_checkpoint(tmp_path / "final.pth", *small_models(0))
    args = serve.parse_args(["--checkpoint", str(checkpoint), "--device", "cpu"])
    model = serve.load_model_from_args(args)
    expected, why = precision.default_precision(torch.device("cpu"))
    assert model.precision == expected and model.precision_reason == why


@pytest.fixture(scope="module")
def test_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    return make_dataset(str(out), num_train=4, num_test=3, seed=5, height=128, width=96)


def test_eval_refuses_missing_metric_weights_before_any_try_on(test_root, tmp_path,
                                                               monkeypatch):
    monkeypatch.setattr("utils.weights.hub_checkpoint_dir", lambda: tmp_path / "empty_cache")
    checkpoint = stage4_checkpoint(tmp_path / "final.pth", *small_models(0))
    results = tmp_path / "results"
    argv = ["--dataroot", test_root["test"], "--checkpoint", str(checkpoint), "--device", "cpu",
            "--workers", "0", "--results_dir", str(results), "--height", "64", "--width", "64"]
    with pytest.raises(MissingWeightsError, match="alexnet"):
        test_script.generate(test_script.parse_args(argv + ["--pairs", "paired", "--eval",
                                                            "--metrics", "ssim,lpips"]))
    with pytest.raises(MissingWeightsError, match="--fid_weights"):
        test_script.generate(test_script.parse_args(argv + ["--pairs", "unpaired", "--eval",
                                                            "--metrics", "fid"]))
    # Nothing left to score, or a weights file that is not the network's: refused at start too.
    with pytest.raises(MetricsError, match="unpaired pairs have FID only"):
        test_script.generate(test_script.parse_args(argv + ["--pairs", "unpaired", "--eval",
                                                            "--metrics", "ssim,lpips"]))
    with pytest.raises(MetricsError, match="--lpips_backbone_weights: for the LPIPS score, "
                                           "not scored on unpaired pairs"):
        test_script.generate(test_script.parse_args(
            argv + ["--pairs", "unpaired", "--eval", "--metrics", "lpips,fid",
                    "--lpips_backbone_weights", str(tmp_path / "none.pth")]))
    assert not results.exists()
    foreign = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save({"weight": torch.zeros(1)}, foreign)
    with pytest.raises(WeightsFileError, match="does not match"):
        test_script.generate(test_script.parse_args(
            argv + ["--pairs", "paired", "--eval", "--metrics", "lpips",
                    "--lpips_backbone_weights", str(foreign)]))
    (tmp_path / "inception.pth").write_text("not a network")
    with pytest.raises(WeightsFileError, match="inception.pth"):
        test_script.generate(test_script.parse_args(
            argv + ["--pairs", "unpaired", "--eval", "--metrics", "fid", "--fid_weights",
                    str(tmp_path / "inception.pth")]))
    # Try-ons too small for a metric, or too few for FID: refused before the first one too
    # (they were tracebacks after the last, with every try-on written).
    (tmp_path / "one.txt").write_text("000000_0.jpg 000000_1.jpg\n")
    with pytest.raises(MetricsError, match="FID needs at least 2 try-ons"):
        test_script.generate(test_script.parse_args(
            argv + ["--pairs", str(tmp_path / "one.txt"), "--eval", "--metrics", "fid",
                    "--allow_random_weights"]))
    small = make_dataset(str(tmp_path / "small"), num_train=0, num_test=2, height=32, width=24)
    with pytest.raises(MetricsError, match="LPIPS needs images of at least 31 pixels a side; "
                                           "000000_0__000000_1.png is scored at 32x24"):
        test_script.generate(test_script.parse_args(
            argv[:1] + [small["test"]] + argv[2:] + ["--pairs", "paired", "--eval", "--metrics",
                                                     "lpips", "--allow_random_weights"]))
    with pytest.raises(MetricsError, match="000000_0.jpg is 128x96 and its try-on 32x32"):
        test_script.generate(test_script.parse_args(
            argv[:-4] + ["--height", "32", "--width", "32", "--save_size", "model", "--pairs",
                         "paired", "--eval", "--metrics", "ssim"]))
    assert not list(results.glob("*.png"))
    # Unpaired pairs are not scored with LPIPS: its weights are not asked for.
    done = test_script.generate(test_script.parse_args(argv + ["--pairs", "unpaired", "--eval",
                                                               "--metrics", "lpips,fid",
                                                               "--allow_random_weights"]))
    assert done["images"] == 3


def test_a_misspelt_metric_is_refused_before_any_try_on(test_root, tmp_path, capsys):
    results = tmp_path / "results"
    argv = ["--dataroot", test_root["test"], "--checkpoint", "absent.pth", "--results_dir",
            str(results), "--eval"]
    for metrics in ("ssim,ssm", " , "):
        with pytest.raises(SystemExit) as stop:
            test_script.parse_args(argv + ["--metrics", metrics])
        assert stop.value.code == 2
        assert f"--metrics {metrics!r}: expected a comma-separated subset of ssim,lpips,fid" in \
            capsys.readouterr().err
    assert not results.exists()
    assert test_script.parse_args(argv + ["--metrics", " fid, ssim"]).metrics == ("fid", "ssim")
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--results_dir", str(results), "--dataroot", test_root["test"],
                             "--pairs", "paired", "--metrics", "psnr"])
    assert "--metrics 'psnr'" in capsys.readouterr().err


def test_flags_that_would_do_nothing_are_refused(user_error, capsys):
    # Each was accepted and changed nothing.
    folder = ["--results_dir", "r", "--dataroot", "d", "--pairs", "paired"]
    cases = [(lambda: evaluate.parse_args(folder + ["--grabcut"]),
              "--grabcut: for computing garment masks, which scoring does not read"),
             (lambda: serve.parse_args(["--checkpoint", "c.pth", "--mask_cache", "m"]),
              "--mask_cache: for a cache of computed garment masks"),
             (lambda: test_script.parse_args(folder + ["--checkpoint", "c.pth", "--eval",
                                                       "--metrics", "ssim",
                                                       "--allow_random_weights"]),
              "--allow_random_weights: for the networks of LPIPS and FID, neither in --metrics")]
    for call, message in cases:
        assert message in user_error(call)
    # Nor does the help list them (it did, with what they would have done).
    for parse, hidden in ((evaluate.parse_args, ("--grabcut", "--mask_cache", "--rebuild_masks")),
                          (serve.parse_args, ("--mask_cache", "--rebuild_masks"))):
        capsys.readouterr()
        with pytest.raises(SystemExit):
            parse(["--help"])
        text = capsys.readouterr().out
        assert "--max_megapixels" in text and not [flag for flag in hidden if flag in text]


def test_data_check_reads_at_the_size_of_a_training_configuration(test_root, tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text("height: 64\nwidth: 48\nngf: 8\nlr: 0.001\n")
    assert check_main([test_root["train"], "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "photo sizes (height x width): {'128 x 96': 4}; served at 64 x 48" in out
    # The command line overrides the file.
    assert check_main([test_root["train"], "--config", str(config), "--height", "96",
                       "--width", "64"]) == 0
    assert "served at 96 x 64" in capsys.readouterr().out
    assert check_main([test_root["train"]]) == 0
    assert "served at 256 x 192" in capsys.readouterr().out


@pytest.mark.parametrize("text, expected", [
    ('a: &a ["x", "x"]\nb: &b [*a, *a]\nheight: *b\n', "aliases ('*name') are not read"),
    ('height: "64"\n', "key 'height': expected an integer"),
])
def test_data_check_reads_its_config_as_training_does(test_root, tmp_path, capsys, text,
                                                        expected):
    """The same bounded, checked reader as training: an alias bomb or a wrong type is one line."""
    config = tmp_path / "train.yaml"
    config.write_text(text)
    with pytest.raises(SystemExit) as stop:
        check_main([test_root["train"], "--config", str(config)])
    assert stop.value.code == 2
    assert expected in capsys.readouterr().err
