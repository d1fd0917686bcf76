"""Adding an architecture takes one module and one ``register(...)``: a toy warp, written here
into a temporary module, trains in stage 1 through ``--warp_arch toy`` (with a flag of its own),
its checkpoint rebuilds it, and test.py runs a try-on with it; nothing else is edited."""

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import test as test_script
from data.synthetic import make_dataset
from models.registry import (
    ArchitectureError,
    arch_from_flags,
    architecture_flags,
    build_model,
    types_of,
    unregister,
)
from train_pb_warp import ParserBasedWarp
from utils.checkpoint import checkpoint_payload, load_checkpoint_model, read_checkpoint, save_atomic
from utils.training.engine import run

# A warp module honouring AFWM's interface (models/afwm.py): forward(cond, garment,
# garment_edge=None, return_levels=False) -> WarpOutput with per-level WarpLevels, built from
# the project's flow helpers. Two levels; at each one a small conv net reads the condition and
# the garment warped so far and predicts a pixel offset, composed with the coarser flow.
TOY_MODULE = '''
import torch
import torch.nn as nn

from models.afwm import ALIGN_CORNERS_FLAG, WarpLevel, WarpOutput
from models.flow import (downsample_to_level, offset_to_grid, sample,
                         second_order_differences, upsample_flow)
from models.registry import ArchFlag, Architecture, is_bool, positive_int, register

LEVELS = 2


class ToyWarp(nn.Module):
    stride = 2 ** (LEVELS - 1)

    def __init__(self, input_nc, width=8, align_corners=True):
        super().__init__()
        self.input_nc, self.align_corners = input_nc, align_corners
        self.arch = {"kind": "warp", "type": "toy", "input_nc": input_nc, "width": width,
                     "align_corners": align_corners}
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Conv2d(input_nc + 3, width, 3, padding=1), nn.LeakyReLU(0.1),
                          nn.Conv2d(width, 2, 3, padding=1)) for _ in range(LEVELS))

    def forward(self, cond, garment, garment_edge=None, return_levels=False):
        ac, flow, levels = self.align_corners, None, []
        for i, head in enumerate(self.heads):
            cond_i, garment_i = (downsample_to_level(x, i, LEVELS) for x in (cond, garment))
            if flow is not None:
                flow = upsample_flow(flow)
            prewarped = garment_i if flow is None else sample(garment_i, flow, align_corners=ac)
            offset = head(torch.cat([cond_i, prewarped], 1))
            step = offset_to_grid(offset, ac)
            flow = step if flow is None else sample(flow, step, align_corners=ac)
            if return_levels:
                flow_dx, flow_dy = second_order_differences(flow)
                level = WarpLevel(flow=flow, cond_feature=cond_i, delta_main=offset,
                                  delta_refine=torch.zeros_like(offset), flow_dx=flow_dx,
                                  flow_dy=flow_dy,
                                  warped_garment=sample(garment_i, flow, "border", ac))
                if garment_edge is not None:
                    edge_i = downsample_to_level(garment_edge, i, LEVELS)
                    level.warped_edge = sample(edge_i, flow, "zeros", ac)
                levels.append(level)
        return WarpOutput(warped=sample(garment, flow, align_corners=ac), flow=flow,
                          levels=levels if return_levels else None, align_corners=ac)


def toy_from_state(state):
    first = state.get("heads.0.0.weight")
    if first is None:
        return None
    return {"input_nc": int(first.shape[1]) - 3, "width": int(first.shape[0])}


register(Architecture(
    kind="warp", type="toy", build=ToyWarp,
    defaults={"width": 8, "align_corners": True},
    checks={"width": positive_int, "align_corners": is_bool},
    flags=(ArchFlag("toy_width", "width", int, "hidden width of the toy warp's flow heads"),
           ALIGN_CORNERS_FLAG),
    from_state=toy_from_state,
    description="a two-level toy flow for the tests"))
'''


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The toy module, imported from a temporary file (its import registers it), and
    unregistered afterwards so that no other test sees it."""
    path = tmp_path_factory.mktemp("toy") / "toy_warp.py"
    path.write_text(textwrap.dedent(TOY_MODULE))
    spec = importlib.util.spec_from_file_location("toy_warp", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["toy_warp"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        unregister("warp", "toy")
        sys.modules.pop("toy_warp", None)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy_data")
    return make_dataset(str(out), num_train=4, num_test=3, seed=5, height=64, width=64)


def test_the_toy_declares_itself(toy):
    assert "toy" in types_of("warp")
    flags = {flag.flag: defaults for flag, defaults in architecture_flags("warp")}
    assert flags["toy_width"] == {"toy": 8}
    assert flags["align_corners"]["toy"] is True        # a shared flag, one meaning
    arch = arch_from_flags("warp", "toy", 45, {"toy_width": 4, "lr": 0.1})
    assert arch == {"kind": "warp", "type": "toy", "input_nc": 45, "width": 4,
                    "align_corners": True}
    with pytest.raises(ArchitectureError, match="--warp_channels is not a flag of the toy "
                                                "warp .*it takes --toy_width, --align_corners"):
        arch_from_flags("warp", "toy", 45, {"warp_channels": [8, 8, 8, 8, 8]})
    with pytest.raises(ArchitectureError, match="--toy_width 0 is not a positive whole number"):
        arch_from_flags("warp", "toy", 45, {"toy_width": 0})


def test_stage_one_trains_the_toy_and_test_py_runs_it(toy, data_root, tmp_path):
    runs = tmp_path / "runs"
    argv = ["--dataroot", data_root["train"], "--checkpoints_dir", str(runs), "--name", "toy",
            "--warp_arch", "toy", "--toy_width", "4", "--height", "64", "--width", "64",
            "--batch_size", "2", "--workers", "0", "--max_steps", "3", "--vgg_layers", "0",
            "--log_every", "1", "--sample_every", "0", "--device", "cpu"]
    result = run(ParserBasedWarp(), argv)
    assert result.finished and all(torch.isfinite(torch.tensor(v)) for v in result.terms.values())
    path = runs / "toy" / "final.pth"
    saved = read_checkpoint(path)
    assert saved["arch"]["warp"] == {"kind": "warp", "type": "toy", "input_nc": 45, "width": 4,
                                     "align_corners": True}
    rebuilt = load_checkpoint_model(path, "warp", stages=("pb_warp",))
    assert isinstance(rebuilt, toy.ToyWarp)
    for key, value in saved["model"]["warp"].items():
        assert torch.equal(rebuilt.state_dict()[key], value), key

    # A parser-free toy (3 input channels) and a narrow Res-UNet as a stage-4 checkpoint, the
    # way the engine writes one.
    torch.manual_seed(0)
    warp = build_model(arch_from_flags("warp", "toy", 3, {"toy_width": 4}))
    gen = build_model({"kind": "gen", "type": "resunet", "input_nc": 7, "ngf": 4})
    payload, bad = checkpoint_payload("pf_gen", {"warp": warp, "gen": gen},
                                      {"height": 64, "width": 64})
    assert bad == []
    save_atomic(payload, tmp_path / "pf_gen.pth")
    results = tmp_path / "results"
    test_script.main(["--dataroot", data_root["test"], "--pairs", "test_pairs.txt",
                      "--checkpoint", str(tmp_path / "pf_gen.pth"), "--results_dir",
                      str(results), "--batch_size", "2", "--workers", "0", "--device", "cpu"])
    pairs = [line.split() for line in
             (Path(data_root["test"]) / "test_pairs.txt").read_text().splitlines()]
    assert {f.name for f in results.glob("*.png")} == {
        f"{person[:-4]}__{cloth[:-4]}.png" for person, cloth in pairs}
