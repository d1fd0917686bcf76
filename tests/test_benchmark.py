"""The benchmark script runs end to end at tiny sizes and reports every path with its ratio."""

import json

from scripts import benchmark


def test_benchmark_reports_plain_and_fast_paths_with_ratios(tmp_path):
    out = tmp_path / "bench.json"
    report = benchmark.main(["--devices", "cpu", "--sections", "correlation,inference",
                             "--batch_sizes", "1", "--height", "64", "--width", "64",
                             "--warmup", "0", "--repeats", "1", "--corr_shape", "1,8,16,16",
                             "--json", str(out), "--no_onnx"])
    rows = report["results"]
    paths = {(r["section"], r["path"]) for r in rows}
    assert {("correlation", "plain"), ("correlation", "band"), ("inference", "plain"),
            ("inference", "band+fold+cl")} <= paths
    # Exporting the full-width models takes half a minute: tests/test_export.py times the
    # ONNX Runtime row with its own small exported graph.
    assert ("inference", "onnxruntime") not in paths
    for row in rows:
        assert row["latency_ms"] > 0
        if row["path"] == "plain":
            assert row["speedup_vs_plain"] == 1.0
        else:
            assert row["speedup_vs_plain"] > 0
    assert json.loads(out.read_text())["results"][0]["section"] == "correlation"
