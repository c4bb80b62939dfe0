"""Your own network, end to end: a package written by the test registers its own attention
module and builds a small network with a pretrained_cfg dict; the command line loads it from
`package.module:function` and a weights file (safetensors, or a torch state dict), prepares
photos as its dict (or flags) say, and its gates equal a recomputation from the file."""
import importlib
import json
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

import visattn
from visattn import cli, registry, usermodel, zoo
from visattn.image import load_image
from visattn.preprocess import Preprocess, prepare

from helpers import random_photo

USER_MODULE = '''
import torch
import torch.nn as nn

import visattn


@visattn.register_attention(family="Squeeze", kind="channel", tap="gate",
                            paper="A user, 2026: squeeze without excitation")
class Squeeze(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc = nn.Conv2d(c, c, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc(x.mean((2, 3), keepdim=True)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Conv2d(3, 6, 3, 2, 1), nn.ReLU(), Squeeze(6))
        self.head = nn.Linear(6, 3)
        self.pretrained_cfg = {"input_size": (3, 40, 40), "crop_pct": 1.0,
                               "interpolation": "bilinear", "mean": (0.5, 0.5, 0.5),
                               "std": (0.25, 0.25, 0.25), "label_names": ["ant", "bee", "cat"]}

    def forward(self, x):
        return self.head(self.layer1(x).mean((2, 3)))


def build_model():
    return Net()
'''
SPEC = "usernet.models:build_model"
CFG = Preprocess(size=(40, 40), crop_pct=1.0, mean=(0.5,) * 3, std=(0.25,) * 3)


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    pkg = tmp_path / "src" / "usernet"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    module = importlib.import_module("usernet.models")
    yield module
    registry.unregister_attention(module.Squeeze)
    for name in ("usernet.models", "usernet"):
        sys.modules.pop(name, None)


@pytest.fixture
def files(user_package, tmp_path):
    """A weights file (its own random init stands for training) and three photos."""
    torch.manual_seed(5)
    save_file(user_package.build_model().state_dict(), str(tmp_path / "my.safetensors"))
    photos = tmp_path / "photos"
    photos.mkdir()
    for k, size in enumerate([(70, 50), (40, 60), (33, 33)]):
        pixels = random_photo(size[1], size[0], k)
        Image.fromarray(pixels).save(photos / f"p{k}.png")
    return tmp_path / "my.safetensors", sorted(photos.iterdir())


def _forward(state, x, gate_on=True):
    """The user's network written out from the weights file: (logits, gate)."""
    a = F.relu(F.conv2d(x, state["layer1.0.weight"], state["layer1.0.bias"], 2, 1))
    gate = torch.sigmoid(F.conv2d(a.mean((2, 3), keepdim=True), state["layer1.2.fc.weight"],
                                  state["layer1.2.fc.bias"]))
    y = a * gate if gate_on else a
    return F.linear(y.mean((2, 3)), state["head.weight"], state["head.bias"]), gate


def test_analyze_loads_the_factory_and_weights_and_captures_the_users_gate(files, tmp_path, capsys):
    weights, photos = files
    out = tmp_path / "out"
    assert cli.main(["analyze", str(photos[0]), "--model", SPEC, "--weights", str(weights),
                     "--out", str(out), "--quiet"]) == 0
    meta = json.loads((out / "p0" / "meta.json").read_text())
    assert meta["preprocess"]["size"] == [40, 40] and meta["preprocess"]["mean"] == [0.5] * 3
    x, _ = prepare(load_image(photos[0]), CFG)
    logits, gate = _forward(load_file(str(weights)), x)
    captured = visattn.load(out / "p0" / "arrays.npz")["layer1.2:channel gate"].values
    np.testing.assert_allclose(captured, gate.ravel().numpy(), atol=1e-5, rtol=1e-5)
    label = ["ant", "bee", "cat"][int(logits.argmax())]
    assert f", {label} (" in capsys.readouterr().out  # names from the pretrained_cfg
    # flags override the dict
    assert cli.main(["analyze", str(photos[0]), "--model", SPEC, "--weights", str(weights),
                     "--input-size", "48", "--std", "0.2,0.2,0.2", "--out", str(tmp_path / "o2"),
                     "--quiet"]) == 0
    pre = json.loads((tmp_path / "o2" / "p0" / "meta.json").read_text())["preprocess"]
    assert pre["size"] == [48, 48] and pre["std"] == [0.2] * 3 and pre["mean"] == [0.5] * 3


def test_stats_and_ablate_run_the_users_network(files, tmp_path, capsys):
    weights, photos = files
    assert cli.main(["stats", str(photos[0].parent), "--model", SPEC, "--weights", str(weights),
                     "--out", str(tmp_path / "st"), "--quiet"]) == 0
    assert "layer1.2:channel gate" in capsys.readouterr().out
    assert (tmp_path / "st" / "excitation.csv").read_text().count("\n") > 6
    state = load_file(str(weights))
    torch.save(state, tmp_path / "my.pt")  # a torch file, read with weights_only=True
    assert cli.main(["ablate", str(photos[1]), "--model", SPEC, "--weights",
                     str(tmp_path / "my.pt")]) == 0
    table = capsys.readouterr().out.splitlines()
    x, _ = prepare(load_image(photos[1]), CFG)
    with torch.no_grad():
        on, _ = _forward(state, x)
        off, _ = _forward(state, x, gate_on=False)
    p_off = torch.softmax(off[0], 0)[int(on.argmax())]
    every = next(line for line in table if line.startswith("every stage"))
    assert every.split()[2] == "1" and every.endswith(f"{float(p_off):.1%}")
    assert any(line.startswith("stage 1 ") for line in table)


def test_user_network_mistakes_are_sentences(files, tmp_path, capsys):
    weights, photos = files
    run = lambda *extra: cli.main(["analyze", str(photos[0]), "--out", str(tmp_path / "x"),  # noqa
                                   "--quiet", *extra])
    assert run("--model", SPEC) == 2
    assert "--weights FILE" in capsys.readouterr().err
    assert run("--model", "usernet.models:nope", "--weights", str(weights)) == 2
    assert "has no function 'nope'" in capsys.readouterr().err
    assert run("--model", "no_such_pkg.mod:f", "--weights", str(weights)) == 2
    assert "cannot import 'no_such_pkg.mod'" in capsys.readouterr().err
    save_file({"other.weight": torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    assert run("--model", SPEC, "--weights", str(tmp_path / "other.safetensors")) == 1
    err = capsys.readouterr().err
    assert "does not fit the network: 6 keys missing" in err and "1 unexpected" in err
    assert run("--model", "tiny_se", "--weights", str(weights)) == 2
    assert "--weights goes with --model package.module:function" in capsys.readouterr().err


def test_a_users_card_in_the_app_with_its_family_from_the_registry(files):
    weights, photos = files
    card = usermodel.register_card("my_squeeze_net", SPEC, str(weights), labels="scenes",
                                   preprocess=CFG)
    try:
        assert (card.family, card.availability()) == ("Squeeze", "bundled")
        model = zoo.build(card, pretrained=True)  # strict load of the local file, hash checked
        state = load_file(str(weights))
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
        from visattn import families, ui
        row, = [f for f in families.page() if f.tag == "Squeeze"]
        assert "my_squeeze_net" in ui.family_row(row)
    finally:
        zoo._CARDS.pop("my_squeeze_net")


def test_the_readme_example_module_is_captured_and_switched_off(tmp_path, monkeypatch):
    """The README's own code: its gate is captured in both stages, and attention_off gives
    the network with the gates removed."""
    import copy
    import re
    from pathlib import Path

    import visattn
    from visattn import capture
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code, = re.findall(r"```python\n(# my_package/my_module\.py\n.*?)```", readme, re.S)
    pkg = tmp_path / "my_package"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "my_module.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("my_package.my_module")
    try:
        net = usermodel.load_model("my_package.my_module:build_model")
        x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        trace = capture.run(net, x)
        assert [r.layer for r in trace] == ["layer1.2", "layer2.2"]
        assert usermodel.preprocess_of(net).size == (64, 64)
        removed = copy.deepcopy(net)
        removed.layer1[2] = removed.layer2[2] = torch.nn.Identity()
        with torch.no_grad(), visattn.attention_off(net):
            off = net(x)
        np.testing.assert_allclose(off.numpy(), removed(x).detach().numpy(), atol=1e-6)
    finally:
        registry.unregister_attention(module.MeanMaxGate)
        for name in ("my_package.my_module", "my_package"):
            sys.modules.pop(name, None)


def test_python_analyze_prepares_a_module_as_its_pretrained_cfg_says(files):
    import visattn
    weights, photos = files
    net = usermodel.load_model(SPEC, str(weights))
    trace = visattn.analyze(photos[0], net)
    assert trace.geometry.input_size == (40, 40) and trace.preprocess == CFG
    assert list(trace.prediction.labels) == ["ant", "bee", "cat"]
    x, _ = prepare(load_image(photos[0]), CFG)
    _, gate = _forward(load_file(str(weights)), x)
    np.testing.assert_allclose(trace["layer1.2:channel gate"].values, gate.ravel().numpy(),
                               atol=1e-5, rtol=1e-5)
