"""Hook overhead: captured forward / plain forward, per zoo network, measured side by side
(interleaved in one process; these machines are noisy). Also the cost of one affinity row.

    python bench/capture_overhead.py [--reps 15] [--threads 2] [--models seresnet50 ...]
"""
import argparse
import os
import statistics

from common import timed  # noqa: E402  (sets up threads and sys.path first)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from visattn import capture, zoo  # noqa: E402
from visattn.preprocess import prepare  # noqa: E402
from visattn.records import Affinity  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", nargs="*", default=[c.name for c in zoo.cards()])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    photo = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)

    print(f"torch {torch.__version__}, {args.threads} threads, {args.reps} interleaved reps, "
          f"{os.cpu_count()} CPUs")
    print(f"{'model':20s} {'plain ms':>9s} {'captured ms':>12s} {'ratio':>7s} {'trace KB':>9s}")
    for name in args.models:
        model = zoo.load(name)
        x, geo = prepare(photo, zoo.get(name).preprocess)

        def plain():
            with torch.inference_mode():
                model(x)

        def captured():
            capture.run(model, x, geometry=geo)

        plain(), captured()  # warm up
        p, c = [], []
        for _ in range(args.reps):
            p.append(timed(plain))
            c.append(timed(captured))
        trace = capture.run(model, x, geometry=geo)
        mp, mc = statistics.median(p), statistics.median(c)
        print(f"{name:20s} {mp * 1e3:9.1f} {mc * 1e3:12.1f} {mc / mp:7.3f} {trace.nbytes / 1024:9.0f}")

        for aff in trace.select(Affinity):
            n = aff.grid[0] * aff.grid[1]
            cells = np.random.default_rng(1).integers(0, n, 200)
            costs = [timed(lambda i=int(i): aff.row(i)) for i in cells]
            print(f"  row of {aff.layer} ({aff.grid[0]}x{aff.grid[1]}, {aff.heads} heads): "
                  f"p50 {np.percentile(costs, 50) * 1e3:.3f} ms, p95 "
                  f"{np.percentile(costs, 95) * 1e3:.3f} ms = "
                  f"{np.percentile(costs, 50) / mp:.4f} of a plain forward")


if __name__ == "__main__":
    main()
