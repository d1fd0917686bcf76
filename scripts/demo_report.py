"""Summarise a demo run (scripts/demo.sh): the students' paired SSIM beside the paste baseline
and the teacher's, each one's mean difference from the photo outside the worn garment, the
validation SSIM of every stage (a table and learning_curves.png), a contact sheet of unpaired
try-ons (person | garment | paste | each student), and the commands that use the demo's model.

    python scripts/demo_report.py --out demo_out --dataroot demo_out/data/VITON_test

``--write_pairs N`` writes the pairs the demo tests and scores instead (OUT/pairs);
``--write_teacher CHECKPOINT`` the teacher's try-ons of the paired pairs, which the report puts
beside the students'.
"""

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.cli import HelpFormatter  # noqa: E402
from common.errors import UserError, exit_on_user_error  # noqa: E402
from common.images import to_uint8  # noqa: E402
from common.results import result_name, write_result  # noqa: E402
from data.datasets import DataOptions, pair_samples  # noqa: E402
from data.files import DatasetError  # noqa: E402
from data.inputs import person_clothes_edge  # noqa: E402
from data.pairs import make_pairs_dataset  # noqa: E402
from data.samples import next_garments  # noqa: E402
from data.viton import PAIRS_FILES  # noqa: E402

# (label, results folder suffix under results/, run folder suffix, what it is)
STUDENTS = (("PF-AFN student", "", "PF-AFN's warp and Res-UNet generator"),
            ("FS-VTON student", "_fsvton", "FS-VTON's warp, distilled from the PF-AFN teacher"),
            ("mobile student", "_mobile",
             "DM-VTON's mobile warp and generator, narrowed, distilled from the PF-AFN teacher"))
PASTE = ("paste baseline", "paste_", "the garment, unwarped, pasted where its mask is")
TEACHER = ("parser-based teacher", "_teacher",
           "stages 1-2, the students' tutor: sees the parsing, DensePose and pose, so no try-on "
           "from a photo alone")
STAGES = (("pb_warp", "1 parser-based warp", "warped garment vs worn garment"),
          ("pb_gen", "2 teacher", "tutor try-on vs photo"),
          ("pf_warp", "3 PF-AFN student warp", "warped garment vs worn garment"),
          ("pf_gen", "4 PF-AFN student", "try-on vs photo"),
          ("pf_warp_fsvton", "3 FS-VTON student warp", "warped garment vs worn garment"),
          ("pf_gen_fsvton", "4 FS-VTON student", "try-on vs photo"),
          ("pf_warp_mobile", "3 mobile student warp", "warped garment vs worn garment"),
          ("pf_gen_mobile", "4 mobile student", "try-on vs photo"))
SIZE = (128, 96)  # the demo's working height x width (configs/demo.yaml)


def results_folder(out: Path, mode: str, suffix: str, paste: bool = False) -> Path:
    """results/paired, results/unpaired_fsvton, results/paste_paired, ... of a demo run."""
    return out / "results" / (f"paste_{mode}" if paste else f"{mode}{suffix}")


def has_labels(dataroot: Path) -> bool:
    """Whether the test root has the persons' parsing (and the rest of the parser-based
    inputs): PF-AFN's own VITON_test has only photos, garments and their masks."""
    try:
        make_pairs_dataset(DataOptions(), str(dataroot), "paired", *SIZE, parser_inputs=True)
    except DatasetError:
        return False
    return True


def write_test_pairs(dataroot: Path, target: Path, count: int) -> None:
    """``target``/paired.txt and unpaired.txt: the first ``count`` pairs of each of the test
    split's lists (all of them with 0), the pairs the demo tests and scores, so that a large
    split (VITON's 2,032) costs no more than the demo's own. A split without an unpaired list
    (test_pairs.txt) pairs each person with the next one's garment."""
    unpaired_list = dataroot / PAIRS_FILES["unpaired"]
    paired = pair_samples(DataOptions(), str(dataroot), "paired")[:count or None]
    if unpaired_list.is_file():
        unpaired = pair_samples(DataOptions(), str(dataroot), "unpaired")[:count or None]
    elif len(paired) < 2:
        raise UserError(f"{dataroot}: no {unpaired_list.name}, and fewer than 2 pairs to dress "
                        f"one person in another's garment")
    else:
        print(f"{dataroot}: no {unpaired_list.name}; the unpaired try-ons dress each person in "
              f"the next one's garment")
        unpaired = next_garments(paired)
    target.mkdir(parents=True, exist_ok=True)
    for mode, pairs in (("paired", paired), ("unpaired", unpaired)):
        (target / f"{mode}.txt").write_text("".join(
            f"{os.path.basename(pair.person.image)} {os.path.basename(pair.garment.image)}\n"
            for pair in pairs))


def pairs_of(mode: str, pairs_dir: Path | None) -> str:
    """What to read for ``mode`` ('paired'/'unpaired'): the demo's file in ``pairs_dir``
    (``write_test_pairs``), or the split's own list."""
    return mode if pairs_dir is None else str(pairs_dir / f"{mode}.txt")


def test_pairs(dataroot: Path, pairs: str, labels: bool = True):
    """The test pairs ('paired', 'unpaired' or a pairs file) at the demo's size, with the
    person's labels when ``labels`` (one dict per pair)."""
    dataset = make_pairs_dataset(DataOptions(), str(dataroot), pairs, *SIZE,
                                 parser_inputs=labels)
    for batch in DataLoader(dataset, batch_size=8, num_workers=0):
        for i in range(len(batch["person_name"])):
            yield {key: value[i] for key, value in batch.items()
                   if key in ("image", "garment", "label", "person_name", "cloth_name")}


def read_result(folder: Path, pair: dict) -> np.ndarray:
    """(H, W, 3) uint8 try-on of a pair at the demo's size (results of other sizes resized)."""
    image = Image.open(folder / result_name(pair["person_name"], pair["cloth_name"]))
    image = image.convert("RGB")
    if image.size != SIZE[::-1]:
        image = image.resize(SIZE[::-1], Image.BILINEAR)
    return np.asarray(image)


@torch.no_grad()
def write_teacher_tryons(checkpoint: Path, dataroot: Path, pairs: str, folder: Path) -> None:
    """The parser-based teacher's try-ons of the paired ``pairs`` into ``folder``, named as
    test.py names them, and their paired SSIM (``folder``/scores.json, as scripts/evaluate.py
    scores): each person in their own garment, made as stage 2's validation makes them (the
    tutor image, with the worn garment), the reference the students learn from."""
    from data.inputs import TryOnInputs, pose_radius_for
    from models.tryon import tutor_image
    from utils.metrics.folders import evaluate_folders
    from utils.training.students import parser_based_teacher

    flags = argparse.Namespace(pb_checkpoint=str(checkpoint), height=SIZE[0], width=SIZE[1])
    teacher = parser_based_teacher(flags, "cpu")
    dataset = make_pairs_dataset(DataOptions(), str(dataroot), pairs, *SIZE, parser_inputs=True)
    folder.mkdir(parents=True, exist_ok=True)
    for batch in DataLoader(dataset, batch_size=8, num_workers=0):
        inputs = TryOnInputs.from_batch(batch, pose_radius=pose_radius_for(SIZE[0]))
        tryon = tutor_image(teacher["pb_warp"], teacher["pb_gen"], inputs.pb_condition,
                            inputs.preserve_region, inputs.dense_preserve_mask, inputs.garment,
                            inputs.garment_edge).image
        for i, (person, cloth) in enumerate(zip(batch["person_name"], batch["cloth_name"])):
            write_result(folder, person, cloth, to_uint8(tryon[i].float()))
    scores = evaluate_folders(folder, dataroot, [(os.path.abspath(sample.person.image),
                                                  sample.garment.image)
                                                 for sample in dataset.pairs], ("ssim",))
    (folder / "scores.json").write_text(json.dumps(scores, indent=2) + "\n")


def outside_garment(pair: dict) -> np.ndarray:
    """bool (H, W): the pixels of a test pair's photo that the worn garment does not cover."""
    label = pair["label"].reshape(pair["image"].shape[-2:])
    return person_clothes_edge(label[None])[0, 0].numpy() == 0


def outside_garment_difference(folders: dict, pairs: list) -> dict:
    """Per results folder: the mean absolute difference, in 8-bit levels, between the try-on
    and the photo over the pixels outside the garment the person wears (paired pairs)."""
    totals = {name: [0.0, 0] for name in folders}
    for pair in pairs:
        outside = outside_garment(pair)
        photo = to_uint8(pair["image"]).astype(np.float64)
        for name, folder in folders.items():
            tryon = read_result(folder, pair).astype(np.float64)
            totals[name][0] += np.abs(tryon - photo)[outside].sum()
            totals[name][1] += outside.sum() * 3
    return {name: total / max(count, 1) for name, (total, count) in totals.items()}


def backdrop_floor(pairs: list) -> float:
    """The outside-garment difference of a try-on exact everywhere except that it paints every
    backdrop (label 0) in one colour, the per-channel median of the backdrops: the best the
    teacher can learn, since the backdrop is in none of its preserved regions, and so the best
    a student distilled from it can learn where backdrops differ from photo to photo."""
    backdrops = []
    for pair in pairs:
        photo = to_uint8(pair["image"]).astype(np.float64)
        label = pair["label"].reshape(photo.shape[:2])
        backdrops.append((photo, label.numpy() == 0, outside_garment(pair)))
    if not backdrops:
        return 0.0
    colour = np.median(np.concatenate([photo[mask] for photo, mask, _ in backdrops]), axis=0)
    total = sum(np.abs(photo[mask] - colour).sum() for photo, mask, _ in backdrops)
    count = sum(outside.sum() * 3 for _, _, outside in backdrops)
    return float(total / max(count, 1))


def half_resolution_difference(pairs: list) -> float:
    """The outside-garment difference of the photo itself at half its resolution (2x2 averages
    scaled back up bilinearly): what outlines alone cost at this size. Every student's
    generator ends by scaling up half-resolution features."""
    total = count = 0
    for pair in pairs:
        photo = pair["image"][None].float()
        half = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(photo, 2),
                                               size=photo.shape[-2:], mode="bilinear")
        outside = outside_garment(pair)
        difference = np.abs(to_uint8(half[0]).astype(np.float64)
                            - to_uint8(pair["image"]).astype(np.float64))
        total, count = total + difference[outside].sum(), count + outside.sum() * 3
    return float(total / max(count, 1))


def score_rows(out: Path, pairs: list | None) -> list:
    """[(label, ssim or None, outside-garment difference or None, what)]: the students, the
    teacher, then paste; ``pairs``: the paired test pairs with their labels, None where the
    split has no parsing."""
    entries = [(label, results_folder(out, "paired", suffix), what)
               for label, suffix, what in (*STUDENTS, TEACHER)]
    entries.append((PASTE[0], results_folder(out, "paired", "", paste=True), PASTE[2]))
    entries = [entry for entry in entries if (entry[1] / "scores.json").is_file()]
    differences = {}
    if pairs is not None:
        differences = outside_garment_difference(
            {label: folder for label, folder, _ in entries}, pairs)
    rows = []
    for label, folder, what in entries:
        scores = json.loads((folder / "scores.json").read_text())
        rows.append((label, scores.get("ssim"), differences.get(label), what))
    return rows


def score_table(rows: list, floor: float | None = None, half: float | None = None) -> str:
    paste = next((ssim for label, ssim, _, _ in rows if label == PASTE[0]), None)
    lines = ["| run | paired SSIM ↑ | over paste | outside-garment difference ↓ (8-bit levels) "
             "| what |", "|---|---|---|---|---|"]
    for label, ssim, difference, what in rows:
        margin = (f"{ssim - paste:+.4f}" if None not in (ssim, paste) and label != PASTE[0]
                  else "–")
        value = "–" if ssim is None else f"{ssim:.4f}"
        outside = "–" if difference is None else f"{difference:.2f}"
        lines.append(f"| {label} | {value} | {margin} | {outside} | {what} |")
    lines += ["", "Paired SSIM: try-on vs photo, each person in their own garment. Outside-garment "
              "difference: mean |try-on - photo| over the pixels the worn garment does not "
              "cover (– where the test split has no parsing to tell). LPIPS and FID are left "
              "out: without downloads their networks would be random, and a score of a random "
              "network says nothing about the pictures."]
    if floor is not None:
        lines += ["", f"A try-on exact everywhere but painting every backdrop in one colour would "
                  f"differ by {floor:.2f} levels outside the garment here: the parser-based "
                  f"teacher never sees the backdrop (its preserved regions are the face, hair, "
                  f"other clothes and hands), so where backdrops vary from photo to photo "
                  f"neither it nor its students can know their colour."]
    if half is not None:
        lines += ["", f"The photo itself at half its resolution (2x2 averages scaled back up) "
                  f"would differ by {half:.2f} levels outside the garment, all of it where "
                  f"the colour changes from pixel to pixel (outlines above all): every "
                  f"student's generator draws its try-on from half-resolution features scaled "
                  f"up."]
    return "\n".join(lines)


def validation_series(run_dir: Path, tag: str = "val/ssim") -> list:
    """(step, value) of a TensorBoard scalar of a run, in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags()["scalars"]:
        return []
    return [(event.step, event.value) for event in events.Scalars(tag)]


def validation_table(curves: dict) -> str:
    lines = ["| stage | scored | val/ssim (step: value) |", "|---|---|---|"]
    for name, title, scored in STAGES:
        if curves.get(name):
            cells = ", ".join(f"{step}: {value:.4f}" for step, value in curves[name])
            lines.append(f"| {title} | {scored} | {cells} |")
    return "\n".join(lines)


COLOURS = {"pb_warp": (31, 119, 180), "pb_gen": (31, 119, 180), "pf_warp": (214, 39, 40),
           "pf_gen": (214, 39, 40), "pf_warp_fsvton": (44, 160, 44),
           "pf_gen_fsvton": (44, 160, 44), "pf_warp_mobile": (148, 103, 189),
           "pf_gen_mobile": (148, 103, 189)}


def _plot_panel(draw: ImageDraw.ImageDraw, box: tuple, title: str, curves: dict,
                baseline: float | None) -> None:
    """One panel of line plots inside ``box`` (left, top, right, bottom): SSIM against steps,
    a legend of the curves, ``baseline`` as a dashed grey line."""
    left, top, right, bottom = box
    values = [v for series in curves.values() for _, v in series]
    values += [] if baseline is None else [baseline]
    if not values:
        return
    low, high = min(values) - 0.02, max(values) + 0.02
    last = max(step for series in curves.values() for step, _ in series)
    x0, y0, x1, y1 = left + 50, top + 24, right - 10, bottom - 30

    def point(step, value):
        return (x0 + (x1 - x0) * step / max(last, 1), y1 - (y1 - y0) * (value - low) / (high - low))

    draw.rectangle((x0, y0, x1, y1), outline=(0, 0, 0))
    draw.text((left + 50, top + 4), title, fill=(0, 0, 0))
    for k in range(5):
        value = low + (high - low) * k / 4
        draw.text((left + 4, point(0, value)[1] - 6), f"{value:.3f}", fill=(0, 0, 0))
    draw.text((x1 - 40, y1 + 8), f"{last} steps", fill=(0, 0, 0))
    if baseline is not None:
        y = point(0, baseline)[1]
        for x in range(int(x0), int(x1), 12):
            draw.line((x, y, min(x + 6, x1), y), fill=(120, 120, 120), width=2)
        curves = {**curves, "paste baseline": []}
    for row, (name, series) in enumerate(curves.items()):
        colour = COLOURS.get(name, (120, 120, 120))
        if len(series) > 1:
            draw.line([point(*p) for p in series], fill=colour, width=2)
        for p in series:
            cx, cy = point(*p)
            draw.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), fill=colour)
        draw.text((x0 + 8, y0 + 6 + 14 * row), name, fill=colour)


def learning_curves(curves: dict, paste: float | None, target: Path) -> bool:
    """Two panels, validation SSIM against each run's steps: the warps (warped garment vs worn
    garment) and the try-ons (vs the photo, with the paste baseline's paired SSIM)."""
    warps = {n: s for n, s in curves.items() if "warp" in n and s}
    tryons = {n: s for n, s in curves.items() if "gen" in n and s}
    if not warps and not tryons:
        return False
    image = Image.new("RGB", (1000, 420), "white")
    draw = ImageDraw.Draw(image)
    _plot_panel(draw, (0, 0, 500, 420), "validation SSIM: warped vs worn garment", warps, None)
    _plot_panel(draw, (500, 0, 1000, 420), "validation SSIM: try-on vs photo", tryons, paste)
    image.save(target)
    return True


def contact_sheet(out: Path, dataroot: Path, target: Path, count: int = 8,
                  pairs_dir: Path | None = None) -> bool:
    """Rows of unpaired pairs: person | garment | paste | each student, under a header row."""
    columns = [("paste", results_folder(out, "unpaired", "", paste=True))]
    columns += [(label.replace(" student", ""), results_folder(out, "unpaired", suffix))
                for label, suffix, _ in STUDENTS]
    columns = [(name, folder) for name, folder in columns if folder.is_dir()]
    if not columns:
        return False
    rows = []
    for pair in test_pairs(dataroot, pairs_of("unpaired", pairs_dir), labels=False):
        if len(rows) == count:
            break
        cells = [to_uint8(pair["image"]), to_uint8(pair["garment"])]
        cells += [read_result(folder, pair) for _, folder in columns]
        rows.append(np.concatenate(cells, 1))
    height, width = SIZE
    header = Image.new("RGB", (width * (2 + len(columns)), 16), "white")
    draw = ImageDraw.Draw(header)
    for k, name in enumerate(["person", "garment"] + [name for name, _ in columns]):
        draw.text((k * width + 4, 2), name, fill=(0, 0, 0))
    body = Image.fromarray(np.concatenate(rows, 0))
    sheet = Image.new("RGB", (body.width, header.height + body.height), "white")
    sheet.paste(header, (0, 0))
    sheet.paste(body, (0, header.height))
    sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST).save(target)
    return True


def next_commands(out: Path, dataroot: Path) -> str:
    """The commands that use the demo's student, with the paths the demo wrote (quoted for
    the shell)."""
    model = shlex.quote(str(out / "runs" / "pf_gen" / "final.pth"))
    dataroot = shlex.quote(str(dataroot))
    return "\n".join([
        "Your own photos with the demo's PF-AFN student (a person photo and a garment photo):",
        f"    python test.py --person me.jpg --garment shirt.jpg --checkpoint {model} "
        "--output me_in_shirt.png",
        "The web page, with the demo's test pairs as examples (then http://127.0.0.1:7860):",
        f"    python scripts/serve.py --checkpoint {model} --dataroot {dataroot}",
        "The other students: " + ", ".join(
            shlex.quote(str(out / "runs" / f"pf_gen{suffix}" / "final.pth"))
            for _, suffix, _ in STUDENTS[1:]),
        "The student has seen only the demo's 128x96 training data: expect rough try-ons of "
        "real photos."])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--out", default="demo_out", help="the demo's output folder")
    p.add_argument("--dataroot", default=None,
                   help="the test root the demo used (VITON_test); when not given, "
                        "OUT/data/VITON_test")
    p.add_argument("--pairs_dir", default=None,
                   help="the folder of paired.txt and unpaired.txt, the pairs the demo tested "
                        "(OUT/pairs); when not given, the test root's own lists")
    p.add_argument("--write_pairs", type=int, default=None, metavar="COUNT",
                   help="instead of the report, write OUT/pairs/paired.txt and unpaired.txt: "
                        "the first COUNT pairs of each of the test root's lists (0: all)")
    p.add_argument("--write_teacher", default=None, metavar="CHECKPOINT",
                   help="instead of the report, write the try-ons of the paired pairs by the "
                        "parser-based teacher of this stage-2 checkpoint into "
                        "OUT/results/paired_teacher (the test root needs the parsing)")
    args = p.parse_args(argv)
    if args.write_pairs is not None and args.write_teacher is not None:
        p.error("--write_pairs and --write_teacher: one at a time")
    if args.write_pairs is not None and args.write_pairs < 0:
        p.error(f"--write_pairs must not be negative, got {args.write_pairs}")
    with exit_on_user_error():
        out = Path(args.out)
        dataroot = Path(args.dataroot) if args.dataroot else out / "data" / "VITON_test"
        if args.write_pairs is not None:
            write_test_pairs(dataroot, out / "pairs", args.write_pairs)
            return
        if args.write_teacher is not None:
            pairs_dir = Path(args.pairs_dir) if args.pairs_dir else None
            write_teacher_tryons(Path(args.write_teacher), dataroot, pairs_of("paired", pairs_dir),
                                 results_folder(out, "paired", TEACHER[1]))
            return
        report(out, dataroot, Path(args.pairs_dir) if args.pairs_dir else None)


def report(out: Path, dataroot: Path, pairs_dir: Path | None = None) -> None:
    if not (out / "results").is_dir() and not (out / "runs").is_dir():
        raise UserError(f"--out {out}: no demo results there (results/ or runs/); run "
                        f"scripts/demo.sh first")
    if not dataroot.is_dir():
        raise UserError(f"--dataroot {dataroot}: no such folder (the demo's VITON_test)")
    torch.set_num_threads(1)
    if pairs_dir is not None and not pairs_dir.is_dir():
        raise UserError(f"--pairs_dir {pairs_dir}: no such folder")
    pairs = (list(test_pairs(dataroot, pairs_of("paired", pairs_dir))) if has_labels(dataroot)
             else None)
    rows = score_rows(out, pairs)
    table = (score_table(rows) if pairs is None else
             score_table(rows, backdrop_floor(pairs), half_resolution_difference(pairs)))
    paste = next((ssim for label, ssim, _, _ in rows if label == PASTE[0]), None)
    curves = {name: validation_series(out / "runs" / name) for name, _, _ in STAGES
              if (out / "runs" / name / "tensorboard").is_dir()}
    has_curves = learning_curves(curves, paste, out / "learning_curves.png")
    has_sheet = contact_sheet(out, dataroot, out / "tryon_examples.png", pairs_dir=pairs_dir)
    text = ["# Demo results", "", table, "", "## Validation while training", "",
            "Validation SSIM on the test split's paired pairs while each run trains, at the "
            "steps shown: the warp stages score the warped garment against the worn one, the "
            "generator stages the try-on against the photo.", "", validation_table(curves), ""]
    if has_curves:
        text += ["![learning curves](learning_curves.png)", ""]
    if has_sheet:
        text += ["## Unpaired try-ons", "", "person | garment | paste | each student", "",
                 "![try-on examples](tryon_examples.png)", ""]
    text += ["## Next", "", "```", next_commands(out, dataroot), "```", ""]
    (out / "report.md").write_text("\n".join(text))
    print(table, "", validation_table(curves), "", f"report: {out / 'report.md'}", sep="\n")
    if has_curves:
        print(f"learning curves: {out / 'learning_curves.png'}")
    if has_sheet:
        print(f"examples (person | garment | paste | each student): {out / 'tryon_examples.png'}")
    print("\n" + next_commands(out, dataroot))


if __name__ == "__main__":
    main()
