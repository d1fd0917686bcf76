"""Log lines that coexist with a tqdm progress bar, and image grids for TensorBoard."""

import contextlib
import logging
import sys
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

LOGGER_NAME = "pfafn.train"


class TqdmHandler(logging.Handler):
    """Writes records through ``tqdm.write`` so they print above the bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never stop training
            self.handleError(record)


class RunLogFile(logging.FileHandler):
    """train.log; a failed write (a full disk) is said once and the run goes on without it."""

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            return super().handleError(record)
        logging.getLogger(LOGGER_NAME).removeHandler(self)
        with contextlib.suppress(OSError):
            self.close()
        reason = error.strerror or error
        logging.getLogger(LOGGER_NAME).warning(f"cannot write {self.baseFilename} ({reason}); "
                                               f"logging to the console only")


def open_run_logger(log_path: Optional[Path], is_main: bool) -> logging.Logger:
    """The training logger: on rank 0, to the console and appended to ``log_path``; on other
    ranks, warnings and errors only, prefixed by nothing else (torchrun prefixes the rank)."""
    logger = logging.getLogger(LOGGER_NAME)
    close_run_logger(logger)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    console = TqdmHandler()
    console.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    console.setLevel(logging.INFO if is_main else logging.WARNING)
    logger.addHandler(console)
    if is_main and log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        file = RunLogFile(log_path, mode="a", encoding="utf-8")
        file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                            "%Y-%m-%d %H:%M:%S"))
        logger.addHandler(file)
    return logger


def close_run_logger(logger: logging.Logger) -> None:
    """Detach and close every handler (the log file) of ``logger``."""
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def format_terms(terms: Mapping[str, float]) -> str:
    return " ".join(f"{name} {value:.4g}" for name, value in terms.items())


GRID_PADDING = 2          # pixels between tiles and around the grid (white)
HEADER_FONT_SIZES = (12, 11, 10, 9, 8, 7)
HEADER_MARGIN = 2


def to_display(image: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 3, H, W) float in [0, 1] for a picture.

    Three channels are an image in [-1, 1]; one channel is a mask in [0, 1] (repeated to
    three), as ``StepResult.images`` holds them."""
    if image.dim() != 4 or image.shape[1] not in (1, 3):
        raise ValueError(f"images for a grid must be (B, 3, H, W) in [-1, 1] or (B, 1, H, W) "
                         f"in [0, 1], got shape {tuple(image.shape)}")
    image = image.detach().float().cpu()
    if image.shape[1] == 1:
        return image.expand(-1, 3, -1, -1).clamp(0, 1)
    return ((image + 1) / 2).clamp(0, 1)


def column_title(name: str) -> str:
    """'warped_garment' -> 'warped garment'."""
    return name.replace("_", " ")


def _fit_label(text: str, width: int):
    """The largest default-font size, with the words wrapped onto lines, at which ``text``
    fits ``width`` pixels -> (font, lines); the smallest size, cut, when none does."""
    from PIL import ImageFont

    for size in HEADER_FONT_SIZES:
        font = ImageFont.load_default(size=size)
        lines, current = [], ""
        for word in text.split():
            trial = f"{current} {word}".strip()
            if font.getlength(trial) <= width or not current:
                current = trial
            else:
                lines.append(current)
                current = word
        lines.append(current)
        if all(font.getlength(line) <= width for line in lines):
            return font, lines
    font = ImageFont.load_default(size=HEADER_FONT_SIZES[-1])
    cut = list(lines)
    for i, line in enumerate(cut):
        while line and font.getlength(line) > width:
            line = line[:-1]
        cut[i] = line
    return font, cut


def render_label(text: str, width: int, height: int) -> torch.Tensor:
    """``text`` in black on white, centred in a (3, height, width) tile in [0, 1]."""
    from PIL import Image, ImageDraw

    font, lines = _fit_label(text, width)
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    line_height = font.size + 2
    top = max(0, (height - line_height * len(lines)) // 2)
    for k, line in enumerate(lines):
        left = max(0, (width - font.getlength(line)) / 2)
        draw.text((left, top + k * line_height), line, fill=0, font=font)
    tile = torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255.0)
    return tile.expand(3, -1, -1).clone()


def header_height(names, width: int) -> int:
    """Pixels of the header row above tiles ``width`` wide naming ``names``."""
    needed = 0
    for name in names:
        font, lines = _fit_label(column_title(name), width)
        needed = max(needed, (font.size + 2) * len(lines))
    return needed + 2 * HEADER_MARGIN


def image_grid(images: Mapping[str, torch.Tensor], max_samples: int = 4,
               header: bool = True) -> torch.Tensor:
    """One grid, a column per named image (in ``images`` order) under a header row naming
    it, and a row per sample; every image resized to the first one's size.

    Layout, for tiles of (h, w) and padding p = GRID_PADDING: column k spans
    x = p + k (w + p) .. + w; the header spans y = 0 .. header_height; sample r spans
    y = header_height + p + r (h + p) .. + h. Returns (3, H_grid, W_grid) in [0, 1], white
    between tiles."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    columns = [to_display(image[:max_samples]) for image in images.values()]
    height, width = columns[0].shape[-2:]
    samples = min(column.shape[0] for column in columns)
    columns = [c[:samples] if c.shape[-2:] == (height, width) else
               F.interpolate(c[:samples], size=(height, width), mode="bilinear",
                             align_corners=False) for c in columns]
    pad = GRID_PADDING
    top = header_height(images, width) if header else 0
    grid = torch.ones(3, top + pad + samples * (height + pad), pad + len(columns) * (width + pad))
    for k, (name, column) in enumerate(zip(images, columns)):
        left = pad + k * (width + pad)
        if header:
            grid[:, :top, left:left + width] = render_label(column_title(name), width, top)
        for r in range(samples):
            y = top + pad + r * (height + pad)
            grid[:, y:y + height, left:left + width] = column[r]
    return grid
