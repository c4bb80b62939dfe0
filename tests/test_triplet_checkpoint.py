"""The Triplet card loads the authors' ImageNet checkpoint.

The authors' network is written here from the module structure they publish
(landskape-ai/triplet-attention, MODELS/triplet_attention.py and MODELS/resnet.py), not
derived from VisAttn's mapping: each gate has `compress` (Z-pool, no weights) and
`spatial = BasicConv(conv, bn)` (Conv2d 2 -> 1, k 7, padding 3, no bias; BatchNorm2d(1,
eps 1e-5, momentum 0.01); relu off); TripletAttention holds ChannelGateH, ChannelGateW
and SpatialGate; each Bottleneck keeps it as `triplet_attention` after bn3, before the
residual add; the model was trained inside DataParallel, so the saved keys start with
`module.`. The checkpoint travels through the URL path like the real one (no published
hash) and the card's model must give the authors' model's logits.
"""
import dataclasses
import io

import pytest
import torch
import torch.nn as nn

import visattn.models.triplet as triplet
from visattn import weights, zoo
from visattn.weights import UrlFile, WeightsError

from local_servers import send_file, serve


class AuthorsBasicConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, stride=1, padding=3, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01, affine=True)

    def forward(self, x):
        return self.bn(self.conv(x))


class AuthorsGate(nn.Module):
    """Their SpatialGate class: max and mean over dim 1, BasicConv, sigmoid, multiply."""

    def __init__(self):
        super().__init__()
        self.spatial = AuthorsBasicConv()

    def forward(self, x):
        pooled = torch.cat([x.max(1, keepdim=True)[0], x.mean(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(pooled))


class AuthorsTriplet(nn.Module):
    def __init__(self):
        super().__init__()
        self.ChannelGateH = AuthorsGate()
        self.ChannelGateW = AuthorsGate()
        self.SpatialGate = AuthorsGate()

    def forward(self, x):
        h = self.ChannelGateH(x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
        w = self.ChannelGateW(x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)
        return (self.SpatialGate(x) + h + w) / 3


class AuthorsBottleneck(nn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride,
                                                      bias=False), nn.BatchNorm2d(planes * 4))
        self.triplet_attention = AuthorsTriplet()

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.triplet_attention(self.bn3(self.conv3(out)))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class AuthorsResNet50(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        inplanes = 64
        for k, (planes, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2),
                                                     (512, 3, 2)], 1):
            layer = []
            for j in range(blocks):
                layer.append(AuthorsBottleneck(inplanes, planes, stride if j == 0 else 1))
                inplanes = planes * 4
            setattr(self, f"layer{k}", nn.Sequential(*layer))
        self.fc = nn.Linear(2048, classes)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(nn.functional.avg_pool2d(x, 7).flatten(1))


def trained_looking(model: nn.Module, seed: int) -> nn.Module:
    """Every tensor random (BN statistics included), scaled so activations stay finite and
    each gate's sigmoid is far from constant."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if key.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif key.endswith(("running_mean", "bias")):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif t.ndim == 1:  # BN weight
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) / fan_in ** 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def authors():
    """(the authors' model, its checkpoint bytes in their published format)."""
    torch.manual_seed(0)
    net = trained_looking(AuthorsResNet50(), seed=11)
    wrapped = nn.DataParallel(net)  # as they trained it: keys start with `module.`
    buf = io.BytesIO()
    torch.save({"epoch": 100, "arch": "resnet", "state_dict": wrapped.state_dict(),
                "best_prec1": 0.0, "optimizer": {"state": {}, "param_groups": []}}, buf)
    return net, buf.getvalue()


def load_card_from(data: bytes) -> torch.nn.Module:
    card = zoo.get("triplet_resnet50")
    with serve({"/download": send_file(data)}) as srv:
        spec = UrlFile(srv.url + "/download?id=x&export=download", None, name="triplet.pth.tar")
        local = dataclasses.replace(card, source=dataclasses.replace(card.source,
                                                                    weights=lambda: spec))
        return zoo.build(local, pretrained=True)


def test_their_checkpoint_has_the_published_key_layout(authors):
    _, data = authors
    keys = torch.load(io.BytesIO(data), weights_only=True)["state_dict"].keys()
    gates = [k for k in keys if ".triplet_attention." in k]
    assert "module.layer1.0.triplet_attention.ChannelGateH.spatial.conv.weight" in keys
    assert "module.layer4.2.triplet_attention.SpatialGate.spatial.bn.running_var" in keys
    assert len(gates) == 16 * 3 * 6  # 16 blocks, 3 gates, conv + 5 BN tensors
    assert all(k.startswith("module.") for k in keys)


def test_the_card_loads_their_checkpoint_and_gives_their_logits(authors):
    net, data = authors
    ours = load_card_from(data)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want, got = net(x), ours(x)
    assert want.std() > 0.1  # the logits are not degenerate
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_swapping_their_two_channel_gates_changes_the_logits(authors, monkeypatch):
    """Negative control: the comparison above sees which gate goes where."""
    net, data = authors
    monkeypatch.setattr(triplet, "AUTHORS_GATES", {"ChannelGateH": "hc", "ChannelGateW": "cw",
                                                   "SpatialGate": "hw"})
    ours = load_card_from(data)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert not torch.allclose(ours(x), net(x), atol=1e-3, rtol=1e-3)


def test_a_mapping_that_keeps_their_spatial_name_fails_loudly_and_keeps_nothing(authors,
                                                                                monkeypatch):
    _, data = authors
    monkeypatch.setattr(triplet, "AUTHORS_PARTS", {})
    with pytest.raises(WeightsError, match=r"missing .*se\.cw\.conv\.conv\.weight"):
        load_card_from(data)
    assert not [p for p in weights.cache_dir().rglob("*") if p.suffix in (".tar", ".pth")]
