"""The figures of the docs, written from the committed measurements under docs/benchmarks/.

    python scripts/docs_tables.py            # rewrite every table between its markers
    python scripts/docs_tables.py --check    # exit 1, naming each table that differs

A table lives in a Markdown file between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``;
NAME is one of ``TABLES``, each a function of the JSON reports. Nothing between the markers is
written by hand, so a doc cannot disagree with its measurement (tests/test_docs_tables.py runs
the check).
"""

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common.cli import HelpFormatter  # noqa: E402

BENCHMARKS = ROOT / "docs" / "benchmarks"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# The benchmark's architectures and paths, as the docs name them.
NETWORKS = {"pfafn": "PF-AFN", "fsvton": "FS-VTON", "dmvton": "DM-VTON",
            "mobile_student": "mobile student"}
SPEED_PATHS = (("plain", "plain"), ("band", "band"), ("band+fold+cl", "fast"),
               ("band+fold+cl+bf16", "fast + bf16"), ("onnxruntime", "ONNX Runtime"),
               ("onnxruntime+int8", "ONNX Runtime int8"))
# The path that runs each number format of test.py and the page.
FORMAT_PATHS = {"fp32": "band+fold+cl", "bf16": "band+fold+cl+bf16", "int8": "onnxruntime+int8"}
PROFILE_PARTS = ("encoders", "flow heads", "cost volumes", "sampling", "generator",
                 "flow arithmetic and the rest")
# The students of the quality report, by the prefix of their run names.
STUDENTS = (("mobile_student", "mobile"), ("fsvton_student", "FS-VTON"), ("student", "PF-AFN"))
# Released sizes: parameters of the warp and the generator (tests/test_families.py and
# tests/test_models.py count them), and where each family's files come from.
ZOO = {
    "pfafn": ("[Ge et al., CVPR 2021](https://arxiv.org/abs/2103.04559)",
              "`warp_model_final.pth`, `gen_model_final.pth`", 29_304_416, 43_899_968),
    "fsvton": ("[He et al., CVPR 2022](https://arxiv.org/abs/2204.01046)",
               "`PFAFN_warp_epoch_101.pth`, `PFAFN_gen_epoch_101.pth`", 33_290_000, 43_899_968),
    "dmvton": ("[Nguyen-Ngoc et al., 2023](https://arxiv.org/abs/2308.13798)",
               "`dmvton_pf_warp.pt`, `dmvton_pf_gen.pt`", 7_170_000, 2_180_000),
    "mobile_student": ("this project, `configs/mobile_student.yaml`", "train it",
                       540_000, 2_180_000),
}


def load(name: str) -> dict:
    """A committed report of docs/benchmarks/ by file name."""
    return json.loads((BENCHMARKS / name).read_text())


def markdown_table(header: list, rows: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def inference_rows(report: dict) -> dict:
    """{(arch, path, batch): result} of the benchmark's inference section."""
    return {(row["arch"], row["path"], row["batch"]): row for row in report["results"]
            if row.get("section") == "inference"}


def peak(report: dict) -> dict:
    """GFLOP/s of this CPU's reference convolution per format ({'fp32': ..., 'bf16': ...})."""
    return next(row["gflops"] for row in report["results"] if row.get("section") == "peak")


def share(row: dict, peaks: dict) -> float:
    """The fraction of the format's peak a timed path reached (int8 against fp32's)."""
    return row["gflops"] / peaks["bf16" if row["config"].get("bf16") else "fp32"]


def speed_cell(rows: dict, arch: str, path: str, peaks: dict) -> str:
    one, eight = rows.get((arch, path, 1)), rows.get((arch, path, 8))
    if one is None:
        return "–"
    text = f"{one['latency_ms']:.0f} ms, {share(one, peaks):.0%}"
    return text + (f" · {eight['images_per_s']:.1f}/s" if eight else "")


def speed_table() -> str:
    """Per network and path: ms per try-on at batch 1, share of the peak, try-ons/s at 8."""
    report = load("cpu_2core.json")
    rows, peaks = inference_rows(report), peak(report)
    body = []
    for arch, name in NETWORKS.items():
        gflop = rows[(arch, "plain", 1)]["gflop_per_image"]
        body.append([name, f"{gflop:.1f}"]
                    + [speed_cell(rows, arch, path, peaks) for path, _ in SPEED_PATHS])
    return markdown_table(["network", "GFLOP"] + [label for _, label in SPEED_PATHS], body)


def offered() -> list:
    """The formats the quality report offers (kept every image near fp32), in bits' order."""
    verdicts = load("precision_quality_cpu.json")["offered"]
    return [name for name in ("fp32", "bf16", "fp16", "int8") if verdicts.get(name)]


def formats_table() -> str:
    """Per network: ms per try-on in each format and the fastest format the quality report
    offers."""
    report = load("cpu_2core.json")
    rows, peaks, allowed = inference_rows(report), peak(report), offered()
    body = []
    for arch, name in NETWORKS.items():
        cells = [speed_cell(rows, arch, FORMAT_PATHS[fmt], peaks) for fmt in FORMAT_PATHS]
        timed = {fmt: rows[(arch, FORMAT_PATHS[fmt], 1)]["latency_ms"] for fmt in allowed
                 if (arch, FORMAT_PATHS.get(fmt), 1) in rows}
        best = min(timed, key=timed.get)
        body.append([name] + cells + [f"{best}, {timed[best]:.0f} ms"])
    return markdown_table(["network", "fp32 (fast)", "bf16", "int8 (ONNX Runtime)",
                           "fastest offered"], body)


def zoo_table() -> str:
    """Per architecture: paper, released files, parameters, fp32 megabytes and CPU speed."""
    report = load("cpu_2core.json")
    rows, allowed = inference_rows(report), offered()
    body = []
    for arch, (paper, files, warp, gen) in ZOO.items():
        theirs, ours = rows[(arch, "plain", 1)], rows[(arch, FORMAT_PATHS["fp32"], 1)]
        timed = {fmt: rows[(arch, FORMAT_PATHS[fmt], 1)]["latency_ms"] for fmt in allowed}
        best = min(timed, key=timed.get)
        body.append([NETWORKS[arch], paper, files,
                     f"{warp / 1e6:.2f} M + {gen / 1e6:.2f} M", f"{(warp + gen) * 4 / 1e6:.0f}",
                     f"{theirs['latency_ms']:.0f} / {ours['latency_ms']:.0f} / "
                     f"{timed[best]:.0f} ({best})"])
    return markdown_table(["architecture", "paper", "released files", "parameters (warp + gen)",
                           "MB, fp32", "CPU ms: their way / ours fp32 / fastest offered"], body)


def profile_table() -> str:
    """Per profiled network and path: each part's own ms and its share of the peak."""
    report = load("cpu_2core.json")
    body = []
    for row in report["results"]:
        if row.get("section") != "profile" or "int8" in row["path"]:
            continue
        label = "bf16" if "bf16" in row["path"] else "fp32"
        cells = []
        for part in PROFILE_PARTS:
            found = row["categories"].get(part)
            if found is None:
                cells.append("–")
                continue
            # The share is of the path's own format's peak (bf16 rows: bf16's).
            fraction = found.get("fraction_of_peak", 0)
            cells.append(f"{found['ms']:.1f} ms" + (f", {fraction:.0%}" if found["gflop"] else ""))
        body.append([f"{NETWORKS[row['arch']]}, fast {label}"] + cells)
    return markdown_table(["network, path"] + list(PROFILE_PARTS), body)


def peak_table() -> str:
    """The machine of the speed tables and its measured peak."""
    report = load("cpu_2core.json")
    env, peaks = report["environment"], peak(report)
    return markdown_table(
        ["CPU", "threads", "PyTorch", "ONNX Runtime", "peak fp32", "peak bf16", "command"],
        [[f"{env['cpu']['model']} ({', '.join(env['cpu']['flags'])})", env["torch_threads"],
          env["torch"], env["onnxruntime"], f"{peaks['fp32']:.0f} GFLOP/s",
          f"{peaks['bf16']:.0f} GFLOP/s", f"`{env['command']}`"]])


def correlation_table() -> str:
    """The cost volume alone: the shift loop against the band formulation."""
    report = load("cpu_2core.json")
    rows = [row for row in report["results"] if row.get("section") == "correlation"]
    body = []
    for stage in ("forward", "forward+backward"):
        times = {row["path"]: row["latency_ms"] for row in rows if row["stage"] == stage}
        body.append([stage, f"{times['plain']:.0f} ms", f"{times['band']:.0f} ms",
                     f"{times['plain'] / times['band']:.1f}×"])
    shape = "×".join(str(n) for n in rows[0]["config"]["shape"])
    return markdown_table([f"cost volume, B×C×H×W {shape}", "shift loop", "band", "speed-up"],
                          body)


def student_of(run_name: str) -> str:
    return next(label for prefix, label in STUDENTS if run_name.startswith(prefix))


def quality_table() -> str:
    """Per student and format: SSIM against fp32 (mean, worst image), levels, paired SSIM."""
    report = load("precision_quality_cpu.json")
    verdicts = report["offered"]
    body = []
    for label in ("PF-AFN", "FS-VTON", "mobile"):
        runs = [run["precisions"] for run in report["runs"] if student_of(run["model"]) == label]
        for fmt in ("bf16", "int8"):
            found = [run[fmt] for run in runs if fmt in run and "skipped" not in run[fmt]]
            if not found:
                continue
            fp32 = statistics.mean(run["fp32"]["paired_ssim"] for run in runs)
            body.append([
                label, fmt,
                f"{statistics.mean(f['ssim_vs_fp32'] for f in found):.4f} "
                f"({min(f['ssim_vs_fp32_worst'] for f in found):.4f})",
                f"{statistics.mean(f['levels_mean'] for f in found):.2f} / "
                f"{max(f['levels_p99.9'] for f in found):.0f}",
                f"{statistics.mean(f['paired_ssim'] for f in found):.4f} ({fp32:.4f})",
                "yes" if verdicts.get(fmt) else "no"])
    return markdown_table(["student", "format", "SSIM vs fp32 (worst image)",
                           "levels: mean / p99.9", "paired SSIM (fp32)", "offered"], body)


def gpu_check_table() -> str:
    """Each check of scripts/gpu_check.py's committed CPU report."""
    report = load("gpu_check_cpu.json")
    body = [[name, check["status"], f"{check['seconds']:.1f}", check.get("details", "")]
            for name, check in report["checks"].items()]
    return markdown_table(["check", "status", "seconds", "details"], body)


def training_table(name: str = "training_demo_cpu.json") -> str:
    """Samples per second of each training stage, this tree against the tree benchmarked
    beside it (each at its own configs/demo.yaml), fp32 and bf16, from the JSON ``name``."""
    report = load(name)
    rows = {(row["tree"], row["stage"], row["precision"]): row for row in report["rows"]}
    this, other = report["trees"][0], report["trees"][-1]
    body = []
    for stage in dict.fromkeys(row["stage"] for row in report["rows"]):
        cells = [stage]
        for precision in ("fp32", "bf16"):
            before, after = rows[other, stage, precision], rows[this, stage, precision]
            cells += [f"{before['samples_per_s']:.2f}", f"{after['samples_per_s']:.2f}",
                      f"{after['samples_per_s'] / before['samples_per_s']:.2f}x"]
        base = rows[other, stage, "fp32"]["samples_per_s"]
        cells.append(f"{rows[this, stage, 'bf16']['samples_per_s'] / base:.2f}x")
        body.append(cells)
    return markdown_table(
        ["stage", "before fp32", "now fp32", "speed-up", "before bf16", "now bf16", "speed-up",
         "now bf16 / before fp32"], body) + (
        f"\n\n{report['cpu']}, {report['threads']} thread, PyTorch {report['torch']}; "
        f"`{report['command']}`")


TABLES = {"training": training_table,
          "training_amx": lambda: training_table("training_demo_cpu_amx.json"),
          "speed": speed_table, "formats": formats_table,
          "zoo": zoo_table, "profile": profile_table, "machine": peak_table,
          "correlation": correlation_table, "quality": quality_table,
          "gpu_check": gpu_check_table}
MARKER = re.compile(r"(<!-- table:(\w+) -->\n)(.*?)(<!-- /table:\2 -->)", re.S)


def render(text: str, path: Path) -> str:
    """``text`` with every marked table written from its function."""
    def fill(match):
        name = match.group(2)
        if name not in TABLES:
            raise SystemExit(f"{path}: unknown table {name!r}; expected one of "
                             f"{', '.join(TABLES)}")
        return f"{match.group(1)}{TABLES[name]()}\n{match.group(4)}"
    return MARKER.sub(fill, text)


def stale(paths=DOCS) -> list:
    """(path, table names) of every file whose tables differ from what the JSON gives."""
    found = []
    for path in paths:
        text = path.read_text()
        if render(text, path) != text:
            names = [m.group(2) for m in MARKER.finditer(text)
                     if m.group(3) != TABLES[m.group(2)]() + "\n"]
            found.append((path, names))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a table differs from its JSON")
    args = parser.parse_args(argv)
    differing = stale()
    for path, names in differing:
        relative = path.relative_to(ROOT)
        if args.check:
            print(f"{relative}: tables {', '.join(names)} differ from docs/benchmarks/; "
                  f"run python scripts/docs_tables.py", file=sys.stderr)
        else:
            path.write_text(render(path.read_text(), path))
            print(f"wrote {relative} ({', '.join(names)})")
    return 1 if differing and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
