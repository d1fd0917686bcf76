"""A local web page for trying garments on your own photos with the parser-free student.

    python scripts/serve.py --checkpoint checkpoints/pf_gen/final.pth
    python scripts/serve.py --warp_checkpoint warp_model_final.pth \\
        --gen_checkpoint gen_model_final.pth --dataroot dataset/VITON_test
    python scripts/serve.py --onnx pfafn.onnx --port 8000

then open the address it prints (default http://127.0.0.1:7860). Upload a photo of a person
and a product photo of a garment; the garment's mask is computed from the product photo unless
you upload one (white = garment, the photo's size). The person photo is fitted to the model's
3:4 frame as test.py's ``--fit`` does (pad: the whole photo, padded with its border colour;
crop: the centred 3:4 window) and the try-on comes back at the photo's own size, with a link
to the full-size PNG. Beside it: what the model saw and did in its frame (the fitted person,
the garment with the mask used, the warped garment, and the composition mask: white where the
try-on shows the warped garment, black where it shows the generated person).

Examples come first: three pairs drawn by the synthetic-data generator at start-up, always
there, after the first pairs of the dataset's unpaired test pairs when ``--dataroot`` is given.

A request with bad input (not an image, a file over ``--max_upload_mb``, more than
``--max_megapixels`` megapixels, a product photo without a clear garment, a mask of another size
than the garment) gets a message on the page; the server goes on serving. The model is loaded
once at start-up (a missing or wrong checkpoint stops it with exit status 2) and requests run it
one at a time. Nothing is kept: uploads and results live in a temporary folder that Gradio
prunes while running and that is removed at exit.

Needs ``pip install -r requirements-serve.txt`` (Gradio).
"""

import argparse
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from common.cli import (  # noqa: E402
    REMOVED_FLAGS,
    HelpFormatter,
    given_on_command_line,
    positive_limit,
    refuse_flags,
    unused_flags,
)
from common.errors import UserError, user_error_message  # noqa: E402
from common.results import write_result  # noqa: E402
from data.alpha import read_alpha  # noqa: E402
from data.files import DatasetError, header_size, read_gray, read_rgb  # noqa: E402
from data.fitted_pairs import category_unused, read_photo  # noqa: E402
from data.photo_fit import FIT_MODES  # noqa: E402
from utils.inference.loading import add_model_arguments, check_model_arguments, load_model_from_args  # noqa: E402
from utils.inference.photos import garment_mask_for, mask_problem, tryon_photos  # noqa: E402

MEGABYTE = 1024 * 1024
READABLE = "a JPEG, PNG, BMP or WebP image"
THUMBNAIL_HEIGHT = 160       # example thumbnails: person | garment at this height
# Gradio deletes the files it made (uploads, shown images, results) every CACHE_SWEEP_S seconds
# once they are CACHE_AGE_S old: long enough to download a result, short enough that a server
# left running does not fill the disk.
CACHE_SWEEP_S = 600
CACHE_AGE_S = 3600
INSTALL_HINT = "pip install -r requirements-serve.txt"
WARM_UP_REPEATS = 5          # the header's time per try-on: the median of this many runs
# Results are shown filling their boxes: a model frame of 128x96 would otherwise be a stamp.
# The examples keep six columns (three on a phone): Gradio gives a gallery of fewer pictures
# fewer, wider columns, whose thumbnails then overflow the gallery's height. On a phone the
# examples and the result are lower, so that Try on and the result are within two screens.
PAGE_CSS = """
.fill-image img { width: 100%; height: 100%; object-fit: contain; }
#examples .grid-container { --grid-cols: 6 !important; }
.error-box { border: 1px solid #c62828; border-radius: 6px; background: #fdecea;
             color: #8e1b1b; padding: 4px 12px; }
.error-box p { color: #8e1b1b; }
.error-box .error-box { border: none; padding: 0; }
@media (max-width: 640px) {
  #examples .grid-container { --grid-cols: 3 !important; }
  #examples { height: 150px !important; }
  #tryon { height: 360px !important; }
}
"""
SYNTHETIC_EXAMPLES = 3       # example pairs drawn by data.synthetic, shown with or without data


class RequestError(Exception):
    """Bad input of one request; the message is shown on the page as it is."""


def as_markdown(text: str) -> str:
    """``text`` escaped for the page's Markdown: messages hold file names as users chose them,
    and a '*' or '[' in one must not turn into formatting or a link."""
    return re.sub(r"([\\`*_{}\[\]<>()#+!|~])", r"\\\1", text)


@dataclass(frozen=True)
class UploadLimits:
    """Largest upload accepted: ``max_bytes`` per file, ``max_pixels`` per decoded image."""

    max_bytes: int
    max_pixels: int


# ---------------------------------------------------------------------------------------------
# Reading uploads


_DECODE_LOCK = threading.Lock()


def read_upload(path: Optional[str], what: str, limits: UploadLimits,
                reader: Callable[..., np.ndarray] = read_photo) -> np.ndarray:
    """Decode an uploaded image with one of the project's readers: ``read_photo`` (uint8
    (h, w, 3) RGB, a cut-out's transparent pixels white: a person photo), ``read_rgb`` (the
    file's own colours: a garment photo, whose alpha is its mask, as test.py reads it) or
    ``read_gray`` ((h, w) grey levels: a mask). ``what`` names the upload in messages ('person
    photo').

    Raises ``RequestError`` naming the upload and what is wrong with it."""
    if not path:
        raise RequestError(f"Upload a {what}.")
    name = os.path.basename(path)
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise RequestError(f"The {what} {name} cannot be read ({error.strerror}); upload it "
                           f"again.") from None
    if size > limits.max_bytes:
        raise RequestError(f"The {what} {name} is {size / MEGABYTE:.1f} MB; this server takes "
                           f"files of at most {limits.max_bytes / MEGABYTE:g} MB.")
    with open(path, "rb") as handle:      # at most --max_upload_mb: checked above
        size = header_size(handle.read())
    pixels = None if size is None else size[1]
    if pixels is not None and pixels > limits.max_pixels:
        raise RequestError(f"The {what} {name} has {pixels / 1e6:.3g} megapixels; this server "
                           f"takes images of at most {limits.max_pixels / 1e6:g} megapixels. "
                           f"Downscale it and upload it again.")
    try:
        # One decode at a time: previews of several uploads, and several users, would
        # otherwise each hold a full-size image at once.
        with _DECODE_LOCK:
            return reader(path, limits.max_pixels)
    except DatasetError as error:
        # The reader names the file by its path in the upload folder; the user knows its name.
        message = str(error).replace(path, name)
        raise RequestError(f"The {what} {message}; upload {READABLE}.") from None


# ---------------------------------------------------------------------------------------------
# One request


@dataclass
class TryOnOutcome:
    """A finished request: ``tryon`` uint8 (h, w, 3) at the person photo's size, saved as the
    PNG ``download``; ``frame``: the model-frame pictures of ``utils.inference.photos.PhotoTryOn``
    plus 'composition_mask' (H, W); ``notes``: what the user should know (how the mask was
    made); ``seconds``: the whole request, ``model_seconds``: fitting, the model, mapping back."""

    tryon: np.ndarray
    frame: dict
    download: str
    notes: list
    seconds: float
    model_seconds: float


@dataclass
class TryOnPage:
    """The model and everything a request needs; ``run`` serves one request.

    ``results_dir``: where result PNGs are written (inside Gradio's temporary folder, so that
    Gradio serves and prunes them); ``lock``: one request runs the model at a time, whoever
    calls (the page's queue does the same; this also covers direct calls)."""

    model: Any
    results_dir: str
    limits: UploadLimits
    grabcut: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, person_path: Optional[str], garment_path: Optional[str],
            mask_path: Optional[str] = None, fit: str = "pad") -> TryOnOutcome:
        """Dress the person of ``person_path`` in the garment of ``garment_path`` (files as
        uploaded). Raises ``RequestError`` on bad input."""
        start = time.perf_counter()
        if fit not in FIT_MODES:
            raise RequestError(f"Unknown fit {fit!r}; choose one of {', '.join(FIT_MODES)}.")
        person = read_upload(person_path, "person photo", self.limits)
        garment = read_upload(garment_path, "garment photo", self.limits, read_rgb)
        user_mask = (read_upload(mask_path, "garment mask", self.limits, read_gray)
                     if mask_path else None)
        garment_name = f"garment photo {os.path.basename(garment_path)}"
        try:
            alpha = (None if user_mask is not None
                     else read_alpha(garment_path, self.limits.max_pixels))
            mask, notes = garment_mask_for(
                garment, user_mask, self.grabcut, garment_name=garment_name,
                mask_name=f"garment mask {os.path.basename(mask_path or '')}", alpha=alpha)
        except DatasetError as error:
            hint = ("" if user_mask is not None else
                    " You can upload the garment's mask under 'Advanced' (white = garment, "
                    "the size of the garment photo).")
            raise RequestError(f"{error}.{hint}") from None
        with self.lock:
            result = tryon_photos(self.model, person, garment, mask, fit)
        frame = dict(result.frame, composition_mask=result.composition_mask)
        download = self._save(result.tryon, person_path, garment_path)
        return TryOnOutcome(tryon=result.tryon, frame=frame, download=download, notes=notes,
                            seconds=time.perf_counter() - start, model_seconds=result.seconds)

    def _save(self, tryon: np.ndarray, person_path: str, garment_path: str) -> str:
        """The try-on as a PNG named like test.py's results, ``{person}__{garment}.png``, in a
        folder of its own (two users may try the same files)."""
        folder = os.path.join(self.results_dir, uuid.uuid4().hex)
        try:
            return str(write_result(folder, os.path.basename(person_path),
                                    os.path.basename(garment_path), tryon, "the result"))
        except UserError as error:
            raise RequestError(f"The server could not save the try-on: {error}.") from None


# The uploads: (key, label of its box, which shows the image once chosen); UPLOAD_NAMES: how
# messages call them.
UPLOADS = (
    ("person", "Person photo"),
    ("garment", "Garment product photo"),
    ("mask", "Garment mask (white = garment, black around it; the garment photo's size)"),
)
UPLOAD_NAMES = {"person": "person photo", "garment": "garment photo", "mask": "garment mask"}

# What the page shows, in the order of ``respond``'s outputs after the try-on.
FRAME_VIEWS = (
    ("person", "Person in the model's frame"),
    ("garment", "Garment with the mask used"),
    ("warped_garment", "Warped garment"),
    ("composition_mask", "Composition mask"),
)


def runs_on(model) -> str:
    """Where the model runs, in words: the torch device, or ONNX Runtime's first provider."""
    providers = getattr(model, "providers", None)
    if providers:
        name = providers[0][0] if isinstance(providers[0], tuple) else providers[0]
        return f"ONNX Runtime's {name.replace('ExecutionProvider', '')}"
    return str(model.device)


def respond(page: TryOnPage, person_path: Optional[str], garment_path: Optional[str],
            mask_path: Optional[str], fit: str) -> tuple:
    """The page's request: (try-on, one image per ``FRAME_VIEWS``, the PNG to download, the
    status text in Markdown). Bad input gives empty images and the message as the status;
    so does an unexpected failure, whose traceback goes to the server's log."""
    empty = (None,) * (2 + len(FRAME_VIEWS))
    try:
        outcome = page.run(person_path, garment_path, mask_path, fit)
    except RequestError as error:
        return empty + (f"**Could not try on:** {as_markdown(str(error))}",)
    except Exception as error:
        traceback.print_exc()
        return empty + (f"**Could not try on:** internal error ({type(error).__name__}: "
                        f"{as_markdown(str(error))}); the server's log has the details.",)
    height, width = outcome.tryon.shape[:2]
    model = page.model
    lines = [f"Try-on of {os.path.basename(person_path)} with {os.path.basename(garment_path)}: "
             f"{height}×{width} in {outcome.seconds:.2f} s (the model {outcome.model_seconds:.2f} "
             f"s on {runs_on(model)}, frame {model.height}×{model.width}, fit {fit})."]
    lines = [as_markdown(line) for line in lines]
    lines += [f"- {as_markdown(note)}" for note in outcome.notes]
    frames = tuple(outcome.frame[key] for key, _ in FRAME_VIEWS)
    return (outcome.tryon,) + frames + (outcome.download, "\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Examples: pairs of a dataset, and pairs drawn by data.synthetic


@dataclass
class Example:
    person: str
    garment: str
    mask: Optional[str]
    thumbnail: str
    caption: str


def prepare_examples(args, folder: str) -> list:
    """The page's example pairs, copied into ``folder`` (the page serves files only from its
    temporary folder), each with a thumbnail person | garment: the first ``--num_examples``
    unpaired test pairs of ``--dataroot`` when given (without an unpaired list, each person
    with the next one's garment), then SYNTHETIC_EXAMPLES pairs drawn by ``data.synthetic``,
    so that a page without data has examples too."""
    from data.datasets import DataOptions, pair_samples
    from data.samples import next_garments

    pairs = []
    if args.dataroot and args.num_examples > 0:
        options = DataOptions.from_config(args)
        try:
            samples = pair_samples(options, args.dataroot, "unpaired")
        except DatasetError as error:
            samples = pair_samples(options, args.dataroot, "paired")
            if len(samples) < 2:
                raise error from None
            print(f"{error}: the examples dress each person in the next one's garment")
            samples = next_garments(samples)
        pairs = [(sample.person.image, sample.garment.image, sample.garment.mask)
                 for sample in samples[:args.num_examples]]
    return [_example(os.path.join(folder, f"{index:02d}"), *pair)
            for index, pair in enumerate(pairs + synthetic_pairs(os.path.join(folder, "drawn")))]


def synthetic_pairs(folder: str, count: int = SYNTHETIC_EXAMPLES) -> list:
    """(person photo, product photo, its mask) paths of ``count`` unpaired test pairs that
    ``data.synthetic`` draws into ``folder`` (256×192, a second or so)."""
    from data.synthetic import make_dataset

    root = make_dataset(folder, num_train=0, num_test=count, seed=0)["test"]
    with open(os.path.join(root, "test_pairs.txt"), encoding="utf-8") as pairs:
        names = [line.split() for line in pairs if line.strip()]
    return [(os.path.join(root, "test_img", person), os.path.join(root, "test_clothes", garment),
             os.path.join(root, "test_edge", garment)) for person, garment in names]


def _example(target: str, person: str, garment: str, mask: Optional[str]) -> Example:
    """One example: its files copied under ``target``, and its thumbnail. The photos are read
    where they are, so that a damaged one is named in the data, not in the copy."""
    photos = (read_rgb(person), read_rgb(garment))
    copies = []
    # One folder per file: a garment and its mask often share a name (VITON's
    # test_clothes/000001_1.jpg and test_edge/000001_1.jpg).
    for kind, source in (("person", person), ("garment", garment), ("mask", mask)):
        if source is None:
            copies.append(None)
            continue
        os.makedirs(os.path.join(target, kind))
        copies.append(os.path.join(target, kind, os.path.basename(source)))
        shutil.copyfile(source, copies[-1])
    parts = [cv2.resize(image, (max(1, round(image.shape[1] * THUMBNAIL_HEIGHT
                                             / image.shape[0])), THUMBNAIL_HEIGHT),
                        interpolation=cv2.INTER_AREA)
             for image in photos]
    gap = np.full((THUMBNAIL_HEIGHT, 4, 3), 255, np.uint8)
    thumbnail = os.path.join(target, "thumbnail.png")
    Image.fromarray(np.concatenate([parts[0], gap, parts[1]], axis=1)).save(thumbnail)
    caption = f"{os.path.basename(person)} + {os.path.basename(garment)}"
    return Example(copies[0], copies[1], copies[2], thumbnail, caption)


# ---------------------------------------------------------------------------------------------
# The page


def upload_problem(path: Optional[str], key: str, limits: UploadLimits) -> str:
    """Why the file of upload ``key`` cannot be used, in plain text ('' when it can, or when
    there is none): read at once, so that a bad file is reported before Try on."""
    if not path:
        return ""
    what = UPLOAD_NAMES[key]
    try:
        image = read_upload(path, what, limits, read_gray if key == "mask" else read_photo)
    except RequestError as error:
        return str(error)
    problem = mask_problem(image) if key == "mask" else None
    if problem:
        return (f"The {what} {os.path.basename(path)} does not look like a mask: {problem}. "
                f"Upload the garment's mask, or clear this box to have the mask computed from "
                f"the product photo.")
    return ""


REFUSED = "**Could not try on:** "     # how ``respond`` begins a message of bad input


def log_refusal(what: str, paths: dict, message: str) -> None:
    """One line in the server's log for a refused upload or try-on, naming its files."""
    names = ", ".join(f"{key} {os.path.basename(path)}" for key, path in paths.items() if path)
    print(f"refused {what} ({names or 'no files'}): {message}", file=sys.stderr, flush=True)


def _upload_path(value) -> Optional[str]:
    """The server's path of an upload box's value: the page's events take the boxes' values
    unprocessed (a FileData dict), so that ``read_upload``, not Gradio, decodes the file."""
    if isinstance(value, dict):
        return value.get("path")
    return value or None


def _input_controls(gr, shape: str):
    """The page's inputs, inside its Blocks: per upload (image box, message) by key, the fit
    choice and the button. The mask and the fit are under 'Advanced', folded."""
    def upload_box(key, label, height):
        box = gr.Image(label=label, type="filepath", sources=["upload"], height=height,
                       buttons=[], elem_id=f"{key}-upload", min_width=150)
        message = gr.Markdown(elem_id=f"{key}-message", elem_classes="error-box",
                              visible=False)
        return box, message

    uploads = {}
    with gr.Row():
        for key, label in UPLOADS[:2]:
            with gr.Column(min_width=150):
                uploads[key] = upload_box(key, label, 300)
    with gr.Accordion("Advanced: garment mask, fit", open=False, elem_id="advanced"):
        uploads["mask"] = upload_box("mask", UPLOADS[2][1], 220)
        gr.Markdown("Without a mask, it is computed from the product photo.")
        fit = gr.Radio(
            choices=[(f"pad: the whole photo, padded to {shape} with its border colour",
                      "pad"),
                     (f"crop: the centred {shape} window", "crop")],
            value="pad", label="Fit of the person photo to the model's frame", elem_id="fit")
    button = gr.Button("Try on", variant="primary", elem_id="tryon-button")
    return uploads, fit, button


def _result_controls(gr):
    """The page's outputs beside the inputs: (error box, try-on, download, status)."""
    error = gr.Markdown(elem_id="error", elem_classes="error-box", visible=False)
    tryon = gr.Image(label="Try-on (the person photo's size)", interactive=False,
                     format="png", height=420, elem_id="tryon", elem_classes="fill-image")
    download = gr.File(label="Full-size try-on (PNG)", interactive=False, elem_id="download",
                       height=60)
    status = gr.Markdown(elem_id="status")
    return error, tryon, download, status


def _frame_views(gr, model) -> list:
    """The model-frame pictures of ``FRAME_VIEWS``, below the result."""
    with gr.Accordion(f"In the model's {model.height}×{model.width} frame", open=True,
                      elem_id="frame-views"):
        gr.Markdown(
            "The person photo as fitted, the garment as the mask cuts it out (check the mask "
            "here when a try-on looks wrong), the garment warped onto the person, and the "
            "composition mask: white where the try-on shows the warped garment, black where it "
            "shows the person the generator rendered.")
        with gr.Row():
            return [gr.Image(label=label, interactive=False, format="png", height=240,
                             elem_id=f"frame-{key.replace('_', '-')}", elem_classes="fill-image",
                             min_width=120)
                    for key, label in FRAME_VIEWS]


def _examples_gallery(gr, examples: list):
    return gr.Gallery(
        value=[(example.thumbnail, example.caption) for example in examples],
        label="Examples: click one, then Try on", columns=6, height=200,
        object_fit="contain", allow_preview=False, elem_id="examples")


def _error_update(gr, message: str):
    """The error box showing ``message`` (Markdown), hidden when it is ''."""
    return gr.update(value=message, visible=bool(message))


def _connect_uploads(gr, page: TryOnPage, examples: list, gallery, uploads: dict) -> None:
    """An upload's file checked at once (its message shown and logged); an example fills the
    three boxes; a garment uploaded after an example clears the example's mask, which would
    otherwise be taken for the new garment's."""
    mask_from_example = gr.State(False)
    for key, (box, message) in uploads.items():
        def check(value, key=key):
            path = _upload_path(value)
            problem = upload_problem(path, key, page.limits)
            if problem:
                log_refusal("upload", {key: path}, problem)
            text = f"**Cannot use this file:** {as_markdown(problem)}" if problem else ""
            return _error_update(gr, text)
        box.change(check, box, message, preprocess=False)
    person, garment, mask = (uploads[key][0] for key, _ in UPLOADS)

    def choose(event: gr.SelectData):
        example = examples[event.index]
        return example.person, example.garment, example.mask, example.mask is not None

    gallery.select(choose, None, [person, garment, mask, mask_from_example])
    garment.upload(lambda from_example: (None if from_example else gr.update(), False),
                   mask_from_example, [mask, mask_from_example])
    mask.upload(lambda: False, None, mask_from_example)


def build_page(page: TryOnPage, examples: list, title: str):
    """The Gradio Blocks of the page: the examples at the top, the inputs and the result side by
    side (one above the other on a phone), the model-frame pictures below. Uploads are taken as
    file paths and decoded by ``read_upload``, not by Gradio's image component, so that every
    bad file gets this project's message."""
    import gradio as gr

    model, limits = page.model, page.limits
    # The frame's aspect ratio, as the fit options describe it (3:4 for the released weights).
    shape = ("3:4" if model.height * 3 == model.width * 4
             else f"{model.height}×{model.width}")
    with gr.Blocks(title="PF-AFN try-on", analytics_enabled=False,
                   delete_cache=(CACHE_SWEEP_S, CACHE_AGE_S)) as demo:
        gr.Markdown(
            f"## PF-AFN virtual try-on\n{as_markdown(title)}.\n\nClick an example, or upload a "
            f"photo of a person and a product photo of a garment (on a light, plain "
            f"background); then press **Try on**. Files up to {limits.max_bytes / MEGABYTE:g} "
            f"MB and {limits.max_pixels / 1e6:g} megapixels; nothing is kept after the server "
            f"stops.", elem_id="header")
        gallery = _examples_gallery(gr, examples)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                uploads, fit, button = _input_controls(gr, shape)
            with gr.Column(scale=2, min_width=300):
                error, tryon, download, status = _result_controls(gr)
        views = _frame_views(gr, model)
        _connect_uploads(gr, page, examples, gallery, uploads)

        def request(person, garment, mask, fit_mode):
            paths = dict(zip(UPLOAD_NAMES, map(_upload_path, (person, garment, mask))))
            problem = upload_problem(paths["mask"], "mask", limits)
            outputs = ((None,) * (2 + len(FRAME_VIEWS)) + (as_markdown(problem),) if problem
                       else respond(page, *paths.values(), fit_mode))
            if outputs[0] is not None:
                return outputs + (_error_update(gr, ""),)
            message = outputs[-1].removeprefix(REFUSED)
            log_refusal("try-on", paths, re.sub(r"\\(.)", r"\1", message))
            return outputs[:-1] + ("", _error_update(gr, REFUSED + message))

        # One queue for every request that runs the model: one at a time.
        button.click(request, [uploads[key][0] for key, _ in UPLOADS] + [fit],
                     [tryon] + views + [download, status, error], preprocess=False,
                     concurrency_limit=1, concurrency_id="model")
    demo.queue(default_concurrency_limit=1)
    return demo


# ---------------------------------------------------------------------------------------------
# Start-up


def parse_args(argv=None) -> argparse.Namespace:
    from data.datasets import add_data_arguments

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=HelpFormatter)
    add_model_arguments(p.add_argument_group("model"))
    server = p.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0: every interface; the page has no "
                             "login, so only on a network you trust)")
    server.add_argument("--port", type=int, default=7860, help="port to listen on")
    server.add_argument("--max_upload_mb", type=positive_limit, default=20.0,
                        help="largest file accepted per upload, in MB (MiB)")
    data = p.add_argument_group("examples")
    data.add_argument("--dataroot", default=None,
                      help="a test set whose first unpaired pairs are shown as clickable "
                           "examples: a VITON_test folder, or the top folder of VITON-HD or "
                           "DressCode (--dataset)")
    data.add_argument("--num_examples", type=int, default=6,
                      help="how many pairs of --dataroot to show")
    add_data_arguments(data, parsing=False, masks=("grabcut",),
                       no_masks="for a cache of computed garment masks, which the page does "
                                "not keep (it computes each upload's)")
    refuse_flags(p, {flag: REMOVED_FLAGS[flag] for flag in ("--amp", "--max_pixels")})
    # Uploads: at most 40 megapixels (--max_megapixels, width x height / 1e6) each.
    p.set_defaults(max_megapixels=40.0)
    args = p.parse_args(argv)
    check_model_arguments(p, args)
    unused = unused_flags(given_on_command_line(p, argv), [
        (("dataset", "category", "num_examples"), not args.dataroot,
         "the examples of --dataroot, which is not given"),
        category_unused(args.dataset)])
    if unused:
        p.error(unused)
    if args.num_examples < 0:
        p.error(f"--num_examples {args.num_examples}: expected 0 or more")
    if not 0 <= args.port < 65536:
        p.error(f"--port {args.port}: expected 0..65535")
    return args


def fail(message) -> None:
    """Stop at start-up: a usage problem, exit status 2 as argparse gives."""
    print(user_error_message(message), file=sys.stderr, flush=True)
    raise SystemExit(2)


def load_model(args):
    """The try-on model, loaded once, and a description of it for the page."""
    model = load_model_from_args(args)
    if args.onnx:
        title = f"Model: {os.path.basename(args.onnx)} on {runs_on(model)}"
    else:
        names = sorted({os.path.basename(args.warp_checkpoint),
                        os.path.basename(args.gen_checkpoint)})
        title = f"Model: {' + '.join(names)} on {model.device}"
    reason = getattr(model, "precision_reason", "")
    return model, title + f", precision {model.precision}" + (f" ({reason})" if reason else "")


def warm_up(model, repeats: int = WARM_UP_REPEATS) -> float:
    """Try-ons of blank images, so that a model that cannot run fails at start-up and the
    first user does not wait for lazy initialisation. Returns the median seconds of
    ``repeats`` runs after the first (which pays for that initialisation)."""
    import statistics

    import torch

    shape = (1, 3, model.height, model.width)
    inputs = (torch.zeros(shape), torch.zeros(shape),
              torch.ones((1, 1, model.height, model.width)))
    model(*inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(*inputs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> None:
    # Under an ASCII locale a '×' in a message must not stop the server.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = parse_args(argv)
    problem = host_problem(args.host)
    if problem:
        fail(f"--host {args.host}: {problem}")
    try:
        model, title = load_model(args)
        seconds = warm_up(model)
    except UserError as error:
        fail(error)
    title += (f", input frame {model.height}×{model.width} (height × width); about "
              f"{seconds:.2f} s per try-on (median of {WARM_UP_REPEATS} at start-up)")
    print(title, flush=True)

    # Gradio reads GRADIO_TEMP_DIR when imported: the folder must exist before.
    workdir = tempfile.mkdtemp(prefix="pfafn_serve_")
    try:
        cache = os.path.join(workdir, "gradio")
        os.makedirs(os.path.join(cache, "results"))
        os.environ["GRADIO_TEMP_DIR"] = cache
        # The page works offline: no usage reports and no version checks from the server.
        os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
        try:
            import gradio  # noqa: F401
        except ImportError as error:
            fail(f"the web page needs Gradio ({error}); {INSTALL_HINT}")
        try:
            examples = prepare_examples(args, os.path.join(workdir, "examples"))
        except UserError as error:
            fail(f"--dataroot {args.dataroot}: {error}")
        limits = UploadLimits(max_bytes=int(args.max_upload_mb * MEGABYTE),
                              max_pixels=int(args.max_megapixels * 1e6))
        page = TryOnPage(model=model, results_dir=os.path.join(cache, "results"),
                         limits=limits, grabcut=args.grabcut)
        demo = build_page(page, examples, title)
        serve(demo, args, limits, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class RequestBounds:
    """ASGI middleware bounding what requests may cost the server: a body of more than
    ``max_body`` bytes is refused (413) whether or not it declares its length, and before an
    upload is taken the oldest files of ``folder`` (Gradio's uploads) are deleted until it
    holds at most ``max_folder_bytes``: uploads never tried on would otherwise fill the disk.
    A try-on whose upload was deleted asks for it again."""

    def __init__(self, app, max_body: int, folder: str, max_folder_bytes: int):
        self.app, self.max_body = app, max_body
        self.folder, self.max_folder_bytes = folder, max_folder_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_body:
            return await _too_large(send, self.max_body)
        if scope.get("path", "").rstrip("/").endswith("/upload"):
            prune_folder(self.folder, self.max_folder_bytes)
        received = 0

        async def bounded_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise RequestError(f"request body over {self.max_body} bytes")
            return message
        return await self.app(scope, bounded_receive, send)


async def _too_large(send, limit: int) -> None:
    body = f"request body over {limit} bytes".encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def prune_folder(folder: str, max_bytes: int) -> int:
    """Delete the oldest files under ``folder`` until it holds at most ``max_bytes``; returns
    how many were deleted."""
    files = []
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            try:
                status = os.stat(path)
            except OSError:
                continue
            files.append((status.st_mtime, status.st_size, path))
    total = sum(size for _, size, _ in files)
    deleted = 0
    for _, size, path in sorted(files):
        if total <= max_bytes:
            break
        try:
            os.unlink(path)
        except OSError:
            continue
        total, deleted = total - size, deleted + 1
    return deleted


# Disk the uploads and results may take, in uploads of the largest size.
UPLOADS_KEPT = 20


def host_problem(host: str) -> Optional[str]:
    """Why the page cannot listen on ``host`` on any port (a name that does not resolve, an
    address not of this machine), or None."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as error:
        return f"a host name that does not resolve ({getattr(error, 'strerror', None) or error})"
    with socket.socket(family, kind) as probe:
        try:
            probe.bind((address[0], 0))
        except OSError as error:
            return (f"not an address of this machine ({error.strerror or error}); 127.0.0.1 "
                    f"serves this machine only, 0.0.0.0 every network it is on")
    return None


def serve(demo, args, limits: UploadLimits, workdir: str) -> None:
    """Launch the page, print its address, and serve until Ctrl-C or SIGTERM."""
    from starlette.middleware import Middleware
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Multipart framing and the page's own requests fit in the megabyte added.
    bounds = Middleware(RequestBounds, max_body=limits.max_bytes + MEGABYTE,
                        folder=os.path.join(workdir, "gradio"),
                        max_folder_bytes=UPLOADS_KEPT * limits.max_bytes)
    try:
        _, url, _ = demo.launch(server_name=args.host, server_port=args.port,
                                max_file_size=limits.max_bytes, prevent_thread_lock=True,
                                quiet=True, ssr_mode=False, share=False, css=PAGE_CSS,
                                app_kwargs={"middleware": [bounds]})
    except OSError as error:
        fail(f"cannot listen on {args.host}:{args.port} ({error}); choose another --port")
    print(f"Try-on page: {url}", flush=True)
    print(f"(uploads and results are kept in {workdir} while the server runs; Ctrl-C stops "
          f"it and removes them)", flush=True)
    try:
        while demo.is_running and not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        demo.close(verbose=False)
        print("server stopped", flush=True)


if __name__ == "__main__":
    main()
