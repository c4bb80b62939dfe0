"""The Families page: each attention family of the registry (the survey's twelve, then any a
user registers), the zoo's networks that stand for it (pretrained, and trained by the
project) and a one-click example. Families `shown_under` another (BoTNet, DANet under
Non-local) appear in that family's row.
"""
from __future__ import annotations

from typing import Optional

from . import registry, zoo
from .registry import Family
from .weights import ASSETS


def page() -> tuple[Family, ...]:
    """The families with a row of their own, in registration order."""
    return tuple(f for f in registry.families() if f.shown_under is None)


def shown_under(family: Family) -> tuple[Family, ...]:
    """The families whose networks appear in this family's row (BoTNet, DANet: Non-local)."""
    return tuple(f for f in registry.families() if f.shown_under == family.tag)


def __getattr__(name: str):
    if name == "FAMILIES":  # the page's rows, read at each use (users may register more)
        return page()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


PHOTO = ASSETS / "examples" / "chelsea.jpg"


def networks(family: Family) -> tuple[list[zoo.ModelCard], list[zoo.ModelCard]]:
    """(pretrained networks, networks trained by the project) of a family."""
    cards = [c for c in zoo.cards() if c.family in family.card_families]
    return ([c for c in cards if c.source.library != "visattn"],
            [c for c in cards if c.source.library == "visattn"])


def is_clip(path: str) -> bool:
    """Is this example file a clip (analysed by analyze_video), not a photo?"""
    from .video import CLIP_SUFFIXES
    return str(path).lower().endswith(CLIP_SUFFIXES)


def example(family: Family) -> tuple[Optional[str], str]:
    """(network, image) for a one-click look: a network already on this machine (bundled
    or cached) first, on a photo, or on a generated scene for the project's own models. A
    family's own `example` comes first (Non-local: a generated clip on tiny_nl_clips, whose
    rows follow an object across frames; `is_clip(image)` says when the example is a clip)."""
    if family.example:
        name, pattern = family.example
        from . import zoo_video
        if zoo_video.is_clip_network(name):
            zoo_video.ensure_cards()  # the clip networks join the zoo on first use
        images = sorted((ASSETS / "examples").glob(pattern))
        if images and name in {c.name for c in zoo.cards()}:
            return name, str(images[0])
    pretrained, own = networks(family)
    ready = [c for c in pretrained if c.availability() == "cached"]
    if ready:
        return ready[0].name, str(PHOTO)
    if own:
        scenes = sorted((ASSETS / "examples").glob("scene_*.png"))
        return own[0].name, str(scenes[0] if scenes else PHOTO)
    return (pretrained[0].name if pretrained else None), str(PHOTO)
