"""Write a synthetic try-on dataset in the VITON layout (see data/synthetic.py).

    python scripts/make_synthetic_data.py --out data_synth --num_train 2000 --num_test 200 --seed 0
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data.synthetic import make_dataset  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder; VITON_traindata/ and VITON_test/ go inside")
    parser.add_argument("--num_train", type=int, default=1000, help="training samples")
    parser.add_argument("--num_test", type=int, default=100, help="test samples (pairs files list each once)")
    parser.add_argument("--seed", type=int, default=0, help="seed; the same seed writes the same files")
    parser.add_argument("--height", type=int, default=256, help="image height")
    parser.add_argument("--width", type=int, default=192, help="image width")
    parser.add_argument("--workers", type=int, default=1, help="processes drawing in parallel")
    args = parser.parse_args(argv)
    if args.num_train < 0 or args.num_test < 0:
        parser.error("--num_train and --num_test must be >= 0")
    if args.height < 32 or args.width < 24:
        parser.error("--height/--width too small to draw a person (minimum 32x24)")
    start = time.perf_counter()
    roots = make_dataset(args.out, args.num_train, args.num_test, args.seed, args.height,
                         args.width, args.workers)
    seconds = time.perf_counter() - start
    total = args.num_train + args.num_test
    print(f"wrote {args.num_train} training samples to {roots['train']} and {args.num_test} test "
          f"samples to {roots['test']} in {seconds:.1f} s ({total / max(seconds, 1e-9):.0f} samples/s)")


if __name__ == "__main__":
    main()
