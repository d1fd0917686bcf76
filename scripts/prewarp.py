"""Pre-warped garments, the input diffusion try-on models such as DCI-VTON take: for every pair
of a split, the garment warped onto the person and its warped mask, by any warp of the zoo.

    python scripts/prewarp.py --dataroot VITON-HD --dataset vitonhd --phase test \\
        --pairs both --warp_checkpoint warp_viton.pth --height 512

writes, inside each split's folder (or --out), ``cloth-warp/NAME.jpg`` and
``cloth-warp-mask/NAME.jpg`` for paired pairs (each person with their own garment) and
``unpaired-cloth-warp/`` and ``unpaired-cloth-warp-mask/`` for unpaired ones, NAME the person
photo's stem: 8-bit images of the warped garment ((x + 1) / 2 x 255, truncated) and of its
mask (x 255), at --height (width from the photos' aspect). Existing files are kept unless
--overwrite is given; ``prewarps.json`` beside the folders records which warp writes each
kind, so that a run with another warp file or frame does not mix its pictures with another's,
and ``run.lock`` there keeps a second run out while one writes.

The warp decides what is read: DCI-VTON's warp (``warp_viton.pth``) takes VITON-HD's
``image-parse-agnostic-v3.2/`` labels and ``image-densepose/`` rendering, as its own test
script reads them; a parser-based teacher the parsing, keypoints and DensePose the dataset
has; a parser-free student (PF-AFN, FS-VTON, DM-VTON, this project's) only the person photo,
so photos without any parsing can be pre-warped.
"""

import argparse
import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from tqdm import tqdm  # noqa: E402

from common.atomic import remove_stale_temporaries, write_bytes_atomic  # noqa: E402
from common.cli import HelpFormatter, given_on_command_line  # noqa: E402
from common.devices import pick_device  # noqa: E402
from common.errors import UserError, exit_on_user_error  # noqa: E402
from common.images import quantise, write_image  # noqa: E402
from data.datasets import (  # noqa: E402
    PARSING_FLAGS,
    DataOptions,
    add_data_arguments,
    layout,
    prepared_masks,
    unused_iuv_channel,
)
from data.files import DatasetError  # noqa: E402
from data.prewarp import PrewarpDataset, split_folder  # noqa: E402
from models import MAX_SIDE, SIZE_MULTIPLE  # noqa: E402
from models.registry import families, types_of  # noqa: E402
from utils.inference.prewarp import RELEASE_WARP_SIZE, load_prewarp_model  # noqa: E402
from utils.metrics.images import image_size  # noqa: E402
from utils.training.run_lock import run_folder_lock  # noqa: E402
from utils.weights import file_sha256  # noqa: E402

# Output folders per kind of pair: (garment, mask).
FOLDERS = {"paired": ("cloth-warp", "cloth-warp-mask"),
           "unpaired": ("unpaired-cloth-warp", "unpaired-cloth-warp-mask")}
PHASES = ("train", "test")
# Beside the output folders: kind -> the warp that wrote its pre-warps (``warp_identity``).
RECORD = "prewarps.json"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--dataroot", required=True,
                   help="top folder of VITON-HD (holding train/ and test/) or DressCode")
    p.add_argument("--phase", default="test", choices=PHASES, help="which split to pre-warp")
    p.add_argument("--pairs", default="both", choices=("paired", "unpaired", "both"),
                   help="paired: each person with their own garment; unpaired: the split's "
                        "pairs file (VITON-HD's {phase}_pairs.txt, DressCode's "
                        "test_pairs_unpaired.txt)")
    p.add_argument("--warp_checkpoint", required=True,
                   help="the warp: a released file (DCI-VTON's warp_viton.pth, PF-AFN's, "
                        "FS-VTON's or DM-VTON's warp) or a checkpoint of this project")
    p.add_argument("--arch", default=None, choices=sorted({*types_of("warp"), *families()}),
                   help="architecture of a released plain state dict, when not recognised "
                        "from its keys: a warp type, or a family of test.py's --arch (its warp)")
    p.add_argument("--height", type=int, default=None,
                   help="height of the written images, the width following the photos' aspect "
                        "(when not given: the photos' own size)")
    p.add_argument("--warp_height", type=int, default=None,
                   help="height the warp runs at, the width following the photos' aspect (a "
                        "multiple of 32; when not given: the height the warp was trained at, "
                        f"{RELEASE_WARP_SIZE[0]} for a released file)")
    p.add_argument("--ext", default="jpg", choices=("jpg", "png"),
                   help="image format of the written files (JPEG at quality 95, as OpenCV's)")
    p.add_argument("--out", default=None,
                   help="folder for the four output folders (when not given: each split's or "
                        "category's own folder, beside image/)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--batch_size", type=int, default=8, help="pairs per forward pass")
    p.add_argument("--workers", type=int, default=2, help="data loading processes (0: none)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_data_arguments(p)
    p.set_defaults(dataset="vitonhd")
    return p


def split_samples(options: DataOptions, root: str, phase: str, pairs: str,
                  parser_inputs: bool) -> list:
    """The (person, garment) samples of ``phase`` (VITON-HD's train or test split; DressCode's
    train pairs or test pairs), paired or unpaired."""
    if options.dataset == "vitonhd":
        return layout("vitonhd").test_pairs(root, pairs, options.categories,
                                            options.densepose_dir, parser_inputs, split=phase)
    if options.dataset == "dresscode" and phase == "train":
        if pairs == "unpaired":
            raise DatasetError("DressCode's training pairs are paired only (train_pairs.txt)")
        pairs = "train"
    if options.dataset == "viton":
        raise DatasetError("--dataset viton: pre-warps are made for VITON-HD and DressCode "
                           "(diffusion try-on data); use vitonhd or dresscode")
    return layout(options.dataset).test_pairs(root, pairs, options.categories,
                                              options.densepose_dir, parser_inputs)


def limit(args) -> int:
    """The largest image read, in pixels (--max_megapixels)."""
    return DataOptions.from_config(args).max_pixels


def output_size(sample, args) -> tuple[int, int]:
    """(H, W) of ``sample``'s pre-warps: ``frame_size`` of its person photo."""
    height, width = frame_size(args.height, image_size(sample.person.image, limit(args)))
    if width > MAX_SIDE:   # --height bounds the height only; memory follows the width too
        raise UserError(f"{sample.person.image}: at --height {height} its aspect makes pre-warps "
                        f"{width} pixels wide, more than {MAX_SIDE}")
    return height, width


def frame_size(height: int | None, photo_size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of the written images: --height with the photo's aspect, or the photo's size."""
    photo_height, photo_width = photo_size
    if height is None:
        return photo_height, photo_width
    if not 0 < height <= MAX_SIDE:
        raise UserError(f"--height {height}: expected 1 to {MAX_SIDE} pixels")
    return height, max(1, round(height * photo_width / photo_height))


def warp_frame(warp_height: int, size: tuple[int, int],
               source: str = "--warp_height") -> tuple[int, int]:
    """(h, w) the warp runs at: ``warp_height`` and the aspect of ``size``, multiples of 32;
    ``source`` names where the height came from in errors."""
    if not 0 < warp_height <= MAX_SIDE or warp_height % SIZE_MULTIPLE:
        raise UserError(f"{source} {warp_height}: not a multiple of {SIZE_MULTIPLE} from "
                        f"{SIZE_MULTIPLE} to {MAX_SIDE}")
    width = max(SIZE_MULTIPLE, round(warp_height * size[1] / size[0] / SIZE_MULTIPLE)
                * SIZE_MULTIPLE)
    if width > MAX_SIDE:
        raise UserError(f"{source} {warp_height}: with the photos' aspect ({size[0]}x{size[1]}) "
                        f"the warp would run {width} pixels wide, more than {MAX_SIDE}")
    return warp_height, width


def output_paths(out_dir: str, kind: str, name: str, ext: str) -> tuple[Path, Path]:
    garment_folder, mask_folder = FOLDERS[kind]
    return (Path(out_dir) / garment_folder / f"{name}.{ext}",
            Path(out_dir) / mask_folder / f"{name}.{ext}")


def warp_identity(args, model, size: tuple[int, int]) -> dict:
    """What decides the pictures a run writes: the warp file's content, the frame the warp runs
    at, and the pictures' size and format (``warp_file`` names it in messages only)."""
    return {"warp_sha256": file_sha256(args.warp_checkpoint), "warp_size": list(model.warp_size),
            "warp_file": os.path.basename(args.warp_checkpoint), "size": list(size),
            "ext": args.ext}


def same_warp(entry, identity: dict) -> bool:
    # A record of an older version has no size or ext: the size check of kept files stands in.
    return (isinstance(entry, dict) and not entry.get("replacing")
            and all(entry.get(key) == identity[key] for key in ("warp_sha256", "warp_size"))
            and all(entry.get(key, identity[key]) == identity[key] for key in ("size", "ext")))


def describe(entry) -> str:
    """A record's entry as a message names it."""
    try:
        made = (f"{entry['warp_file']} (sha256 {entry['warp_sha256'][:12]}...), warp frame "
                f"{entry['warp_size'][0]}x{entry['warp_size'][1]} (--warp_height)")
        if "size" in entry and "ext" in entry:
            made += f", .{entry['ext']} pictures of {entry['size'][0]}x{entry['size'][1]}"
    except (KeyError, TypeError, IndexError):
        return f"recorded as {str(entry)[:80]}"
    return made + (", whose --overwrite run did not finish" if entry.get("replacing") else "")


def read_record(folder: str) -> dict:
    """``folder``'s RECORD: kind -> the entry of the warp that wrote it (empty when none)."""
    path = Path(folder) / RECORD
    if not path.exists():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        record = None
    if not isinstance(record, dict):
        raise UserError(f"{path}: not the record of pre-warps this tool writes; pass "
                        f"--overwrite to write the pre-warps and the record anew")
    return record


def write_record(folder: str, kind: str, entry: Optional[dict]) -> None:
    """Set (None: drop) ``kind``'s entry of ``folder``'s RECORD; a damaged record is replaced."""
    try:
        record = read_record(folder)
    except UserError:
        record = {}
    record.pop(kind, None)
    if entry is not None:
        record[kind] = entry
    write_bytes_atomic(Path(folder) / RECORD, (json.dumps(record, indent=1) + "\n").encode())


def files_of(folder: str, kind: str) -> set[Path]:
    """The files in ``kind``'s two output folders of ``folder``, whoever wrote them, but for
    hidden ones (the temporaries of a write that was killed: ``remove_killed_writes``)."""
    return {path for sub in FOLDERS[kind] if (Path(folder) / sub).is_dir()
            for path in (Path(folder) / sub).iterdir()
            if path.is_file() and not path.name.startswith(".")}


def remove_killed_writes(folder: str, kind: str, ext: str) -> None:
    """The temporaries that writes of a killed run left in ``kind``'s folders (this run holds
    the folder's lock)."""
    for sub in FOLDERS[kind]:
        remove_stale_temporaries(Path(folder) / sub, ["*"], f".{ext}")


def obstructions(folder: str, kind: str, todo: list, args) -> None:
    """Refuse, before anything is written, a file where an output folder goes, or a folder
    where a pre-warp or the record goes."""
    record = Path(folder) / RECORD
    if record.exists() and not record.is_file():
        raise UserError(f"{record}: a folder where this tool keeps its record of pre-warps; "
                        f"move it away")
    for sub in FOLDERS[kind]:
        if (Path(folder) / sub).exists() and not (Path(folder) / sub).is_dir():
            raise UserError(f"{Path(folder) / sub}: a file where the {kind} pre-warps' folder "
                            f"goes; move it away, or write elsewhere (--out)")
    for sample in todo:
        for path in sample_outputs(sample, kind, args):
            if path.exists() and not path.is_file():
                raise UserError(f"{path}: not a file, where a pre-warp goes; move it away")


def sample_outputs(sample, kind: str, args) -> tuple[Path, Path]:
    """The two files this run writes for ``sample``."""
    return output_paths(args.out or split_folder(sample), kind, Path(sample.person.image).stem,
                        args.ext)


def unwritten(sample, kind: str, args) -> bool:
    """Whether this run writes ``sample``'s pre-warps: --overwrite, or one of them is missing."""
    return args.overwrite or not all(path.is_file() for path in sample_outputs(sample, kind, args))


def to_write(samples: list, kind: str, args) -> tuple[list, int]:
    """The samples whose outputs are missing (all with --overwrite), and how many are kept:
    kept files of another size than this run writes are an error (a folder of two sizes)."""
    todo = []
    for sample in samples:
        if unwritten(sample, kind, args):
            todo.append(sample)
            continue
        paths = sample_outputs(sample, kind, args)
        size = output_size(sample, args)
        for path in paths:
            height, width = image_size(path, limit(args))
            if (height, width) != size:
                raise UserError(f"{path}: an existing pre-warp of {height}x{width}, where this "
                                f"run writes {size[0]}x{size[1]}: pass --overwrite to replace "
                                f"the existing ones, or write elsewhere (--out)")
    return todo, len(samples) - len(todo)


def claim(folder: str, kind: str, identity: dict, args) -> Optional[dict]:
    """Before anything is written: refuse to keep or add to ``kind``'s pictures in ``folder``
    when its RECORD gives them to another warp (or to an --overwrite that did not finish) and
    some are there. Returns the entry found (None: none)."""
    entry = None if args.overwrite else read_record(folder).get(kind)
    if entry is not None and not same_warp(entry, identity) and files_of(folder, kind):
        raise UserError(f"{Path(folder) / FOLDERS[kind][0]}: its pre-warps were written by "
                        f"{describe(entry)}; this run's warp is {describe(identity)}: pass "
                        f"--overwrite to replace them, or write elsewhere (--out)")
    return entry


def mark(folder: str, kind: str, identity: dict, entry: Optional[dict], args) -> None:
    """Record the warp before the first picture is written, so that an interrupted run is
    known: an --overwrite as unfinished until ``settle``; files of a making no record gives
    (another tool's, an older version's) stay unrecorded."""
    if args.overwrite:
        write_record(folder, kind, {**identity, "replacing": True})
    elif entry is not None or not files_of(folder, kind):
        write_record(folder, kind, identity)


def settle(folder: str, kind: str, identity: dict, written: set[Path], args) -> None:
    """After an --overwrite: every pre-warp of the split's pairs is this warp's, and recorded
    so; files there that name no pair of the split (a photo since removed, the other --ext)
    are said and left as they are."""
    if args.overwrite:
        write_record(folder, kind, identity)
        others = sorted(files_of(folder, kind) - written)
        if others:
            print(f"{Path(folder)}: {len(others)} file(s) in the {kind} folders name no pair "
                  f"of this run (e.g. {others[0].relative_to(folder)}); left as they are")


def write_batch(batch: dict, warped, kind: str, args) -> None:
    garments = quantise(warped.garment).permute(0, 2, 3, 1).numpy()
    # The mask's 8 bits as DCI-VTON writes them: x 255, truncated.
    masks = (warped.mask.float().cpu().clamp(0, 1) * 255).to(torch.uint8)[:, 0].numpy()
    for index, name in enumerate(batch["name"]):
        out_dir = args.out or batch["out_dir"][index]
        garment_path, mask_path = output_paths(out_dir, kind, name, args.ext)
        write_image(garment_path, garments[index])
        write_image(mask_path, masks[index])


def kind_samples(model, kind: str, options: DataOptions, args) -> list:
    """The samples of ``kind`` ('paired' or 'unpaired'); an error when there are none."""
    samples = split_samples(options, args.dataroot, args.phase, kind,
                            parser_inputs=model.condition == "parser_based")
    if not samples:
        raise DatasetError(f"{args.dataroot}: no {kind} pairs in the {args.phase} split")
    prepared_masks(options, samples)   # mask flags that would do nothing refused, --rebuild_masks
    writers = {}
    for sample in samples:   # one garment's pre-warp replaced another's, and was kept as done
        path = sample_outputs(sample, kind, args)[0]
        if path in writers:
            raise DatasetError(f"{writers[path].person.image} is in two {kind} pairs (with "
                               f"{writers[path].garment.image} and {sample.garment.image}), "
                               f"and pre-warps are named by the person alone ({path.name}): "
                               f"list each person once")
        writers[path] = sample
    return samples


def plan_kind(kind: str, samples: list, args, identity: dict) -> dict:
    """What a run of ``kind`` writes, checked before anything of any kind is written: its
    samples, those to write, how many are kept, and the record's entry found in each output
    folder (``claim``)."""
    folders = sorted({args.out or split_folder(sample) for sample in samples})
    for folder in folders:
        obstructions(folder, kind, [sample for sample in samples
                                    if (args.out or split_folder(sample)) == folder], args)
    todo, kept = to_write(samples, kind, args)
    return {"kind": kind, "samples": samples, "todo": todo, "kept": kept,
            "found": {folder: claim(folder, kind, identity, args) for folder in folders}}


def check_one_size(plans: list, size: tuple[int, int], first: str, args) -> None:
    """Refuse, before anything is written, a photo to pre-warp whose output size differs from
    ``size``, that of the split's ``first`` photo: one run writes one size, at one warp frame."""
    for plan in plans:
        for sample in plan["todo"]:
            own = output_size(sample, args)
            if own != size:
                raise UserError(f"{sample.person.image}: its pre-warps would be {own[0]}x"
                                f"{own[1]}, where those of the split's first photo {first} are "
                                f"{size[0]}x{size[1]}: a run writes one size (its warp runs at "
                                f"one frame); bring the photos to one size")


def prewarp_kind(model, plan: dict, size: tuple[int, int], options: DataOptions, args,
                 identity: dict) -> None:
    """Write ``plan``'s pre-warps at ``size``, the record marked before the first and settled
    after."""
    kind, todo = plan["kind"], plan["todo"]
    if not todo:
        return
    folders = {args.out or split_folder(sample) for sample in todo}
    for folder in folders:
        remove_killed_writes(folder, kind, args.ext)
        mark(folder, kind, identity, plan["found"][folder], args)
    dataset = PrewarpDataset(todo, model.condition, size, model.warp_size, options)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=False,
                        num_workers=args.workers)
    for batch in tqdm(loader, desc=f"{kind} pre-warps", unit="batch",
                      disable=not sys.stderr.isatty()):
        write_batch(batch, model(batch), kind, args)
    written = {path for sample in plan["samples"] for path in sample_outputs(sample, kind, args)}
    for folder in folders:
        settle(folder, kind, identity, written, args)


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    with exit_on_user_error():
        if args.batch_size <= 0 or args.workers < 0:
            raise UserError("--batch_size must be positive and --workers at least 0")
        options = DataOptions.from_config(args)
        if not os.path.isfile(args.warp_checkpoint):
            what = "a folder, not a file" if os.path.isdir(args.warp_checkpoint) else "not found"
            raise UserError(f"--warp_checkpoint {args.warp_checkpoint}: {what}")
        if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
            raise UserError(f"--out {args.out}: a file, not a folder for the pre-warps")
        device = pick_device(args.device)
        kinds = ("paired", "unpaired") if args.pairs == "both" else (args.pairs,)
        first = split_samples(options, args.dataroot, args.phase, kinds[0], False)
        if not first:
            raise DatasetError(f"{args.dataroot}: no pairs in the {args.phase} split")
        size = output_size(first[0], args)
        arch = families()[args.arch].warp if args.arch in families() else args.arch
        frame = None if args.warp_height is None else warp_frame(args.warp_height, size)
        model = load_prewarp_model(args.warp_checkpoint, device, arch)
        model.warp_size = frame or warp_frame(model.warp.trained_size[0], size,
                                              f"{args.warp_checkpoint}: trained at height")
        unread = sorted(set(PARSING_FLAGS) & given_on_command_line(parser, argv))
        if unread and model.condition != "parser_based":   # they read parsing, pose, DensePose
            takes = {"photo": "the person photo", "dcivton": "DCI-VTON's condition files"}
            raise UserError(f"--{', --'.join(unread)}: for a parser-based warp's inputs; this "
                            f"warp takes {takes[model.condition]} and reads none of them")
        identity = warp_identity(args, model, size)
        samples = {kind: kind_samples(model, kind, options, args) for kind in kinds}
        if model.condition == "parser_based":
            every = [sample for kind in kinds for sample in samples[kind]]
            unused = unused_iuv_channel(options, every)
            if unused and "iuv_channel" in given_on_command_line(parser, argv):
                raise UserError(f"{unused}; leave it out")
            missing = sum(sample.person.densepose is None for sample in every)
            if missing:   # as training logs it: the teacher then sees DensePose channels empty
                print(f"{missing} of {len(every)} persons have no DensePose part indices "
                      f"(--densepose_dir): the teacher's DensePose channels are empty for them, "
                      f"hands placed near the wrist keypoints (data/inputs.py)")
        with ExitStack() as held:
            # One writing run at a time per output folder, from the record's check to its last
            # write; a folder this run writes nothing into (a read-only one) is not locked.
            writing = {args.out or split_folder(sample) for kind in kinds
                       for sample in samples[kind] if unwritten(sample, kind, args)}
            for folder in sorted(writing):
                held.enter_context(run_folder_lock(Path(folder), what="prewarp run",
                                                   advice="write elsewhere (--out)"))
            plans = [plan_kind(kind, samples[kind], args, identity) for kind in kinds]
            late = {args.out or split_folder(sample)
                    for plan in plans for sample in plan["todo"]} - writing
            if late:
                raise UserError(f"{min(late)}: pre-warps there went missing as this run "
                                f"started; run it again")
            check_one_size(plans, size, first[0].person.image, args)
            for plan in plans:
                prewarp_kind(model, plan, size, options, args, identity)
                print(f"{plan['kind']}: {len(plan['todo'])} pre-warps written" + (
                    f", {plan['kept']} existing kept (--overwrite replaces them)"
                    if plan["kept"] else ""))


def run_script() -> None:
    """``main`` as the command runs it: Ctrl-C is one line and status 130, not a traceback."""
    try:
        main()
    except KeyboardInterrupt:
        print("stopped by Ctrl-C: the pre-warps written so far stay, and the same command again "
              "finishes the run", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    run_script()
