"""The try-on web page (scripts/serve.py): the request function on good and bad input, and the
page itself, served by a real server process and driven in a headless Chromium.

    PFAFN_SCREENSHOT=docs/images/web_page.png python -m pytest tests/test_serve.py -k browser

also saves a screenshot of the page after a successful try-on (downscaled, quantised), taken
with the demo's student (demo_out/runs/pf_gen/final.pth) when it exists; PFAFN_SERVE_ARGS
replaces the model flags of the served page (e.g. "--warp_checkpoint W --gen_checkpoint G").
"""

import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.synthetic import make_dataset
from scripts import serve
from tests.small_models import small_models, stage4_checkpoint
from utils.inference import precision
from utils.inference.model import load_tryon_model

ROOT = Path(__file__).resolve().parents[1]
DEMO_CHECKPOINT = ROOT / "demo_out" / "runs" / "pf_gen" / "final.pth"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
INSTALL_CHROMIUM = ("install Debian's Chromium (as root: apt-get install chromium; "
                    "scripts/test.sh does it when run as root) or set PFAFN_CHROMIUM to a "
                    "Chromium binary")
PERSON_SIZE = (256, 232)      # (h, w): not the 3:4 of the model's frame
SCREENSHOT_WIDTH = 1000
SCREENSHOT_MAX_BYTES = 150_000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A stage-4 checkpoint of random narrow networks at 64x64."""
    return stage4_checkpoint(tmp_path_factory.mktemp("model") / "final.pth", *small_models(0))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Synthetic photos as a user would upload them: a person photo of PERSON_SIZE (the
    synthetic 256x192 photo widened with its border colour), a second person photo, a product
    photo of a garment on white with its mask, a text file, a blank product photo; and the test
    folder they come from (for the page's examples)."""
    out = tmp_path_factory.mktemp("photos")
    roots = make_dataset(str(out / "data"), num_train=0, num_test=3, seed=3, height=256,
                         width=192)
    test_root = Path(roots["test"])
    files = {"test_root": test_root}
    for key, index in (("person", 0), ("person_b", 1)):
        photo = np.asarray(Image.open(test_root / "test_img" / f"00000{index}_0.jpg").convert(
            "RGB"))
        border = np.median(np.concatenate([photo[:, 0], photo[:, -1]]), axis=0).astype(np.uint8)
        height, width = PERSON_SIZE
        widened = np.empty((height, width, 3), np.uint8)
        widened[:] = border
        left = (width - photo.shape[1]) // 2
        widened[:, left:left + photo.shape[1]] = photo
        files[key] = out / f"me_{key}.jpg"
        Image.fromarray(widened).save(files[key], quality=95)
    files["garment"] = out / "shirt.png"
    Image.open(test_root / "test_clothes" / "000002_1.jpg").convert("RGB").save(files["garment"])
    files["mask"] = out / "shirt_mask.png"
    Image.open(test_root / "test_edge" / "000002_1.jpg").convert("L").save(files["mask"])
    files["small_mask"] = out / "small_mask.png"
    Image.open(files["mask"]).resize((50, 40)).save(files["small_mask"])
    files["text"] = out / "notes.txt"
    files["text"].write_text("a shopping list, not a photo\n")
    files["blank"] = out / "blank.png"
    Image.new("RGB", (120, 160), (250, 250, 250)).save(files["blank"])
    return files


# ---------------------------------------------------------------------------------------------
# The request function, without a browser


def _plain(markdown: str) -> str:
    """The text of the page's Markdown (serve.as_markdown undone)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def _page(checkpoint, tmp_path, **limits):
    model = load_tryon_model(str(checkpoint), str(checkpoint), "cpu")
    limits = serve.UploadLimits(**{"max_bytes": 20 * serve.MEGABYTE, "max_pixels": 40_000_000,
                                   **limits})
    return serve.TryOnPage(model=model, results_dir=str(tmp_path), limits=limits)


def test_a_good_request_gives_the_try_on_at_the_person_photo_size(checkpoint, photos, tmp_path):
    page = _page(checkpoint, tmp_path)
    person = np.asarray(Image.open(photos["person"]).convert("RGB"))
    outputs = serve.respond(page, str(photos["person"]), str(photos["garment"]), None, "crop")
    tryon, frames, download = outputs[0], outputs[1:-2], outputs[-2]
    status = _plain(outputs[-1])
    assert tryon.shape == person.shape == PERSON_SIZE + (3,)
    # The 64x64 frame is square: crop fits the centred 232x232 window (rows 12..243); the rows
    # outside it are the photo's own pixels.
    assert np.array_equal(tryon[:12], person[:12]) and np.array_equal(tryon[244:], person[244:])
    assert not np.array_equal(tryon[12:244], person[12:244])
    saved = np.asarray(Image.open(download))
    assert np.array_equal(saved, tryon)
    assert Path(download).name == "me_person__shirt.png"
    assert Path(download).resolve().is_relative_to(tmp_path.resolve())
    assert [frame.shape for frame in frames] == [(64, 64, 3)] * 3 + [(64, 64)]
    assert status.startswith("Try-on of me_person.jpg with shirt.png: 256×232")   # H x W
    assert "garment mask computed from the garment photo shirt.png" in status


def test_an_uploaded_mask_is_used_instead_of_a_computed_one(checkpoint, photos, tmp_path):
    page = _page(checkpoint, tmp_path)
    with_mask = page.run(str(photos["person"]), str(photos["garment"]), str(photos["mask"]))
    assert with_mask.notes == []
    # The garment as the model sees it is the photo on white outside the given mask: with a
    # mask of the garment's left half only, the right half is white.
    half = np.asarray(Image.open(photos["mask"])).copy()
    half[:, half.shape[1] // 2:] = 0
    half_path = tmp_path / "half_mask.png"
    Image.fromarray(half).save(half_path)
    halved = page.run(str(photos["person"]), str(photos["garment"]), str(half_path))
    assert (halved.frame["garment"][:, 36:] == 255).all()
    assert not (with_mask.frame["garment"][:, 36:] == 255).all()


@pytest.mark.parametrize("case, message", [
    ("no person", "Upload a person photo."),
    ("text as person", "The person photo notes.txt: not a readable image; upload a JPEG, PNG"),
    ("text as garment", "The garment photo notes.txt: not a readable image"),
    ("text as mask", "The garment mask notes.txt: not a readable image"),
    ("blank garment", "garment photo blank.png: no garment found"),
    ("mask of another size", "garment mask small_mask.png is 50x40 but the garment photo "
                             "shirt.png is"),
    ("file too large", "MB; this server takes files of at most"),
    ("too many pixels", "this server takes images of at most 0.05 megapixels"),
])
def test_bad_input_gives_a_message_and_no_images(checkpoint, photos, tmp_path, monkeypatch,
                                                 case, message):
    limits = {"file too large": {"max_bytes": 5000},
              "too many pixels": {"max_pixels": 50_000}}.get(case, {})
    page = _page(checkpoint, tmp_path, **limits)
    person, garment, mask = str(photos["person"]), str(photos["garment"]), None
    if case == "no person":
        person = None
    elif case == "text as person":
        person = str(photos["text"])
    elif case == "text as garment":
        garment = str(photos["text"])
    elif case == "text as mask":
        mask = str(photos["text"])
    elif case == "blank garment":
        garment = str(photos["blank"])
    elif case == "mask of another size":
        mask = str(photos["small_mask"])
    elif case == "too many pixels":
        # The size is read from the header: an oversized image is never decoded.
        def no_decoding(path):
            raise AssertionError(f"{path} was decoded")
        monkeypatch.setattr(serve, "read_rgb", no_decoding)
    outputs = serve.respond(page, person, garment, mask, "pad")
    status = _plain(outputs[-1])
    assert status.startswith("**Could not try on:**") and message in status, status
    assert all(output is None for output in outputs[:-1])
    assert list(tmp_path.iterdir()) == []       # nothing written
    if case == "blank garment":
        assert "upload the garment's mask under 'Garment mask'" in status
    # The message names the upload by its own name, not by the folder it was uploaded to.
    assert str(photos["person"].parent) not in status


def test_file_names_are_shown_as_text_not_as_markdown(checkpoint, photos, tmp_path):
    page = _page(checkpoint, tmp_path / "results")
    odd = tmp_path / "my *best* [photo](x).jpg"
    shutil.copyfile(photos["person"], odd)
    status = serve.respond(page, str(odd), str(photos["garment"]), None, "pad")[-1]
    assert r"Try-on of my \*best\* \[photo\]\(x\).jpg with shirt.png" in status
    odd.write_text("not a photo")
    status = serve.respond(page, str(odd), str(photos["garment"]), None, "pad")[-1]
    assert r"The person photo my \*best\* \[photo\]\(x\).jpg: not a readable image" in status


def test_requests_run_the_model_one_at_a_time(checkpoint, photos, tmp_path):
    page = _page(checkpoint, tmp_path)
    inner, running, overlaps = page.model, [0], []

    class Watched:
        def __init__(self):
            self.height, self.width, self.device = inner.height, inner.width, inner.device
            self.rounding = inner.rounding

        def __call__(self, *inputs):
            running[0] += 1
            overlaps.append(running[0])
            time.sleep(0.2)
            running[0] -= 1
            return inner(*inputs)

    page.model = Watched()
    outcomes = []

    def request():
        outcomes.append(page.run(str(photos["person"]), str(photos["garment"]),
                                 str(photos["mask"])))

    threads = [threading.Thread(target=request) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [1, 1, 1]
    assert len(outcomes) == 3 and all(o.tryon.ndim == 3 for o in outcomes)


def test_a_missing_checkpoint_stops_the_server_at_start(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        serve.main(["--checkpoint", str(tmp_path / "missing.pth"), "--device", "cpu"])
    assert stop.value.code == 2
    assert re.search(r"--warp_checkpoint: file not found: .*missing\.pth",
                     capsys.readouterr().err)


# ---------------------------------------------------------------------------------------------
# The page in a browser


def _chromium() -> str:
    """The browser's executable, or a skip saying what to install."""
    for module, what in (("gradio", "requirements-serve.txt"),
                         ("playwright", "requirements-test.txt")):
        try:
            __import__(module)
        except ImportError:
            pytest.skip(f"the browser test needs {module}: pip install -r {what}")
    candidates = [os.environ.get("PFAFN_CHROMIUM"), shutil.which("chromium"),
                  "/usr/bin/chromium", shutil.which("chromium-browser")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    pytest.skip(f"the browser test needs Chromium, which is not installed: {INSTALL_CHROMIUM}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """scripts/serve.py in a process of its own; its output is collected line by line."""

    def __init__(self, args: list):
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "serve.py"), *args], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.lines: list = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def log(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s; "
                                     f"output so far:\n{self.log()}") from None
            if line is None:
                raise AssertionError(f"the server exited ({self.process.wait()}) before "
                                     f"printing {pattern!r}:\n{self.log()}")
            match = re.search(pattern, line)
            if match:
                return match

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def _upload(page, key: str, path: Path) -> None:
    """Put ``path`` into an upload box of the page as a user does: clear it, then choose."""
    clear = page.locator(f"#{key}-upload button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.locator(f"#{key}-upload input[type=file]").set_input_files(str(path))


def _wait_for_text(page, selector: str, text: str, timeout_s: float) -> None:
    page.wait_for_function(
        "([selector, text]) => (document.querySelector(selector)?.innerText || '')"
        ".includes(text)", arg=[selector, text], timeout=timeout_s * 1000)


def _try_on(page, names: str, timeout_s: float) -> float:
    """Press Try on and wait for the result that the status names by ``names`` (the person
    photo's, or 'person with garment'); returns the seconds."""
    start = time.perf_counter()
    page.click("#tryon-button")
    _wait_for_text(page, "#status", f"Try-on of {names}", timeout_s)
    return time.perf_counter() - start


def _result_size(page, expected_size: tuple) -> tuple:
    """(w, h) of the shown try-on once it has ``expected_size``, else of whatever is shown."""
    script = ("([w, h]) => { const img = document.querySelector('#tryon img');"
              " return img && img.complete && img.naturalWidth === w"
              " && img.naturalHeight === h; }")
    try:
        page.wait_for_function(script, arg=list(expected_size), timeout=10_000)
    except Exception:
        pass
    return tuple(page.locator("#tryon img").evaluate("img => [img.naturalWidth, "
                                                     "img.naturalHeight]"))


def _downloaded(page) -> tuple:
    """(file path on the server, decoded image) of the page's download link."""
    link = page.locator("#download a[download]")
    href = link.get_attribute("href")
    response = page.request.get(href)
    assert response.ok, f"GET {href}: {response.status}"
    path = urllib.parse.unquote(href.split("file=", 1)[1])
    return path, Image.open(BytesIO(response.body()))


def _save_screenshot(page, target: Path) -> None:
    """A full-page PNG of at most SCREENSHOT_MAX_BYTES for the README: downscaled, then
    quantised to fewer colours until it fits."""
    shot = Image.open(BytesIO(page.screenshot(full_page=True))).convert("RGB")
    if shot.width > SCREENSHOT_WIDTH:
        shot = shot.resize((SCREENSHOT_WIDTH, round(shot.height * SCREENSHOT_WIDTH
                                                    / shot.width)), Image.LANCZOS)
    target.parent.mkdir(parents=True, exist_ok=True)
    for colours in (256, 128, 64, 32):
        buffer = BytesIO()
        shot.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            buffer, format="PNG", optimize=True)
        if buffer.tell() <= SCREENSHOT_MAX_BYTES:
            break
    target.write_bytes(buffer.getvalue())


def test_browser_uploads_get_a_try_on_and_bad_files_a_message(checkpoint, photos, tmp_path):
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    screenshot = os.environ.get("PFAFN_SCREENSHOT")
    model_args = ["--checkpoint", str(checkpoint)]
    if os.environ.get("PFAFN_SERVE_ARGS"):
        model_args = shlex.split(os.environ["PFAFN_SERVE_ARGS"])
    elif screenshot and DEMO_CHECKPOINT.is_file():
        model_args = ["--checkpoint", str(DEMO_CHECKPOINT)]
    server = Server(model_args + ["--device", "cpu", "--port", str(_free_port()),
                                  "--dataroot", str(photos["test_root"]), "--num_examples", "3"])
    try:
        url = server.wait_for(r"Try-on page: (\S+)", timeout=90).group(1)
        # The default format, chosen without timing, says why; the time shown is a median.
        expected = precision.default_precision("cpu")
        assert f", precision {expected[0]} ({expected[1]})" in server.log(), server.log()
        assert re.search(r"about \d+\.\d\d s per try-on \(median of 5 at start-up\)",
                         server.log()), server.log()
        workdir = Path(server.wait_for(r"kept in (\S+) while", timeout=5).group(1))
        assert workdir.is_dir()
        big = tmp_path / "huge.png"
        # Over the default --max_upload_mb of 20.
        big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(21 * 1024 * 1024))
        person_size = PERSON_SIZE[::-1]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=executable, headless=True,
                args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 1000})
            try:
                page = browser.new_page()
                page.goto(url)
                page.wait_for_selector("#tryon-button", timeout=30_000)

                # A person photo of another aspect than 3:4 and a product photo.
                _upload(page, "person", photos["person"])
                _upload(page, "garment", photos["garment"])
                page.wait_for_selector("#person-preview img", timeout=30_000)
                page.wait_for_selector("#garment-preview img", timeout=30_000)
                seconds = _try_on(page, "me_person.jpg", timeout_s=120)
                print(f"\nclick to result: {seconds:.2f} s; "
                      f"{page.locator('#status').inner_text().splitlines()[0]}")
                assert _result_size(page, person_size) == person_size
                path, image = _downloaded(page)
                assert image.size == person_size and image.format == "PNG"
                assert Path(path).resolve().is_relative_to(workdir.resolve())
                if screenshot:
                    _save_screenshot(page, ROOT / screenshot)

                # A text file as the person photo: a message at the upload and on Try on.
                _upload(page, "person", photos["text"])
                _wait_for_text(page, "#person-message", "notes.txt: not a readable image", 30)
                page.click("#tryon-button")
                _wait_for_text(page, "#status", "notes.txt: not a readable image", 30)
                assert page.locator("#tryon img").count() == 0
                assert server.process.poll() is None

                # A file over --max_upload_mb: Gradio refuses it with a message.
                start = time.perf_counter()
                _upload(page, "mask", big)
                _wait_for_text(page, "body", "huge.png", 30)
                assert "exceed the maximum allowed size" in page.locator("body").inner_text()
                print(f"refusing a 21 MB upload: {time.perf_counter() - start:.2f} s")

                # The server still serves: another person photo.
                _upload(page, "person", photos["person_b"])
                page.wait_for_selector("#person-preview img", timeout=30_000)
                _try_on(page, "me_person_b.jpg", timeout_s=120)
                assert _result_size(page, person_size) == person_size

                # The first example fills the three uploads with the first unpaired pair and
                # its mask file (so no mask is computed); its result has its person's size.
                person_name, garment_name = (photos["test_root"] / "test_pairs.txt"
                                             ).read_text().split()[:2]
                page.locator("#examples img").first.click()
                _wait_for_text(page, "#person-upload", Path(person_name).stem, 30)
                _try_on(page, f"{person_name} with {garment_name}", timeout_s=120)
                assert "garment mask computed" not in page.locator("#status").inner_text()
                assert _result_size(page, (192, 256)) == (192, 256)
            finally:
                browser.close()
        assert server.process.poll() is None, server.log()
    finally:
        code = server.stop()
    assert code == 0, server.log()
    assert not workdir.exists(), f"{workdir} was not removed at exit"
