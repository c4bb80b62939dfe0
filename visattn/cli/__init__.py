"""Command line: python -m visattn COMMAND ... (a thin shell over the library; one module
per command, what they share in common.py).

    python -m visattn analyze photos/*.jpg --model cbam_resnet50 --out results/
    python -m visattn analyze photo.jpg --model my_package.my_module:build_model \
        --weights my.safetensors --out results/      your own network (also stats, ablate)
    python -m visattn view results/photo/arrays.npz --html      the hover view of a saved analysis
    python -m visattn list-models           what is available and whether it is cached
    python -m visattn download NAME ...     fetch pretrained weights for later offline use
    python -m visattn download --all
    visattn stats imagenet/val --model seresnet50 --labels folders --batch-size 64 \
        --workers 8 --device cuda --out senet/      SENet's excitation figure, resumable
    visattn cam photo.jpg --model cbam_resnet50 --out cams/     attention vs Grad-CAM

Installed (pip install .), `visattn` is the same as `python -m visattn`. The benchmarks are
scripts of the repository's bench/ folder, not a command.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from ..version import __version__
from . import ablate, analyze, cam, download, stats, view
from .common import UserError, at_least

__all__ = ["main", "parser", "UserError"]


def _shared_options() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """(class names of a network's outputs, options of a run over many images)."""
    names = argparse.ArgumentParser(add_help=False)
    names.add_argument("--labels", "--class-names", dest="labels", metavar="FILE",
                       help="class names, one per line")
    batch = argparse.ArgumentParser(add_help=False)
    batch.add_argument("--out", required=True, metavar="DIR", help="folder for the results")
    batch.add_argument("--quiet", action="store_true", help="no progress bar")
    batch.add_argument("--batch-size", type=at_least(1), default=32, metavar="N",
                       help="images per forward (default 32)")
    batch.add_argument("--workers", type=at_least(0), default=0, metavar="N",
                       help="DataLoader worker processes that decode and prepare images "
                            "(default 0: in the main process)")
    return names, batch


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="visattn", description="VisAttn: see what the attention modules inside CNNs do.")
    p.add_argument("--version", action="version", version=f"visattn {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    names, batch = _shared_options()
    analyze.add(sub, names, batch)
    view.add(sub)
    download.add(sub)
    stats.add(sub, batch)
    cam.add(sub, names)
    ablate.add(sub, names)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a command; user errors print one sentence and give a non-zero exit status."""
    from ..image import ImageError
    from ..weights import WeightsError
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except (WeightsError, ImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
