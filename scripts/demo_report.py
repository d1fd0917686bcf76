"""Summarise a demo run: the score table of the student and the baselines, and a contact
sheet of try-on strips (person | garment | warped garment | try-on).

    python scripts/demo_report.py --out demo_out
"""

import argparse
import json
import os
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.cli import HelpFormatter  # noqa: E402
from common.errors import UserError, exit_on_user_error  # noqa: E402

ROWS = (  # (label, scores file under --out, what it is)
    ("student (paired)", "results/paired/scores.json", "PF-AFN student, own garment"),
    ("FS-VTON student (paired)", "results/paired_fsvton/scores.json",
     "FS-VTON's warp, distilled from the PF-AFN teacher"),
    ("mobile student (paired)", "results/paired_mobile/scores.json",
     "DM-VTON's mobile warp and generator, narrowed, distilled from the PF-AFN teacher"),
    ("paste baseline (paired)", "results/paste_paired/scores.json", "unwarped garment pasted"),
    ("student (unpaired)", "results/unpaired/scores.json", "PF-AFN student, other garment"),
    ("paste baseline (unpaired)", "results/paste_unpaired/scores.json", "unwarped garment pasted"),
)


def score_table(out: Path) -> str:
    lines = ["| run | SSIM ↑ | LPIPS ↓ | FID ↓ | what |", "|---|---|---|---|---|"]
    random_nets = set()
    for label, file, what in ROWS:
        path = out / file
        if not path.is_file():
            continue
        scores = json.loads(path.read_text())
        random_nets.update(scores.get("random_weights", []))
        cells = [f"{scores[m]:.4f}" if m in scores else "–" for m in ("ssim", "lpips", "fid")]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {what} |")
    if random_nets:
        lines.append("")
        lines.append(f"{', '.join(sorted(random_nets)).upper()} computed with RANDOM network "
                     f"weights (no pretrained weights on this machine): comparable between the "
                     f"rows above only, not to published numbers.")
    return "\n".join(lines)


STAGES = (("pb_warp", "1 parser-based warp", "warped garment vs worn garment"),
          ("pb_gen", "2 teacher", "tutor try-on vs photo"),
          ("pf_warp", "3 student warp", "warped garment vs worn garment"),
          ("pf_gen", "4 student", "try-on vs photo"),
          ("pf_warp_fsvton", "3 FS-VTON student warp", "warped garment vs worn garment"),
          ("pf_gen_fsvton", "4 FS-VTON student", "try-on vs photo"),
          ("pf_warp_mobile", "3 mobile student warp", "warped garment vs worn garment"),
          ("pf_gen_mobile", "4 mobile student", "try-on vs photo"))


def _validation_series(run_dir: Path, tag: str) -> list:
    """(step, value) of a TensorBoard scalar of a run, in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags()["scalars"]:
        return []
    return [(event.step, event.value) for event in events.Scalars(tag)]


def validation_table(out: Path) -> str:
    """Per stage: the validation SSIM at each validation, and the best step (best.pth) of the
    metric it keeps (FID where the stage validates unpaired pairs, else SSIM)."""
    import torch

    lines = ["| stage | scored | val/ssim at each validation (step: value) | best (its metric) "
             "| best step |", "|---|---|---|---|---|"]
    for name, title, scored in STAGES:
        run_dir = out / "runs" / name
        final = run_dir / "final.pth"
        if not final.is_file():
            continue
        series = _validation_series(run_dir, "val/ssim")
        best = torch.load(final, map_location="cpu", weights_only=True).get("best") or {}
        cells = ", ".join(f"{step}: {value:.4f}" for step, value in series) or "–"
        value = (f"{best['metric']} {best['value']:.4f}" if best.get("value") is not None
                 else "–")
        lines.append(f"| {title} | {scored} | {cells} | {value} | {best.get('step', '–')} |")
    return "\n".join(lines)


def contact_sheet(grid_dir: Path, target: Path, count: int = 8) -> bool:
    strips = sorted(grid_dir.glob("*.png"))[:count]
    if not strips:
        return False
    images = [Image.open(p).convert("RGB") for p in strips]
    width = max(i.width for i in images)
    sheet = Image.new("RGB", (width, sum(i.height for i in images)), "white")
    y = 0
    for image in images:
        sheet.paste(image, (0, y))
        y += image.height
    sheet = sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST)
    sheet.save(target)
    return True


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--out", default="demo_out", help="the demo's output folder")
    args = p.parse_args(argv)
    with exit_on_user_error():
        report(Path(args.out))


def report(out: Path) -> None:
    if not (out / "results").is_dir() and not (out / "runs").is_dir():
        raise UserError(f"--out {out}: no demo results there (results/ or runs/); run "
                        f"scripts/demo.sh first")
    table = score_table(out)
    report = out / "report.md"
    sheet = out / "tryon_examples.png"
    has_sheet = contact_sheet(out / "results" / "unpaired" / "grids", sheet)
    validation = validation_table(out)
    report.write_text("# Demo results\n\n" + table + "\n\n## Validation while training\n\n"
                      "SSIM on the test split's paired pairs after every epoch (LPIPS and, for "
                      "the teacher, FID on unpaired pairs, with random networks, in TensorBoard "
                      "under val/); best.pth of each stage holds the weights of the best step "
                      "of the metric it keeps.\n\n" + validation + "\n" +
                      (f"\n![try-on examples]({sheet.name})\n" if has_sheet else ""))
    print(table)
    print()
    print(validation)
    print(f"\nreport: {report}")
    if has_sheet:
        print(f"examples (person | garment | warped garment | try-on): {sheet}")


if __name__ == "__main__":
    main()
