"""Hostile inputs, second round: formats the pixel limit cannot size, decoder and checkpoint
bombs, keypoint, DensePose, YAML and pairs files that would exhaust memory or end in a
traceback, caches and result names that collide, two runs on one folder, an unwritable cache,
an oversized request to the web server, a disk that is full. Every input is built here, small;
a bomb must be refused before the expensive work, which the time and memory bounds check."""

import argparse
import asyncio
import io
import os
import shutil
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from data.files import DatasetError, decode_index_image, read_pairs, read_rgb

HDR_HEADER = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 16000 +X 16000\n"


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header (and a little data) claiming ``width`` x ``height`` grey pixels."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def bounded(call, seconds: float = 3.0, megabytes: float = 64):
    """Run ``call``, asserting it ends within ``seconds`` and allocates at most ``megabytes``
    through Python's allocators (NumPy and torch included); returns what it raised."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        call()
    except Exception as error:        # the caller checks the type and the message
        raised = error
    else:
        raised = None
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < seconds, f"{elapsed:.1f} s"
    assert peak < megabytes * 2 ** 20, f"peak {peak / 2 ** 20:.0f} MiB"
    return raised


# 1, 15: formats that skip the pixel limit; a result image too large for the metrics.

@pytest.mark.parametrize("content, expected", [
    (HDR_HEADER + b"\x00" * 64, "a Radiance HDR file, not one of the image formats read"),
    (b"PF\n16000 16000\n-1.0\n" + b"\x00" * 64, "a PFM file"),
    (b"GIF89a" + b"\x00" * 64, "a GIF file"),
    (b"just text, named like a photo", "not a readable image"),
])
def test_content_in_no_listed_format_is_refused_whatever_its_name(tmp_path, content, expected):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(content)
    for read in (read_rgb, lambda path: decode_index_image(path)):
        error = bounded(lambda read=read: read(str(photo)))
        assert isinstance(error, DatasetError) and expected in str(error)
        assert str(error).startswith(str(photo))


def test_a_listed_format_the_decoders_cannot_open_says_what_it_is(tmp_path):
    # A floating-point TIFF was "not a readable image (its header gives no size)".
    photo = tmp_path / "photo.tif"
    photo.write_bytes(cv2.imencode(".tiff", np.ones((8, 8, 3), np.float32))[1].tobytes())
    error = bounded(lambda: read_rgb(str(photo)))
    assert isinstance(error, DatasetError)
    assert str(error) == (f"{photo}: a TIFF file that Pillow cannot open (a kind it does not "
                          f"read, floating-point samples say, or damaged); save it as an 8-bit "
                          f"PNG or JPEG")


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_an_animation_or_pages_are_refused_not_read_as_their_first_frame(tmp_path, fmt):
    # An animated PNG or WebP, a multi-page TIFF: the decoders read the first frame, unsaid
    # (a TIFF whose first page is a thumbnail gave a try-on of the thumbnail).
    frames = [Image.new("RGB", (16, 24), colour) for colour in ("red", "blue", "green")]
    photo = tmp_path / f"photo.{fmt.lower()}"
    frames[0].save(photo, format=fmt, save_all=True, append_images=frames[1:])
    error = bounded(lambda: read_rgb(str(photo)))
    assert isinstance(error, DatasetError)
    assert str(error) == (f"{photo}: 3 frames (an animation or pages), of which one would be "
                          f"read; save that one alone")
    frames[0].save(photo, format=fmt)
    assert read_rgb(str(photo)).shape == (24, 16, 3)


def test_every_listed_format_is_still_read(tmp_path):
    image = (np.random.default_rng(0).random((24, 16, 3)) * 255).astype(np.uint8)
    for extension in (".jpg", ".png", ".bmp", ".webp", ".tif"):
        path = tmp_path / f"photo{extension}"
        path.write_bytes(cv2.imencode(extension, image)[1].tobytes())
        assert read_rgb(str(path)).shape == (24, 16, 3)


def test_the_metrics_read_through_the_same_reader(tmp_path):
    from utils.metrics.images import MetricsError, image_size, load_image
    result = tmp_path / "000000_0__000001_1.png"
    result.write_bytes(png_claiming(15000, 15000))
    for read in (load_image, image_size):
        error = bounded(lambda read=read: read(result))
        assert isinstance(error, MetricsError) and "225000000-pixel" in str(error)
    result.write_bytes(HDR_HEADER)
    assert "Radiance HDR" in str(bounded(lambda: load_image(result)))
    # A 16-bit grey file is scored as the model reads it, not clipped to white.
    grey = (np.random.default_rng(2).random((24, 16)) * 65535).astype(np.uint16)
    cv2.imwrite(str(result), grey)
    scored = load_image(result)
    assert scored.shape == (3, 24, 16)
    assert torch.equal(scored, torch.from_numpy(read_rgb(str(result)).copy()).permute(2, 0, 1))
    assert torch.equal(scored[0], torch.from_numpy((grey >> 8).astype(np.uint8)))
    # A cut-out person photo is scored over white, as test.py tries it on.
    pixels = np.full((24, 16, 4), 90, np.uint8)
    pixels[..., 3] = 255
    pixels[:, :6] = 0
    cv2.imwrite(str(result), pixels)
    scored = load_image(result)
    assert (scored[:, :, :6] == 255).all() and (scored[:, :, 6:] == 90).all()


# 2: a progressive JPEG of thousands of scans.

def test_a_jpeg_of_too_many_scans_is_refused_before_decoding(tmp_path):
    image = (np.random.default_rng(1).random((64, 48, 3)) * 255).astype(np.uint8)
    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    last_scan = data.rfind(b"\xff\xda")
    bomb = tmp_path / "scans.jpg"
    bomb.write_bytes(data[:last_scan] + data[last_scan:-2] * 5000 + data[-2:])
    error = bounded(lambda: read_rgb(str(bomb)), seconds=2)
    assert isinstance(error, DatasetError) and "JPEG of 5009 scans, more than the" in str(error)


# 3: checkpoints that claim more than they hold.

def test_expanded_tensors_claiming_a_huge_generator_are_refused(tmp_path):
    from models.generator import ResUnetGenerator
    from utils.checkpoint import CheckpointError, load_checkpoint_model
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in ResUnetGenerator(7, ngf=256).state_dict().items()}
    path = tmp_path / "gen_model_final.pth"
    torch.save({k: torch.zeros(1).expand(*shape) if len(shape) else torch.zeros(())
                for k, shape in shapes.items()}, path)
    assert path.stat().st_size < 200_000
    error = bounded(lambda: load_checkpoint_model(path, "gen"), seconds=10)
    assert isinstance(error, CheckpointError), error
    assert str(path) in str(error) and "storage holds 4 bytes" in str(error)


def test_an_edited_width_is_refused_before_the_model_is_built(tmp_path):
    from tests.small_models import small_models, stage4_checkpoint
    from utils.checkpoint import CheckpointError, load_checkpoint_model
    path = tmp_path / "final.pth"
    stage4_checkpoint(path, *small_models(0))
    data = torch.load(path, weights_only=True)
    data["config"]["ngf"] = 4096          # about 14 G parameters if it were built
    torch.save(data, path)
    error = bounded(lambda: load_checkpoint_model(path, "gen"), seconds=10)
    assert isinstance(error, CheckpointError), error
    # Refused by the architecture's own bound on the width, before shapes are compared.
    assert str(path) in str(error) and "--ngf 4096 is larger than" in str(error)


# 4, 5: keypoint JSON and DensePose arrays.

@pytest.mark.parametrize("content, expected", [
    ("[" * 200_000 + "]" * 200_000, "nested too deep"),
    ('{"people": [{"pose_keypoints_2d": [' + "7" * 5000 + "]}]}", "a number of 5000 digits"),
    (b'{"people": "\xe9"}', "not UTF-8 text"),
])
def test_hostile_keypoint_files_are_one_line(tmp_path, content, expected):
    from data.pose import PoseFileError, read_keypoints_file
    path = tmp_path / "000000_0_keypoints.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    error = bounded(lambda: read_keypoints_file(str(path)))
    assert isinstance(error, PoseFileError) and expected in str(error), error


def test_keypoint_files_that_are_devices_or_pipes_are_not_read(tmp_path):
    from data.pose import PoseFileError, read_keypoints_file
    link = tmp_path / "zero_keypoints.json"
    link.symlink_to("/dev/zero")
    fifo = tmp_path / "fifo_keypoints.json"
    os.mkfifo(fifo)
    for path in (link, fifo):
        error = bounded(lambda path=path: read_keypoints_file(str(path)))
        assert isinstance(error, PoseFileError) and "not a regular file" in str(error)


def test_a_npy_header_claiming_gigabytes_is_refused_before_allocation(tmp_path):
    from data.densepose import read_densepose
    for fortran in (False, True):
        header = io.BytesIO()
        np.lib.format.write_array_header_2_0(header, {"descr": "<f8", "fortran_order": fortran,
                                                      "shape": (100000, 100000)})
        path = tmp_path / "000000_0.npy"
        path.write_bytes(header.getvalue() + bytes(64))
        error = bounded(lambda path=path: read_densepose(str(path)))
        assert isinstance(error, DatasetError), error
        assert "claims shape (100000, 100000) float64" in str(error)


# 6: YAML configs.

@pytest.mark.parametrize("content, expected", [
    (b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     b"height: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n", "aliases ('*name') are not read"),
    (b"height: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deep"),
    (b"height: " + b"9" * 5000 + b"\n", "a number of 5000 digits"),
    (b"# caf\xe9\nheight: 256\n", "line 1: not UTF-8 text"),
    (b"name: [" + b"1, " * 30000 + b"1]\n", "a config file may take"),
])
def test_hostile_yaml_configs_are_one_line(tmp_path, content, expected):
    import argparse

    from options.config import ConfigError, read_yaml_config
    parser = argparse.ArgumentParser()
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--name", default="run")
    path = tmp_path / "run.yaml"
    path.write_bytes(content)
    # YAML is parsed in Python (some 30 KB a second): the 64 KB cap bounds the time.
    error = bounded(lambda: read_yaml_config(str(path), parser), seconds=10)
    assert isinstance(error, ConfigError) and expected in str(error), error
    assert "\n" not in str(error) and len(str(error)) < 400


# 7, 10: the garment-mask cache.

def test_the_mask_cache_follows_the_photos_content(tmp_path):
    from data.datasets import GarmentMasks
    masks = GarmentMasks(cache_dir=str(tmp_path / "cache"))
    first, second = (cv2.imencode(".png", np.full((8, 8, 3), v, np.uint8))[1].tobytes()
                     for v in (10, 200))
    photo = tmp_path / "x.jpg"
    photo.write_bytes(first)
    before = masks.cache_path(str(photo))
    photo.write_bytes(second)                       # same name, same size, another picture
    assert masks.cache_path(str(photo)) != before
    other = tmp_path / "x.png"                       # same stem, same folder
    other.write_bytes(first)
    assert masks.cache_path(str(other)) == before   # same bytes: the same mask is right
    photo.write_bytes(first + b"\x00")
    assert masks.cache_path(str(photo)) != masks.cache_path(str(other))


def test_an_unwritable_mask_cache_is_said_once_and_masks_still_come(tmp_path, capsys):
    from data.datasets import GarmentMasks
    from data.samples import GarmentFiles
    from data.synthetic import make_dataset
    root = make_dataset(str(tmp_path / "data"), num_train=0, num_test=1, seed=3, height=64,
                        width=48)["test"]
    garment_path = os.path.join(root, "test_clothes", sorted(os.listdir(
        os.path.join(root, "test_clothes")))[0])
    blocker = tmp_path / "home_file"
    blocker.write_text("a file where the cache folder would be")
    masks = GarmentMasks(cache_dir=str(blocker / "cache"))
    garment = GarmentFiles(id="garment", image=garment_path, mask=None)
    photo = read_rgb(garment_path)
    for _ in range(2):
        mask = masks.read(garment, photo)
        assert mask.shape == photo.shape[:2] and mask.any()
    assert capsys.readouterr().err.count("cannot write the garment-mask cache") == 1


# 8: result names.

@pytest.mark.parametrize("people", [("a/000000_0.jpg", "b/000000_0.jpg"),
                                    ("000001_0.jpg", "000001_0.png")])
def test_pairs_whose_results_would_share_a_name_are_refused(people):
    from common.results import OutputError, check_unique_result_names
    with pytest.raises(OutputError, match=r"would both write 000\d+_0__000002_1\.png"):
        check_unique_result_names([(people[0], "000002_1.jpg"), (people[1], "000002_1.jpg")])
    check_unique_result_names([(people[0], "000002_1.jpg"), (people[0], "000003_1.jpg")])


def test_a_pair_listed_twice_is_refused():
    # Written once and scored twice before: its score counted double.
    from common.results import OutputError, check_unique_result_names
    pairs = [("000000_0.jpg", "000001_1.jpg"), ("000002_0.jpg", "000001_1.jpg"),
             ("000000_0.jpg", "000001_1.jpg")]
    with pytest.raises(OutputError, match=r"\(000000_0\.jpg, 000001_1\.jpg\) is listed twice"):
        check_unique_result_names(pairs)


# 9: two runs on one folder.

def test_a_second_run_on_a_held_folder_is_refused_and_a_dead_runs_lock_taken_over(tmp_path):
    from utils.training.run_lock import LOCK_NAME, RunFolderBusy, run_folder_lock
    run = tmp_path / "runs" / "pb_warp"
    with run_folder_lock(run) as note:
        assert note == "" and (run / LOCK_NAME).is_file()
        with pytest.raises(RunFolderBusy, match=f"in use by another training run \\(pid "
                                                 f"{os.getpid()}"):
            with run_folder_lock(run):
                pass
    assert not (run / LOCK_NAME).exists()
    (run / LOCK_NAME).write_text("pid 999999 on elsewhere since 2020-01-01 00:00:00")
    with run_folder_lock(run) as note:              # its writer died: no one holds the lock
        assert "took over run.lock left by a run that is no longer alive (pid 999999" in note


def test_a_second_process_on_a_held_folder_exits_with_one_line(tmp_path):
    import subprocess
    import sys

    from utils.training.run_lock import run_folder_lock
    run = tmp_path / "run"
    code = ("import sys; from pathlib import Path; from common.errors import exit_on_user_error;"
            "from utils.training.run_lock import run_folder_lock\n"
            "with exit_on_user_error():\n"
            f"    with run_folder_lock(Path({str(run)!r})): pass\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with run_folder_lock(run):
        second = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                                text=True, timeout=60)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert second.stderr.startswith("error: ") and "in use by another training run" in \
        second.stderr


# 11: the web server's request bodies and upload folder.

def test_oversized_request_bodies_are_refused_and_uploads_pruned(tmp_path):
    pytest.importorskip("starlette")
    from scripts.serve import RequestBounds, prune_folder
    reached = []

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        reached.append(scope["path"])

    sent = []

    async def send(message):
        sent.append(message)

    def call(path, declared, chunks):
        async def receive():
            body = chunks.pop(0) if chunks else b""
            return {"type": "http.request", "body": body, "more_body": bool(chunks)}
        scope = {"type": "http", "path": path,
                 "headers": [(b"content-length", str(declared).encode())]}
        bounds = RequestBounds(app, max_body=1000, folder=str(tmp_path), max_folder_bytes=300)
        asyncio.run(bounds(scope, receive, send))

    call("/gradio_api/queue/join", 300 * 2 ** 20, [b"{}"])
    assert sent[0]["status"] == 413 and not reached
    with pytest.raises(Exception, match="request body over 1000 bytes"):
        call("/gradio_api/queue/join", 10, [b"x" * 600, b"x" * 600])   # a lying length
    for age, name in enumerate(("old", "middle", "new")):
        (tmp_path / name).write_bytes(bytes(200))
        os.utime(tmp_path / name, (1000 + age, 1000 + age))
    call("/gradio_api/upload", 10, [b"x" * 10])
    assert sorted(os.listdir(tmp_path)) == ["new"] and reached[-1] == "/gradio_api/upload"
    assert prune_folder(str(tmp_path), 10) == 1


# 12, 13: pairs files.

def test_hostile_pairs_files_are_one_short_line(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_bytes(b"000000_0.jpg 000001_1.jpg\n000002_0.jpg \xff.jpg\n")
    with pytest.raises(DatasetError, match=r"pairs\.txt, line 2: not UTF-8 text \(byte 0xff"):
        read_pairs(str(path))
    path.write_bytes(b"x" * 5_000_000 + b"\n")
    with pytest.raises(DatasetError) as info:
        read_pairs(str(path))
    assert len(str(info.value)) < 300 and "more characters" in str(info.value)
    path.write_bytes("\ufeff000000_0.jpg 000001_1.jpg\n".encode())
    assert read_pairs(str(path)) == [("000000_0.jpg", "000001_1.jpg")]
    # A NUL inside a name was printed raw: the message named a file that exists.
    path.write_bytes(b"000000_0.jpg 000001_1.jpg\x00.png\r\n")
    with pytest.raises(DatasetError, match=r"pairs\.txt, line 1: a control character in "
                                           r"'000000_0\.jpg 000001_1\.jpg\\x00\.png'"):
        read_pairs(str(path))
    path.write_bytes("000000_0.jpg\t00000é_1.jpg\r\n".encode())    # tab and CRLF: whitespace
    assert read_pairs(str(path)) == [("000000_0.jpg", "00000é_1.jpg")]
    path.write_bytes(b"a b\n" * 5_000_000)                 # 20 MB
    error = bounded(lambda: read_pairs(str(path)))
    assert isinstance(error, DatasetError) and "a pairs file may take" in str(error)


def test_pairs_of_utf8_names_read_under_an_ascii_locale(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "pairs.txt"
    path.write_text("personne_é.jpg vêtement_ü.jpg\n", encoding="utf-8")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f"from data.files import read_pairs; pairs = read_pairs({str(path)!r}); "
            f"assert pairs == [('personne_\\xe9.jpg', 'v\\xeatement_\\xfc.jpg')], pairs")
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0")
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_loader_workers_dataset_error_stays_one_line():
    from torch.utils.data import DataLoader

    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, index):
            raise DatasetError("/etc/passwd: not a readable image")

    with pytest.raises(DatasetError) as info:
        next(iter(DataLoader(Broken(), num_workers=1)))
    assert str(info.value) == "/etc/passwd: not a readable image"


# 14: a disk that fills while a checkpoint is written.

def fill_the_disk_under(folder, monkeypatch):
    """Every file opened for writing under ``folder`` is /dev/full (writes fail: no space)."""
    real_open = open

    def full_disk(path, mode="r", *args, **kwargs):
        if "w" in mode and str(path).startswith(str(folder)):
            return real_open("/dev/full", mode, *args, **kwargs)
        return real_open(path, mode, *args, **kwargs)
    monkeypatch.setattr("builtins.open", full_disk)


def test_a_checkpoint_write_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path,
                                                                         monkeypatch):
    import utils.checkpoint
    from utils.checkpoint import CheckpointError, save_atomic
    target = tmp_path / "latest.pth"
    target.write_bytes(b"the previous checkpoint")
    fill_the_disk_under(tmp_path, monkeypatch)
    with pytest.raises(CheckpointError, match="cannot write .*latest.pth.*No space left"):
        save_atomic({"weights": torch.zeros(100_000)}, target)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["latest.pth"]
    assert target.read_bytes() == b"the previous checkpoint"
    assert utils.checkpoint.save_atomic is save_atomic


def test_config_and_log_writes_on_a_full_disk_are_one_line(tmp_path, monkeypatch, capsys):
    from options.config import ConfigError, write_config
    from utils.logging_utils import close_run_logger, open_run_logger
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    target = tmp_path / "config.yaml"
    target.write_text("the previous run's config\n")
    fill_the_disk_under(tmp_path, monkeypatch)
    with pytest.raises(ConfigError, match="cannot write .*config.yaml .No space left"):
        write_config(argparse.Namespace(height=64), target)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["config.yaml"]
    assert target.read_text() == "the previous run's config\n"
    # train.log on a full disk: said once, the lines go on on the console, no traceback.
    logger = open_run_logger(Path("/dev/full"), is_main=True)
    for step in range(3):
        logger.info(f"step {step}")
    close_run_logger(logger)
    console = capsys.readouterr().err
    assert console.count("cannot write /dev/full (No space left on device)") == 1, console
    assert "step 2" in console and "Traceback" not in console and "Logging error" not in console


def test_non_ascii_names_print_under_an_ascii_locale(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "donn\u00e9es"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0")
    env.pop("PYTHONIOENCODING", None)
    done = subprocess.run([sys.executable, "scripts/make_synthetic_data.py", "--out", str(out),
                           "--num_train", "1", "--num_test", "1", "--height", "64", "--width",
                           "48", "--workers", "1"], cwd=root, env=env, capture_output=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout.startswith(b"wrote 1 training") and b"donn\\udcc3\\udca9es" in done.stdout
    assert (out / "VITON_traindata").is_dir() and (out / "VITON_test").is_dir()


def test_images_are_written_under_names_that_are_not_utf8(tmp_path):
    # cv2.imwrite ends the process (a segmentation fault) on such a path.
    from common.images import write_image as write_atomically  # as the garment-mask cache
    from data.synthetic.writing import write_image
    folder = tmp_path / os.fsdecode(b"caf\xe9")
    folder.mkdir()
    write_atomically(str(folder / "mask.png"), np.full((4, 6), 255, np.uint8))
    write_image(str(folder / "photo.jpg"), np.zeros((4, 6, 3), np.uint8))
    mask = cv2.imdecode(np.frombuffer((folder / "mask.png").read_bytes(), np.uint8), 0)
    photo = cv2.imdecode(np.frombuffer((folder / "photo.jpg").read_bytes(), np.uint8), 1)
    assert mask.shape == (4, 6) and mask.min() == 255 and photo.shape == (4, 6, 3)


# 16: maps far smaller than their photo.

def test_a_label_map_far_smaller_than_its_photo_is_refused():
    from data.datasets import _check_map_size
    with pytest.raises(DatasetError, match=r"size 1x1 is far smaller than the person photo"):
        _check_map_size(np.zeros((1, 1), np.uint8), "label.png", "photo.jpg", (64, 64))
    _check_map_size(np.zeros((32, 24), np.uint8), "label.png", "photo.jpg", (256, 192))


def test_a_mask_cache_that_is_a_file_is_refused(tmp_path):
    # It warned and computed every mask again, each run, without keeping one.
    from data.datasets import DataOptions
    cache = tmp_path / "masks.png"
    cache.write_bytes(b"not a folder")
    with pytest.raises(DatasetError, match=r"--mask_cache .*masks\.png: a file, not a folder"):
        DataOptions.from_config(argparse.Namespace(mask_cache=str(cache)))
    assert DataOptions.from_config(argparse.Namespace(mask_cache=str(tmp_path))).mask_cache


def test_a_link_that_leads_nowhere_is_named_as_one_not_as_missing(tmp_path):
    # A folder or checkpoint that is a link to itself was reported "missing" / "not found",
    # though it stands there (ls lists it).
    from common.errors import missing
    from data.synthetic import make_dataset
    from data.viton import train_samples
    from utils.checkpoint import CheckpointError, read_checkpoint
    root = Path(make_dataset(str(tmp_path / "data"), num_train=1, num_test=0, seed=3, height=64,
                             width=48)["train"])
    images = root / "train_img"
    images.rename(tmp_path / "elsewhere")
    images.symlink_to(images.name)
    with pytest.raises(DatasetError, match=f"{images}: a link that leads to no folder .a loop, "
                                           f"or its target is gone. .expected in {root}"):
        train_samples(str(root))
    checkpoint = tmp_path / "final.pth"
    checkpoint.symlink_to(tmp_path / "gone.pth")
    with pytest.raises(CheckpointError, match=f"--checkpoint: {checkpoint}: a link that leads to "
                                              f"no file"):
        read_checkpoint(checkpoint, "--checkpoint")
    assert missing(tmp_path / "nothing") == "missing folder"


def test_an_optional_folder_that_is_a_dead_link_or_a_file_is_named(tmp_path):
    """It was taken for no folder: training used a stand-in for the DensePose, test.py
    computed masks instead of the user's, and data.check said OK."""
    from data.synthetic import make_dataset
    from data.viton import test_pairs, train_samples
    made = make_dataset(str(tmp_path / "data"), num_train=1, num_test=1, seed=3, height=64,
                        width=48)
    train, test = Path(made["train"]), Path(made["test"])
    densepose = train / "train_densepose"
    densepose.rename(tmp_path / "moved")
    densepose.symlink_to(tmp_path / "gone")
    with pytest.raises(DatasetError, match=f"{densepose}: a link that leads to no folder"):
        train_samples(str(train))
    densepose.unlink()
    assert train_samples(str(train))          # no folder at all: the layout allows it
    edge = test / "test_edge"
    shutil.rmtree(edge)
    edge.write_text("")
    with pytest.raises(DatasetError, match=f"{edge}: a file where the layout has a folder"):
        test_pairs(str(test), "paired")


def test_a_tiff_of_floating_point_samples_is_named_as_such(tmp_path, capfd):
    """Pillow reads it (its header gives a size), OpenCV does not decode it: 'not a readable
    image' said neither why nor what to do, under an OpenCV warning line."""
    path = tmp_path / "depth.tif"
    Image.fromarray(np.linspace(0, 1, 48 * 64, dtype=np.float32).reshape(48, 64)).save(path)
    with pytest.raises(DatasetError, match=r"depth\.tif: not a readable image \(a TIFF of 32-bit "
                                           r"samples, integer or floating-point"):
        read_rgb(str(path))
    assert "WARN" not in capfd.readouterr().err
    # An 8-bit TIFF cut short is damaged, not of samples too wide; OpenCV's lines stay quiet.
    cut = tmp_path / "cut.tif"
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(cut)
    cut.write_bytes(cut.read_bytes()[:len(cut.read_bytes()) // 2])
    with pytest.raises(DatasetError) as refused:
        read_rgb(str(cut))
    assert "cut.tif" in str(refused.value) and "32-bit" not in str(refused.value)
    err = capfd.readouterr().err
    assert "WARN" not in err and "ERROR" not in err
