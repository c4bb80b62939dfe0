"""Segmentation networks (NonLocalNet, CCNet, DANet R-50-D8): forward time at each
processing size, and the cost of one click (a row, and the rendered 768 px view) measured
in the same run, also as a fraction of the forward.

    python bench/segmentation.py [--reps 3] [--threads 2] [--photo assets/examples/coffee.jpg]
"""
import argparse
import dataclasses
import statistics
from pathlib import Path

from common import timed  # noqa: E402  (sets up threads and sys.path first)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import visattn  # noqa: E402
from visattn import render, zoo  # noqa: E402
from visattn.records import Pairwise  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--photo", default=str(Path(__file__).resolve().parents[1] / "assets" /
                                           "examples" / "coffee.jpg"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rgb = visattn.load_image(args.photo)
    print(f"torch {torch.__version__}, {args.threads} threads, photo {rgb.shape[1]}x{rgb.shape[0]}, "
          f"random weights (timing only), median of {args.reps}")
    print(f"{'network:block':34s} {'short side':>10s} {'grid':>8s} {'forward s':>10s} "
          f"{'row ms':>8s} {'click ms':>9s} {'click/forward':>14s}")
    for head in ("nonlocal", "ccnet", "danet"):
        name = f"{head}_r50_d8_ade20k"
        card = zoo.get(name)
        zoo.load(name, pretrained=False)
        for side in (256, 384, 512):
            pre = dataclasses.replace(card.preprocess, size=(side, 4 * side))
            run = lambda: visattn.analyze(rgb, name, pretrained=False, preprocess=pre)  # noqa: E731
            trace = run()
            fwd = statistics.median(timed(run) for _ in range(args.reps))
            for rec in [r for r in trace if isinstance(r, Pairwise)]:
                n = rec.grid[0] * rec.grid[1]
                cells = np.random.default_rng(0).integers(0, n, 20)
                row = statistics.median(timed(lambda i=int(i): rec.row(i)) for i in cells)
                click = statistics.median(
                    timed(lambda i=int(i): render.affinity_view(trace, rec, i)) for i in cells)
                label = f"{head}:{rec.name}"[:34]
                print(f"{label:34s} {side:10d} {rec.grid[0]:3d}x{rec.grid[1]:<4d} {fwd:10.2f} "
                      f"{row * 1e3:8.2f} {click * 1e3:9.1f} {click / fwd:14.4f}", flush=True)


if __name__ == "__main__":
    main()
