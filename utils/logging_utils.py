"""Log lines that coexist with a tqdm progress bar, and image grids for TensorBoard."""

import logging
import sys
from pathlib import Path
from typing import Mapping, Optional

import torch
import torch.nn.functional as F
import torchvision
from tqdm import tqdm

LOGGER_NAME = "pfafn.train"


class TqdmHandler(logging.Handler):
    """Writes records through ``tqdm.write`` so they print above the bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never stop training
            self.handleError(record)


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
        file = logging.FileHandler(log_path, mode="a", encoding="utf-8")
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


def to_display(image: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) image in [-1, 1], or mask in [0, 1], -> (B, 3, H, W) float in [0, 1].

    A tensor with any negative value is read as an image in [-1, 1]; otherwise as a mask or an
    image already in [0, 1]. One channel is repeated to three; more than three keep the first
    three (a grid is for looking, not measuring)."""
    if image.dim() != 4:
        raise ValueError(f"images for a grid must be (B, C, H, W), got shape {tuple(image.shape)}")
    image = image.detach().float().cpu()
    if image.min() < 0:
        image = (image + 1) / 2
    channels = image.shape[1]
    if channels == 1:
        image = image.expand(-1, 3, -1, -1)
    elif channels == 2:
        image = torch.cat([image, torch.zeros_like(image[:, :1])], dim=1)
    elif channels > 3:
        image = image[:, :3]
    return image.clamp(0, 1)


def image_grid(images: Mapping[str, torch.Tensor], max_samples: int = 4) -> torch.Tensor:
    """One grid, a row per sample and a column per named image (in ``images`` order), each
    resized to the first image's size -> (3, H_grid, W_grid) in [0, 1]."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    columns = [to_display(image[:max_samples]) for image in images.values()]
    size = columns[0].shape[-2:]
    samples = min(column.shape[0] for column in columns)
    columns = [c[:samples] if c.shape[-2:] == size else
               F.interpolate(c[:samples], size=size, mode="bilinear", align_corners=False)
               for c in columns]
    # Sample-major order so that make_grid's rows are samples and its columns the images.
    tiles = torch.stack(columns, dim=1).reshape(-1, 3, *size)
    return torchvision.utils.make_grid(tiles, nrow=len(columns), padding=2, pad_value=1.0)
