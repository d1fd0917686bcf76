"""Pre-warps per second of each warp family on this machine, at a working size: random weights
in each family's released architecture, a generated VITON-HD test split of 1024x768 photos,
the inputs read once, then ``--repeats`` timed passes of ``utils.inference.prewarp`` (warp at
256x192, flow upsampled, garment and mask sampled at the working size).

    python scripts/bench_prewarp.py --height 512 --device cpu
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch.utils.data import default_collate  # noqa: E402

from common.cli import HelpFormatter  # noqa: E402
from common.devices import pick_device  # noqa: E402
from data.datasets import DataOptions  # noqa: E402
from data.prewarp import PrewarpDataset  # noqa: E402
from data.synthetic import make_dataset  # noqa: E402
from data.vitonhd import test_pairs  # noqa: E402
from models.registry import build_model  # noqa: E402
from utils.inference.prewarp import load_prewarp_model  # noqa: E402

# (name, warp architecture) at the released widths.
FAMILIES = (("PF-AFN student", {"type": "pfafn", "input_nc": 3}),
            ("FS-VTON student", {"type": "fsvton", "input_nc": 3}),
            ("DM-VTON student", {"type": "mobile", "input_nc": 3}),
            ("DCI-VTON warp", {"type": "dcivton", "input_nc": 16}))


def agnostic_labels(split_root: str) -> None:
    """DCI-VTON's parse-agnostic folder, the parsing with the garment and arms removed."""
    import numpy as np
    from PIL import Image
    source = os.path.join(split_root, "image-parse-v3")
    target = os.path.join(split_root, "image-parse-agnostic-v3.2")
    os.makedirs(target, exist_ok=True)
    for name in os.listdir(source):
        labels = np.array(Image.open(os.path.join(source, name)))
        labels[np.isin(labels, (5, 6, 7, 10, 14, 15))] = 0
        Image.fromarray(labels.astype(np.uint8)).save(os.path.join(target, name))


def time_family(arch: dict, root: str, work: str, args, device) -> float:
    """Pre-warps per second of one warp architecture."""
    path = os.path.join(work, f"{arch['type']}.pth")
    torch.save(build_model({"kind": "warp", **arch}).state_dict(), path)
    model = load_prewarp_model(path, device)
    samples = test_pairs(root, "paired", split="test")[:args.batch_size]
    width = round(args.height * 768 / 1024)
    dataset = PrewarpDataset(samples, model.condition, (args.height, width), model.warp_size,
                             DataOptions(dataset="vitonhd"))
    batch = default_collate([dataset[i] for i in range(len(dataset))])
    model(batch)                                 # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.repeats):
        model(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return args.repeats * len(samples) / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--height", type=int, default=512, help="working height (3:4 frame)")
    parser.add_argument("--batch_size", type=int, default=2, help="pairs per forward pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per family")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as work:
        roots = make_dataset(os.path.join(work, "data"), 0, args.batch_size, seed=0,
                             height=1024, width=768, layout="vitonhd")
        agnostic_labels(roots["test"])
        print(f"{device}, {torch.get_num_threads()} threads, working size {args.height}, "
              f"batch {args.batch_size}")
        for name, arch in FAMILIES:
            torch.manual_seed(0)
            rate = time_family(arch, roots["root"], work, args, device)
            print(f"{name:16s} {rate:6.2f} pre-warps/s")


if __name__ == "__main__":
    main()
