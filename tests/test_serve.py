"""The try-on web page (scripts/serve.py): the request function on good and bad input, the
mask check and the examples, and the page itself, served by a real server process and driven
in a headless Chromium at a desktop's 1280x900 and a phone's 390x844 (with the functions of
scripts/screenshots.py, which regenerates the docs' screenshots). PFAFN_SERVE_ARGS replaces the
model flags of the served page (e.g. "--warp_checkpoint W --gen_checkpoint G").
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
from PIL import Image, ImageFilter

from data.synthetic import make_dataset
from scripts import screenshots, serve
from tests.small_models import small_models, stage4_checkpoint
from utils.inference import precision
from utils.inference.model import load_tryon_model

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = screenshots.CHROMIUM_FLAGS
INSTALL_CHROMIUM = ("install Debian's Chromium (as root: apt-get install chromium; "
                    "scripts/test.sh does it when run as root) or set PFAFN_CHROMIUM to a "
                    "Chromium binary")
PERSON_SIZE = (256, 232)      # (h, w): not the 3:4 of the model's frame
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


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
    files["fake_jpeg"] = out / "notes.jpg"
    files["fake_jpeg"].write_text("a shopping list, not a photo\n")
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
    ("mask of another size", "garment mask small_mask.png is 40x50 but the garment photo "
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
        assert "upload the garment's mask under 'Advanced'" in status
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


def test_a_photo_or_an_inverted_mask_is_not_taken_for_a_mask(photos, tmp_path):
    limits = serve.UploadLimits(max_bytes=20 * serve.MEGABYTE, max_pixels=40_000_000)
    mask = np.asarray(Image.open(photos["mask"]))
    assert serve.mask_problem(mask) is None
    # A mask saved as a JPEG keeps its grey outline: still a mask.
    jpeg = tmp_path / "mask.jpg"
    Image.fromarray(mask).save(jpeg, quality=60)
    assert serve.upload_problem(str(jpeg), "mask", limits) == ""
    photo = np.asarray(Image.open(photos["garment"]).convert("L"))
    assert "pixels are grey, neither black nor white" in serve.mask_problem(photo)
    # A dark garment on white, or an inverted mask: near-binary, but white around it.
    assert "its border is mostly white" in serve.mask_problem(255 - mask)
    problem = serve.upload_problem(str(photos["garment"]), "mask", limits)
    assert problem.startswith("The garment mask shirt.png does not look like a mask: ")
    assert serve.upload_problem(str(photos["garment"]), "garment", limits) == ""
    assert "notes.txt: not a readable image" in serve.upload_problem(
        str(photos["text"]), "person", limits)


def test_a_cut_out_upload_is_read_over_white(tmp_path):
    # The colours under a person photo's transparent pixels were what the model saw.
    limits = serve.UploadLimits(max_bytes=20 * serve.MEGABYTE, max_pixels=40_000_000)
    pixels = np.full((40, 30, 4), 90, np.uint8)
    pixels[..., 3] = 255
    pixels[:, :10] = 0
    Image.fromarray(pixels).save(tmp_path / "me.png")
    photo = serve.read_upload(str(tmp_path / "me.png"), "person photo", limits)
    assert (photo[:, :10] == 255).all() and (photo[:, 10:] == 90).all()


def test_a_cut_out_garment_gives_the_try_on_test_py_gives(checkpoint, photos, tmp_path):
    # The page read the garment over white, test.py its own colours: the half-transparent
    # pixels at its outline differed.
    import test as test_script

    garment = np.asarray(Image.open(photos["garment"]).convert("RGB")).copy()
    mask = np.asarray(Image.open(photos["mask"]).convert("L")) > 127
    alpha = np.where(mask, 255, 0).astype(np.uint8)
    outline = mask & ~np.asarray(Image.fromarray(mask).filter(ImageFilter.MinFilter(5)))
    alpha[outline] = 140
    garment[outline] = (200, 30, 30)
    garment[~mask] = (0, 255, 0)            # hidden colours: never the garment's
    Image.fromarray(np.dstack([garment, alpha])).save(tmp_path / "cut_out.png")
    page = _page(checkpoint, tmp_path)
    shown = page.run(str(photos["person"]), str(tmp_path / "cut_out.png")).tryon
    test_script.main(["--person", str(photos["person"]), "--garment", str(tmp_path / "cut_out.png"),
                      "--checkpoint", str(checkpoint), "--device", "cpu", "--output",
                      str(tmp_path / "cli.png")])
    assert np.array_equal(shown, np.asarray(Image.open(tmp_path / "cli.png")))


def test_examples_are_drawn_when_no_dataset_is_given(tmp_path, user_error):
    # --num_examples without a --dataroot to count them from did nothing.
    for count in ("3", "6"):   # 6, the default, was let through
        assert "--num_examples: for the examples of --dataroot, which is not given" in \
            user_error(lambda count=count: serve.parse_args(["--checkpoint", "x.pth",
                                                             "--num_examples", count]))
    # The layout flags of --dataroot without one, and a category a VITON folder ignores.
    for flags, message in ((["--dataset", "vitonhd"], "--dataset: for the examples of --dataroot"),
                           (["--dataroot", "d", "--category", "lower_body"],
                            "--category: for choosing DressCode's category folders")):
        argv = ["--checkpoint", "x.pth", *flags]
        assert message in user_error(lambda argv=argv: serve.parse_args(argv))
    # A negative count and a NaN limit were accepted.
    for flags, message in ((["--num_examples", "-1", "--dataroot", "d"], "expected 0 or more"),
                           (["--max_megapixels", "nan"], "expected a number above 0")):
        argv = ["--checkpoint", "x.pth", *flags]
        assert message in user_error(lambda argv=argv: serve.parse_args(argv))
    args = serve.parse_args(["--checkpoint", "x.pth", "--device", "cpu"])
    examples = serve.prepare_examples(args, str(tmp_path / "examples"))
    assert len(examples) == serve.SYNTHETIC_EXAMPLES
    for example in examples:
        for path in (example.person, example.garment, example.mask, example.thumbnail):
            assert Path(path).resolve().is_relative_to(tmp_path.resolve()) and Path(path).is_file()
        mask = np.asarray(Image.open(example.mask).convert("L"))
        assert serve.mask_problem(mask) is None
        assert Image.open(example.thumbnail).height == serve.THUMBNAIL_HEIGHT
    assert examples[0].caption == "000000_0.jpg + 000001_1.jpg"


def test_examples_of_a_split_without_an_unpaired_list_pair_each_person_with_the_next(tmp_path):
    from data.synthetic import make_dataset

    root = make_dataset(str(tmp_path / "data"), num_train=0, num_test=3, seed=0, height=64,
                        width=64)["test"]
    os.remove(os.path.join(root, "test_pairs.txt"))
    args = serve.parse_args(["--checkpoint", "x.pth", "--device", "cpu", "--dataroot", root,
                             "--num_examples", "3"])
    captions = [example.caption for example in
                serve.prepare_examples(args, str(tmp_path / "examples"))][:3]
    assert captions == ["000000_0.jpg + 000001_1.jpg", "000001_0.jpg + 000002_1.jpg",
                        "000002_0.jpg + 000000_1.jpg"]


def test_a_damaged_example_photo_is_named_where_it_lies_in_the_data(tmp_path):
    """Not the temporary copy the page serves, which is gone when the server stops."""
    from data.files import DatasetError
    from data.synthetic import make_dataset

    root = make_dataset(str(tmp_path / "data"), num_train=0, num_test=2, seed=0, height=64,
                        width=64)["test"]
    photo = os.path.join(root, "test_img", "000000_0.jpg")
    with open(photo, "r+b") as file:
        file.truncate(os.path.getsize(photo) // 2)
    args = serve.parse_args(["--checkpoint", "x.pth", "--device", "cpu", "--dataroot", root,
                             "--num_examples", "2"])
    with pytest.raises(DatasetError, match=re.escape(photo) + ": truncated JPEG"):
        serve.prepare_examples(args, str(tmp_path / "examples"))


def test_a_host_it_cannot_listen_on_is_named_before_the_model_loads(tmp_path, capsys,
                                                                    monkeypatch):
    """It was 'cannot listen ... choose another --port', after loading the model."""
    import socket

    resolve = socket.getaddrinfo

    def no_dns(host, *rest, **named):     # a name no resolver knows, without asking one
        if host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return resolve(host, *rest, **named)

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    assert serve.host_problem("127.0.0.1") is None
    assert "not an address of this machine" in serve.host_problem("192.0.2.1")   # TEST-NET-1
    for host, message in (("192.0.2.1", "not an address of this machine"),
                          ("no-such-host.invalid", "a host name that does not resolve")):
        with pytest.raises(SystemExit) as stop:
            serve.main(["--checkpoint", str(tmp_path / "missing.pth"), "--device", "cpu",
                        "--host", host])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert f"--host {host}: {message}" in err and "missing.pth" not in err


def test_a_missing_checkpoint_stops_the_server_at_start(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        serve.main(["--checkpoint", str(tmp_path / "missing.pth"), "--device", "cpu"])
    assert stop.value.code == 2
    assert re.search(r"--checkpoint: file not found: .*missing\.pth",
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
    remove = page.locator(f"#{key}-upload button[aria-label='Remove Image']")
    if remove.count():
        remove.first.click()
    page.locator(f"#{key}-upload input[type=file]").set_input_files(str(path))


def _inside_window(page, selector: str, screens: int = 1) -> dict:
    """The bounding box of ``selector`` in page coordinates, asserted to lie within the first
    ``screens`` heights of the window, scrolled to the top."""
    page.evaluate("window.scrollTo(0, 0)")
    box = page.locator(selector).first.bounding_box()
    height = page.viewport_size["height"] * screens
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= height, (selector, box)
    assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"], box
    return box


def _error_box(page, selector: str, text: str) -> None:
    """``selector`` shows ``text`` styled as an error."""
    _wait_for_text(page, selector, text, 30)
    assert "error-box" in page.locator(selector).get_attribute("class")
    colour = page.locator(selector).evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(253, 236, 234)", colour


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
    assert not page.locator("#error").is_visible()
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


def _served(checkpoint, *args) -> list:
    """serve.py's flags for the test's model (or PFAFN_SERVE_ARGS) on a free port."""
    model_args = shlex.split(os.environ.get("PFAFN_SERVE_ARGS", "")) or [
        "--checkpoint", str(checkpoint)]
    return model_args + ["--device", "cpu", "--port", str(_free_port()), *args]


def _browser(playwright, executable: str, tmp_path: Path):
    return playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=executable, headless=True,
        args=CHROMIUM_FLAGS, viewport=DESKTOP)


def test_browser_uploads_get_a_try_on_and_bad_files_a_message(checkpoint, photos, tmp_path):
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    server = Server(_served(checkpoint, "--dataroot", str(photos["test_root"]),
                            "--num_examples", "3"))
    try:
        url = server.wait_for(r"Try-on page: (\S+)", timeout=90).group(1)
        # The default format, chosen without timing, says why; the time shown is a median.
        expected = precision.default_precision("cpu")
        assert f", precision {expected[0]} ({expected[1]})" in server.log(), server.log()
        assert re.search(r"about \d+\.\d\d s per try-on \(median of 5 at start-up\)",
                         server.log()), server.log()
        workdir = Path(server.wait_for(r"kept in (\S+) while", timeout=5).group(1))
        assert workdir.is_dir()
        with sync_playwright() as playwright:
            browser = _browser(playwright, executable, tmp_path)
            try:
                page = browser.new_page()
                page.goto(url)
                page.wait_for_selector("#tryon-button", timeout=30_000)
                _desktop_try_on_and_bad_files(page, server, photos, workdir, tmp_path)
                _examples_and_the_mask_slot(page, server, photos)
            finally:
                browser.close()
        assert server.process.poll() is None, server.log()
    finally:
        code = server.stop()
    assert code == 0, server.log()
    assert not workdir.exists(), f"{workdir} was not removed at exit"


def _desktop_try_on_and_bad_files(page, server, photos, workdir, tmp_path) -> None:
    person_size = PERSON_SIZE[::-1]
    # The examples come first: the dataset's three pairs, then the drawn ones.
    examples = page.locator("#examples img")
    assert examples.count() == 3 + serve.SYNTHETIC_EXAMPLES
    assert _inside_window(page, "#examples")["y"] < _inside_window(page, "#person-upload")["y"]
    # A person photo of another aspect than 3:4 and a product photo, each shown in its box.
    _upload(page, "person", photos["person"])
    _upload(page, "garment", photos["garment"])
    page.wait_for_selector("#person-upload img", timeout=30_000)
    page.wait_for_selector("#garment-upload img", timeout=30_000)
    assert page.locator("[id$='-preview']").count() == 0      # one box per image
    seconds = _try_on(page, "me_person.jpg", timeout_s=120)
    print(f"\nclick to result: {seconds:.2f} s; "
          f"{page.locator('#status').inner_text().splitlines()[0]}")
    assert _result_size(page, person_size) == person_size
    # At 1280x900 the button and the whole result show without scrolling.
    _inside_window(page, "#tryon-button")
    _inside_window(page, "#tryon img")
    path, image = _downloaded(page)
    assert image.size == person_size and image.format == "PNG"
    assert Path(path).resolve().is_relative_to(workdir.resolve())

    # The pickers take images only: the page itself refuses a text file.
    _upload(page, "person", photos["text"])
    _wait_for_text(page, "body", "Invalid file type: notes.txt", 30)
    # A text file named as an image reaches the server: an error at the upload and on Try
    # on, logged with its name.
    _upload(page, "person", photos["fake_jpeg"])
    _error_box(page, "#person-message", "notes.jpg: not a readable image")
    page.click("#tryon-button")
    _error_box(page, "#error", "notes.jpg: not a readable image")
    assert page.locator("#tryon img").count() == 0
    server.wait_for(r"refused upload \(person notes\.jpg\): .*not a readable image", 10)
    server.wait_for(r"refused try-on \(person notes\.jpg, garment shirt\.png\)", 10)

    # A file over --max_upload_mb: Gradio refuses it with a message.
    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(21 * 1024 * 1024))
    start = time.perf_counter()
    _upload(page, "person", big)
    _wait_for_text(page, "body", "huge.png", 30)
    assert "exceed the maximum allowed size" in page.locator("body").inner_text()
    print(f"refusing a 21 MB upload: {time.perf_counter() - start:.2f} s")

    # The server still serves: another person photo; the error is gone.
    _upload(page, "person", photos["person_b"])
    page.wait_for_selector("#person-upload img", timeout=30_000)
    _try_on(page, "me_person_b.jpg", timeout_s=120)
    assert _result_size(page, person_size) == person_size


def _examples_and_the_mask_slot(page, server, photos) -> None:
    # The first example fills the person and garment boxes and, under Advanced, its mask file
    # (so no mask is computed); its result has its person's size.
    person_name, garment_name = (photos["test_root"] / "test_pairs.txt").read_text().split()[:2]
    page.locator("#examples img").first.click()
    page.locator("#advanced").click()
    page.wait_for_selector("#mask-upload img", timeout=30_000)
    _try_on(page, f"{person_name} with {garment_name}", timeout_s=120)
    assert "garment mask computed" not in page.locator("#status").inner_text()
    assert _result_size(page, (192, 256)) == (192, 256)

    # A product photo dropped in the mask slot is not taken as the mask.
    _upload(page, "mask", photos["garment"])
    _error_box(page, "#mask-message", "shirt.png does not look like a mask")
    page.click("#tryon-button")
    _error_box(page, "#error", "garment mask shirt.png does not look like a mask")
    server.wait_for(r"refused try-on \(.*mask shirt\.png\): .*does not look like a mask", 10)

    # A garment uploaded after an example replaces the example's mask by a computed one.
    page.locator("#examples img").first.click()
    page.wait_for_selector("#mask-upload img", timeout=30_000)
    _upload(page, "garment", photos["garment"])
    page.wait_for_function("!document.querySelector('#mask-upload img')", timeout=30_000)
    _try_on(page, f"{person_name} with shirt.png", timeout_s=120)
    assert "garment mask computed" in page.locator("#status").inner_text()


def test_browser_phone_without_data_has_examples_and_the_result_within_two_screens(
        checkpoint, tmp_path):
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    server = Server(_served(checkpoint))
    try:
        url = server.wait_for(r"Try-on page: (\S+)", timeout=90).group(1)
        with sync_playwright() as playwright:
            browser = _browser(playwright, executable, tmp_path)
            try:
                page = browser.new_page()
                page.set_viewport_size(PHONE)
                page.goto(url)
                page.wait_for_selector("#examples img", timeout=30_000)
                assert page.locator("#examples img").count() == serve.SYNTHETIC_EXAMPLES
                screenshots.try_first_example(page, timeout_s=120)
                _wait_for_text(page, "#status", "Try-on of 000000_0.jpg", 30)
                # Try on and the whole result within two screens of the phone.
                button = _inside_window(page, "#tryon-button", screens=2)
                result = _inside_window(page, "#tryon img", screens=2)
                assert button["y"] < result["y"] and button["width"] > PHONE["width"] / 2
                shot = Image.open(BytesIO(screenshots.screenshot(page, screens=2)))
                assert shot.size == (PHONE["width"], 2 * PHONE["height"])
            finally:
                browser.close()
    finally:
        code = server.stop()
    assert code == 0, server.log()
