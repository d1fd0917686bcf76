"""test.py end to end: file names, every pair of every batch, sizes, checkpoints, errors."""

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
from data.synthetic import make_dataset
from data.viton import VitonTestDataset
from models import AFWM, ResUnetGenerator
from models.tryon import parser_free_tryon
from utils.checkpoint import CHECKPOINT_FORMAT, save_atomic
from utils.image import to_uint8

SMALL_ARCH = {"warp_channels": [8, 16, 16, 16, 16], "fpn_dim": 16, "ngf": 8,
              "align_corners": True, "height": 64, "width": 64}


@pytest.fixture(scope="module")
def test_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    make_dataset(str(out), num_train=0, num_test=5, seed=3, height=128, width=96)
    return out / "VITON_test"


def _small_models(seed=0):
    torch.manual_seed(seed)
    warp = AFWM(3, channels=SMALL_ARCH["warp_channels"], fpn_dim=16).eval()
    gen = ResUnetGenerator(7, ngf=8).eval()
    return warp, gen


def _stage4_checkpoint(path, warp, gen, stage="pf_gen"):
    save_atomic({"format": CHECKPOINT_FORMAT, "stage": stage,
                 "model": {"warp": warp.state_dict(), "gen": gen.state_dict()},
                 "config": dict(SMALL_ARCH)}, path)
    return path


def test_every_pair_of_every_batch_is_written_with_its_names(test_root, tmp_path):
    warp, gen = _small_models()
    checkpoint = _stage4_checkpoint(tmp_path / "final.pth", warp, gen)
    results = tmp_path / "results"
    test_script.main(["--dataroot", str(test_root), "--pairs", "test_pairs.txt",
                      "--checkpoint", str(checkpoint), "--results_dir", str(results),
                      "--batch_size", "2", "--workers", "0", "--device", "cpu", "--save_grid"])
    pairs = [line.split() for line in (test_root / "test_pairs.txt").read_text().splitlines()]
    assert len(pairs) == 5  # batches of 2, 2 and 1
    expected = {f"{p[:-4]}__{c[:-4]}.png" for p, c in pairs}
    assert {f.name for f in results.glob("*.png")} == expected
    assert {f.name for f in (results / "grids").glob("*.png")} == expected

    # Each image is the model's try-on at 64x64, resized to the photo's own 128x96.
    dataset = VitonTestDataset(str(test_root), "test_pairs.txt", height=64, width=64)
    item = dataset[4]
    with torch.no_grad():
        out = parser_free_tryon(warp, gen, item["image"][None], item["garment"][None],
                                item["garment_edge"][None])
    resized = torch.nn.functional.interpolate(out.tryon, size=(128, 96), mode="bilinear",
                                              align_corners=False)
    name = f"{item['person_name'][:-4]}__{item['cloth_name'][:-4]}.png"
    written = np.asarray(Image.open(results / name))
    assert written.shape == (128, 96, 3)
    assert np.abs(written.astype(int) - to_uint8(resized[0]).astype(int)).max() <= 1


def test_fast_flag_gives_the_same_images(test_root, tmp_path):
    warp, gen = _small_models(2)
    checkpoint = _stage4_checkpoint(tmp_path / "final.pth", warp, gen)
    images = {}
    for flag in ([], ["--fast"]):
        results = tmp_path / ("fast" if flag else "plain")
        test_script.main(["--dataroot", str(test_root), "--pairs", "test_pairs_same.txt",
                          "--checkpoint", str(checkpoint), "--results_dir", str(results),
                          "--workers", "0", "--device", "cpu", *flag])
        images[bool(flag)] = {f.name: np.asarray(Image.open(f)).astype(int)
                              for f in results.glob("*.png")}
    assert images[True].keys() == images[False].keys() and len(images[True]) == 5
    for name, plain in images[False].items():
        assert np.abs(images[True][name] - plain).max() <= 1, name


def test_released_plain_state_dicts_load_at_release_size(test_root, tmp_path):
    torch.manual_seed(1)
    warp, gen = AFWM(3).eval(), ResUnetGenerator(7).eval()
    torch.save(warp.state_dict(), tmp_path / "warp_model_final.pth")
    torch.save(gen.state_dict(), tmp_path / "gen_model_final.pth")
    pairs = tmp_path / "one_pair.txt"
    pairs.write_text((test_root / "test_pairs.txt").read_text().splitlines()[0] + "\n")
    results = tmp_path / "released"
    test_script.main(["--dataroot", str(test_root), "--pairs", str(pairs),
                      "--warp_checkpoint", str(tmp_path / "warp_model_final.pth"),
                      "--gen_checkpoint", str(tmp_path / "gen_model_final.pth"),
                      "--results_dir", str(results), "--workers", "0", "--device", "cpu"])
    written = list(results.glob("*.png"))
    assert len(written) == 1 and Image.open(written[0]).size == (96, 128)


def test_clear_errors_for_missing_or_wrong_checkpoints_and_images(test_root, tmp_path):
    warp, gen = _small_models()
    base = ["--dataroot", str(test_root), "--results_dir", str(tmp_path / "r"),
            "--workers", "0", "--device", "cpu"]
    with pytest.raises(SystemExit, match=r"--warp_checkpoint: file not found: .*missing\.pth"):
        test_script.main(base + ["--checkpoint", str(tmp_path / "missing.pth")])
    teacher = _stage4_checkpoint(tmp_path / "pb.pth", warp, gen, stage="pb_gen")
    with pytest.raises(SystemExit, match=r"'pb_gen' checkpoint; expected one of"):
        test_script.main(base + ["--checkpoint", str(teacher)])
    good = _stage4_checkpoint(tmp_path / "pf.pth", warp, gen)
    pairs = tmp_path / "bad_pairs.txt"
    pairs.write_text("nobody_0.jpg 000000_1.jpg\n")
    with pytest.raises(SystemExit, match="nobody_0.jpg"):
        test_script.main(base + ["--checkpoint", str(good), "--pairs", str(pairs)])


def test_uint8_conversion_truncates_like_the_release():
    image = torch.tensor([-1.0, -0.999, 0.0, 0.5, 0.999, 1.0]).view(1, 1, 6)
    expected = ((image.numpy() + 1) / 2 * 255).astype(np.uint8)[0]
    assert to_uint8(image).tolist() == expected.tolist() == [[0, 0, 127, 191, 254, 255]]
