"""Summarise a demo run: the score table of the student and the baselines, and a contact
sheet of try-on strips (person | garment | warped garment | try-on).

    python scripts/demo_report.py --out demo_out
"""

import argparse
import json
from pathlib import Path

from PIL import Image

ROWS = (  # (label, scores file under --out, what it is)
    ("student (paired)", "results/paired/scores.json", "PF-AFN student, own garment"),
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
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_out", help="the demo's output folder")
    args = p.parse_args(argv)
    out = Path(args.out)
    table = score_table(out)
    report = out / "report.md"
    sheet = out / "tryon_examples.png"
    has_sheet = contact_sheet(out / "results" / "unpaired" / "grids", sheet)
    report.write_text("# Demo results\n\n" + table + "\n" +
                      (f"\n![try-on examples]({sheet.name})\n" if has_sheet else ""))
    print(table)
    print(f"\nreport: {report}")
    if has_sheet:
        print(f"examples (person | garment | warped garment | try-on): {sheet}")


if __name__ == "__main__":
    main()
