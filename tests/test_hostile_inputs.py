"""Inputs a careless or hostile user gives: images whose decoded size is a memory bomb, strips
whose padded canvas would be, damaged JPEGs, outputs that are folders or inputs, sizes no
model has, and training runs that diverge. Each gets one clear line and a non-zero exit, and
nothing the user gave is overwritten."""

import os
import shutil
import struct
import subprocess
import sys
import tracemalloc
import zlib
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest

import test as test_script
from data.files import DatasetError, read_gray, read_rgb
from data.photo_fit import apply_placement, fit_to_frame, paste_back
from data.synthetic import make_dataset
from tests.small_models import SMALL_ARCH, small_models, stage4_checkpoint
from utils.checkpoint import CHECKPOINT_FORMAT, save_atomic

ROOT = Path(__file__).resolve().parent.parent


def png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes of PNG whose header says ``width`` x ``height`` grey pixels."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
            + chunk(b"IEND", b""))


def damaged_jpeg(path: Path) -> Path:
    """A JPEG cut in the middle of its data, with an end-of-image marker appended: decoders
    fill the missing half with grey and say nothing but a warning."""
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur((rng.random((128, 96, 3)) * 255).astype(np.uint8), (9, 9), 3)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    path.write_bytes(data[:len(data) // 2] + b"\xff\xd9")
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return stage4_checkpoint(tmp_path_factory.mktemp("model") / "final.pth", *small_models(0))


@pytest.fixture(scope="module")
def test_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    make_dataset(str(out), num_train=0, num_test=2, seed=3, height=128, width=96)
    return out / "VITON_test"


def test_an_image_claiming_gigapixels_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(20000, 20000))
    assert bomb.stat().st_size < 2000
    tracemalloc.start()
    with pytest.raises(DatasetError, match=r"bomb\.png: 400000000-pixel image \(400 megapixels"
                                           r"\) is more than the 50 megapixels"):
        read_rgb(str(bomb))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2 ** 20
    with pytest.raises(DatasetError, match="more than the 0.1 megapixels"):
        read_gray(str(bomb), max_pixels=100_000)
    # A small image over a smaller limit: its size was shown as "0.0 megapixels".
    small = tmp_path / "small.png"
    small.write_bytes(png_claiming(96, 128))
    with pytest.raises(DatasetError, match=r"\(0\.0123 megapixels\) is more than the 0\.001 "
                                           r"megapixels read \(--max_megapixels\); downscale it "
                                           r"or raise the limit"):
        read_rgb(str(small), max_pixels=1000)
    # Above OpenCV's own limit (2**30 pixels) a raised --max_megapixels was a cv2.error.
    bomb.write_bytes(png_claiming(50000, 50000))
    with pytest.raises(DatasetError, match=r"bomb\.png: OpenCV cannot decode it"):
        read_rgb(str(bomb), max_pixels=5_000_000_000)


def test_devices_other_than_cpu_and_cuda_are_refused():
    # mps, xpu and meta passed and then failed deep inside torch.
    from common.devices import DeviceError, pick_device
    assert pick_device("cpu").type == "cpu"
    for name in ("mps", "xpu", "meta", "gpu"):
        with pytest.raises(DeviceError, match=f"--device {name}: not a device"):
            pick_device(name)


def test_a_long_strip_never_builds_its_padded_canvas():
    # 16 x 20000 pixels pad to a 20000 x 15000 canvas at 3:4 (900 MB in RGB): the fit and the
    # paste-back must work in frame pixels instead.
    strip = np.full((16, 20000, 3), 200, np.uint8)
    strip[:, ::100] = 20
    tracemalloc.start()
    frame, placement = fit_to_frame(strip, (256, 192), "pad")
    mask = apply_placement(np.ones((16, 20000), np.uint8), placement, "nearest", fill=0)
    back = paste_back(None, frame, placement)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert frame.shape == (256, 192, 3) and back.shape == strip.shape
    assert peak < 40 * 2 ** 20, f"peak {peak / 2 ** 20:.0f} MiB"
    rows = np.nonzero(mask.any(axis=1))[0]
    assert len(rows) >= 1 and mask.sum() > 0        # the strip is in the frame, centred
    assert abs((rows[0] + rows[-1]) / 2 - 127.5) <= 1


def test_a_padded_photo_of_the_frames_aspect_is_only_resized():
    photo = (np.random.default_rng(1).random((512, 384, 3)) * 255).astype(np.uint8)
    frame, placement = fit_to_frame(photo, (256, 192), "pad")
    np.testing.assert_array_equal(frame, cv2.resize(photo, (192, 256),
                                                    interpolation=cv2.INTER_AREA))


def test_damaged_jpegs_are_refused_everywhere(tmp_path, test_root, checkpoint, user_error):
    photo = damaged_jpeg(tmp_path / "cut.jpg")
    with pytest.raises(DatasetError, match=r"cut\.jpg: damaged JPEG"):
        read_rgb(str(photo))
    garment = test_root / "test_clothes" / "000001_1.jpg"
    message = user_error(lambda: test_script.main([
        "--person", str(photo), "--garment", str(garment), "--checkpoint", str(checkpoint),
        "--output", str(tmp_path / "out.png"), "--device", "cpu"]))
    assert "cut.jpg: damaged JPEG" in message and not (tmp_path / "out.png").exists()
    from scripts import serve
    limits = serve.UploadLimits(max_bytes=20 * serve.MEGABYTE, max_pixels=40_000_000)
    with pytest.raises(serve.RequestError, match="damaged JPEG"):
        serve.read_upload(str(photo), "person photo", limits)


def test_outputs_that_are_folders_or_inputs_are_refused_before_the_model_runs(
        tmp_path, test_root, checkpoint, user_error):
    person = test_root / "test_img" / "000000_0.jpg"
    garment = test_root / "test_clothes" / "000001_1.jpg"
    copy = tmp_path / "me.jpg"
    copy.write_bytes(person.read_bytes())
    link = tmp_path / "link.jpg"
    link.symlink_to(copy)
    folder = tmp_path / "a_folder.png"
    folder.mkdir()
    base = ["--garment", str(garment), "--checkpoint", str(checkpoint), "--device", "cpu"]
    for output, expected in ((copy, "is the input"), (link, "is the input"),
                             (folder, "is a folder")):
        message = user_error(lambda output=output: test_script.main(
            base + ["--person", str(copy), "--output", str(output)]))
        assert f"--output {output}: {expected}" in message
    assert copy.read_bytes() == person.read_bytes()
    message = user_error(lambda: test_script.main([
        "--dataroot", str(test_root), "--results_dir", str(test_root / "test_img"),
        "--checkpoint", str(checkpoint), "--device", "cpu"]))
    assert "is the input folder" in message
    # A folder of the data that is a link to one elsewhere: the try-ons went among the photos.
    linked = tmp_path / "linked_root"
    linked.mkdir()
    for entry in test_root.iterdir():
        (linked / entry.name).symlink_to(entry)
    message = user_error(lambda: test_script.main([
        "--dataroot", str(linked), "--results_dir", str(test_root / "test_img"),
        "--checkpoint", str(checkpoint), "--device", "cpu"]))
    assert "is the input folder" in message
    # A loop of links ended in RuntimeError's traceback (Path.resolve on Python 3.11).
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(loop)
    for argv in (base + ["--person", str(copy), "--output", str(loop / "out.png")],
                 ["--dataroot", str(test_root), "--results_dir", str(loop), "--checkpoint",
                  str(checkpoint), "--device", "cpu"]):
        message = user_error(lambda argv=argv: test_script.main(argv))
        assert f"{loop}" in message and "cannot be resolved (" in message, message
    # A loop given as an input is not blamed on the output flag.
    message = user_error(lambda: test_script.main(
        base + ["--person", str(loop / "me.jpg"), "--output", str(tmp_path / "o.png")]))
    assert f"error: {loop / 'me.jpg'} cannot be resolved (" in message, message


def test_a_write_that_fails_after_the_model_ran_is_one_line(tmp_path, test_root, checkpoint,
                                                            monkeypatch, user_error):
    import common.images

    def disk_full(path, array, jpeg_quality=95):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("common.results.write_image", disk_full)
    message = user_error(lambda: test_script.main([
        "--person", str(test_root / "test_img" / "000000_0.jpg"),
        "--garment", str(test_root / "test_clothes" / "000001_1.jpg"),
        "--checkpoint", str(checkpoint), "--output", str(tmp_path / "out.png"),
        "--device", "cpu"]))
    assert "--output: cannot write" in message and "No space left on device" in message
    assert common.images.write_image is not disk_full


@pytest.mark.parametrize("height", [0, 50, 200000])
def test_impossible_sizes_are_refused(tmp_path, test_root, checkpoint, height, user_error):
    argv = ["--dataroot", str(test_root), "--results_dir", str(tmp_path / "r"), "--device",
            "cpu", "--checkpoint", str(checkpoint)]
    message = user_error(lambda: test_script.main(argv + ["--height", str(height),
                                                           "--width", "64"]))
    assert f"--height: height {height} is not a model size" in message
    warp, gen = small_models(0)
    stored = tmp_path / "odd.pth"
    save_atomic({"format": CHECKPOINT_FORMAT, "stage": "pf_gen",
                 "model": {"warp": warp.state_dict(), "gen": gen.state_dict()},
                 "config": dict(SMALL_ARCH, height=height)}, stored)
    message = user_error(lambda: test_script.main(argv[:-1] + [str(stored)]))
    assert f"height {height} is not a model size" in message and "stored in" in message


def test_a_diverging_run_stops_with_a_message_and_resumes_from_the_last_good_state(tmp_path):
    """--lr 1e6 used to crash in grid_sample's CPU backward on a NaN grid (exit 139), and
    could leave the diverged weights in latest.pth for every --resume to crash on again."""
    import torch
    root = make_dataset(str(tmp_path / "data"), num_train=4, num_test=0, seed=0, height=64,
                        width=64)["train"]
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def train(*extra):
        return subprocess.run(
            [sys.executable, str(ROOT / "train_pb_warp.py"), "--config",
             str(ROOT / "configs" / "tiny.yaml"), "--dataroot", root, "--checkpoints_dir",
             str(tmp_path / "runs"), "--device", "cpu", "--save_every", "1", "--niter", "20",
             "--niter_decay", "0", "--log_every", "1", "--vgg_layers", "1", *extra],
            capture_output=True, text=True, env=env, timeout=300)

    latest = tmp_path / "runs" / "pb_warp" / "latest.pth"
    assert train("--max_steps", "3").returncode == 0
    good = torch.load(latest, weights_only=True)
    diverged = train("--resume", "--lr", "1e6", "--max_steps", "10")
    assert diverged.returncode == 2, diverged.stderr[-2000:]
    errors = [line for line in diverged.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "not finite" in errors[0], diverged.stderr[-2000:]
    saved = torch.load(latest, weights_only=True)
    # latest.pth is the last state whose next loss was finite: not the diverged one.
    assert saved["step"] >= good["step"]
    assert all(torch.isfinite(value).all() for value in saved["model"]["warp"].values()
               if value.is_floating_point())
    resumed = train("--resume", "--lr", "1e-4", "--max_steps", str(saved["step"] + 2))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(latest, weights_only=True)["step"] == saved["step"] + 2


def test_bytes_after_an_image_are_left_alone_and_a_cut_image_is_refused(tmp_path):
    """Phones append data after a JPEG's end (a motion photo's video), which decoders ignore:
    such photos were refused as truncated, since the end marker was looked for only in the
    file's last kilobyte. The segments are walked instead, so an end marker inside a segment
    (an EXIF thumbnail) does not make a cut photo look complete."""
    from PIL import Image

    image = cv2.GaussianBlur((np.random.default_rng(0).random((96, 128, 3)) * 255).astype(
        np.uint8), (0, 0), 2)
    plain = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])[1].tobytes()
    progressive = tmp_path / "progressive.jpg"
    Image.fromarray(image).save(progressive, "JPEG", progressive=True)
    thumbnail = cv2.imencode(".jpg", image[:16, :16])[1].tobytes()
    app1 = b"Exif\x00\x00" + thumbnail                  # a segment holding a whole JPEG
    with_thumbnail = plain[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + \
        plain[2:]
    png = cv2.imencode(".png", image)[1].tobytes()
    for name, data in (("plain.jpg", plain), ("progressive.jpg", progressive.read_bytes()),
                       ("thumbnail.jpg", with_thumbnail), ("plain.png", png)):
        whole = tmp_path / name
        whole.write_bytes(data)
        expected = read_rgb(str(whole))
        motion = tmp_path / f"motion_{name}"
        # A video's bytes hold FF D9 and FF DA pairs (about 15 of each per MB of random data),
        # which are no end of the image and no scans of it.
        motion.write_bytes(data + b"\x00\x00\x00\x18ftypmp42" +
                           (bytes(range(256)) + b"\xff\xda\xff\xd9") * 800)
        assert np.array_equal(read_rgb(str(motion)), expected), name
        kind = "PNG" if name.endswith(".png") else "JPEG"
        for end in (len(data) // 2, len(data) - 2):
            cut = tmp_path / f"cut_{name}"
            cut.write_bytes(data[:end])
            with pytest.raises(DatasetError, match=f"cut_{name}: truncated {kind}"):
                read_rgb(str(cut))
    damaged = tmp_path / "damaged.jpg"               # bytes between segments: no marker there
    damaged.write_bytes(plain[:2] + b"\x00" + plain[2:])
    with pytest.raises(DatasetError, match=r"damaged.jpg: damaged JPEG \(no marker at byte 2\)"):
        read_rgb(str(damaged))
    endless = tmp_path / "endless.jpg"               # the walk is bounded, and quick
    endless.write_bytes(b"\xff\xd8" + b"\xff\xfe\x00\x02" * 200_000)
    with pytest.raises(DatasetError, match="endless.jpg: JPEG of more than 100000 segments"):
        read_rgb(str(endless))


def test_a_folder_that_cannot_be_listed_is_named(tmp_path, monkeypatch):
    """A folder without read permission was a PermissionError traceback from os.listdir."""
    from data.files import list_folder

    def refuse(folder):
        raise PermissionError(13, "Permission denied", folder)
    monkeypatch.setattr(os, "listdir", refuse)
    with pytest.raises(DatasetError, match=f"^{tmp_path}: cannot list the folder "
                                           f"\\(Permission denied\\)$"):
        list_folder(str(tmp_path))


def test_a_large_file_that_is_no_image_is_not_read_whole(tmp_path):
    """Its first bytes tell: a 300 MB file of zeros named .jpg was read (and copied) first."""
    fake = tmp_path / "zeros.jpg"
    with open(fake, "wb") as handle:
        handle.truncate(300 << 20)                       # sparse: no disk, no memory
    tracemalloc.start()
    with pytest.raises(DatasetError, match=r"zeros\.jpg: not a readable image"):
        read_rgb(str(fake))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2 ** 20


def test_devices_pipes_and_folders_are_not_read_as_images(tmp_path):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)              # reading it would wait for a writer for ever
    with pytest.raises(DatasetError, match=r"photo\.jpg: not a regular file"):
        read_rgb(str(fifo))
    with pytest.raises(DatasetError, match=r"/dev/zero: not a regular file"):
        read_rgb("/dev/zero")
    with pytest.raises(DatasetError, match=r"a_folder: a folder"):
        (tmp_path / "a_folder").mkdir()
        read_rgb(str(tmp_path / "a_folder"))


def test_bad_counts_and_tiny_person_photos_are_one_line(tmp_path, test_root, checkpoint,
                                                        user_error):
    garment = test_root / "test_clothes" / "000001_1.jpg"
    base = ["--garment", str(garment), "--checkpoint", str(checkpoint), "--device", "cpu",
            "--output", str(tmp_path / "out.png")]
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.full((1, 1, 3), 128, np.uint8))
    message = user_error(lambda: test_script.main(base + ["--person", str(tiny)]))
    assert "tiny.png: 1x1 pixels; a person photo is at least 16x16" in message
    person = ["--person", str(test_root / "test_img" / "000000_0.jpg")]
    for flags, expected in ((["--max_megapixels", "nan"], "--max_megapixels: expected a number"),
                            (["--max_megapixels", "-1"], "--max_megapixels: expected a number"),
                            # Pillow opened none of the images it let through (a traceback).
                            (["--max_megapixels", "300"], "at most 178, what Pillow opens"),
                            (["--workers", "-1"], "--workers: for a test folder")):
        assert expected in user_error(lambda flags=flags: test_script.main(base + person + flags))
    folder = ["--dataroot", str(test_root), "--results_dir", str(tmp_path / "r"),
              "--checkpoint", str(checkpoint), "--workers", "-1"]
    assert "--workers must be 0 or more" in user_error(lambda: test_script.main(folder))
    assert not (tmp_path / "out.png").exists()
    # A test folder's tiny photos were tried on (a 4x3 try-on), its garments alike.
    root = tmp_path / "tiny_root"
    shutil.copytree(test_root, root)
    for folder, what in (("test_img", "person photo"), ("test_clothes", "garment photo")):
        name = sorted(os.listdir(root / folder))[0]
        saved = (root / folder / name).read_bytes()
        cv2.imwrite(str(root / folder / name), np.full((4, 3, 3), 128, np.uint8))
        message = user_error(lambda: test_script.main([
            "--dataroot", str(root), "--results_dir", str(tmp_path / "r"), "--checkpoint",
            str(checkpoint), "--workers", "0", "--pairs", "paired"]))
        assert f"{name}: 4x3 pixels; a {what} is at least 16x16" in message
        (root / folder / name).write_bytes(saved)


def test_every_tool_checks_its_limits_and_sizes_with_its_flags(tmp_path, test_root, user_error):
    """NaN, inf and 1e300 passed a '> 0' check and failed where the limit was first used (after
    the model loaded, or after prewarp wrote its record); a baseline of 0 or 100000 pixels
    failed in the photo fitting or asked for tens of GiB."""
    from scripts import baselines, evaluate, prewarp, serve
    results = tmp_path / "r"
    folder = ["--dataroot", str(test_root), "--results_dir", str(results)]
    tools = {"baselines": lambda value: baselines.main(folder + ["--max_megapixels", value]),
             "evaluate": lambda value: evaluate.main(folder + ["--pairs", "paired",
                                                               "--max_megapixels", value]),
             "prewarp": lambda value: prewarp.build_parser().parse_args(
                 ["--dataroot", str(test_root), "--max_megapixels", value]),
             "serve": lambda value: serve.parse_args(["--checkpoint", "c.pth",
                                                      "--max_upload_mb", value])}
    for value in ("nan", "inf", "-1", "0", "1e300"):
        for name, tool in tools.items():
            message = user_error(partial(tool, value))
            assert "expected a number above 0 and at most 1e12" in message, (name, message)
    for flags in (["--height", "0"], ["--width", "-5"], ["--height", "100000"]):
        message = user_error(partial(baselines.main, folder + flags))
        assert "expected 16 to 4096 pixels" in message
    assert not results.exists()
    # Two pairs whose results share a name: refused before either is written.
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(test_root / "test_img" / "000000_0.jpg", other / "000000_0.jpg")
    pairs = tmp_path / "clash.txt"
    pairs.write_text(f"000000_0.jpg 000001_1.jpg\n{other / '000000_0.jpg'} 000001_1.jpg\n")
    message = user_error(lambda: baselines.main(folder + ["--pairs", str(pairs), "--height",
                                                          "128", "--width", "96"]))
    assert "would both write 000000_0__000001_1.png" in message
    assert not list(results.glob("*.png"))


@pytest.mark.parametrize("content", ["empty", "full"])
def test_blank_mask_files_of_a_test_folder_are_refused(tmp_path, checkpoint, content,
                                                      user_error):
    make_dataset(str(tmp_path), num_train=0, num_test=2, seed=3, height=128, width=96)
    root = tmp_path / "VITON_test"
    for name in os.listdir(root / "test_edge"):
        mask = read_gray(str(root / "test_edge" / name))
        cv2.imwrite(str(root / "test_edge" / name), np.full_like(mask, 0 if content == "empty"
                                                                  else 255))
    message = user_error(lambda: test_script.main([
        "--dataroot", str(root), "--results_dir", str(tmp_path / "out"), "--checkpoint",
        str(checkpoint), "--device", "cpu", "--workers", "0"]))
    assert "test_edge" in message and ("is empty" if content == "empty"
                                       else "covers 100.0% of its photo") in message


def test_a_pairs_file_given_from_the_current_folder_is_found(tmp_path, test_root, checkpoint,
                                                            monkeypatch):
    pairs = tmp_path / "mine.txt"
    pairs.write_text("000000_0.jpg 000001_1.jpg\n")
    monkeypatch.chdir(tmp_path)
    test_script.main(["--dataroot", str(test_root), "--pairs", "mine.txt", "--results_dir",
                      str(tmp_path / "out"), "--checkpoint", str(checkpoint), "--device", "cpu",
                      "--workers", "0"])
    assert len(os.listdir(tmp_path / "out")) == 1


def test_sizes_and_opsets_no_tool_can_use_are_one_line(tmp_path, user_error):
    from data.check import main as check_main
    from scripts import export
    assert "--height -32: samples are served at 16 to 4096 pixels" in user_error(
        lambda: check_main([str(tmp_path), "--height", "-32"]))
    message = user_error(lambda: export.main(["--checkpoint", "x.pth", "--out",
                                              str(tmp_path / "m.onnx"), "--opset", "99"]))
    assert "--opset 99: the exporter writes opsets 18 to" in message


def test_a_run_folder_on_a_file_or_inside_the_data_is_refused(tmp_path):
    from options.config import ConfigError
    from utils.training.engine import check_run_folder
    blocker = tmp_path / "photo.jpg"
    blocker.write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"photo\.jpg is a file"):
        check_run_folder(blocker / "run", None)
    data = tmp_path / "VITON_traindata"
    (data / "train_img").mkdir(parents=True)
    with pytest.raises(ConfigError, match="is inside the training data"):
        check_run_folder(data / "train_img", str(data))
    check_run_folder(tmp_path / "checkpoints" / "run", str(data))      # beside it: fine
    # Inside the validation data: a run's files landed among its test photos.
    val = tmp_path / "VITON_test"
    with pytest.raises(ConfigError, match="is inside the validation data"):
        check_run_folder(val / "test_img", str(data), str(val))
    # TensorBoard's event writer encodes its folder as UTF-8: a name that is not is refused.
    with pytest.raises(ConfigError, match="is not valid UTF-8"):
        check_run_folder(tmp_path / os.fsdecode(b"caf\xe9") / "run", None)
    check_run_folder(tmp_path / "caf\u00e9" / "run", None)
