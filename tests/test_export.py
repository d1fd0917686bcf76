"""The exported try-on graph: ONNX file, metadata, ONNX Runtime equal to PyTorch, dynamic batch,
the torch.export program, test.py --onnx in both modes, and the errors.

One export (scripts/export.py --format both, small widths at 64x64, random weights and random
BatchNorm statistics) serves the whole module; it takes most of the module's time.
"""

import contextlib
import io
import json
import os
import re
import shutil
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import test as test_script  # noqa: E402
from common.images import to_uint8  # noqa: E402
from data.synthetic import make_dataset  # noqa: E402
from models import AFWM, ResUnetGenerator  # noqa: E402
from models.correlation import local_correlation  # noqa: E402
from models.fast import optimize_for_inference  # noqa: E402
from models.graph import EXPORT_FORMAT, INPUT_NAMES, OUTPUT_NAMES, TryOnGraph, example_inputs  # noqa: E402
from scripts import export as export_script  # noqa: E402
from tests.small_models import small_models, stage4_checkpoint  # noqa: E402
from tests.test_fast_paths import randomise_batchnorms  # noqa: E402
from utils.checkpoint import CheckpointError  # noqa: E402
from utils.export import PT2_METADATA  # noqa: E402
from utils.inference.loading import load_model_from_args  # noqa: E402
from utils.inference.model import load_tryon_model  # noqa: E402
from utils.inference.onnx_runtime import OnnxUnavailableError, load_onnx_model, select_providers  # noqa: E402
from utils.weights import file_sha256  # noqa: E402

RESULT_FIELDS = ("tryon", "warped", "warped_edge", "mask", "rendered")


@pytest.fixture(scope="module")
def test_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    make_dataset(str(out), num_train=0, num_test=5, seed=11, height=128, width=96)
    return out / "VITON_test"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A stage-4 checkpoint with random weights and BatchNorm statistics far from identity."""
    warp, gen = small_models(4)
    return stage4_checkpoint(tmp_path_factory.mktemp("ckpt") / "final.pth",
                             randomise_batchnorms(warp, 4), randomise_batchnorms(gen, 5))


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    """The ONNX file and the .pt2 program of ``checkpoint``, written by scripts/export.py."""
    out = tmp_path_factory.mktemp("export") / "tryon.onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        info = export_script.main(["--checkpoint", str(checkpoint), "--out", str(out),
                                   "--format", "both"])
    return {"onnx": out, "pt2": out.with_suffix(".pt2"), "info": info,
            "printed": printed.getvalue()}


@pytest.fixture(scope="module")
def pytorch_model(checkpoint):
    return load_tryon_model(str(checkpoint), str(checkpoint), "cpu")


def _levels(a: torch.Tensor, b: torch.Tensor) -> int:
    """Largest 8-bit level difference between two batches of [-1, 1] images."""
    return max(int(np.abs(to_uint8(x).astype(int) - to_uint8(y).astype(int)).max())
               for x, y in zip(a, b))


def _assert_same_result(got, expected, atol=1e-4):
    for name in RESULT_FIELDS:
        torch.testing.assert_close(getattr(got, name), getattr(expected, name).float(),
                                   atol=atol, rtol=1e-4, msg=name)
    assert _levels(got.tryon, expected.tryon) <= 1
    assert _levels(got.warped, expected.warped) <= 1


# ---------------------------------------------------------------------------- the cost volume


@pytest.mark.parametrize("shape,d", [((2, 5, 6, 9), 3), ((3, 4, 8, 6), 2), ((1, 3, 1, 1), 3),
                                     ((2, 7, 13, 5), 0), ((1, 2, 2, 40), 3)])
def test_rows_correlation_equals_loop(shape, d):
    torch.manual_seed(0)
    first = torch.randn(shape, requires_grad=True)
    second = torch.randn(shape, requires_grad=True)
    side = 2 * d + 1
    grad = torch.randn(shape[0], side * side, *shape[2:])
    results = {}
    for name in ("loop", "rows"):
        volume = local_correlation(first, second, d, implementation=name)
        results[name] = (volume, *torch.autograd.grad(volume, (first, second), grad))
    for expected, got in zip(results["loop"], results["rows"]):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_rows_correlation_float32_under_autocast():
    torch.manual_seed(1)
    first, second = torch.randn(1, 8, 8, 8), torch.randn(1, 8, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = local_correlation(first.bfloat16(), second.bfloat16(), implementation="rows")
    assert out.dtype == torch.float32
    expected = local_correlation(first.bfloat16().float(), second.bfloat16().float(),
                                 implementation="loop")
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------- the graph module


def test_graph_module_has_no_batchnorm_and_equals_the_models(pytorch_model):
    graph = TryOnGraph(pytorch_model.warp, pytorch_model.gen)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in graph.modules())
    # Per AFWM encoder level the middle BN of each of two ResBlocks folds (2 x 5 x 2 = 20);
    # three BNs per level open a block (2 x 5 x 3 = 30). Every generator BN follows a conv.
    generator_bns = sum(isinstance(m, nn.BatchNorm2d) for m in pytorch_model.gen.modules())
    assert graph.folded == 20 + generator_bns and graph.affine == 30
    # The models of --fast (folded, channels_last wrappers) give the same graph.
    from_fast = TryOnGraph(*(optimize_for_inference(m) for m in (pytorch_model.warp,
                                                                 pytorch_model.gen)))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in from_fast.modules())
    inputs = example_inputs(64, 64, batch=2, seed=3)
    expected = pytorch_model(*inputs)
    for module in (graph, from_fast):
        with torch.no_grad():
            got = module(*inputs)
        for name, value in zip(RESULT_FIELDS, got):
            torch.testing.assert_close(value, getattr(expected, name), atol=1e-4, rtol=1e-4,
                                       msg=name)


# ---------------------------------------------------------------------------- the ONNX file


def test_export_writes_a_checked_graph_with_metadata(exported, checkpoint):
    model = onnx.load(str(exported["onnx"]))
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain: o.version for o in model.opset_import}[""] == 18
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["format"] == EXPORT_FORMAT
    assert (meta["height"], meta["width"], meta["align_corners"]) == ("64", "64", "true")
    assert meta["warp_checkpoint"] == meta["gen_checkpoint"] == str(checkpoint)
    assert meta["warp_checkpoint_sha256"] == file_sha256(checkpoint)
    warp_arch, gen_arch = json.loads(meta["warp_arch"]), json.loads(meta["gen_arch"])
    assert (warp_arch["type"], warp_arch["channels"], warp_arch["input_nc"]) == (
        "pfafn", [8, 16, 16, 16, 16], 3)
    assert (gen_arch["type"], gen_arch["ngf"], gen_arch["input_nc"]) == ("resunet", 8, 7)

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
    inputs = {value.name: dims(value) for value in model.graph.input}
    outputs = {value.name: dims(value) for value in model.graph.output}
    assert list(inputs) == list(INPUT_NAMES) and list(outputs) == list(OUTPUT_NAMES)
    assert inputs["person"][1:] == [3, 64, 64] and inputs["garment_mask"][1:] == [1, 64, 64]
    batch = inputs["person"][0]
    assert isinstance(batch, str) and batch  # symbolic, shared by every input and output
    assert all(shape[0] == batch for shape in [*inputs.values(), *outputs.values()])

    ops = [node.op_type for node in model.graph.node]
    assert "BatchNormalization" not in ops
    convs = sum(isinstance(m, nn.Conv2d) for m in (*AFWM(3, [8, 16, 16, 16, 16], 16).modules(),
                                                   *ResUnetGenerator(7, ngf=8).modules()))
    assert ops.count("Conv") == convs
    samplers = [{a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
                for node in model.graph.node if node.op_type == "GridSample"]
    assert {s["align_corners"] for s in samplers} == {1}
    assert {s["padding_mode"] for s in samplers} == {b"border", b"zeros"}
    assert exported["info"]["onnx_bytes"] == os.path.getsize(exported["onnx"])


def test_export_prints_time_size_and_its_own_check(exported):
    printed = exported["printed"]
    size = os.path.getsize(exported["onnx"]) / 2 ** 20
    assert f"wrote {exported['onnx']}: ONNX opset 18, {size:.1f} MiB" in printed
    assert re.search(r"exported in \d+\.\d s \(capture", printed)
    assert "63 folded into convolutions, 30 as multiply-adds" in printed
    # The script's own comparison with PyTorch, for the ONNX file and for the program.
    levels = re.findall(r"try-on images within (\d+) level", printed)
    assert len(levels) == 2 and all(int(n) <= 1 for n in levels)


def test_onnx_runtime_equals_pytorch(exported, pytorch_model):
    runtime = load_onnx_model(str(exported["onnx"]), "cpu")
    assert (runtime.height, runtime.width, runtime.device) == (64, 64, torch.device("cpu"))
    assert ((runtime.precision, runtime.backend, runtime.align_corners)
            == ("fp32", "onnxruntime", True))
    person, garment, edge = example_inputs(64, 64, batch=3, seed=7)
    got = runtime(person, garment, edge)
    expected = pytorch_model(person, garment, edge)
    assert got.tryon.shape == (3, 3, 64, 64) and got.mask.shape == (3, 1, 64, 64)
    _assert_same_result(got, expected)
    # The graph masks the garment itself: a garment already masked gives the same result.
    torch.testing.assert_close(runtime(person, garment * edge, edge).tryon, got.tryon,
                               atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="garment_edge has shape"):
        runtime(person, garment, edge[:2])


def test_a_graph_under_a_name_that_is_not_utf8_loads(exported, tmp_path):
    folder = tmp_path / os.fsdecode(b"caf\xe9")
    folder.mkdir()
    shutil.copy(exported["onnx"], folder / "model.onnx")
    runtime = load_onnx_model(str(folder / "model.onnx"))
    inputs = example_inputs(64, 64, batch=1, seed=3)
    torch.testing.assert_close(runtime(*inputs).tryon,
                               load_onnx_model(str(exported["onnx"]))(*inputs).tryon)


def test_a_program_is_written_under_a_name_that_is_not_utf8(tmp_path):
    from utils.export import save_torch_export
    model = nn.Conv2d(3, 2, 1)
    program = torch.export.export(model, (torch.zeros(1, 3, 4, 4),))
    folder = tmp_path / os.fsdecode(b"caf\xe9")
    folder.mkdir()
    save_torch_export(program, folder / "model.pt2", {"format": "mine"})
    extra = {PT2_METADATA: ""}
    with open(folder / "model.pt2", "rb") as handle:
        loaded = torch.export.load(handle, extra_files=extra)
    assert '"format": "mine"' in extra[PT2_METADATA]
    x = torch.randn(1, 3, 4, 4)
    torch.testing.assert_close(loaded.module()(x), model(x))


def test_one_file_runs_batch_one_and_five(exported, pytorch_model):
    runtime = load_onnx_model(str(exported["onnx"]))
    five = example_inputs(64, 64, batch=5, seed=9)
    got_five = runtime(*five)
    _assert_same_result(got_five, pytorch_model(*five))
    for i in (0, 4):
        got_one = runtime(*(x[i:i + 1] for x in five))
        _assert_same_result(got_one, pytorch_model(*(x[i:i + 1] for x in five)))
        torch.testing.assert_close(got_one.tryon, got_five.tryon[i:i + 1], atol=1e-5, rtol=0)


def test_a_graph_of_a_fixed_batch_runs_any_batch_in_pieces_of_it(exported, tmp_path):
    # A graph whose inputs fix the batch (here set to 2 in the file) ran only that batch: any
    # other was onnxruntime's traceback.
    import onnx
    graph = onnx.load(str(exported["onnx"]))
    for value in [*graph.graph.input, *graph.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_value = 2
    fixed = tmp_path / "batch2.onnx"
    onnx.save(graph, str(fixed))
    runtime, any_batch = load_onnx_model(str(fixed)), load_onnx_model(str(exported["onnx"]))
    assert (runtime.batch, any_batch.batch) == (2, None)
    five = example_inputs(64, 64, batch=5, seed=3)
    got, expected = runtime(*five), any_batch(*five)
    for name in RESULT_FIELDS:
        assert getattr(got, name).shape[0] == 5
        torch.testing.assert_close(getattr(got, name), getattr(expected, name), atol=1e-5, rtol=0)


def test_torch_export_program_equals_pytorch(exported, pytorch_model):
    extra = {PT2_METADATA: ""}
    program = torch.export.load(str(exported["pt2"]), extra_files=extra)
    assert f'"format": "{EXPORT_FORMAT}"' in extra[PT2_METADATA]
    module = program.module()
    for batch in (1, 4):
        inputs = example_inputs(64, 64, batch=batch, seed=batch)
        with torch.no_grad():
            got = dict(zip(RESULT_FIELDS, module(*inputs)))
        expected = pytorch_model(*inputs)
        for name in RESULT_FIELDS:
            torch.testing.assert_close(got[name], getattr(expected, name), atol=1e-4,
                                       rtol=1e-4, msg=name)


def test_benchmark_times_onnx_runtime_beside_the_pytorch_paths(exported, pytorch_model):
    from scripts import benchmark
    args = benchmark.parse_args(["--devices", "cpu", "--sections", "inference,profile",
                                 "--batch_sizes", "1,2", "--height", "64", "--width", "64",
                                 "--warmup", "0", "--repeats", "1", "--no_int8"])
    runtimes = {"fp32": load_onnx_model(str(exported["onnx"])), "export_s": 1.5,
                "files": {"fp32": str(exported["onnx"])}}
    rows = benchmark.bench_inference("cpu", args, pytorch_model.warp, pytorch_model.gen,
                                     runtimes=runtimes)
    benchmark.add_ratios(rows)
    benchmark.add_fractions_of_peak(rows, {"fp32": 100.0, "bf16": 200.0})
    onnx_rows = [r for r in rows if r["section"] == "inference" and r["path"] == "onnxruntime"]
    assert [r["batch"] for r in onnx_rows] == [1, 2]
    for row in onnx_rows:
        fast = next(r for r in rows if r["section"] == "inference" and r["batch"] == row["batch"]
                    and r["path"] == "band+fold+cl")
        assert row["latency_ms"] > 0 and row["export_s"] == 1.5
        assert row["fast_path"] == "band+fold+cl"
        assert row["speedup_vs_fast"] == pytest.approx(fast["latency_ms"] / row["latency_ms"])
        assert row["speedup_vs_plain"] > 0
        assert row["fraction_of_peak"] == pytest.approx(row["gflops"] / 100.0)
    # The profile of the fp32 fast path and of the fastest one: parts that add up to the
    # whole, with the FLOPs of the convolutions found in the encoders, heads and generator.
    profiles = [r for r in rows if r["section"] == "profile"]
    assert profiles[0]["path"] == "band+fold+cl"
    fastest = min((r for r in rows if r["section"] == "inference" and r["batch"] == 1),
                  key=lambda r: r["latency_ms"])
    assert [p["path"] for p in profiles] == ["band+fold+cl"] + (
        [fastest["path"]] if fastest["path"] != "band+fold+cl" else [])
    first = profiles[0]
    assert {"encoders", "flow heads", "cost volumes", "sampling", "generator"} <= set(
        first["categories"])
    assert first["total_ms"] == pytest.approx(sum(p["ms"] for p in first["parts"].values()))
    assert first["total_gflop"] == pytest.approx(fast["gflop_per_image"], rel=1e-6)
    for name in ("encoders", "flow heads", "generator"):
        assert first["categories"][name]["gflop"] > 0
    benchmark.print_table(rows)   # the rows fit the table
    benchmark.print_profiles(rows)


# ---------------------------------------------------------------------------- test.py --onnx


def _pngs(folder):
    return {f.name: np.asarray(Image.open(f)).astype(int) for f in folder.glob("*.png")}


def test_test_py_onnx_folder_equals_checkpoints(test_root, checkpoint, exported, tmp_path):
    common = ["--dataroot", str(test_root), "--pairs", "test_pairs.txt", "--batch_size", "2",
              "--workers", "0", "--device", "cpu"]
    test_script.main(common + ["--checkpoint", str(checkpoint),
                               "--results_dir", str(tmp_path / "pytorch")])
    test_script.main(common + ["--onnx", str(exported["onnx"]),
                               "--results_dir", str(tmp_path / "onnx")])
    pytorch, runtime = _pngs(tmp_path / "pytorch"), _pngs(tmp_path / "onnx")
    assert len(pytorch) == 5 and pytorch.keys() == runtime.keys()  # batches of 2, 2 and 1
    for name, image in pytorch.items():
        assert image.shape == (128, 96, 3)
        assert np.abs(runtime[name] - image).max() <= 1, name


def test_test_py_onnx_one_pair_keeps_the_photo_size(test_root, checkpoint, exported, tmp_path):
    person = tmp_path / "person.png"
    Image.open(next((test_root / "test_img").glob("*.jpg"))).resize((111, 173)).save(person)
    garment = next((test_root / "test_clothes").glob("*.jpg"))
    mask = test_root / "test_edge" / garment.name
    pair = ["--person", str(person), "--garment", str(garment), "--garment_mask", str(mask),
            "--device", "cpu"]
    test_script.main(pair + ["--onnx", str(exported["onnx"]), "--output",
                             str(tmp_path / "onnx.png")])
    test_script.main(pair + ["--checkpoint", str(checkpoint), "--output",
                             str(tmp_path / "pytorch.png")])
    runtime = np.asarray(Image.open(tmp_path / "onnx.png")).astype(int)
    pytorch = np.asarray(Image.open(tmp_path / "pytorch.png")).astype(int)
    assert runtime.shape == pytorch.shape == (173, 111, 3)
    assert np.abs(runtime - pytorch).max() <= 1


# ---------------------------------------------------------------------------- errors


def test_onnx_errors_name_the_file(test_root, exported, tmp_path, user_error):
    base = ["--dataroot", str(test_root), "--results_dir", str(tmp_path / "r"), "--workers", "0",
            "--device", "cpu"]

    def fails(*extra):
        return user_error(lambda: test_script.main(base + list(extra)))

    assert re.search(r"--onnx: file not found: .*missing\.onnx",
                     fails("--onnx", str(tmp_path / "missing.onnx")))
    assert "--onnx: a folder, not a file: " in fails("--onnx", str(tmp_path))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf" * 10)
    assert re.search(r"junk\.onnx is not an ONNX model", fails("--onnx", str(junk)))
    assert re.search(r"tryon\.onnx was exported for 64x64 inputs, but 128x64 was asked",
                     fails("--onnx", str(exported["onnx"]), "--height", "128"))
    assert re.search(r"exported with align_corners=true, but align_corners=false",
                     fails("--onnx", str(exported["onnx"]), "--align_corners", "false"))
    # A valid ONNX model that is not a try-on graph.
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    value = onnx.helper.make_tensor_value_info
    foreign = onnx.helper.make_model(onnx.helper.make_graph(
        [node], "identity", [value("x", onnx.TensorProto.FLOAT, [1, 3, 64, 64])],
        [value("y", onnx.TensorProto.FLOAT, [1, 3, 64, 64])]))
    onnx.save(foreign, tmp_path / "foreign.onnx")
    with pytest.raises(CheckpointError, match=r"foreign\.onnx is not a try-on graph"):
        load_onnx_model(str(tmp_path / "foreign.onnx"))


def test_cuda_provider_when_asked_and_available_else_cpu():
    cpu, cuda = ["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers("cuda:1", cuda) == [("CUDAExecutionProvider", {"device_id": 1}),
                                                "CPUExecutionProvider"]
    assert select_providers(torch.device("cuda"), cuda)[0] == ("CUDAExecutionProvider",
                                                               {"device_id": 0})
    assert select_providers("auto", cuda)[0][0] == "CUDAExecutionProvider"
    assert select_providers("cpu", cuda) == select_providers("auto", cpu) == cpu
    with pytest.warns(UserWarning, match="no CUDA execution provider"):
        assert select_providers("cuda", cpu) == cpu
    with pytest.raises(ValueError, match="unknown device 'mps'"):
        select_providers("mps", cpu)


@pytest.mark.parametrize("extra", [["--checkpoint", "x.pth"], ["--gen_checkpoint", "x.pth"],
                                   ["--fast"], ["--compile"], ["--precision", "bf16"],
                                   ["--precision", "fp16"], ["--arch", "fsvton"]])
def test_onnx_with_checkpoint_or_fast_path_flags_is_a_usage_error(extra, capsys):
    with pytest.raises(SystemExit) as stop:
        test_script.parse_args(["--dataroot", "d", "--results_dir", "r", "--onnx", "m.onnx",
                                *extra])
    assert stop.value.code == 2
    assert f"cannot be combined with {extra[0]}" in capsys.readouterr().err


def test_missing_packages_give_clear_errors(monkeypatch, tmp_path, user_error):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # import raises ImportError
    with pytest.raises(OnnxUnavailableError, match="needs onnxruntime, which is not installed"):
        load_onnx_model(str(model))
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    out = str(tmp_path / "x.onnx")
    assert "exporting ONNX needs onnxscript" in user_error(
        lambda: export_script.main(["--checkpoint", "x.pth", "--out", out]))


@pytest.mark.skipif(not os.environ.get("PFAFN_TEST_FULL_EXPORT"),
                    reason="slow (about a minute and 600 MB of files): the release's size and "
                           "widths; set PFAFN_TEST_FULL_EXPORT=1")
def test_released_checkpoints_at_full_size(test_root, tmp_path):
    """Released-format plain state dicts, 256x192, full widths: test.py --onnx equals test.py."""
    torch.manual_seed(8)
    warp = randomise_batchnorms(AFWM(3), 8).eval()
    gen = randomise_batchnorms(ResUnetGenerator(7), 9).eval()
    torch.save(warp.state_dict(), tmp_path / "warp_model_final.pth")
    torch.save(gen.state_dict(), tmp_path / "gen_model_final.pth")
    weights = ["--warp_checkpoint", str(tmp_path / "warp_model_final.pth"),
               "--gen_checkpoint", str(tmp_path / "gen_model_final.pth")]
    export_script.main(weights + ["--out", str(tmp_path / "pfafn.onnx")])
    common = ["--dataroot", str(test_root), "--pairs", "test_pairs.txt", "--batch_size", "2",
              "--workers", "0", "--device", "cpu"]
    test_script.main(common + weights + ["--results_dir", str(tmp_path / "pytorch")])
    test_script.main(common + ["--onnx", str(tmp_path / "pfafn.onnx"),
                               "--results_dir", str(tmp_path / "onnx")])
    pytorch, runtime = _pngs(tmp_path / "pytorch"), _pngs(tmp_path / "onnx")
    assert len(pytorch) == 5 and pytorch.keys() == runtime.keys()
    for name, image in pytorch.items():
        assert np.abs(runtime[name] - image).max() <= 1, name


# --------------------------------------------------------------------------------- int8


@pytest.fixture(scope="module")
def int8_graph(checkpoint, exported, test_root, tmp_path_factory):
    """scripts/export.py --int8 of ``checkpoint``. Its float32 export is the one ``exported``
    already made of the same checkpoint, copied instead of made again (half a minute)."""
    import shutil

    import utils.export

    def copy_the_export(warp, gen, height, width, onnx_path, **_):
        shutil.copyfile(exported["onnx"], onnx_path)
        return {"seconds": 0.0}

    out = tmp_path_factory.mktemp("int8") / "tryon_int8.onnx"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(utils.export, "export_tryon", copy_the_export)
        info = export_script.main(["--checkpoint", str(checkpoint), "--out", str(out), "--int8",
                                   "--calibration", str(test_root),
                                   "--calibration_samples", "3"])
    return {"path": out, "info": info, "printed": printed.getvalue()}


def test_int8_export_quantises_the_convolutions_and_keeps_the_flow_float(int8_graph):
    model = onnx.load(str(int8_graph["path"]))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["precision"] == "int8" and meta["calibration_pairs"] == "3"
    assert "GridSample" in meta["int8_kept_float32"]
    nodes = list(model.graph.node)
    produced = {out: node for node in nodes for out in node.output}
    convs = [node for node in nodes if node.op_type == "Conv"]
    quantised = [c for c in convs if produced.get(c.input[1]) is not None
                 and produced[c.input[1]].op_type == "DequantizeLinear"]
    info = int8_graph["info"]["int8"]
    assert len(quantised) == info["quantised"] > 0
    assert len(convs) - len(quantised) == info["convolutions"] - info["quantised"] > 0
    # The float ones are the offset predictors: two output channels.
    weights = {init.name: init for init in model.graph.initializer}
    for conv in convs:
        if conv not in quantised:
            assert weights[conv.input[1]].dims[0] == 2
    assert not any(n.op_type == "QuantizeLinear" and produced.get(n.input[0]) is not None
                   and produced[n.input[0]].op_type == "GridSample" for n in nodes)
    verify = info["verify"]
    assert verify["pairs"] == 3 and 0 <= verify["mean_levels"] < 20
    assert "int8 graph vs float32 PyTorch on the 3 calibration pairs" in int8_graph["printed"]


def test_the_int8_graph_runs_in_test_py_and_says_its_precision(int8_graph, test_root, tmp_path):
    args = test_script.parse_args(["--dataroot", str(test_root), "--results_dir",
                                   str(tmp_path), "--onnx", str(int8_graph["path"])])
    model = load_model_from_args(args)
    assert model.precision == "int8"
    wrong = test_script.parse_args(["--dataroot", str(test_root), "--results_dir",
                                    str(tmp_path), "--onnx", str(int8_graph["path"]),
                                    "--precision", "fp32"])
    # The advice was to export an int8 graph, which this is.
    with pytest.raises(CheckpointError, match=r"is an int8 graph, but --precision fp32 was asked "
                                              r"\(leave --precision out"):
        load_model_from_args(wrong)
    test_script.main(["--dataroot", str(test_root), "--results_dir", str(tmp_path / "out"),
                      "--onnx", str(int8_graph["path"]), "--workers", "0"])
    assert len(list((tmp_path / "out").rglob("*.png"))) == 5


def test_int8_export_needs_a_calibration_folder(checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        export_script.parse_args(["--checkpoint", str(checkpoint), "--out",
                                  str(tmp_path / "x.onnx"), "--int8"])
    assert stop.value.code == 2
    assert "--int8 needs --calibration DIR" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    # Calibration flags without --int8, and an opset for a .pt2, were silently accepted.
    (["--calibration_samples", "3"], "--calibration_samples: for --int8"),
    (["--calibration_samples", "32"], "--calibration_samples: for --int8"),   # the default
    (["--calibration", "d", "--calibration_pairs", "paired"],
     "--calibration, --calibration_pairs: for --int8"),
    (["--format", "torch_export", "--opset", "20"], "--opset is for an ONNX graph"),
])
def test_export_flags_that_would_do_nothing_are_refused(extra, message, tmp_path, user_error):
    assert message in user_error(lambda: export_script.parse_args(
        ["--checkpoint", "c.pth", "--out", str(tmp_path / "x.onnx"), *extra]))


@pytest.mark.parametrize("out, fmt, message", [
    # An ONNX graph under any name, and a .pt2 program named .onnx, were written.
    ("e.txt", "onnx", "--format onnx writes a .onnx file"),
    ("t.onnx", "torch_export", "--format torch_export writes a .pt2 file"),
    ("b.pt2", "both", "--format both writes a .onnx file (the program goes beside it as .pt2)"),
])
def test_the_output_name_says_what_the_file_is(out, fmt, message):
    import argparse

    from common.errors import UserError
    with pytest.raises(UserError, match=re.escape(message)):
        export_script.output_paths(argparse.Namespace(out=out, format=fmt))
    assert export_script.output_paths(argparse.Namespace(out="m.ONNX", format="both"))[1].name \
        == "m.pt2"
