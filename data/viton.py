"""VITON-layout datasets: training (parser-based inputs) and test (person + garment only).

Training root (``VITON_traindata``), one sample per person id ``000003``::

    train_img/000003_0.jpg               person photo, RGB
    train_color/000003_1.jpg             in-shop garment on white
    train_edge/000003_1.jpg              garment mask, grey, foreground > 127
    train_label/000003_0.png             parsing labels (0..13, ACGPN scheme)
    train_pose/000003_0_keypoints.json   OpenPose keypoints (18 COCO or BODY_25)
    train_densepose/000003_0.npy         DensePose part index I, H x W, 0..24

Samples are matched by name, never by position in a sorted listing: with ``train_pairs.txt``
(``person.jpg garment.jpg`` per line) the pairs come from the file, otherwise from the photos
in ``train_img`` (the garment of ``X_0`` is ``X_1``). Every file a sample needs is checked
when the dataset is opened; the content of each file (decodable, complete, values in range)
is checked when it is read, and ``python -m data.check ROOT`` reads everything up front.

Images of another size than the configured one are resized: bilinear for photos, nearest for
labels, masks and DensePose; keypoints are scaled with them.
"""

import io
import os
import re
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
from PIL import Image

from data.pose import PoseFileError, read_openpose, scale_keypoints

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
NUM_LABELS = 14          # ACGPN's scheme, values 0..13 (2 and 3 unused by PF-AFN)
NUM_DENSEPOSE_PARTS = 25  # DensePose I: 0 background, 1..24 parts
EDGE_THRESHOLD = 127      # garment mask foreground: value / 255 > 0.5


class DatasetError(ValueError):
    """A dataset that cannot be used as it is; the message names the file(s) at fault."""


# ---------------------------------------------------------------------------------------------
# Reading single files


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ({error.strerror or error})") from None
    if not data:
        raise DatasetError(f"{path}: empty file")
    return data


def _check_complete(data: bytes, path: str) -> None:
    """Reject JPEG/PNG files cut short: decoders fill the missing part with grey silently."""
    if data[:2] == b"\xff\xd8":
        # The end-of-image marker; it cannot occur inside entropy-coded data (0xFF is stuffed).
        if data.rfind(b"\xff\xd9", max(0, len(data) - 1024)) < 0:
            raise DatasetError(f"{path}: truncated JPEG (no end-of-image marker)")
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        if b"IEND" not in data[-64:]:
            raise DatasetError(f"{path}: truncated PNG (no IEND chunk)")


def _decode(path: str, flags: int) -> np.ndarray:
    data = _read_bytes(path)
    _check_complete(data, path)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise DatasetError(f"{path}: not a readable image")
    return image


def read_rgb(path: str) -> np.ndarray:
    """Decode a photo -> uint8 (h, w, 3) RGB. Raises DatasetError if unreadable or truncated."""
    return _decode(path, cv2.IMREAD_COLOR)[:, :, ::-1]


def read_gray(path: str) -> np.ndarray:
    """Decode an image as grey levels -> uint8 (h, w)."""
    return _decode(path, cv2.IMREAD_GRAYSCALE)


def read_label(path: str) -> np.ndarray:
    """Parsing labels -> uint8 (h, w) with values 0..13.

    Grey images hold the class index; palette images hold it as the palette index (decoding
    them to colours would destroy it); RGB images are accepted only when the three channels agree.
    """
    data = _read_bytes(path)
    _check_complete(data, path)
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 25 and data[24] == 8 and data[25] == 0:
        # 8-bit grey PNG (byte 24: bit depth, 25: colour type), the usual case: OpenCV is
        # several times faster than PIL here.
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if array is None:
            raise DatasetError(f"{path}: not a readable label image")
        return _check_labels(array, path)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            mode = image.mode
            array = np.array(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise DatasetError(f"{path}: not a readable label image ({error})") from None
    if array.ndim == 3:
        if array.shape[2] == 4:
            array = array[:, :, :3]
        if not (np.array_equal(array[:, :, 0], array[:, :, 1])
                and np.array_equal(array[:, :, 0], array[:, :, 2])):
            raise DatasetError(f"{path}: label image in mode {mode} has differing colour "
                               f"channels; expected one class index per pixel (grey or palette)")
        array = array[:, :, 0]
    return _check_labels(array, path)


def _check_labels(array: np.ndarray, path: str) -> np.ndarray:
    if array.ndim != 2:
        raise DatasetError(f"{path}: label image has shape {array.shape}; expected (H, W)")
    if int(array.max()) >= NUM_LABELS or int(array.min()) < 0:
        bad = np.unique(array[(array >= NUM_LABELS) | (array < 0)])[:8].tolist()
        raise DatasetError(f"{path}: label values {bad} outside the parsing scheme 0..13")
    return array.astype(np.uint8, copy=False)


_NPY_HEADER = re.compile(r"\{'descr': '([<>|]?[a-z]\d+)', 'fortran_order': False, "
                         r"'shape': \((\d+), (\d+)\), \}")


def _load_npy(path: str) -> np.ndarray:
    """np.load, with the common case (a C-ordered 2-D array) read without parsing the header
    as Python (np.load's literal_eval costs more than reading a 256x192 array)."""
    data = _read_bytes(path)
    if data[:6] == b"\x93NUMPY" and data[6] == 1 and len(data) > 10:
        length = int.from_bytes(data[8:10], "little")
        match = _NPY_HEADER.match(data[10:10 + length].decode("latin1"))
        if match:
            dtype = np.dtype(match.group(1))
            shape = (int(match.group(2)), int(match.group(3)))
            body = data[10 + length:]
            if len(body) != shape[0] * shape[1] * dtype.itemsize:
                raise DatasetError(f"{path}: truncated .npy file ({len(body)} bytes of data "
                                   f"for shape {shape} {dtype})")
            return np.frombuffer(body, dtype).reshape(shape)
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DatasetError(f"{path}: not a readable .npy array ({error})") from None


def read_densepose(path: str) -> np.ndarray:
    """DensePose part index -> uint8 (h, w) with values 0..24."""
    array = _load_npy(path)
    if array.ndim != 2:
        raise DatasetError(f"{path}: DensePose array has shape {tuple(array.shape)}; "
                           f"expected (H, W) part indices")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
            or array.dtype == np.bool_):
        raise DatasetError(f"{path}: DensePose array has dtype {array.dtype}; expected numbers")
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise DatasetError(f"{path}: DensePose values are not whole part indices")
    low, high = array.min(), array.max()
    if low < 0 or high > NUM_DENSEPOSE_PARTS - 1:
        raise DatasetError(f"{path}: DensePose values range {low:g}..{high:g}, outside 0..24")
    return array.astype(np.uint8)


def read_keypoints(path: str) -> np.ndarray:
    """OpenPose JSON -> float64 (18, 3); DatasetError on malformed files."""
    try:
        return read_openpose(path)
    except PoseFileError as error:
        raise DatasetError(str(error)) from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ({error.strerror or error})") from None


# ---------------------------------------------------------------------------------------------
# Conversions


def resize_photo(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def resize_nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of labels, masks and DensePose (pixel-centre sampling)."""
    if array.shape[:2] == (height, width):
        return array
    return cv2.resize(array, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)


def photo_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (h, w, 3) RGB -> float32 (3, h, w) in [-1, 1] (x / 255 * 2 - 1)."""
    chw = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    return chw.to(torch.float32).div_(127.5).sub_(1.0)


def edge_tensor(edge: np.ndarray) -> torch.Tensor:
    """uint8 (h, w) grey mask -> float32 (1, h, w) in {0, 1}: value / 255 > 0.5."""
    return torch.from_numpy(np.ascontiguousarray(edge > EDGE_THRESHOLD)).to(torch.float32)[None]


def person_id(name: str) -> str:
    """``000003_0.jpg`` -> ``000003``; a name without the ``_0``/``_1`` suffix is its own id."""
    stem = os.path.splitext(os.path.basename(name))[0]
    if len(stem) > 2 and stem[-2] == "_" and stem[-1] in "01":
        return stem[:-2]
    return stem


def _list_folder(folder: str) -> dict:
    """Map stem -> file name for the files of ``folder``."""
    files = {}
    for name in os.listdir(folder):
        if name.startswith("."):
            continue
        stem, _ = os.path.splitext(name)
        files.setdefault(stem, name)
    return files


def _require_folder(root: str, name: str) -> str:
    folder = os.path.join(root, name)
    if not os.path.isdir(folder):
        raise DatasetError(f"{folder}: missing folder (expected in {root})")
    return folder


def _report_missing(missing: list, total: int, what: str, limit: int = 5) -> None:
    if not missing:
        return
    shown = "; ".join(missing[:limit])
    more = f"; and {len(missing) - limit} more" if len(missing) > limit else ""
    raise DatasetError(f"{len(missing)} of {total} {what} lack files: {shown}{more}")


def read_pairs(path: str) -> list:
    """A pairs file -> list of (person_name, cloth_name), one ``person cloth`` per line."""
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: pairs file not found")
    pairs = []
    with open(path, "r") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise DatasetError(f"{path}, line {number}: expected 'person.jpg cloth.jpg', "
                                   f"got {line.strip()!r}")
            pairs.append((fields[0], fields[1]))
    if not pairs:
        raise DatasetError(f"{path}: pairs file has no pairs")
    return pairs


def _resolve(root: str, name: Optional[str]) -> Optional[str]:
    if name is None:
        return None
    return name if os.path.isabs(name) else os.path.join(root, name)


# ---------------------------------------------------------------------------------------------
# Training set


def _mix64(value: int) -> int:
    """SplitMix64's finaliser: a 64-bit hash whose low bits are well mixed. Hashing
    (seed, epoch, index) gives a reproducible draw per sample at the cost of a few integer
    operations (a seeded numpy Generator per item costs ~0.3 ms)."""
    mask = (1 << 64) - 1
    value = (value + 0x9E3779B97F4A7C15) & mask
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & mask
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & mask
    return value ^ (value >> 31)


class VitonTrainDataset(torch.utils.data.Dataset):
    """Parser-based training samples of a VITON_traindata folder.

    Args:
        root: the folder holding train_img/, train_color/, ...
        height, width: size every sample is returned at (other sizes are resized).
        pairs_file: ``person.jpg cloth.jpg`` lines; a name inside ``root`` or an absolute path.
            Default: ``train_pairs.txt`` in ``root`` when present, else every photo of train_img.
        seed: base of the unpaired-garment draw.

    Each item is a dict of CPU tensors:
        id: str; image: float32 (3, H, W) in [-1, 1]; garment: (3, H, W) in [-1, 1], not masked;
        garment_edge: float32 (1, H, W) in {0, 1}; unpaired_garment, unpaired_garment_edge: the
        same for another sample's garment; label: int64 (H, W) raw parsing labels 0..13 (7 not
        merged); densepose: int64 (H, W) in 0..24; keypoints: float32 (18, 3) x, y, confidence
        in pixels of the (H, W) image.

    The unpaired garment is drawn uniformly among the other samples from an RNG seeded with
    (seed, epoch, index), so it does not depend on global random state, worker or rank. Call
    ``set_epoch`` each epoch (with ``persistent_workers=True`` workers keep the epoch they
    were started with).
    """

    folders = ("train_img", "train_color", "train_edge", "train_label", "train_pose",
               "train_densepose")

    def __init__(self, root: str, height: int = 256, width: int = 192,
                 pairs_file: Optional[str] = None, seed: int = 0):
        self.root = root
        self.height = int(height)
        self.width = int(width)
        self.seed = int(seed)
        self.epoch = 0
        if not os.path.isdir(root):
            raise DatasetError(f"{root}: dataset folder not found")
        dirs = {name: _require_folder(root, name) for name in self.folders}
        listing = {name: _list_folder(path) for name, path in dirs.items()}

        if pairs_file is None and os.path.isfile(os.path.join(root, "train_pairs.txt")):
            pairs_file = "train_pairs.txt"
        self.pairs_file = _resolve(root, pairs_file)
        if self.pairs_file is not None:
            pairs = read_pairs(self.pairs_file)
        else:
            photos = sorted(name for stem, name in listing["train_img"].items()
                            if name.lower().endswith(IMAGE_EXTENSIONS))
            if not photos:
                raise DatasetError(f"{dirs['train_img']}: no person photos")
            pairs = []
            for name in photos:
                stem = os.path.splitext(name)[0]
                garment_stem = stem[:-2] + "_1" if stem.endswith("_0") else stem
                pairs.append((name, garment_stem))

        self.samples = []
        missing = []
        for person_name, cloth_name in pairs:
            stem = os.path.splitext(person_name)[0]
            cloth_stem = os.path.splitext(cloth_name)[0] if cloth_name.lower().endswith(
                IMAGE_EXTENSIONS) else cloth_name
            wanted = {
                "image": ("train_img", stem, person_name),
                "garment": ("train_color", cloth_stem, cloth_stem + ".jpg"),
                "garment_edge": ("train_edge", cloth_stem, cloth_stem + ".jpg"),
                "label": ("train_label", stem, stem + ".png"),
                "pose": ("train_pose", stem + "_keypoints", stem + "_keypoints.json"),
                "densepose": ("train_densepose", stem, stem + ".npy"),
            }
            sample = {"id": person_id(person_name)}
            lacking = []
            for key, (folder, file_stem, expected) in wanted.items():
                found = listing[folder].get(file_stem)
                # The photo, keypoints and DensePose must have exactly their names; garments
                # and labels may use any image extension.
                if key in ("image", "pose", "densepose") and found != expected:
                    found = expected if os.path.isfile(os.path.join(dirs[folder], expected)) else None
                if found is None:
                    lacking.append(f"{folder}/{expected}")
                else:
                    sample[key] = os.path.join(dirs[folder], found)
            if lacking:
                missing.append(f"{sample['id']}: " + ", ".join(lacking))
            else:
                self.samples.append(sample)
        _report_missing(missing, len(pairs), "samples", limit=5)

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Select the unpaired garments of ``epoch``."""
        self.epoch = int(epoch)

    def unpaired_index(self, index: int, epoch: Optional[int] = None) -> int:
        """Index of the sample whose garment is ``index``'s unpaired garment in ``epoch``."""
        count = len(self.samples)
        if count == 1:
            return 0
        epoch = self.epoch if epoch is None else epoch
        other = _mix64(_mix64(_mix64(self.seed) ^ epoch) ^ index) % (count - 1)
        return other + 1 if other >= index else other

    def _garment(self, sample: dict) -> tuple:
        garment = read_rgb(sample["garment"])
        edge = read_gray(sample["garment_edge"])
        if edge.shape != garment.shape[:2]:
            raise DatasetError(f"{sample['garment_edge']}: size {edge.shape[1]}x{edge.shape[0]} "
                               f"differs from its garment {sample['garment']} "
                               f"({garment.shape[1]}x{garment.shape[0]})")
        garment = resize_photo(garment, self.height, self.width)
        # Threshold before resizing so a nearest resize keeps the mask binary.
        edge = resize_nearest((edge > EDGE_THRESHOLD).astype(np.uint8), self.height, self.width)
        return photo_tensor(garment), torch.from_numpy(edge).to(torch.float32)[None]

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        image = read_rgb(sample["image"])
        original = image.shape[:2]
        label = read_label(sample["label"])
        densepose = read_densepose(sample["densepose"])
        for key, array in (("label", label), ("densepose", densepose)):
            if array.shape != original:
                raise DatasetError(f"{sample[key]}: size {array.shape[1]}x{array.shape[0]} "
                                   f"differs from the person photo {sample['image']} "
                                   f"({original[1]}x{original[0]})")
        keypoints = read_keypoints(sample["pose"])
        if original != (self.height, self.width):
            keypoints = scale_keypoints(keypoints, self.width / original[1],
                                        self.height / original[0])
            image = resize_photo(image, self.height, self.width)
            label = resize_nearest(label, self.height, self.width)
            densepose = resize_nearest(densepose, self.height, self.width)
        garment, garment_edge = self._garment(sample)
        unpaired = self.samples[self.unpaired_index(index)]
        unpaired_garment, unpaired_edge = self._garment(unpaired)
        return {
            "id": sample["id"],
            "image": photo_tensor(image),
            "garment": garment,
            "garment_edge": garment_edge,
            "unpaired_garment": unpaired_garment,
            "unpaired_garment_edge": unpaired_edge,
            "label": torch.from_numpy(label).to(torch.int64),
            "densepose": torch.from_numpy(densepose).to(torch.int64),
            "keypoints": torch.from_numpy(keypoints).to(torch.float32),
        }


# ---------------------------------------------------------------------------------------------
# Test set


class VitonTestDataset(torch.utils.data.Dataset):
    """Person/garment pairs of a VITON_test folder (parser-free: photos and garments only).

    Args:
        root: folder with test_img/, test_clothes/ (or test_color/), test_edge/.
        pairs_file: ``person.jpg cloth.jpg`` lines, a name inside ``root`` or an absolute path
            (``test_pairs.txt``: unpaired; ``test_pairs_same.txt``: paired).
        height, width: size every sample is returned at.

    Each item: image (3, H, W) in [-1, 1] (the ground truth when paired), garment (3, H, W) in
    [-1, 1] not masked, garment_edge (1, H, W) in {0, 1}, person_name, cloth_name,
    paired (cloth id == person id), original_size (h, w) of the person photo.
    """

    def __init__(self, root: str, pairs_file: str = "test_pairs.txt", height: int = 256,
                 width: int = 192):
        self.root = root
        self.height = int(height)
        self.width = int(width)
        if not os.path.isdir(root):
            raise DatasetError(f"{root}: dataset folder not found")
        self.image_dir = _require_folder(root, "test_img")
        clothes = [name for name in ("test_clothes", "test_color")
                   if os.path.isdir(os.path.join(root, name))]
        if not clothes:
            raise DatasetError(f"{os.path.join(root, 'test_clothes')}: missing folder "
                               f"(neither test_clothes/ nor test_color/ in {root})")
        self.cloth_dir = os.path.join(root, clothes[0])
        self.edge_dir = _require_folder(root, "test_edge")
        self.pairs_file = _resolve(root, pairs_file)
        self.pairs = read_pairs(self.pairs_file)

        images = set(os.listdir(self.image_dir))
        cloths = set(os.listdir(self.cloth_dir))
        edges = set(os.listdir(self.edge_dir))
        missing = []
        for person_name, cloth_name in self.pairs:
            lacking = []
            if person_name not in images:
                lacking.append(f"test_img/{person_name}")
            if cloth_name not in cloths:
                lacking.append(f"{clothes[0]}/{cloth_name}")
            if cloth_name not in edges:
                lacking.append(f"test_edge/{cloth_name}")
            if lacking:
                missing.append(f"{person_name} {cloth_name}: " + ", ".join(lacking))
        _report_missing(missing, len(self.pairs), f"pairs of {self.pairs_file}", limit=5)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        person_name, cloth_name = self.pairs[index]
        image = read_rgb(os.path.join(self.image_dir, person_name))
        original = image.shape[:2]
        garment_path = os.path.join(self.cloth_dir, cloth_name)
        edge_path = os.path.join(self.edge_dir, cloth_name)
        garment = read_rgb(garment_path)
        edge = read_gray(edge_path)
        if edge.shape != garment.shape[:2]:
            raise DatasetError(f"{edge_path}: size {edge.shape[1]}x{edge.shape[0]} differs from "
                               f"its garment {garment_path} ({garment.shape[1]}x{garment.shape[0]})")
        image = resize_photo(image, self.height, self.width)
        garment = resize_photo(garment, self.height, self.width)
        edge = resize_nearest((edge > EDGE_THRESHOLD).astype(np.uint8), self.height, self.width)
        return {
            "image": photo_tensor(image),
            "garment": photo_tensor(garment),
            "garment_edge": torch.from_numpy(edge).to(torch.float32)[None],
            "person_name": person_name,
            "cloth_name": cloth_name,
            "paired": person_id(person_name) == person_id(cloth_name),
            "original_size": (int(original[0]), int(original[1])),
        }


def find_pairs_files(root: str) -> Sequence[str]:
    """Names of the pairs files (``*pairs*.txt``) directly inside ``root``."""
    return sorted(name for name in os.listdir(root)
                  if name.endswith(".txt") and "pairs" in name)
