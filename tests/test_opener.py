"""visattn.open_network: one way to open a network, used by analyze, the CLI and the app;
the CLI and the app give the same trace for the same photo and network."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image
from safetensors.torch import save_file

import visattn
from visattn import cli, ui, zoo
from visattn.opener import RANDOM_NOTE
from visattn.weights import WeightsError

from helpers import random_photo


class _Gated(nn.Module):
    """A small network of a registered attention module (timm's SE), with a pretrained_cfg."""

    def __init__(self):
        super().__init__()
        from timm.layers.squeeze_excite import SEModule
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.se = SEModule(8, rd_channels=4)
        self.head = nn.Linear(8, 3)
        self.pretrained_cfg = {"input_size": (3, 40, 40), "mean": (0.5, 0.5, 0.5),
                               "std": (0.25, 0.25, 0.25), "label_names": ["a", "b", "c"]}

    def forward(self, x):
        return self.head(self.se(self.stem(x)).mean((2, 3)))


def build():
    torch.manual_seed(3)
    return _Gated().eval()


def test_a_name_a_card_and_a_network_open_the_same_shared_module():
    by_name = visattn.open_network("tiny_se")
    by_card = visattn.open_network(zoo.get("tiny_se"))
    assert by_name.module is by_card.module  # the process-wide cache
    assert visattn.open_network(by_name) is by_name
    card = zoo.get("tiny_se")
    assert by_name.preprocess == card.preprocess and by_name.labels == card.class_names
    assert by_name.task == "classify" and by_name.pretrained and not by_name.module.training


def test_preprocess_fields_change_the_networks_own_and_random_weights_are_said():
    net = visattn.open_network("tiny_se", preprocess={"size": (48, 48), "mean": None})
    own = zoo.get("tiny_se").preprocess
    assert net.preprocess.size == (48, 48) and net.preprocess.mean == own.mean
    random = visattn.open_network("botnet26t_256", pretrained=False)
    assert RANDOM_NOTE in random.notes and not random.pretrained


def test_a_factory_with_its_weights_and_a_module_of_your_own(tmp_path):
    save_file(build().state_dict(), tmp_path / "w.safetensors")
    spec = f"{__name__}:build"
    with pytest.raises(WeightsError, match="weights file"):
        visattn.open_network(spec)
    net = visattn.open_network(spec, weights=str(tmp_path / "w.safetensors"))
    assert net.name == "_Gated" and net.labels == ("a", "b", "c") and net.task is None
    assert net.preprocess.size == (40, 40) and net.preprocess.std == (0.25, 0.25, 0.25)
    mine = build()
    assert visattn.open_network(mine).module is mine
    with pytest.raises(ValueError, match="own published weights"):
        visattn.open_network("tiny_se", weights=str(tmp_path / "w.safetensors"))
    with pytest.raises(KeyError, match="unknown model"):
        visattn.open_network("no_such_network")


def test_analyze_takes_an_opened_network():
    photo = random_photo(60, 80, 1)
    net = visattn.open_network("tiny_cbam")
    a, b = visattn.analyze(photo, net), visattn.analyze(photo, "tiny_cbam")
    assert [r.key for r in a] == [r.key for r in b] and a.notes == b.notes
    for x, y in zip(a, b):
        assert all(np.array_equal(v, y.arrays()[k]) for k, v in x.arrays().items())


def test_the_cli_and_the_app_give_identical_traces(tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(random_photo(90, 120, 5)).save(photo)
    assert cli.main(["analyze", str(photo), "--model", "tiny_nl_twins", "--out",
                     str(tmp_path / "out"), "--quiet"]) == 0
    from_cli = visattn.load(tmp_path / "out" / "photo" / "arrays.npz")
    session, *_ = ui.run_analysis(str(photo), "tiny_nl_twins")
    from_app = session.trace
    assert from_cli.model == from_app.model == "tiny_nl_twins"
    assert from_cli.geometry == from_app.geometry and from_cli.notes == from_app.notes
    assert [r.key for r in from_cli] == [r.key for r in from_app] and len(from_cli) > 0
    for x, y in zip(from_cli, from_app):
        for name, value in x.arrays().items():
            assert np.array_equal(value, y.arrays()[name]), (x.key, name)
