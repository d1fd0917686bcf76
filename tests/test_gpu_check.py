"""scripts/gpu_check.py on a machine without CUDA: the CUDA checks say they are skipped and
why, the CPU ones run, and the report says so (its full CPU run is in docs/benchmarks/)."""

import json

import torch

from scripts import gpu_check


def test_the_self_check_skips_cuda_checks_and_runs_the_rest_on_cpu(tmp_path, capsys):
    out = tmp_path / "report.json"
    status = gpu_check.main(["--device", "cpu", "--checks", "triton_vs_band,amp_tryon,cuda_graph",
                             "--out", str(out)])
    report = json.loads(out.read_text())
    checks = report["checks"]
    assert status == 0 and set(checks) == {"triton_vs_band", "amp_tryon", "cuda_graph"}
    if not torch.cuda.is_available():
        for name in ("triton_vs_band", "cuda_graph"):
            assert checks[name]["status"] == "skipped" and "CUDA" in checks[name]["details"]
    assert checks["amp_tryon"]["status"] == "pass"
    assert report["environment"]["torch"] == torch.__version__
    assert f"report: {out}; 0 failed" in capsys.readouterr().out
