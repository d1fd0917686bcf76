"""Measure training-loader throughput (samples/s) on a VITON-layout training root.

    OMP_NUM_THREADS=1 python scripts/bench_data.py --root data_synth/VITON_traindata \\
        --num_samples 1000

Single-core by default (torch and OpenCV threads off), num_workers=0, as the acceptance
figure is measured. Reports the loader alone and the loader plus building the model inputs
(pose maps, masks, 45-channel condition) on the CPU, since the pose maps are rendered there.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import torch  # noqa: E402

from common.cli import HelpFormatter  # noqa: E402
from common.errors import exit_on_user_error  # noqa: E402
from data.inputs import TryOnInputs  # noqa: E402
from data.viton_dataset import VitonTrainDataset  # noqa: E402


def measure(loader, num_samples, build_inputs):
    seen = 0
    start = time.perf_counter()
    while seen < num_samples:
        for batch in loader:
            if build_inputs:
                inputs = TryOnInputs.from_batch(batch, "cpu")
                # the properties compute the masks: reading them is the work measured
                _ = (inputs.pb_condition, inputs.preserve_region, inputs.person_clothes,
                     inputs.dense_preserve_mask, inputs.unpaired_garment)
            seen += len(batch["id"])
            if seen >= num_samples:
                break
    return seen / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--root", required=True, help="VITON_traindata-layout folder")
    parser.add_argument("--height", type=int, default=256, help="served height")
    parser.add_argument("--width", type=int, default=192, help="served width")
    parser.add_argument("--num_samples", type=int, default=1000,
                        help="samples timed per measurement")
    parser.add_argument("--batch_size", type=int, default=4, help="DataLoader batch size")
    parser.add_argument("--num_workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (OpenCV threads are off)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(0)
    with exit_on_user_error():
        dataset = VitonTrainDataset(args.root, args.height, args.width)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                         num_workers=args.num_workers,
                                         generator=torch.Generator().manual_seed(0))
    measure(loader, min(args.num_samples, len(dataset)), False)   # warm the file cache
    results = {
        "root": args.root, "size": [args.height, args.width], "batch_size": args.batch_size,
        "num_workers": args.num_workers, "threads": args.threads,
        "num_samples": args.num_samples,
        "loader_samples_per_s": measure(loader, args.num_samples, False),
        "loader_and_inputs_samples_per_s": measure(loader, args.num_samples, True),
    }
    print(f"loader: {results['loader_samples_per_s']:.1f} samples/s; loader + model inputs: "
          f"{results['loader_and_inputs_samples_per_s']:.1f} samples/s "
          f"({args.height}x{args.width}, batch {args.batch_size}, workers {args.num_workers}, "
          f"threads {args.threads})")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return results


if __name__ == "__main__":
    main()
