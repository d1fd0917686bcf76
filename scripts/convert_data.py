"""Rewrite what outside tools produce into the VITON formats, one folder at a time.

    python scripts/convert_data.py labels --src SCHP_OUT --out VITON_traindata/train_label \\
        --scheme cihp [--neck skin]
    python scripts/convert_data.py pose --src POSE_OUT --out VITON_traindata/train_pose \\
        [--format auto] [--images VITON_traindata/train_img | --image_size 1024x768]
    python scripts/convert_data.py densepose --src DENSE_OUT \\
        --out VITON_traindata/train_densepose [--iuv_channel b]

labels     parsing images (grey, palette, or RGB with equal channels) of the LIP, CIHP or ATR
           scheme -> grey PNGs of the 14-class scheme, same stem, extension .png.
pose       keypoint JSON (OpenPose COCO-18 / BODY_25 / COCO-17, mmpose / RTMPose / DWPose
           predictions, DressCode) -> OpenPose COCO-18 JSON (``pose_keypoints``) named
           ``{photo stem}_keypoints.json``. The photo stem of an input file:
             ``X_keypoints.json``             -> X (OpenPose's own naming);
             ``X_2.json`` holding DressCode keypoints -> ``X_0`` (DressCode numbers the files
                                               of one person: _0 photo, _2 keypoints);
             ``results_X.json`` holding mmpose predictions -> X (the mmpose demos' naming);
             any other ``X.json``             -> X (MMPoseInferencer names files by the photo).
           DressCode keypoints are in a 512x384 frame (height x width): the photo's size
           comes from --images (the photo ``{photo stem}.*`` there) or --image_size HxW.
densepose  part-index maps (.npy, grey / palette PNG, IUV PNG with I in --iuv_channel)
           -> uint8 .npy (H, W) in 0..24, same stem.

Each file is written to a temporary name and renamed, so a failure leaves no partial file. A
file --out already holds is kept (said in the summary); --overwrite replaces it.
Problems are reported per file, by name; the exit status is 1 when any file failed.
"""

import argparse
import io
import json
import os
import re
import sys
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from common.atomic import write_bytes_atomic  # noqa: E402
from common.cli import HelpFormatter  # noqa: E402
from common.errors import UserError, exit_on_user_error  # noqa: E402
from common.results import check_output_folder  # noqa: E402
from data.alpha import shown_size  # noqa: E402
from data.datasets import add_max_megapixels_argument  # noqa: E402
from data.densepose import DENSEPOSE_EXTENSIONS, IUV_CHANNELS, read_densepose_file  # noqa: E402
from data.files import (  # noqa: E402
    IMAGE_EXTENSIONS,
    DatasetError,
    read_image_bytes,
)
from data.labels import LABEL_SCHEMES, NECK_CHOICES, NECK_HELP, LabelError, read_label_map  # noqa: E402
from data.pose import POSE_FORMATS, PoseFileError, is_dresscode_document, load_json, parse_keypoints  # noqa: E402

MAX_LISTED = 20
_DRESSCODE_KEYPOINTS = re.compile(r"^(.+)_2$")


class ConversionError(UserError, ValueError):
    """A file that cannot be converted; the message names it."""


def parse_image_size(text: str):
    """"1024x768" -> (1024, 768) as (H, W)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or int(match.group(1)) == 0 or int(match.group(2)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HxW, e.g. 1024x768")
    return int(match.group(1)), int(match.group(2))


# ---------------------------------------------------------------------------------------------
# One file each: input path -> (output name, bytes)


def convert_label_file(path: str, scheme: str, neck: str, max_pixels: Optional[int] = None):
    """A parsing image of ``scheme`` -> ("{stem}.png", 8-bit grey PNG bytes of labels 0..13)."""
    labels = read_label_map(path, scheme, neck, max_pixels)
    ok, encoded = cv2.imencode(".png", labels)
    if not ok:
        raise ConversionError(f"{path}: could not encode the converted labels as PNG")
    return os.path.splitext(os.path.basename(path))[0] + ".png", encoded.tobytes()


def photo_stem(name: str, description: str) -> str:
    """The person photo's stem of a keypoint file (naming rules: module docstring)."""
    stem = os.path.splitext(name)[0]
    if stem.endswith("_keypoints"):
        return stem[: -len("_keypoints")]
    if description.startswith("dresscode"):
        match = _DRESSCODE_KEYPOINTS.match(stem)
        if match:
            return match.group(1) + "_0"
    if description.startswith("mmpose") and stem.startswith("results_") and len(stem) > 8:
        return stem[len("results_"):]
    return stem


def find_photo(images: str, stem: str):
    """The file ``stem.<image extension>`` in ``images``, or None."""
    for extension in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
        candidate = os.path.join(images, stem + extension)
        if os.path.isfile(candidate):
            return candidate
    return None


def openpose_document(keypoints: np.ndarray, key: str = "pose_keypoints") -> dict:
    """Keypoints (K, 3) as an OpenPose JSON document with one person under ``key``."""
    flat = [float(v) for v in np.asarray(keypoints, dtype=np.float64).reshape(-1)]
    return {"version": 1.0, "people": [{key: flat}]}


NOBODY = ("hold no person (or no point above --min_score): written with every keypoint at zero, "
          "so their pose maps are empty")


def convert_pose_file(path: str, pose_format: str, images, image_size, min_score: float,
                      formats: Optional[set] = None):
    """A keypoint JSON file -> ("{photo stem}_keypoints.json", OpenPose JSON bytes holding the
    18 COCO-18 (x, y, confidence) in the photo's pixels under ``pose_keypoints``, and the note
    NOBODY for a file without a person, whose points are all written as zero). ``formats``
    collects the description of each file's format."""
    document = load_json(path)
    size = None
    if pose_format == "dresscode" or (pose_format == "auto" and is_dresscode_document(document)):
        # DressCode's keypoints are in a 512x384 frame (height x width): the photo's size
        # scales them.
        size = image_size
        if images is not None:
            stem = photo_stem(os.path.basename(path), "dresscode")
            photo = find_photo(images, stem)
            if photo is None:
                raise ConversionError(f"{path}: DressCode keypoints need the photo's size; no "
                                      f"photo {stem}.* in {images}")
            try:
                size = shown_size(read_image_bytes(photo))   # turned as the readers turn it
            except (OSError, DatasetError) as error:
                raise ConversionError(f"{path}: cannot read the size of its photo {photo} "
                                      f"({error})") from None
        if size is None:
            raise ConversionError(f"{path}: DressCode keypoints are in a 512x384 frame (height "
                                  f"x width); pass --images DIR or --image_size HxW for the "
                                  f"photo's size")
    keypoints, description = parse_keypoints(document, path, size, pose_format, min_score)
    if formats is not None:
        formats.add(description)
    stem = photo_stem(os.path.basename(path), description)
    text = json.dumps(openpose_document(keypoints, "pose_keypoints"))
    return (f"{stem}_keypoints.json", text.encode("utf-8"),
            None if np.any(keypoints[:, 2] > 0) else NOBODY)


def convert_densepose_file(path: str, iuv_channel: str, converted: Optional[set] = None,
                           max_pixels: Optional[int] = None):
    """A DensePose file -> ("{stem}.npy", .npy bytes of a uint8 (H, W) array in 0..24);
    ``converted`` collects the paths converted."""
    parts = read_densepose_file(path, iuv_channel, max_pixels)
    if converted is not None:
        converted.add(path)
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(parts, dtype=np.uint8), allow_pickle=False)
    return os.path.splitext(os.path.basename(path))[0] + ".npy", buffer.getvalue()


# ---------------------------------------------------------------------------------------------


def convert_folder(src: str, out: str, extensions, convert, what: str, stream=None,
                   overwrite: bool = False) -> int:
    """Convert every file of ``src`` whose extension is in ``extensions`` into ``out``; a file
    ``out`` already holds is kept unless ``overwrite``.

    ``convert(path) -> (output name, bytes)`` or ``(output name, bytes, note)``: the files
    written with the same note are named on one ``NOTE`` line. Returns the exit status: 0 when
    every file was converted, 1 when some failed (each named on its ``ERROR`` line). A missing
    ``src``, nothing to convert, or an ``out`` that cannot be written or would overwrite the
    inputs is a ``UserError`` raised before anything is written.
    """
    stream = stream or sys.stdout
    if not os.path.isdir(src):
        raise ConversionError(f"--src {src}: folder not found")
    names = sorted(name for name in os.listdir(src)
                   if not name.startswith(".") and os.path.isfile(os.path.join(src, name)))
    inputs = [name for name in names if os.path.splitext(name)[1].lower() in extensions]
    skipped = len(names) - len(inputs)
    if not inputs:
        raise ConversionError(f"--src {src}: no {what} files ({', '.join(extensions)}); "
                              f"{skipped} other files")
    # Outputs keep their inputs' stems: a folder that is (or, through a link, resolves to) the
    # sources', or lies inside it, would overwrite or mix with them.
    check_output_folder(out, "--out", inputs=(src,))
    written, notes, kept = 0, {}, []
    claimed = {}   # output name -> the input it comes from, written or kept
    failures = []
    for name in inputs:
        path = os.path.join(src, name)
        try:
            out_name, data, *note = convert(path)
            if out_name in claimed:
                raise ConversionError(f"{path}: would write {out_name}, already written from "
                                      f"{claimed[out_name]}")
            claimed[out_name] = path
            if os.path.lexists(os.path.join(out, out_name)) and not overwrite:
                kept.append(out_name)   # a file of the user's, or of an earlier run
                continue
            write_bytes_atomic(os.path.join(out, out_name), data)
            written += 1
            if note and note[0]:
                notes.setdefault(note[0], []).append(name)
            continue
        except (ConversionError, DatasetError, LabelError, PoseFileError) as error:
            failures.append(str(error))
        except OSError as error:
            failures.append(f"{path}: {error.strerror or error}")
        if len(failures) <= MAX_LISTED:
            print(f"ERROR {failures[-1]}", file=stream)
    if len(failures) > MAX_LISTED:
        print(f"... and {len(failures) - MAX_LISTED} more errors", file=stream)
    if kept:
        notes[f"already in {out}, kept (--overwrite replaces them)"] = kept
    for note, names in notes.items():
        more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
        print(f"NOTE {len(names)} file(s) {note}: {', '.join(names[:MAX_LISTED])}{more}",
              file=stream)
    print(f"{what}: converted {written} of {len(inputs)} files from {src} to {out}; "
          f"{len(failures)} failed; {skipped} other files skipped"
          + (f"; {len(kept)} kept" if kept else ""), file=stream)
    return 1 if failures else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=HelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    labels = commands.add_parser("labels", help="parsing of another scheme -> 14-class grey PNGs",
                                  formatter_class=HelpFormatter)
    labels.add_argument("--src", required=True, help="folder of parsing images")
    labels.add_argument("--out", required=True, help="folder for the grey PNGs (created)")
    labels.add_argument("--scheme", required=True, choices=LABEL_SCHEMES,
                        help="scheme of the source labels (viton: check and rewrite as grey)")
    labels.add_argument("--neck", default="skin", choices=NECK_CHOICES, help=NECK_HELP)

    pose = commands.add_parser("pose", help="keypoint files -> OpenPose COCO-18 JSON",
                                formatter_class=HelpFormatter)
    pose.add_argument("--src", required=True, help="folder of keypoint JSON files")
    pose.add_argument("--out", required=True, help="folder for {stem}_keypoints.json (created)")
    pose.add_argument("--format", default="auto", choices=POSE_FORMATS,
                      help="format of the inputs; auto: by structure and point count")
    size = pose.add_mutually_exclusive_group()
    size.add_argument("--images", default=None,
                      help="folder of the person photos (DressCode keypoints: the photo's size)")
    size.add_argument("--image_size", default=None, type=parse_image_size,
                      help="HxW of every photo, instead of --images (DressCode keypoints)")
    pose.add_argument("--min_score", type=float, default=0.0,
                      help="COCO-17 points scoring at most this are dropped (0: keep any "
                           "positive score)")

    dense = commands.add_parser("densepose", help="part-index maps -> uint8 .npy",
                                 formatter_class=HelpFormatter)
    dense.add_argument("--src", required=True, help="folder of .npy / .png part-index maps")
    dense.add_argument("--out", required=True, help="folder for the .npy files (created)")
    dense.add_argument("--iuv_channel", default="b", choices=IUV_CHANNELS,
                       help="channel of I in IUV PNGs (b: DensePose's IUV files, written in "
                            "OpenCV's BGR order)")
    for command in (labels, pose, dense):
        command.add_argument("--overwrite", action="store_true",
                             help="replace the files --out already holds (kept otherwise)")
    for command in (labels, dense):
        add_max_megapixels_argument(command)
    args = parser.parse_args(argv)
    if args.command == "labels" and args.neck != "skin" and args.scheme != "cihp":
        parser.error(f"--neck {args.neck}: only CIHP parsing has a neck class, not {args.scheme}")
    with exit_on_user_error():
        return convert(args)


def convert(args) -> int:
    if args.command == "labels":
        return convert_folder(args.src, args.out, IMAGE_EXTENSIONS,
                              lambda path: convert_label_file(path, args.scheme, args.neck,
                                                              int(args.max_megapixels * 1e6)),
                              "labels", overwrite=args.overwrite)
    if args.command == "pose":
        if args.images is not None and not os.path.isdir(args.images):
            raise ConversionError(f"--images {args.images}: folder not found")
        formats = set()
        status = convert_folder(args.src, args.out, (".json",),
                                lambda path: convert_pose_file(path, args.format, args.images,
                                                               args.image_size, args.min_score,
                                                               formats), "pose",
                                overwrite=args.overwrite)
        note_unused([("--min_score", args.min_score != 0, ("COCO-17", "COCO-WholeBody")),
                     ("--images", args.images is not None, ("dresscode",)),
                     ("--image_size", args.image_size is not None, ("dresscode",))], formats)
        return status
    paths = set()
    status = convert_folder(args.src, args.out, DENSEPOSE_EXTENSIONS,
                            lambda path: convert_densepose_file(path, args.iuv_channel, paths,
                                                                int(args.max_megapixels * 1e6)),
                            "densepose", overwrite=args.overwrite)
    note_unused([("--iuv_channel", args.iuv_channel != "b", (".png",))],
                {os.path.splitext(path)[1].lower() for path in paths})
    return status


def note_unused(flags, seen: set) -> None:
    """A NOTE for each flag (name, given, the formats it is for) that no converted file's
    format (``seen``) used: it did nothing."""
    for flag, given, used_by in flags:
        if given and seen and not any(word in kind for kind in seen for word in used_by):
            print(f"NOTE {flag} was not used: no file here is {' or '.join(used_by)} (they are "
                  f"{', '.join(sorted(seen))})")


if __name__ == "__main__":
    sys.exit(main())
