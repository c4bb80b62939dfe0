"""visattn stats: excitation statistics of the channel gates over a folder of images
(folder_stats), SENet's figure and the CSVs; resumable. Under torchrun the processes
split the images and process 0 writes (visattn.distributed):

    torchrun --nproc_per_node=8 -m visattn stats imagenet/val --model seresnet50 --out senet/
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from .common import UserError, add_network_options, open_from_args


def add(sub, batch: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "stats", parents=[batch], help="excitation statistics of the channel gates over a folder of images",
        description="Run a network over every image in a folder in batches (a DataLoader; "
                    "memory does not grow) and write the mean and spread of every channel "
                    "gate per block and class (excitation.csv), SENet's figure: per stage, the "
                    "mean gate of every channel for chosen classes (excitation_classes.png, "
                    ".csv), and the class divergence per block (divergence.png). Images done "
                    "are listed in images.csv; rerun the same command to resume.")
    add_network_options(s)
    s.add_argument("folder", help="a folder of images (searched recursively)")
    s.add_argument("--labels", dest="label_source", choices=["folders", "predicted"],
                   default="predicted",
                   help="each image's class: its first-level subfolder (ImageFolder layout) or "
                        "the network's prediction (default)")
    s.add_argument("--class-names", dest="labels", metavar="FILE",
                   help="names of the network's classes, one per line")
    s.add_argument("--classes", metavar="A,B,...",
                   help="classes drawn in excitation_classes.png (names or numbers; default: "
                        "the 4 with most images)")
    s.add_argument("--limit", type=int, default=0, help="use at most this many images")
    s.add_argument("--checkpoint-s", type=float, default=60.0, metavar="S",
                   help="save the running sums every S seconds (a restart resumes there)")
    s.add_argument("--autocast", choices=["bf16", "fp16"],
                   help="run the forward in bfloat16 / float16 autocast (faster on GPUs); the "
                        "first batch's gates are checked against float32 and the largest "
                        "difference printed")
    s.set_defaults(run=run)


def run(args) -> int:
    from PIL import Image

    from .. import render
    from .. import distributed
    from ..device import of_module
    from ..folder_stats import AUTOCAST, COLUMNS, LEDGER, FolderStats
    from ..folder_stats import run as run_stats
    from ..ledger import Ledger
    if not Path(args.folder).is_dir():
        raise UserError(f"{args.folder} is not a folder; give a folder of images.", 2)
    args.device = distributed.rank_device(args.device)  # torchrun: this process's GPU
    net = open_from_args(args)
    world = distributed.start(of_module(net.module))
    out = Path(args.out)
    job = FolderStats(Path(args.folder), out, net.module, net.name, net.preprocess,
                      net.labels, args.label_source, args.batch_size, args.workers,
                      args.limit, args.checkpoint_s, args.quiet, args.autocast, world)
    try:
        stats = run_stats(job)
    except ValueError as exc:
        raise UserError(str(exc), 2) from None
    finally:
        world.close()
    if args.autocast and world.main:
        print(f"autocast {args.autocast}: the first batch's gates are within "
              f"{job.autocast_gap:.3g} of float32 (max |difference|; tolerance "
              f"{AUTOCAST[args.autocast][1]})")
    if not world.main:
        return 0
    if not stats.blocks():
        print(f"{net.name} has no channel gates to gather statistics of", file=sys.stderr)
        return 2
    classes = chosen_classes(stats, args.classes)
    (out / "excitation.csv").write_text(stats.to_csv())
    (out / "excitation_classes.csv").write_text(stats.figure_csv(classes))
    Image.fromarray(render.divergence_plot(stats)).save(out / "divergence.png")
    Image.fromarray(render.excitation_figure(stats, classes)).save(out / "excitation_classes.png")
    for key in stats.blocks():
        print(f"{key:40s} stage {stats.stages[key]}  class divergence {stats.divergence(key):.3f}")
    skipped = len(Ledger(out / LEDGER, COLUMNS).failed())
    print(f"{stats.images} images ({skipped} skipped); wrote excitation.csv, "
          f"excitation_classes.csv, excitation_classes.png and divergence.png in {out}")
    return 0


def chosen_classes(stats, text: Optional[str]) -> list[int]:
    """--classes a,b,c (names or numbers) as class indices; default the 4 most frequent."""
    if not text:
        return stats.frequent_classes(4)
    chosen = []
    for part in (s.strip() for s in text.split(",")):
        if part.isdigit():
            chosen.append(int(part))
        elif part in stats.labels:
            chosen.append(list(stats.labels).index(part))
        else:
            raise UserError(f"--classes: no class {part!r} (a class name or number)", 2)
    return chosen
