"""The twelve attention families of the survey VisAttn is built from, and which of the zoo's
networks stand for each (pretrained, and trained by the project)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from . import zoo
from .weights import ASSETS


@dataclass(frozen=True)
class Family:
    name: str
    paper: str  # "Authors, year: title" and its link
    link: str
    attends_to: str  # channel / spatial / pairwise / branch
    card_families: tuple[str, ...]  # ModelCard.family values that belong here
    note: str = ""
    example: tuple[str, str] = ()  # (network, example-file pattern) that shows it best


FAMILIES = (
    Family("Non-local", "Wang et al., 2018: Non-local Neural Networks",
           "https://arxiv.org/abs/1711.07971", "pairwise (every position to every position)",
           ("Non-local", "BoT"), example=("tiny_nl_twins", "twins_*.png")),
    Family("SE", "Hu et al., 2018: Squeeze-and-Excitation Networks",
           "https://arxiv.org/abs/1709.01507", "channel", ("SE",)),
    Family("BAM", "Park et al., 2018: BAM: Bottleneck Attention Module",
           "https://arxiv.org/abs/1807.06514", "channel and spatial (one 3-D gate)", ("BAM",)),
    Family("CBAM", "Woo et al., 2018: CBAM: Convolutional Block Attention Module",
           "https://arxiv.org/abs/1807.06521", "channel, then spatial", ("CBAM",)),
    Family("A²-Nets", "Chen et al., 2018: A²-Nets: Double Attention Networks",
           "https://arxiv.org/abs/1810.11579", "pairwise, low rank (gather, then distribute)",
           ("A2",), "No public pretrained weights exist; only the project-trained network."),
    Family("GSoP-Net", "Gao et al., 2019: Global Second-order Pooling Convolutional Networks",
           "https://arxiv.org/abs/1811.12006", "channel (from channel covariances)", ("GSoP",),
           "No public pretrained weights exist; only the project-trained network."),
    Family("GCNet", "Cao et al., 2019: GCNet: Non-local Networks Meet Squeeze-Excitation",
           "https://arxiv.org/abs/1904.11492", "spatial context (one map for all queries) + channel",
           ("GC",)),
    Family("ECA-Net", "Wang et al., 2020: ECA-Net: Efficient Channel Attention",
           "https://arxiv.org/abs/1910.03151", "channel", ("ECA",)),
    Family("SKNet", "Li et al., 2019: Selective Kernel Networks",
           "https://arxiv.org/abs/1903.06586", "branch (which kernel size, per channel)", ("SK",)),
    Family("CCNet", "Huang et al., 2019: CCNet: Criss-Cross Attention for Semantic Segmentation",
           "https://arxiv.org/abs/1811.11721", "pairwise, sparse (row and column, twice)",
           ("CCNet",)),
    Family("ResNeSt", "Zhang et al., 2022: ResNeSt: Split-Attention Networks",
           "https://arxiv.org/abs/2004.08955", "branch (split attention, per channel)",
           ("ResNeSt",)),
    Family("Triplet", "Misra et al., 2021: Rotate to Attend: Triplet Attention",
           "https://arxiv.org/abs/2010.03045", "cross-dimension (C×W, H×C, H×W gates)",
           ("Triplet",)),
)

PHOTO = ASSETS / "examples" / "chelsea.jpg"


def networks(family: Family) -> tuple[list[zoo.ModelCard], list[zoo.ModelCard]]:
    """(pretrained networks, networks trained by the project) of a family."""
    cards = [c for c in zoo.cards() if c.family in family.card_families]
    return ([c for c in cards if c.source.library != "visattn"],
            [c for c in cards if c.source.library == "visattn"])


def example(family: Family) -> tuple[Optional[str], str]:
    """(network, image) for a one-click look: a network already on this machine (bundled
    or cached) first, on a photo, or on a generated scene for the project's own models. A
    family's own `example` comes first (Non-local: a twin scene on the twin-matching network,
    whose rows visibly depend on the query)."""
    if family.example:
        name, pattern = family.example
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
