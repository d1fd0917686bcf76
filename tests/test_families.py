"""FS-VTON's and DM-VTON's networks: their released containers load, the architecture is
recognised from the keys, the try-ons equal their own code's (golden images made once by it,
tests/golden/README.md), and the architectures run at other sizes and export."""

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
from data.synthetic import make_dataset
from models.fsvton import StyleAFWM
from models.mobile import MobileAFWM, MobileUNet
from models.registry import build_model
from tests.family_weights import write_family_weights
from utils.checkpoint import checkpoint_arch, read_checkpoint

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture(scope="module")
def test_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("family_data")
    # The golden images were made from photos with the tinted backdrops (tests/golden/README.md).
    root = Path(make_dataset(str(out), num_train=0, num_test=4, seed=0, height=256,
                             width=192, backdrop="tinted")["test"])
    lines = (root / "test_pairs.txt").read_text().splitlines()[:2]
    (root / "golden_pairs.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    out = tmp_path_factory.mktemp("family_weights")
    return {family: write_family_weights(family, out / family) for family in ("fsvton",
                                                                             "dmvton")}


@pytest.mark.parametrize("family", ["fsvton", "dmvton"])
def test_try_ons_equal_the_familys_own_code(family, test_root, weights, tmp_path):
    warp, gen = weights[family]
    results = tmp_path / "results"
    test_script.main(["--dataroot", str(test_root), "--pairs", "golden_pairs.txt",
                      "--warp_checkpoint", str(warp), "--gen_checkpoint", str(gen),
                      "--results_dir", str(results), "--device", "cpu", "--workers", "0"])
    differences = []
    for golden in sorted((GOLDEN / family).glob("*.png")):
        theirs = np.asarray(Image.open(golden)).astype(int)
        ours = np.asarray(Image.open(results / golden.name)).astype(int)
        assert theirs.std() > 30          # the golden images are not flat or saturated
        differences.append(np.abs(ours - theirs).ravel())
    assert len(differences) == 2
    levels = np.concatenate(differences)
    assert levels.mean() < 0.05 and np.percentile(levels, 99.9) <= 2, (levels.mean(),
                                                                       levels.max())


def test_the_released_containers_load_and_name_their_architecture(weights):
    fsvton_warp, fsvton_gen = weights["fsvton"]
    raw = fsvton_warp.read_bytes()
    assert raw[:2] == b"\x80\x02" and b"cuda:0" in raw      # PyTorch 1.1's legacy format
    data = read_checkpoint(fsvton_warp)
    assert "aflow_net.weight" in data
    assert checkpoint_arch(data, "warp", fsvton_warp)["type"] == "fsvton"
    assert checkpoint_arch(read_checkpoint(fsvton_gen), "gen", fsvton_gen)["type"] == "resunet"
    dmvton_warp, dmvton_gen = weights["dmvton"]
    # numpy's scalar: refused by a plain weights-only load
    with pytest.raises(pickle.UnpicklingError):
        torch.load(dmvton_warp, map_location="cpu", weights_only=True)
    data = read_checkpoint(dmvton_warp)
    assert set(data) == {"epoch", "best_fid", "model", "optimizer"}
    assert float(data["best_fid"]) == pytest.approx(28.2)
    arch = checkpoint_arch(data, "warp", dmvton_warp)
    assert (arch["type"], arch["fpn_dim"], arch["width_mult"]) == ("mobile", 256, 1.0)
    assert checkpoint_arch(read_checkpoint(dmvton_gen), "gen", dmvton_gen)["type"] == "mobile"


def test_how_other_code_saves_a_state_dict_loads_the_same_weights(weights, tmp_path):
    # DataParallel's 'module.' prefix, a {'state_dict': ...} wrapper and a state dict without
    # BatchNorm's num_batches_tracked were refused as "not a known architecture".
    from utils.inference.model import load_tryon_model
    warp, gen = weights["fsvton"]
    state = read_checkpoint(gen)
    variants = {"module": {f"module.{k}": v for k, v in state.items()},
                "wrapped": {"state_dict": state, "epoch": 3},
                "counterless": {k: v for k, v in state.items()
                                if not k.endswith("num_batches_tracked")}}
    reference = load_tryon_model(str(warp), str(gen)).gen.state_dict()
    for name, saved in variants.items():
        path = tmp_path / f"{name}.pth"
        torch.save(saved, path)
        loaded = load_tryon_model(str(warp), str(path)).gen.state_dict()
        assert loaded.keys() == reference.keys(), name
        assert all(torch.equal(loaded[k], reference[k]) for k in reference
                   if not k.endswith("num_batches_tracked")), name
    # DM-VTON's warp without the 16 keys that repeat its one smooth layer was refused.
    dmvton_warp, dmvton_gen = weights["dmvton"]
    state = read_checkpoint(dmvton_warp)["model"]
    torch.save({k: v for k, v in state.items() if not re.search(r"smooth_layers\.[1-4]\.", k)},
               tmp_path / "deduplicated.pt")
    assert len(torch.load(tmp_path / "deduplicated.pt")) == len(state) - 16
    loaded = load_tryon_model(str(tmp_path / "deduplicated.pt"), str(dmvton_gen)).warp
    loaded = loaded.state_dict()
    assert sum(k in loaded and torch.equal(loaded[k], v.float()) for k, v in state.items()) \
        == len(loaded) == len(state) - 1        # all but the unused 'aflow_net.weight'
    # One released file as both parts (--checkpoint) said "not a known gen architecture".
    from utils.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match="a released file holds one model, not both"):
        load_tryon_model(str(warp), str(warp))


def test_parameter_counts_equal_the_families(weights):
    def count(model):
        return sum(p.numel() for p in model.parameters())
    assert count(StyleAFWM(3)) == 33_290_145       # FS-VTON's warp
    assert count(MobileAFWM(3)) == 7_170_388       # DM-VTON's warp (one shared smooth conv)
    assert count(MobileUNet(7)) == 2_179_736       # DM-VTON's generator
    state = MobileAFWM(3).state_dict()
    assert state["image_mobile.smooth_layers.0.weight"].data_ptr() == \
        state["image_mobile.smooth_layers.4.weight"].data_ptr()


def test_arch_flag_and_mismatched_files_are_clear_errors(weights, test_root, tmp_path,
                                                         user_error):
    fsvton_warp, fsvton_gen = weights["fsvton"]
    dmvton_warp, _ = weights["dmvton"]
    base = ["--dataroot", str(test_root), "--pairs", "golden_pairs.txt", "--results_dir",
            str(tmp_path / "r"), "--device", "cpu", "--workers", "0"]
    message = user_error(lambda: test_script.main(base + [
        "--warp_checkpoint", str(fsvton_warp), "--gen_checkpoint", str(fsvton_gen),
        "--arch", "dmvton"]))
    assert "--arch dmvton" in message and "fsvton warp and a resunet generator" in message
    odd = {k: v for k, v in read_checkpoint(dmvton_warp)["model"].items()
           if not k.startswith("cond_mobile.top_layer")}
    odd["cond_mobile.extra.weight"] = torch.zeros(1)
    torch.save(odd, tmp_path / "odd.pt")
    message = user_error(lambda: test_script.main(base + [
        "--warp_checkpoint", str(tmp_path / "odd.pt"), "--gen_checkpoint", str(fsvton_gen)]))
    assert re.search(r"not a known warp architecture; the closest is 'mobile'", message)
    assert "cond_mobile.top_layer.weight" in message and "cond_mobile.extra.weight" in message


@pytest.mark.parametrize("height, width", [(512, 384), (1024, 768)])
def test_fsvton_style_heads_run_at_other_sizes(height, width):
    warp = build_model({"kind": "warp", "type": "fsvton", "input_nc": 3,
                        "channels": [8, 8, 8, 8, 8], "fpn_dim": 16}).eval()
    person, garment = torch.rand(1, 3, height, width), torch.rand(1, 3, height, width)
    with torch.no_grad():
        out = warp(person, garment)
    assert out.warped.shape == (1, 3, height, width) and torch.isfinite(out.flow).all()


def test_fsvton_style_grid_is_the_identity_at_the_released_size():
    warp = build_model({"kind": "warp", "type": "fsvton", "input_nc": 3,
                        "channels": [8, 8, 8, 8, 8], "fpn_dim": 16}).eval()
    coarse = torch.randn(2, 16, 8, 6)
    assert warp.aflow_net._on_style_grid(coarse) is coarse
    pooled = warp.aflow_net._on_style_grid(torch.randn(2, 16, 16, 12))
    assert pooled.shape == (2, 16, 8, 6)


def test_mobile_generator_matches_the_unet_shapes():
    gen = MobileUNet(7).eval()
    with torch.no_grad():
        out = gen(torch.rand(2, 7, 256, 192))
    assert out.shape == (2, 4, 256, 192)
    with pytest.raises(ValueError, match="divisible by 32"):
        gen(torch.rand(1, 7, 250, 192))
