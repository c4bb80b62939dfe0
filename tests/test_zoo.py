"""The zoo: every card builds, runs at its own input size, and its probes find the blocks its
paper describes; cards read their metadata from the libraries; labels and Space config."""
import re
from pathlib import Path

import pytest
import torch

from visattn.models.tiny_resnet import DEPTHS
from visattn import capture, labels, zoo
from visattn.records import (Affinity, AxisGate, BranchWeights, ChannelAffinity, ChannelWeights, CrissCross,
                             Distribute, SpatialMap, TwoHop)
from visattn.weights import HubFile

RESNET50_BLOCKS = sum([3, 4, 6, 3])  # bottlenecks per stage of ResNet-50 (and basic blocks of R-34)
EXPECTED = {  # card -> {record kind: count}
    "seresnet50": {ChannelWeights: RESNET50_BLOCKS},
    "legacy_seresnet50": {ChannelWeights: RESNET50_BLOCKS},
    "cbam_resnet50": {ChannelWeights: RESNET50_BLOCKS, SpatialMap: RESNET50_BLOCKS},
    "bam_resnet50": {ChannelWeights: 3, SpatialMap: 2 * 3},  # one BAM between stages 1-4
    "ecaresnet50d": {ChannelWeights: RESNET50_BLOCKS},
    "gcresnet50t": {SpatialMap: RESNET50_BLOCKS, ChannelWeights: RESNET50_BLOCKS},
    "skresnet34": {BranchWeights: RESNET50_BLOCKS},
    "resnest50d": {BranchWeights: RESNET50_BLOCKS},
    "botnet26t_256": {Affinity: 3},  # MHSA replaces the last block of stage 3 and both of stage 4
    "nonlocal_r50_d8_ade20k": {Affinity: 1},  # one NL block in the decode head
    "ccnet_r50_d8_ade20k": {CrissCross: 2, TwoHop: 1},  # recurrence 2, and their composition
    "danet_r50_d8_ade20k": {Affinity: 1, ChannelAffinity: 1},  # position attention, channel attention (C x C)
    "dnl_r50_d8_ade20k": {Affinity: 1, SpatialMap: 1},  # whitened pairwise rows, unary map
    "triplet_resnet50": {AxisGate: 2 * RESNET50_BLOCKS, SpatialMap: RESNET50_BLOCKS},
}
TINY_BLOCKS = sum(DEPTHS)  # models/tiny_resnet.py: basic blocks in the four stages
TINY = {"tiny_none": {}, "tiny_se": {ChannelWeights: TINY_BLOCKS},
        "tiny_cbam": {ChannelWeights: TINY_BLOCKS, SpatialMap: TINY_BLOCKS},
        "tiny_bam": {ChannelWeights: 3, SpatialMap: 2 * 3},  # between the four stages
        "tiny_nl": {Affinity: 1}, "tiny_eca": {ChannelWeights: TINY_BLOCKS},
        "tiny_gc": {SpatialMap: TINY_BLOCKS, ChannelWeights: TINY_BLOCKS},
        "tiny_sk": {BranchWeights: TINY_BLOCKS},
        "tiny_triplet": {AxisGate: 2 * TINY_BLOCKS, SpatialMap: TINY_BLOCKS},
        "tiny_a2": {SpatialMap: 8, Distribute: 1},  # 8 gather maps, the distribute rows
        "tiny_gsop": {ChannelWeights: TINY_BLOCKS},
        "tiny_nl_twins": {Affinity: 1}, "tiny_none_twins": {}}  # twin-scene labellers
EXPECTED.update(TINY)  # every bundled network ships with the checkout (assets/weights)
ROOT = Path(__file__).resolve().parents[1]


def test_every_card_has_an_expectation():
    """The zoo lists exactly the networks written down here: none missing (a bundled one
    whose manifest entry went away), none unknown (a card nobody checks)."""
    assert {c.name for c in zoo.cards()} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_card_builds_runs_at_its_input_size_and_finds_its_blocks(name):
    card = zoo.get(name)
    model = zoo.build(card, pretrained=False)
    h, w = card.preprocess.size if card.task == "classify" else (64, 96)
    trace = capture.run(model, torch.randn(1, 3, h, w), labels=card.class_names)
    counts = {}
    for rec in trace:
        counts[type(rec)] = counts.get(type(rec), 0) + 1
    assert counts == EXPECTED[name]
    n_classes = {"imagenet": 1000, "scenes": 6, "ade20k": 150, "twins": 3}[card.labels]
    assert len(card.class_names) == n_classes
    if card.task == "segment":
        assert trace.prediction.class_map.shape == (h, w)
        assert card.palette.shape == (n_classes, 3)
    else:
        assert trace.prediction.probs.shape == (n_classes,)


def test_card_metadata_is_complete():
    for card in zoo.cards():
        assert card.paper.startswith("https://arxiv.org/abs/")
        assert card.licence and card.summary
        segment = card.source.library == "mmseg" or card.labels == "twins"
        assert card.task == ("segment" if segment else "classify")
        if card.source.library == "visattn":  # trained by the project, shipped in assets/
            assert card.availability() == "bundled" and card.download_mb < 5
        else:
            assert card.weights is not None and card.availability() == "download"
            assert 10 < card.download_mb < 500


def test_labels_shipped_equal_the_library_metadata():
    shipped = labels.load("imagenet")
    assert list(shipped) == labels.imagenet_from_timm()
    assert shipped[281].startswith("tabby")


def test_readme_preloads_exactly_the_hub_repos_of_the_zoo():
    front = (ROOT / "README.md").read_text().split("---")[1]
    block = front.split("preload_from_hub:")[1]
    listed = re.findall(r"^\s+-\s+(\S+) (\S+)\s*$", block, flags=re.M)
    hub = [c.weights for c in zoo.cards() if isinstance(c.weights, HubFile)]
    assert listed == [(w.repo_id, w.filename) for w in hub]  # only the file we load
