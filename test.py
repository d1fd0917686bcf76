"""Try-on images from a person photo and a garment alone (the parser-free student).

    python test.py --dataroot VITON_test --pairs test_pairs.txt \\
        --warp_checkpoint checkpoints/PFAFN/warp_model_final.pth \\
        --gen_checkpoint checkpoints/PFAFN/gen_model_final.pth --results_dir results/demo

Writes one PNG per pair, ``{person_stem}__{cloth_stem}.png``, at the person photo's resolution;
``--save_grid`` adds person | garment | warped garment | try-on strips under ``grids/``.
Checkpoints may be the released PF-AFN files (plain state dicts) or this project's stage-4
checkpoint (``--checkpoint`` gives both parts from one file). ``--eval`` scores the results.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from data.viton import DatasetError, VitonTestDataset
from models import ARCH_KEYS, PF_GEN_INPUT, PF_WARP_INPUT, RELEASE_ARCH, build_generator, build_warp
from models.tryon import parser_free_tryon
from utils.checkpoint import (CheckpointError, is_project_checkpoint, load_state, read_checkpoint,
                              state_dict_from)
from utils.image import save_png

WARP_STAGES = ("pf_warp", "pf_gen")
GEN_STAGES = ("pf_gen",)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataroot", required=True, help="test root: test_img/, test_clothes/ (or "
                   "test_color/), test_edge/ and the pairs file")
    p.add_argument("--pairs", default="test_pairs.txt",
                   help="pairs file, one 'person.jpg cloth.jpg' per line (name inside --dataroot, "
                        "or a path)")
    p.add_argument("--checkpoint", default=None,
                   help="a stage-4 checkpoint of this project: sets both --warp_checkpoint and "
                        "--gen_checkpoint")
    p.add_argument("--warp_checkpoint", default=None,
                   help="parser-free warp weights: released warp_model_final.pth or a stage-3/4 "
                        "checkpoint")
    p.add_argument("--gen_checkpoint", default=None,
                   help="generator weights: released gen_model_final.pth or a stage-4 checkpoint")
    p.add_argument("--results_dir", required=True, help="folder for the try-on PNGs")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where to run (auto: cuda when available)")
    p.add_argument("--batch_size", type=int, default=8, help="pairs per forward pass")
    p.add_argument("--workers", type=int, default=2, help="data loading processes")
    p.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"],
                   help="autocast precision (the cost volume and sampling stay float32)")
    p.add_argument("--height", type=int, default=None,
                   help="model input height (default: from the checkpoint's config, else 256)")
    p.add_argument("--width", type=int, default=None,
                   help="model input width (default: from the checkpoint's config, else 192)")
    p.add_argument("--align_corners", choices=["true", "false"], default=None,
                   help="sampling convention (default: from the checkpoint's config; released "
                        "weights need true)")
    p.add_argument("--fast", action="store_true",
                   help="fold BatchNorm into convolutions and run channels_last (same outputs to "
                        "~1e-5; ~1.6x on CPU with the default cost volume)")
    p.add_argument("--compile", action="store_true", help="also torch.compile the models")
    p.add_argument("--save_grid", action="store_true",
                   help="also save person | garment | warped garment | try-on strips")
    p.add_argument("--eval", action="store_true",
                   help="score the results (SSIM and LPIPS on paired pairs, FID on all)")
    p.add_argument("--metrics", default="ssim,lpips,fid", help="metrics for --eval")
    p.add_argument("--fid_weights", default=None, help="local FID Inception weights file")
    p.add_argument("--lpips_backbone_weights", default=None,
                   help="local LPIPS backbone (AlexNet) weights file")
    p.add_argument("--allow_random_weights", action="store_true",
                   help="metrics with random network weights (tests and demos only)")
    args = p.parse_args(argv)
    if args.checkpoint:
        args.warp_checkpoint = args.warp_checkpoint or args.checkpoint
        args.gen_checkpoint = args.gen_checkpoint or args.checkpoint
    for flag in ("warp_checkpoint", "gen_checkpoint"):
        if not getattr(args, flag):
            p.error(f"--{flag} (or --checkpoint) is required")
    return args


def load_models(args, device):
    """Build the warp and generator with the sizes their checkpoints were trained at."""
    warp_data = read_checkpoint(args.warp_checkpoint, "--warp_checkpoint")
    gen_data = read_checkpoint(args.gen_checkpoint, "--gen_checkpoint")
    arch = dict(RELEASE_ARCH)
    size = {"height": 256, "width": 192}
    for data in (warp_data, gen_data):
        if is_project_checkpoint(data):
            config = data.get("config", {})
            arch.update({k: config[k] for k in ARCH_KEYS if k in config})
            size.update({k: config[k] for k in size if k in config})
    if args.align_corners is not None:
        arch["align_corners"] = args.align_corners == "true"
    warp = build_warp(arch, PF_WARP_INPUT)
    gen = build_generator(arch, PF_GEN_INPUT)
    load_state(warp, state_dict_from(warp_data, "warp", args.warp_checkpoint, "--warp_checkpoint",
                                     WARP_STAGES), f"--warp_checkpoint: {args.warp_checkpoint}")
    load_state(gen, state_dict_from(gen_data, "gen", args.gen_checkpoint, "--gen_checkpoint",
                                    GEN_STAGES), f"--gen_checkpoint: {args.gen_checkpoint}")
    height = args.height or size["height"]
    width = args.width or size["width"]
    warp, gen = warp.to(device).eval(), gen.to(device).eval()
    if args.fast or args.compile:
        from models.fast import optimize_for_inference
        warp, gen = (optimize_for_inference(m, fold_bn=args.fast, channels_last=args.fast,
                                            compile=args.compile) for m in (warp, gen))
    return warp, gen, height, width


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    return torch.device(name)


@torch.inference_mode()
def generate(args) -> dict:
    device = pick_device(args.device)
    warp, gen, height, width = load_models(args, device)
    dataset = VitonTestDataset(args.dataroot, args.pairs, height=height, width=width)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=False,
                        num_workers=args.workers, pin_memory=device.type == "cuda")
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.amp]
    written = 0
    start = time.perf_counter()
    for batch in tqdm(loader, desc="try-on", unit="batch", disable=not sys.stderr.isatty()):
        person = batch["image"].to(device, non_blocking=True)
        garment = batch["garment"].to(device, non_blocking=True)
        edge = batch["garment_edge"].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = parser_free_tryon(warp, gen, person, garment, edge)
        for i, (person_name, cloth_name) in enumerate(zip(batch["person_name"],
                                                          batch["cloth_name"])):
            stem = f"{Path(person_name).stem}__{Path(cloth_name).stem}"
            original = (int(batch["original_size"][0][i]), int(batch["original_size"][1][i]))
            tryon = out.tryon[i:i + 1].float()
            if original != (height, width):
                tryon = F.interpolate(tryon, size=original, mode="bilinear", align_corners=False)
            save_png(tryon[0], results / f"{stem}.png")
            if args.save_grid:
                # Garments on white, as product photos are shown.
                on_white = out.warped[i].float() * out.warped_edge[i] + (1 - out.warped_edge[i])
                strip = torch.cat([person[i], garment[i] * edge[i] + (1 - edge[i]), on_white,
                                   out.tryon[i].float()], dim=2)
                save_png(strip, results / "grids" / f"{stem}.png")
            written += 1
    seconds = time.perf_counter() - start
    print(f"wrote {written} try-on images to {results} ({written / max(seconds, 1e-9):.1f} images/s "
          f"on {device}, {height}x{width})")
    return {"images": written, "seconds": seconds}


def main(argv=None):
    args = parse_args(argv)
    try:
        generate(args)
        if args.eval:
            from utils.metrics import evaluate_folders, format_table, resolve_pairs
            scores = evaluate_folders(
                args.results_dir, Path(args.dataroot) / "test_img",
                resolve_pairs(args.dataroot, args.pairs), metrics=tuple(args.metrics.split(",")),
                device=pick_device(args.device), fid_weights=args.fid_weights,
                lpips_backbone_weights=args.lpips_backbone_weights,
                allow_random_weights=args.allow_random_weights)
            print(format_table(scores))
            out = Path(args.results_dir) / "scores.json"
            out.write_text(json.dumps(scores, indent=2))
            print(f"scores written to {out}")
    except (CheckpointError, DatasetError) as error:
        raise SystemExit(f"error: {error}")
    except Exception as error:
        from utils.metrics import MetricsError, MissingWeightsError, WeightsFileError
        if isinstance(error, (MetricsError, MissingWeightsError, WeightsFileError)):
            raise SystemExit(f"error: {error}")
        raise


if __name__ == "__main__":
    main()
