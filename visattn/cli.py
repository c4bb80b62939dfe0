"""Command line: python -m visattn COMMAND ...

    python -m visattn list-models           what is available and whether it is cached
    python -m visattn download NAME ...     fetch pretrained weights for later offline use
    python -m visattn download --all
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from . import weights, zoo


class _ProgressBar:
    """A tqdm byte counter, opened on the first byte (so failures print no empty bar)."""

    def __init__(self, name: str):
        self.name, self.bar = name, None

    def __call__(self, done: int, total: Optional[int]) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm
            self.bar = tqdm(desc=self.name, total=total, unit="B", unit_scale=True,
                            unit_divisor=1024, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_list_models(args) -> int:
    print(f"{'name':20s} {'family':9s} {'task':9s} {'library':10s} {'weights':9s} {'size':>7s}")
    for card in zoo.cards():
        print(f"{card.name:20s} {card.family:9s} {card.task:9s} {card.source.library:10s} "
              f"{card.availability():9s} {card.download_mb:6.0f}M")
    print(f"\ncache: {weights.cache_dir()} (VISATTN_CACHE), Hub cache: {weights.hub_cache()}")
    return 0


def cmd_download(args) -> int:
    names = [c.name for c in zoo.cards()] if args.all else args.names
    if not names:
        print("name at least one model, or --all (see `python -m visattn list-models`)",
              file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        try:
            card = zoo.get(name)
        except KeyError as exc:
            print(f"{name}: {exc.args[0]}", file=sys.stderr)
            failed += 1
            continue
        if card.weights is None:
            print(f"{name}: no published weights (architecture only); nothing to fetch")
            continue
        was_cached = card.availability() in ("cached", "bundled")
        bar = _ProgressBar(name)
        try:
            path = weights.fetch(card.weights, bar, who=name)
        except weights.WeightsError as exc:
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
            failed += 1
            continue
        finally:
            bar.close()
        size = path.stat().st_size / 1e6
        verb = ("bundled with VisAttn" if card.availability() == "bundled"
                else "already cached" if was_cached else "fetched")
        print(f"{name}: {verb}, {size:.1f} MB, verified -> {path}")
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m visattn",
        description="VisAttn: see what the attention modules inside CNNs do.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("list-models", help="list the networks, their weights and sizes")
    s.set_defaults(run=cmd_list_models)
    s = sub.add_parser(
        "download", help="fetch and verify pretrained weights for later offline use",
        description="Download each model's published weights into the cache "
                    "(VISATTN_CACHE, or the Hugging Face cache for Hub files), verify their "
                    "hash, and say where they are.")
    s.add_argument("names", nargs="*", metavar="NAME", help="model names (see list-models)")
    s.add_argument("--all", action="store_true", help="every model of the zoo")
    s.set_defaults(run=cmd_download)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)
