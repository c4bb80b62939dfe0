"""visattn ablate: switch attention off stage by stage and see the prediction change."""
from __future__ import annotations

import argparse
import sys

from .common import UserError, add_network_options, open_from_args


def add(sub, names: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "ablate", parents=[names], help="switch attention off stage by stage and see the prediction change",
        description="Set every attention module of one stage to neutral (gates = 1, BAM's = 0, "
                    "Non-local branches off) with hooks, stage by stage and everywhere, and "
                    "print how the top-1 prediction changes. The network itself is not changed.")
    add_network_options(s)
    s.add_argument("image", help="a photo")
    s.set_defaults(run=run)


def run(args) -> int:
    from ..ablation import stage_ablation
    from ..image import ImageError, load_image
    net = open_from_args(args)
    if net.task not in ("classify", None):
        print("switching attention off compares class predictions: choose a classifier",
              file=sys.stderr)
        return 2
    try:
        rgb = load_image(args.image)
    except ImageError as exc:
        print(f"{args.image}: {exc}", file=sys.stderr)
        return 1
    try:
        rows = stage_ablation(net.module, rgb, net.preprocess, net.labels)
    except ValueError as exc:
        raise UserError(str(exc), 2) from None
    print(f"{'attention off':16s} {'modules':>7s}  {'top-1':38s} {'same?':6s} {'p(original top-1)':>18s}")
    for row in rows:
        label, p = row.top[0]
        print(f"{row.what:16s} {row.switched:7d}  {label[:30]:30s} {p:6.1%} "
              f"{'yes' if row.same_top1 else 'NO':6s} {row.baseline_prob_of_top1:18.1%}")
    for sentence in rows[-1].left_on:  # every stage: each module left on, once
        print(f"note: {sentence}", file=sys.stderr)
    return 0
