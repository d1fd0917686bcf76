"""The benchmark script runs end to end at tiny sizes and reports every path with its ratio."""

import argparse
import json
from pathlib import Path

import pytest

from data.synthetic import make_dataset
from scripts import bench_training, benchmark

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_reports_plain_and_fast_paths_with_ratios(tmp_path):
    out = tmp_path / "bench.json"
    report = benchmark.main(["--devices", "cpu", "--sections", "correlation,inference",
                             "--batch_sizes", "1", "--height", "64", "--width", "64",
                             "--warmup", "0", "--repeats", "1", "--corr_shape", "1,8,16,16",
                             "--json", str(out), "--no_onnx"])
    peaks = [r for r in report["results"] if r["section"] == "peak"]
    assert len(peaks) == 1 and peaks[0]["gflops"]["fp32"] > 0
    rows = [r for r in report["results"] if r["section"] != "peak"]
    paths = {(r["section"], r["path"]) for r in rows}
    assert {("correlation", "plain"), ("correlation", "band"), ("inference", "plain"),
            ("inference", "band+fold+cl")} <= paths
    # Exporting the full-width models takes half a minute: tests/test_export.py times the
    # ONNX Runtime row with its own small exported graph.
    assert ("inference", "onnxruntime") not in paths
    for row in rows:
        if row["section"] == "inference":   # GFLOP/s against the peak of its number format
            peak = peaks[0]["gflops"][row["peak_dtype"]]
            assert row["fraction_of_peak"] == row["gflops"] / peak > 0
        assert row["latency_ms"] > 0
        if row["path"] == "plain":
            assert row["speedup_vs_plain"] == 1.0
        else:
            assert row["speedup_vs_plain"] > 0
    assert json.loads(out.read_text())["results"][0]["section"] == "correlation"


def test_flags_that_would_time_nothing_are_refused(user_error):
    # A misspelt --paths name was dropped unsaid; a flag of a section not run did nothing.
    base = ["--devices", "cpu"]
    for flags, message in (
            (["--sections", "inference", "--no_onnx", "--paths", "plain,band+cl"],
             "--paths: no path named band+cl here; the paths: band, band+"),
            (["--sections", "correlation", "--data_root", "d", "--batch_sizes", "8"],
             "--batch_sizes: for the inference section (--sections)"),
            (["--sections", "correlation", "--data_root", "d"],
             "--data_root: for the data section (--sections)"),
            (["--sections", "training", "--repeats", "5"],
             "--repeats: for the inference and correlation sections"),
            (["--sections", "profile"], "--sections profile: it profiles the inference rows")):
        assert message in user_error(lambda flags=flags: benchmark.parse_args(base + flags))
    args = benchmark.parse_args(base + ["--sections", "inference", "--no_onnx", "--paths",
                                        "plain,band"])
    assert args.paths == "plain,band"
    # The correlation rows take --warmup and --repeats too.
    assert benchmark.parse_args(base + ["--sections", "correlation", "--repeats", "5"]).repeats == 5


def test_training_rows_time_every_stage_step(tmp_path):
    # The tiny test widths without the perceptual loss's VGG, which takes seconds to build.
    config = tmp_path / "tiny_no_vgg.yaml"
    config.write_text((ROOT / "configs" / "tiny.yaml").read_text() + "vgg_layers: 0\n")
    report = benchmark.main(["--devices", "cpu", "--sections", "training", "--height", "64",
                             "--width", "64", "--train_batch_size", "1", "--train_warmup", "0",
                             # 3 steps of a 2-sample set: the second epoch must start too.
                             "--train_repeats", "3", "--train_config", str(config),
                             "--paths", "plain,band",
                             "--train_stages", "pb_warp,pb_gen,pf_warp,pf_gen",
                             "--json", str(tmp_path / "train.json")])
    rows = report["results"]
    assert {(r["stage"], r["path"]) for r in rows} == {
        (stage, path) for stage in ("pb_warp", "pb_gen", "pf_warp", "pf_gen")
        for path in ("plain", "band")}
    for row in rows:
        assert row["section"] == "training" and row["step_ms"] > 0 and row["samples_per_s"] > 0


def test_training_bench_times_exactly_the_steps_asked(tmp_path, capsys):
    # A step's time runs to the next step's start: --steps N timed N - 1 steps, and 1 none.
    config = tmp_path / "tiny_no_vgg.yaml"
    config.write_text((ROOT / "configs" / "tiny.yaml").read_text() + "vgg_layers: 0\n")
    make_dataset(str(tmp_path / "data"), num_train=8, num_test=0, height=64, width=48)
    args = argparse.Namespace(stage="pb_warp", checkpoints="{}", config=str(config),
                              folder=str(tmp_path), run_name="timed", precision="fp32",
                              warmup=1, steps=2, threads=1)
    timed = bench_training.worker(args)
    assert len(timed["step_s"]) == len(timed["forward_s"]) == 2
    assert all(step > forward > 0 for step, forward in zip(timed["step_s"], timed["forward_s"]))
    with pytest.raises(SystemExit):
        bench_training.parse_args(["--steps", "0"])
    assert "--steps must be at least 1, got 0" in capsys.readouterr().err
