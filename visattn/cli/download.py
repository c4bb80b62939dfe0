"""visattn list-models and visattn download: what is available, and weights fetched and
verified for later offline use."""
from __future__ import annotations

import sys

from .common import ProgressBar


def add(sub) -> None:
    s = sub.add_parser("list-models", help="list the networks, their weights and sizes")
    s.set_defaults(run=list_models)
    s = sub.add_parser(
        "download", help="fetch and verify pretrained weights for later offline use",
        description="Download each model's published weights into the cache "
                    "(VISATTN_CACHE, or the Hugging Face cache for Hub files), verify their "
                    "hash, and say where they are.")
    s.add_argument("names", nargs="*", metavar="NAME", help="model names (see list-models)")
    s.add_argument("--all", action="store_true", help="every model of the zoo")
    s.set_defaults(run=download)


def list_models(args) -> int:
    from .. import weights, zoo
    print(f"{'name':20s} {'family':9s} {'task':9s} {'library':10s} {'weights':9s} {'size':>7s}")
    for card in zoo.cards():
        print(f"{card.name:20s} {card.family:9s} {card.task:9s} {card.source.library:10s} "
              f"{card.availability():9s} {card.download_mb:6.0f}M")
    print(f"\ncache: {weights.cache_dir()} (VISATTN_CACHE), Hub cache: {weights.hub_cache()}")
    return 0


def download(args) -> int:
    from .. import zoo
    names = [c.name for c in zoo.cards()] if args.all else args.names
    if not names:
        print("name at least one model, or --all (see `python -m visattn list-models`)",
              file=sys.stderr)
        return 2
    return 1 if sum(not _download_one(name) for name in names) else 0


def _download_one(name: str) -> bool:
    """Fetch and verify one card's weights, said in one line; False if it failed."""
    from .. import weights, zoo
    try:
        card = zoo.get(name)
    except KeyError as exc:
        print(f"{name}: {exc.args[0]}", file=sys.stderr)
        return False
    if card.weights is None:
        print(f"{name}: no published weights (architecture only); nothing to fetch")
        return True
    was_cached = card.availability() in ("cached", "bundled")
    bar = ProgressBar(name)
    try:
        path = zoo.fetch_verified(card, bar)
    except weights.WeightsError as exc:
        print(f"{name}: FAILED: {exc}", file=sys.stderr)
        return False
    finally:
        bar.close()
    size = path.stat().st_size / 1e6
    verb = ("bundled with VisAttn" if card.availability() == "bundled"
            else "already cached" if was_cached else "fetched")
    print(f"{name}: {verb}, {size:.1f} MB, verified -> {path}")
    return True
