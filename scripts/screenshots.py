"""Regenerate the web page's screenshots in docs/images/ with a headless Chromium.

    python scripts/screenshots.py                          # the demo's student
    python scripts/screenshots.py --checkpoint final.pth --dataroot dataset/VITON_test

starts scripts/serve.py with the given flags (default: the demo's student,
demo_out/runs/pf_gen/final.pth, on the CPU), clicks the first example, presses Try on and saves
docs/images/web_page_desktop.png (the 1280x900 window as a desktop browser shows it) and
docs/images/web_page_phone.png (the first two screens of a 390x844 phone). Needs Gradio,
playwright (requirements-test.txt) and Chromium (Debian's package, or PFAFN_CHROMIUM).
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from io import BytesIO

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CHECKPOINT = os.path.join(ROOT, "demo_out", "runs", "pf_gen", "final.pth")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
# (file under docs/images, viewport width, height, screens kept)
VIEWS = (("web_page_desktop.png", 1280, 900, 1), ("web_page_phone.png", 390, 844, 2))
MAX_BYTES = 200_000          # per PNG: fewer colours until it fits


def chromium() -> str:
    """Chromium's executable: PFAFN_CHROMIUM, else Debian's."""
    for path in (os.environ.get("PFAFN_CHROMIUM"), shutil.which("chromium"),
                 shutil.which("chromium-browser")):
        if path and os.access(path, os.X_OK):
            return path
    raise SystemExit("Chromium not found: apt-get install chromium, or set PFAFN_CHROMIUM")


def start_server(serve_args: list, timeout_s: float = 180) -> tuple:
    """(process, address) of scripts/serve.py started with ``serve_args`` on a free port."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "scripts", "serve.py"), *serve_args,
         "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    deadline = time.monotonic() + timeout_s
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.startswith("Try-on page: "):
            # The server's later lines (requests, refusals) are passed on, never left to
            # fill the pipe.
            threading.Thread(target=lambda: [print(rest, end="", flush=True)
                                             for rest in process.stdout], daemon=True).start()
            return process, line.split()[-1]
        if time.monotonic() > deadline:
            break
    process.kill()
    raise SystemExit(f"scripts/serve.py did not start (exit status {process.wait()})")


def compact_png(png: bytes, max_bytes: int = MAX_BYTES) -> bytes:
    """``png`` quantised to fewer colours until it is at most ``max_bytes``."""
    shot = Image.open(BytesIO(png)).convert("RGB")
    for colours in (256, 128, 64, 32):
        buffer = BytesIO()
        shot.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            buffer, format="PNG", optimize=True)
        if buffer.tell() <= max_bytes:
            break
    return buffer.getvalue()


def try_first_example(page, timeout_s: float = 300) -> None:
    """Click the page's first example and Try on; returns once the try-on is shown."""
    page.wait_for_selector("#examples img", timeout=60_000)
    page.locator("#examples img").first.click()
    page.wait_for_selector("#garment-upload img", timeout=30_000)
    page.click("#tryon-button")
    page.wait_for_selector("#tryon img", timeout=timeout_s * 1000)
    page.wait_for_function("document.querySelector('#tryon img').complete")


def screenshot(page, screens: int) -> bytes:
    """The first ``screens`` window heights of the page, from its top."""
    page.evaluate("window.scrollTo(0, 0)")
    size = page.viewport_size
    height = min(screens * size["height"],
                 page.evaluate("document.documentElement.scrollHeight"))
    return page.screenshot(full_page=True, clip={"x": 0, "y": 0, "width": size["width"],
                                                 "height": height})


def main(argv=None) -> None:
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from common.cli import HelpFormatter

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=HelpFormatter,
        epilog="Other flags are passed to scripts/serve.py.")
    parser.add_argument("--out", default="docs/images",
                        help="folder of the screenshots, from the repository's top")
    args, serve_args = parser.parse_known_args(argv)
    if not serve_args:
        if not os.path.isfile(DEMO_CHECKPOINT):
            raise SystemExit(f"{DEMO_CHECKPOINT} not found: run the demo first, or give "
                             f"scripts/serve.py's model flags")
        serve_args = ["--checkpoint", DEMO_CHECKPOINT, "--device", "cpu"]
    from playwright.sync_api import sync_playwright

    process, url = start_server(serve_args)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium(), headless=True,
                                                 args=CHROMIUM_FLAGS)
            try:
                for name, width, height, screens in VIEWS:
                    page = browser.new_page(viewport={"width": width, "height": height})
                    page.goto(url)
                    try_first_example(page)
                    folder = os.path.join(ROOT, args.out)
                    os.makedirs(folder, exist_ok=True)
                    target = os.path.join(folder, name)
                    with open(target, "wb") as handle:
                        handle.write(compact_png(screenshot(page, screens)))
                    print(f"wrote {target}", flush=True)
                    page.close()
            finally:
                browser.close()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
