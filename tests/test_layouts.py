"""VITON-HD and DressCode as distributed: checking, every stage, categories, masks, test.py."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
from data.check import main as check_main
from data.datasets import DataOptions, GarmentMasks, make_train_dataset
from data.files import DatasetError
from data.inputs import TryOnInputs
from data.pairs import make_pairs_dataset
from data.synthetic import make_dataset
from tests.small_models import small_models, stage4_checkpoint
from train_pb_gen import ParserBasedGenerator
from train_pb_warp import ParserBasedWarp
from train_pf_gen import ParserFreeGenerator
from train_pf_warp import ParserFreeWarp
from utils.training.engine import run


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    out = tmp_path_factory.mktemp("layouts")
    vitonhd = make_dataset(str(out / "hd"), num_train=4, num_test=3, seed=5, height=64,
                           width=48, layout="vitonhd")["root"]
    old = make_dataset(str(out / "hd_old"), num_train=2, num_test=2, seed=6, height=64,
                       width=48, layout="vitonhd", old_names=True)["root"]
    dresscode = make_dataset(str(out / "dc"), num_train=4, num_test=3, seed=5, height=64,
                             width=64, layout="dresscode",
                             categories=("upper_body", "lower_body", "dresses"))["root"]
    return {"vitonhd": vitonhd, "vitonhd_old": old, "dresscode": dresscode}


@pytest.fixture(autouse=True)
def mask_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PFAFN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "garment_masks"


@pytest.mark.parametrize("name, extra", [("vitonhd", []), ("vitonhd_old", []),
                                         ("dresscode", ["--category", "all"])])
def test_check_passes_on_the_layouts_as_distributed(roots, name, extra, capsys):
    dataset = "dresscode" if name == "dresscode" else "vitonhd"
    assert check_main([roots[name], "--dataset", dataset, "--height", "64", "--width", "64",
                       *extra]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("OK")
    if dataset == "vitonhd":
        assert "converted from CIHP" in out and "without DensePose part indices" in out
    else:
        assert "converted from ATR" in out and "'lower_body': 4" in out
        assert "to compute on first use" in out       # DressCode ships no masks


def test_check_names_the_problems(roots, tmp_path, capsys):
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(roots["dresscode"], broken)
    os.remove(broken / "lower_body" / "keypoints" / "013564_2.json")
    label = broken / "upper_body" / "label_maps" / "000001_4.png"
    Image.fromarray(np.full((64, 64), 19, np.uint8)).save(label)        # ATR has 0..17
    (broken / "dresses" / "images" / "020714_0.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    assert check_main([str(broken), "--dataset", "dresscode", "--category", "all"]) == 1
    out = capsys.readouterr().out
    assert "1 of 4 pairs of" in out and "lower_body/keypoints/013564_2.json" in out
    assert "000001_4.png: label values [19] outside the ATR scheme" in out
    assert "020714_0.jpg: damaged JPEG (no marker at byte 2)" in out
    shutil.rmtree(broken / "upper_body" / "label_maps")
    assert check_main([str(broken), "--dataset", "dresscode"]) == 1
    assert "upper_body/label_maps: missing folder" in capsys.readouterr().out


def test_a_vitonhd_name_with_a_folder_part_is_reported_as_looked_for(roots, tmp_path, capsys):
    # "../00000_00.jpg" was reported lacking "00000_00.jpg", which image/ holds.
    import shutil
    root = tmp_path / "hd"
    shutil.copytree(roots["vitonhd"], root)
    person, garment = (root / "test_pairs.txt").read_text().splitlines()[0].split()
    (root / "test_pairs.txt").write_text(f"../{person} {garment}\n")
    assert check_main([str(root), "--dataset", "vitonhd"]) == 1
    assert f"lack files: ../{person} {garment}: image/../{person}" in capsys.readouterr().out


def test_check_finds_a_pair_listed_twice_which_test_py_refuses(roots, tmp_path, capsys):
    import shutil
    root = tmp_path / "hd"
    shutil.copytree(roots["vitonhd"], root)
    first = (root / "test_pairs.txt").read_text().splitlines()[0]
    (root / "test_pairs.txt").write_text(f"{first}\n{first}\n")
    assert check_main([str(root), "--dataset", "vitonhd"]) == 1
    person, garment = first.split()
    assert (f"ERROR the unpaired pairs: the pair ({root / 'test/image' / person}, "
            f"{root / 'test/cloth' / garment}) is listed twice") in capsys.readouterr().out


@pytest.mark.parametrize("name, category", [("vitonhd", "upper_body"), ("dresscode", "all")])
def test_every_stage_runs_on_the_layout(roots, name, category, tmp_path):
    runs = tmp_path / "runs"

    def argv(stage, *extra):
        return ["--config", "configs/tiny.yaml", "--dataset", name, "--dataroot", roots[name],
                "--category", category, "--checkpoints_dir", str(runs), "--name", stage,
                "--max_steps", "1", "--vgg_layers", "1",
                "--device", "cpu", *extra]

    first = run(ParserBasedWarp(), argv("s1"))
    run(ParserBasedGenerator(), argv("s2", "--pb_warp_checkpoint", str(runs / "s1/final.pth")))
    run(ParserFreeWarp(), argv("s3", "--pb_checkpoint", str(runs / "s2/final.pth")))
    last = run(ParserFreeGenerator(), argv("s4", "--pb_checkpoint", str(runs / "s2/final.pth"),
                                           "--pf_warp_checkpoint", str(runs / "s3/final.pth")))
    assert first.finished and last.finished and np.isfinite(last.terms["total"])
    log = (runs / "s1" / "train.log").read_text()
    assert (log.count("use the replacement of data/inputs.py") == 1) == (name == "vitonhd")


def _dresscode_sample(roots, category):
    options = DataOptions(dataset="dresscode", categories=(category,))
    dataset = make_train_dataset(options, roots["dresscode"], 64, 64)
    item = dataset[0]
    batch = {key: value[None] if isinstance(value, torch.Tensor) else [value]
             for key, value in item.items()}
    label_path = dataset.samples[0].person.label
    return TryOnInputs.from_batch(batch), np.asarray(Image.open(label_path))


def test_garment_region_follows_the_category(roots):
    lower, atr = _dresscode_sample(roots, "lower_body")
    region = lower.person_clothes_edge[0, 0].numpy().astype(bool)
    pants_or_skirt = np.isin(atr, (5, 6))             # ATR skirt, pants
    shirt = atr == 4
    assert pants_or_skirt.any() and shirt.any()
    assert np.array_equal(region, pants_or_skirt | (atr == 8))   # (+ belt, ATR 8)
    assert not (region & shirt).any()
    # The shirt is kept as it is: it is among the preserved "other clothes".
    assert lower.other_clothes_mask[0, 0].numpy().astype(bool)[shirt].all()
    dress, atr = _dresscode_sample(roots, "dresses")
    assert np.array_equal(dress.person_clothes_edge[0, 0].numpy().astype(bool),
                          np.isin(atr, (4, 5, 6, 7, 8)))
    upper, atr = _dresscode_sample(roots, "upper_body")
    assert np.array_equal(upper.person_clothes_edge[0, 0].numpy().astype(bool),
                          np.isin(atr, (4, 7)))


def test_computed_masks_are_cached_and_rebuilt(roots, mask_cache):
    options = DataOptions(dataset="dresscode", categories=("lower_body",))
    dataset = make_train_dataset(options, roots["dresscode"], 64, 64)
    item = dataset[1]
    cached = sorted(mask_cache.rglob("*.png"))
    assert len(cached) == 2                  # the sample's garment and its unpaired one
    assert item["garment_edge"].sum() > 0
    before = os.stat(cached[0]).st_mtime_ns
    again = make_train_dataset(options, roots["dresscode"], 64, 64)
    assert torch.equal(again[1]["garment_edge"], item["garment_edge"])
    assert os.stat(cached[0]).st_mtime_ns == before                 # read, not recomputed
    rebuilt = make_train_dataset(DataOptions(dataset="dresscode", categories=("lower_body",),
                                             rebuild_masks=True), roots["dresscode"], 64, 64)
    assert not list(mask_cache.rglob("*.png"))                      # forgotten at start
    assert torch.equal(rebuilt[1]["garment_edge"], item["garment_edge"])


def test_a_cached_mask_is_not_reused_by_another_method(monkeypatch, tmp_path):
    import data.garment_mask
    photo = str(tmp_path / "shirt.jpg")
    plain = GarmentMasks(cache_dir=str(tmp_path / "cache"))
    same = GarmentMasks(cache_dir=str(tmp_path / "cache"))
    assert plain.cache_path(photo) == same.cache_path(photo)
    assert GarmentMasks(cache_dir=str(tmp_path / "cache"), grabcut=True).cache_path(photo) \
        != plain.cache_path(photo)
    before = plain.cache_path(photo)
    monkeypatch.setattr(data.garment_mask, "METHOD_VERSION", data.garment_mask.METHOD_VERSION + 1)
    assert plain.cache_path(photo) != before


def test_vitonhd_takes_densepose_from_a_folder(roots, tmp_path):
    folder = tmp_path / "densepose"
    folder.mkdir()
    for name in os.listdir(os.path.join(roots["vitonhd"], "train", "image")):
        parts = np.zeros((64, 48), np.uint8)
        parts[10:30, 5:20] = 15
        np.save(folder / (os.path.splitext(name)[0] + ".npy"), parts)
    options = DataOptions(dataset="vitonhd", densepose_dir=str(folder))
    dataset = make_train_dataset(options, roots["vitonhd"], 64, 64)
    assert dataset.has_densepose and "has_densepose" not in dataset[0]     # all of them have it
    assert set(dataset[0]["densepose"].unique().tolist()) == {0, 15}
    without = make_train_dataset(DataOptions(dataset="vitonhd"), roots["vitonhd"], 64, 64)
    assert not without.has_densepose and not bool(without[0]["has_densepose"])
    # Pairs read without the parser's inputs (test.py's) need no DensePose of their persons.
    from data.vitonhd import test_pairs
    empty = tmp_path / "none"
    empty.mkdir()
    assert len(test_pairs(roots["vitonhd"], "paired", densepose_dir=str(empty))) == 3


@pytest.mark.parametrize("name, extra, expected", [
    ("vitonhd", [], 3), ("dresscode", ["--category", "lower_body,dresses"], 6)])
def test_test_py_reads_the_layouts(roots, tmp_path, name, extra, expected, capsys):
    checkpoint = stage4_checkpoint(tmp_path / "final.pth", *small_models(0))
    dataset = "dresscode" if name == "dresscode" else "vitonhd"
    results = tmp_path / "results"
    test_script.main(["--dataset", dataset, "--dataroot", roots[name], "--pairs", "paired",
                      "--checkpoint", str(checkpoint), "--results_dir", str(results),
                      "--workers", "0", "--device", "cpu", "--eval", "--metrics", "ssim",
                      *extra])
    written = sorted(results.glob("*.png"))
    assert len(written) == expected
    pairs = make_pairs_dataset(DataOptions.from_config(test_script.parse_args(
        ["--dataset", dataset, "--dataroot", roots[name], "--results_dir", "x",
         "--checkpoint", "c", *extra])), roots[name], "paired", 64, 64).pairs
    assert {p.name for p in written} == {
        f"{os.path.splitext(os.path.basename(pair.person.image))[0]}__"
        f"{os.path.splitext(os.path.basename(pair.garment.image))[0]}.png" for pair in pairs}
    out = capsys.readouterr().out
    assert "ssim" in out
    if dataset == "dresscode":
        assert "have no garment mask file: the masks are computed" in out
    else:      # the photos are 64x48: the 64x64 try-ons are resized to them, unless asked not
        assert Image.open(written[0]).size == (48, 64)
        model_size = tmp_path / "model_size"
        test_script.main(["--dataset", dataset, "--dataroot", roots[name], "--pairs", "paired",
                          "--checkpoint", str(checkpoint), "--results_dir", str(model_size),
                          "--workers", "0", "--device", "cpu", "--save_size", "model"])
        assert Image.open(sorted(model_size.glob("*.png"))[0]).size == (64, 64)


@pytest.mark.parametrize("name, parsing", [
    ("vitonhd", "test/image-parse-v3/{}.png"), ("vitonhd", "test/openpose_json/{}_keypoints.json"),
    ("dresscode", "upper_body/label_maps/{}_4.png"),
    ("dresscode", "upper_body/keypoints/{}_2.json"), ("dresscode", "upper_body/dense/{}_5.png")])
def test_a_parser_free_try_on_reads_no_parsing_pose_or_densepose(roots, tmp_path, name, parsing):
    # A test split whose parsing (or pose, DensePose) lacked one person's file was refused by
    # the parser-free try-on, which reads none of them; the parser-based reading still refuses it.
    import shutil
    root = tmp_path / name
    shutil.copytree(roots[name], root)
    options = DataOptions(dataset="dresscode" if name == "dresscode" else "vitonhd")
    pairs = make_pairs_dataset(options, str(root), "paired", 64, 64).pairs
    stem = os.path.splitext(os.path.basename(pairs[0].person.image))[0]
    missing = root / parsing.format(stem.split("_")[0] if name == "dresscode" else stem)
    missing.unlink()
    assert len(make_pairs_dataset(options, str(root), "paired", 64, 64).pairs) == len(pairs)
    with pytest.raises(DatasetError, match=os.path.basename(missing)):
        make_pairs_dataset(options, str(root), "paired", 64, 64, parser_inputs=True)
