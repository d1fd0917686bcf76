"""test.py end to end: file names, every pair of every batch, sizes, checkpoints, errors."""

import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
from common.images import to_uint8
from data.files import read_gray, read_rgb
from data.synthetic import make_dataset
from models import AFWM, ResUnetGenerator
from models.tryon import parser_free_tryon
from tests.small_models import small_models, stage4_checkpoint
from utils.inference.model import load_tryon_model
from utils.inference.photos import tryon_photos


@pytest.fixture(scope="module")
def test_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    make_dataset(str(out), num_train=0, num_test=5, seed=3, height=128, width=96)
    return out / "VITON_test"


def test_every_pair_of_every_batch_is_written_with_its_names(test_root, tmp_path):
    warp, gen = small_models()
    checkpoint = stage4_checkpoint(tmp_path / "final.pth", warp, gen)
    results = tmp_path / "results"
    test_script.main(["--dataroot", str(test_root), "--pairs", "test_pairs.txt",
                      "--checkpoint", str(checkpoint), "--results_dir", str(results),
                      "--batch_size", "2", "--workers", "0", "--device", "cpu", "--save_grid"])
    pairs = [line.split() for line in (test_root / "test_pairs.txt").read_text().splitlines()]
    assert len(pairs) == 5  # batches of 2, 2 and 1
    expected = {f"{p[:-4]}__{c[:-4]}.png" for p, c in pairs}
    assert {f.name for f in results.glob("*.png")} == expected
    assert {f.name for f in (results / "grids").glob("*.png")} == expected

    # Each image is the model's try-on of the photos fitted to the 64x64 frame as one pair is
    # (the 128x96 person padded to a square, the garment too), mapped back to the photo's size.
    person_name, cloth_name = pairs[4]
    person = read_rgb(str(test_root / "test_img" / person_name))
    garment = read_rgb(str(test_root / "test_clothes" / cloth_name))
    mask = (read_gray(str(test_root / "test_edge" / cloth_name)) > 127).astype(np.uint8)
    model = load_tryon_model(str(checkpoint), str(checkpoint))
    expected = tryon_photos(model, person, garment, mask, "pad").tryon
    written = np.asarray(Image.open(results / f"{person_name[:-4]}__{cloth_name[:-4]}.png"))
    assert written.shape == (128, 96, 3)
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1


def test_fast_flag_gives_the_same_images(test_root, tmp_path):
    warp, gen = small_models(2)
    checkpoint = stage4_checkpoint(tmp_path / "final.pth", warp, gen)
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


def test_clear_errors_for_missing_or_wrong_checkpoints_and_images(test_root, tmp_path,
                                                                 user_error):
    warp, gen = small_models()
    base = ["--dataroot", str(test_root), "--results_dir", str(tmp_path / "r"),
            "--workers", "0", "--device", "cpu"]

    def fails(*extra):
        return user_error(lambda: test_script.main(base + list(extra)))

    missing = tmp_path / "missing.pth"
    # The flag the user gave (--checkpoint was reported as --warp_checkpoint).
    assert re.search(r"error: --checkpoint: file not found: .*missing\.pth",
                     fails("--checkpoint", str(missing)))
    assert re.search(r"error: --warp_checkpoint: file not found: .*missing\.pth",
                     fails("--warp_checkpoint", str(missing), "--gen_checkpoint", str(missing)))
    teacher = stage4_checkpoint(tmp_path / "pb.pth", warp, gen, stage="pb_gen")
    assert re.search(r"'pb_gen' checkpoint; expected one of", fails("--checkpoint", str(teacher)))
    good = stage4_checkpoint(tmp_path / "pf.pth", warp, gen)
    pairs = tmp_path / "bad_pairs.txt"
    pairs.write_text("nobody_0.jpg 000000_1.jpg\n")
    assert "nobody_0.jpg" in fails("--checkpoint", str(good), "--pairs", str(pairs))


def test_uint8_conversion_truncates_like_the_release():
    image = torch.tensor([-1.0, -0.999, 0.0, 0.5, 0.999, 1.0]).view(1, 1, 6)
    expected = ((image.numpy() + 1) / 2 * 255).astype(np.uint8)[0]
    assert to_uint8(image).tolist() == expected.tolist() == [[0, 0, 127, 191, 254, 255]]


def _own_photos(tmp_path, test_root):
    """A person photo of 150x90 (not the frame's aspect) and a 120x100 product photo with its
    mask, written as a user would have them."""
    person = Image.open(test_root / "test_img" / "000001_0.jpg").convert("RGB").resize((90, 150))
    person_path = tmp_path / "me.jpg"
    person.save(person_path, quality=95)
    garment = Image.open(test_root / "test_clothes" / "000002_1.jpg").convert("RGB")
    mask = Image.open(test_root / "test_edge" / "000002_1.jpg").convert("L")
    garment_path, mask_path = tmp_path / "shirt.png", tmp_path / "shirt_mask.png"
    garment.resize((100, 120)).save(garment_path)
    mask.resize((100, 120), Image.NEAREST).save(mask_path)
    return person_path, garment_path, mask_path


def test_one_pair_of_own_photos_comes_back_at_the_photo_size(test_root, tmp_path):
    from data.files import photo_tensor
    from data.photo_fit import apply_placement, fit_to_frame, paste_back

    warp, gen = small_models(5)
    checkpoint = stage4_checkpoint(tmp_path / "final.pth", warp, gen)
    person_path, garment_path, mask_path = _own_photos(tmp_path, test_root)
    output = tmp_path / "out" / "tryon.png"
    test_script.main(["--person", str(person_path), "--garment", str(garment_path),
                      "--garment_mask", str(mask_path), "--checkpoint", str(checkpoint),
                      "--output", str(output), "--device", "cpu", "--fit", "crop",
                      "--save_grid"])
    written = np.asarray(Image.open(output))
    person = np.asarray(Image.open(person_path).convert("RGB"))
    assert written.shape == person.shape == (150, 90, 3)
    # The 64x64 frame is square: --fit crop cuts the centred 90x90 window (rows 30..119);
    # the rows above and below are the photo's own pixels.
    assert np.array_equal(written[:30], person[:30]) and np.array_equal(written[120:],
                                                                        person[120:])
    assert not np.array_equal(written[30:120], person[30:120])
    # Inside the window: the model's try-on of the fitted inputs, mapped back.
    frame, placement = fit_to_frame(person, (64, 64), "crop")
    garment = np.asarray(Image.open(garment_path).convert("RGB"))
    mask = (np.asarray(Image.open(mask_path)) > 127).astype(np.uint8)
    garment_frame, garment_placement = fit_to_frame(garment, (64, 64), "pad")
    edge = apply_placement(mask, garment_placement, interpolation="nearest", fill=0)
    with torch.no_grad():
        out = parser_free_tryon(warp, gen, photo_tensor(frame)[None],
                                photo_tensor(garment_frame)[None],
                                torch.from_numpy(edge).float()[None, None])
    expected = paste_back(person, to_uint8(out.tryon[0]), placement)
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1
    grid = Image.open(output.with_name("tryon_grid.png"))
    assert grid.size == (4 * 64, 64)


def test_one_pair_errors_name_the_file_and_write_nothing(test_root, tmp_path, user_error):
    warp, gen = small_models()
    checkpoint = stage4_checkpoint(tmp_path / "final.pth", warp, gen)
    person_path, garment_path, mask_path = _own_photos(tmp_path, test_root)
    output = tmp_path / "never.png"
    base = ["--checkpoint", str(checkpoint), "--output", str(output), "--device", "cpu"]

    def fails(person, garment, mask):
        return user_error(lambda: test_script.main(base + [
            "--person", str(person), "--garment", str(garment), "--garment_mask", str(mask)]))

    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("this is not a photo")
    assert re.search(r"notes\.jpg: not a readable image",
                     fails(not_an_image, garment_path, mask_path))
    small_mask = tmp_path / "small_mask.png"
    Image.open(mask_path).resize((50, 60)).save(small_mask)
    assert re.search(r"small_mask\.png is 60x50 but the garment photo .*shirt\.png is 120x100",
                     fails(person_path, garment_path, small_mask))
    empty_mask = tmp_path / "empty_mask.png"
    Image.fromarray(np.zeros((120, 100), np.uint8)).save(empty_mask)
    assert re.search(r"empty_mask\.png is empty", fails(person_path, garment_path, empty_mask))
    # The product photo itself, and the mask inverted, given as the mask (the web page refused
    # them; test.py tried on with them).
    assert re.search(r"--garment_mask .*shirt\.png does not look like a garment mask .*% of "
                     r"its pixels are grey", fails(person_path, garment_path, garment_path))
    inverted = tmp_path / "inverted.png"
    Image.fromarray(255 - np.asarray(Image.open(mask_path).convert("L"))).save(inverted)
    assert re.search(r"inverted\.png does not look like a garment mask .*border is mostly white",
                     fails(person_path, garment_path, inverted))
    with pytest.raises(SystemExit):     # a usage error: one mode at a time
        test_script.main(base + ["--person", str(person_path), "--garment", str(garment_path),
                                 "--dataroot", str(test_root)])
    assert not output.exists() and not list(tmp_path.glob(".never*"))


def test_a_cut_out_garment_uses_its_alpha_channel_as_the_mask(test_root, tmp_path, capsys):
    """A product photo with an alpha channel and no --garment_mask: the alpha is the mask
    (the log says so), so the try-on equals the one with that mask given explicitly."""
    warp, gen = small_models(6)
    checkpoint = stage4_checkpoint(tmp_path / "final.pth", warp, gen)
    person_path, garment_path, mask_path = _own_photos(tmp_path, test_root)
    cutout = tmp_path / "cutout.png"
    rgba = Image.open(garment_path).convert("RGB")
    rgba.putalpha(Image.open(mask_path).convert("L"))
    rgba.save(cutout)
    common = ["--person", str(person_path), "--checkpoint", str(checkpoint), "--device", "cpu"]
    test_script.main(common + ["--garment", str(cutout), "--output", str(tmp_path / "a.png")])
    assert "garment mask from the alpha channel of the garment photo" in capsys.readouterr().out
    # --grabcut refines computed masks only: said, where it was silently not used.
    test_script.main(common + ["--garment", str(cutout), "--output", str(tmp_path / "g.png"),
                               "--grabcut"])
    assert "--grabcut not used: a cut-out needs none" in capsys.readouterr().out
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")),
                          np.asarray(Image.open(tmp_path / "g.png")))
    test_script.main(common + ["--garment", str(garment_path), "--garment_mask", str(mask_path),
                               "--output", str(tmp_path / "b.png")])
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")),
                          np.asarray(Image.open(tmp_path / "b.png")))


def test_a_cut_out_person_is_tried_on_over_white(test_root, tmp_path):
    # The colours under a person photo's transparent pixels were what the model saw.
    warp, gen = small_models(7)
    checkpoint = stage4_checkpoint(tmp_path / "final.pth", warp, gen)
    person_path, garment_path, mask_path = _own_photos(tmp_path, test_root)
    person = np.asarray(Image.open(person_path).convert("RGB")).copy()
    alpha = np.full(person.shape[:2], 255, np.uint8)
    alpha[:, :30] = 0
    outputs = []
    for name, hidden in (("black", 0), ("white", 255)):
        person[:, :30] = hidden
        path = tmp_path / f"{name}.png"
        Image.fromarray(np.dstack([person, alpha])).save(path)
        outputs.append(tmp_path / f"{name}_out.png")
        test_script.main(["--person", str(path), "--garment", str(garment_path),
                          "--garment_mask", str(mask_path), "--checkpoint", str(checkpoint),
                          "--output", str(outputs[-1]), "--device", "cpu", "--fit", "crop"])
    black, white = (np.asarray(Image.open(path)) for path in outputs)
    assert np.array_equal(black, white)
    # Above and below the crop window (rows 30..119): the photo itself, over white.
    assert (white[:30, :30] == 255).all() and (white[120:, :30] == 255).all()
    # A test folder reads its persons alike: the model saw the hidden colours there.
    folder_outputs = []
    for name in ("black", "white"):
        pairs = tmp_path / f"{name}_pairs.txt"
        pairs.write_text(f"{tmp_path / name}.png 000002_1.jpg\n")
        results = tmp_path / f"{name}_results"
        test_script.main(["--dataroot", str(test_root), "--pairs", str(pairs), "--results_dir",
                          str(results), "--checkpoint", str(checkpoint), "--device", "cpu",
                          "--workers", "0", "--fit", "crop"])
        folder_outputs.append(np.asarray(Image.open(results / f"{name}__000002_1.png")))
    assert np.array_equal(*folder_outputs)
    assert (folder_outputs[1][:30, :30] == 255).all()
    # The paste baseline maps its images back to the photo alike: it showed the hidden colours.
    from scripts import baselines
    pastes = []
    for name in ("black", "white"):
        results = tmp_path / f"{name}_paste"
        baselines.main(["--dataroot", str(test_root), "--pairs",
                        str(tmp_path / f"{name}_pairs.txt"), "--results_dir", str(results),
                        "--height", "128", "--width", "96", "--fit", "crop"])
        pastes.append(np.asarray(Image.open(results / f"{name}__000002_1.png")))
    assert np.array_equal(*pastes)
    # Above and below its crop window (rows 15..134 of the 128x96 frame): over white.
    assert (pastes[1][:15, :30] == 255).all() and (pastes[1][135:, :30] == 255).all()


def test_a_precision_the_cpu_only_emulates_is_said(test_root, tmp_path, capsys):
    # --precision fp16 on a CPU ran (slowly, emulated) without a word; the help says GPU.
    checkpoint = stage4_checkpoint(tmp_path / "final.pth", *small_models(8))
    person_path, garment_path, mask_path = _own_photos(tmp_path, test_root)
    test_script.main(["--person", str(person_path), "--garment", str(garment_path),
                      "--garment_mask", str(mask_path), "--checkpoint", str(checkpoint),
                      "--output", str(tmp_path / "o.png"), "--device", "cpu",
                      "--precision", "fp16"])
    assert ("note: --precision fp16 on cpu: fp16 autocast is for GPUs"
            in capsys.readouterr().err)
    assert (tmp_path / "o.png").is_file()


@pytest.mark.parametrize("extra, message", [
    # One pair: the flags of a test folder and its scores were silently ignored.
    (["--person", "p.jpg", "--garment", "g.jpg", "--output", "o.png", "--save_size", "model"],
     "--save_size: for a test folder (--dataroot), not one pair"),
    (["--person", "p.jpg", "--garment", "g.jpg", "--output", "o.png", "--pairs", "paired",
      "--batch_size", "2", "--metrics", "ssim"],
     "--pairs, --batch_size, --metrics: for a test folder (--dataroot), not one pair"),
    # A flag given at its default value is given all the same.
    (["--person", "p.jpg", "--garment", "g.jpg", "--output", "o.png", "--batch_size", "8"],
     "--batch_size: for a test folder (--dataroot), not one pair"),
    # A mask of one's own replaces the computed one, which --grabcut refines: it did nothing.
    (["--person", "p.jpg", "--garment", "g.jpg", "--garment_mask", "m.png", "--output",
      "o.png", "--grabcut"], "--grabcut: for a garment mask computed from the product photo, "
     "which --garment_mask replaces"),
    # A test folder: score flags without --eval were silently ignored.
    (["--dataroot", "d", "--results_dir", "r", "--metrics", "ssim"],
     "--metrics: for the scores, which --eval asks"),
    (["--dataroot", "d", "--results_dir", "r", "--metrics", "ssim,lpips,fid"],
     "--metrics: for the scores, which --eval asks"),
    # Scored, but a weights file of a metric not asked for was silently ignored.
    (["--dataroot", "d", "--results_dir", "r", "--eval", "--metrics", "ssim", "--fid_weights",
      "inception.pth"], "--fid_weights: for the FID score, not in --metrics"),
    # A VITON or VITON-HD folder's try-on is the same in any category: it was silently ignored.
    (["--dataroot", "d", "--results_dir", "r", "--category", "lower_body"],
     "--category: for choosing DressCode's category folders (--dataset dresscode)"),
    (["--dataroot", "d", "--results_dir", "r", "--dataset", "vitonhd", "--category",
      "upper_body"], "--category: for choosing DressCode's category folders"),
    # Parsing, keypoints and DensePose are never read at test time.
    (["--dataroot", "d", "--results_dir", "r", "--label_scheme", "lip", "--neck", "face",
      "--pose_format", "coco17", "--iuv_channel", "r"],
     "--label_scheme: this command reads no parsing, keypoints or DensePose"),
    # --checkpoint beside both parts was dropped; a height without a width made a 512x192 frame.
    (["--dataroot", "d", "--results_dir", "r", "--warp_checkpoint", "w", "--gen_checkpoint",
      "g"], "--checkpoint sets both --warp_checkpoint and --gen_checkpoint, which are given"),
    (["--person", "p.jpg", "--garment", "g.jpg", "--output", "o.png", "--height", "512"],
     "--height and --width go together"),
])
def test_flags_that_would_do_nothing_are_refused(extra, message, user_error):
    assert message in user_error(lambda: test_script.parse_args(extra + ["--checkpoint", "c"]))


def test_mask_flags_on_a_folder_whose_masks_all_exist_are_refused(test_root, tmp_path,
                                                                   user_error):
    # No mask is computed where every garment has its mask file: the flags did nothing.
    warp, gen = small_models()
    checkpoint = stage4_checkpoint(tmp_path / "final.pth", warp, gen)
    common = ["--dataroot", str(test_root), "--checkpoint", str(checkpoint), "--device", "cpu",
              "--workers", "0", "--results_dir", str(tmp_path / "results")]
    for flags, named in ((["--grabcut"], "--grabcut"),
                         (["--rebuild_masks", "--mask_cache", str(tmp_path / "c")],
                          "--mask_cache, --rebuild_masks")):
        err = user_error(lambda flags=flags: test_script.main(common + flags))
        assert f"{named}: every garment has a mask file (as in {test_root / 'test_edge'})" in err
    assert not (tmp_path / "results").exists()
    # Without test_edge/ the masks are computed, and GrabCut refines them.
    root = tmp_path / "no_masks" / "VITON_test"
    shutil.copytree(test_root, root)
    shutil.rmtree(root / "test_edge")
    test_script.main(common[:1] + [str(root)] + common[2:] + ["--grabcut", "--mask_cache",
                                                              str(tmp_path / "c")])
    assert len(list((tmp_path / "results").glob("*.png"))) == 5
    assert any((tmp_path / "c").rglob("*.png"))


def test_a_run_refused_before_writing_leaves_no_results_folder(test_root, tmp_path):
    # The folder was created to probe that it can be written, and stayed empty behind a refusal.
    results = tmp_path / "new" / "results"
    with pytest.raises(SystemExit):
        test_script.main(["--dataroot", str(test_root), "--results_dir", str(results),
                          "--checkpoint", str(tmp_path / "missing.pth"), "--device", "cpu"])
    assert not (tmp_path / "new").exists()      # new/ as well: it stayed, empty
    # One pair alike: --output's new folders go when the try-on fails.
    person, garment = next((test_root / "test_img").iterdir()), next(
        (test_root / "test_clothes").iterdir())
    with pytest.raises(SystemExit):
        test_script.main(["--person", str(person), "--garment", str(garment), "--output",
                          str(tmp_path / "new" / "deep" / "out.png"), "--checkpoint",
                          str(tmp_path / "missing.pth"), "--device", "cpu"])
    assert not (tmp_path / "new").exists()
    # A folder that could not be made (its name too long): the ones made on its way go too.
    from common.results import OutputError, output_folder
    with pytest.raises(OutputError, match="cannot create the folder"):
        with output_folder(tmp_path / "new" / "deep" / ("x" * 300), "--results_dir"):
            pass
    assert not (tmp_path / "new").exists()
    # A file where --save_grid's grids/ goes: refused before the first try-on, not after it.
    grids = tmp_path / "with_grids"
    grids.mkdir()
    (grids / "grids").write_text("mine")
    with pytest.raises(SystemExit):
        test_script.main(["--dataroot", str(test_root), "--results_dir", str(grids),
                          "--checkpoint", str(tmp_path / "missing.pth"), "--save_grid"])
    assert sorted(path.name for path in grids.iterdir()) == ["grids"]
    kept = tmp_path / "kept"        # a folder the user had is never removed, even empty
    kept.mkdir()
    with pytest.raises(SystemExit):
        test_script.main(["--dataroot", str(test_root), "--results_dir", str(kept),
                          "--checkpoint", str(tmp_path / "missing.pth"), "--device", "cpu"])
    assert kept.is_dir()
    # The paste baseline alike, refused at a pairs file that does not exist.
    from scripts import baselines
    with pytest.raises(SystemExit):
        baselines.main(["--dataroot", str(test_root), "--pairs", str(tmp_path / "absent.txt"),
                        "--results_dir", str(results)])
    assert not results.exists()


def test_a_warp_and_a_generator_of_different_sizes_need_the_frame_given(tmp_path):
    """Two project files trained at different sizes ran at the last one's, the other model at a
    frame it never saw, without a word."""
    from utils.checkpoint import CHECKPOINT_FORMAT, CheckpointError, save_atomic
    warp, gen = small_models(0)
    first = stage4_checkpoint(tmp_path / "first.pth", warp, gen)
    data = torch.load(first, weights_only=True)
    save_atomic({**data, "config": {**data["config"], "height": 128, "width": 96}},
                tmp_path / "other.pth")
    assert data["format"] == CHECKPOINT_FORMAT and data["config"]["height"] == 64
    with pytest.raises(CheckpointError, match=r"^--warp_checkpoint .*first.pth and "
                                              r"--gen_checkpoint .*other.pth: trained at "
                                              r"different sizes \(128x96 and 64x64\); give "
                                              r"--height and --width"):
        load_tryon_model(str(first), str(tmp_path / "other.pth"), "cpu",
                         warp_flag="--warp_checkpoint", gen_flag="--gen_checkpoint")
    model = load_tryon_model(str(first), str(tmp_path / "other.pth"), "cpu", height=64,
                             width=64)
    assert (model.height, model.width) == (64, 64)
    assert load_tryon_model(str(first), str(first), "cpu").height == 64   # one file: its size
    # A released generator (a plain state dict) was trained at the paper's 256x192.
    torch.save(gen.state_dict(), tmp_path / "released_gen.pth")
    with pytest.raises(CheckpointError, match=r"trained at different sizes \(256x192 .a "
                                              r"released file's, which records none. and "
                                              r"64x64\)"):
        load_tryon_model(str(first), str(tmp_path / "released_gen.pth"), "cpu")


def test_running_out_of_memory_is_one_line_naming_the_run(monkeypatch):
    """An allocator's failure (CPU or GPU) was a traceback from deep in the model."""
    from common.errors import UserError
    from utils.inference.model import memory_named
    failures = (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't "
                             "allocate memory: you tried to allocate 4294967296 bytes."),
                torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                MemoryError())
    for failure in failures:
        with pytest.raises(UserError, match=r"^out of memory running the model on batches of 8 "
                                            r"at 1024x768 \(.+\): lower --batch_size$"):
            with memory_named("the model on batches of 8 at 1024x768", "lower --batch_size"):
                raise failure
    with pytest.raises(RuntimeError, match="a bug"):        # anything else keeps its traceback
        with memory_named("the model"):
            raise RuntimeError("a bug")


def test_test_py_names_the_frame_when_memory_runs_out(test_root, tmp_path, monkeypatch,
                                                     user_error):
    checkpoint = stage4_checkpoint(tmp_path / "final.pth", *small_models(5))
    person_path, garment_path, mask_path = _own_photos(tmp_path, test_root)

    def exhausted(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate "
                           "68719476736 bytes.")
    monkeypatch.setattr(test_script, "tryon_photos", exhausted)
    message = user_error(lambda: test_script.main([
        "--person", str(person_path), "--garment", str(garment_path), "--garment_mask",
        str(mask_path), "--checkpoint", str(checkpoint), "--output", str(tmp_path / "o.png"),
        "--device", "cpu"]))
    assert "error: out of memory running the model at 64x64 (DefaultCPUAllocator" in message
    assert "--batch_size" not in message       # refused with one pair: not to be suggested
    assert not (tmp_path / "o.png").exists()
