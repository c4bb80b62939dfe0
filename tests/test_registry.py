"""The attention registry, open to users: a module class written here (unknown to the
project), registered, in a small random network, is captured exactly, switched off exactly
and leaves the network bit-identical; an unregistered look-alike is never captured and
attention_off says it stays on; every built-in entry drives capture, ablation and the
Families page."""
import copy
import inspect
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import visattn
from visattn import capture, families, records, registry, ui
from visattn.ablation import AttentionError, AttentionLeftOn, attention_off
from visattn.records import Affinity, ChannelWeights, Pairwise, SpatialMap

from helpers import bn, conv, fill_random, hook_count, lin

TOL = dict(atol=1e-5, rtol=1e-5)


# ----- a user's own attention modules (the project has never seen these classes) ---------

class Recalibrate(nn.Module):
    """Channel gate from mean- and max-pooled features: x * sigmoid(W [avg; max] + b)."""

    def __init__(self, c):
        nn.Module.__init__(self)
        self.fc = nn.Conv2d(2 * c, c, 1)
        self.act = nn.Sigmoid()

    def forward(self, x):
        s = torch.cat([x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)], 1)
        return x * self.act(self.fc(s))


class LookAlike(nn.Module):
    """Recalibrate's code under another, unregistered class."""
    __init__ = Recalibrate.__init__
    forward = Recalibrate.forward


class Affine(nn.Module):
    """Pairwise attention with a residual: x + W_out (V softmax(Q^T K / sqrt(d))^T)."""

    def __init__(self, c, d=4):
        super().__init__()
        self.q, self.k = nn.Conv2d(c, d, 1), nn.Conv2d(c, d, 1)
        self.v, self.out = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.q(x).flatten(2), self.k(x).flatten(2), self.v(x).flatten(2)
        att = torch.softmax(q.transpose(1, 2) @ k / q.shape[1] ** 0.5, -1)  # (B, N, N)
        return x + self.out((v @ att.transpose(1, 2)).reshape(b, c, h, w))


class SmallNet(nn.Module):
    """stem -> conv + gate (8 ch, 16 x 16) -> conv + pairwise + gate (16 ch, 8 x 8) -> classes."""

    def __init__(self, gate=Recalibrate, pairwise=Affine):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1), gate(8))
        self.layer2 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(), pairwise(16), gate(16))
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        return self.head(self.layer2(self.layer1(self.stem(x))).mean((2, 3)))


def image(size=32, seed=1):
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def users():
    """Recalibrate and Affine registered for one test, forgotten afterwards."""
    visattn.register_attention(Recalibrate, family="Recalibrate", kind="channel", tap="act",
                               paper="A test, 2026: a gate from mean and max",
                               attends_to="channel")
    visattn.register_attention(Affine, family="Recalibrate", kind="pairwise", tap=("q", "k"))
    yield
    registry.unregister_attention(Recalibrate)
    registry.unregister_attention(Affine)


def _gate(m, x):
    s = torch.cat([x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)], 1)
    return torch.sigmoid(conv(s, m.fc))


def _reference(net, x, off=False):
    """The network written out with functional ops; with `off`, without its attention."""
    stem, (c1, g1), (c2, _, p, g2) = net.stem, net.layer1, net.layer2
    y = F.relu(bn(conv(x, stem[0]), stem[1]))
    a = conv(y, c1)
    y = a if off else a * _gate(g1, a)
    b = pre = F.relu(conv(y, c2))
    if not off:
        q, k, v = (conv(b, m).flatten(2)[0] for m in (p.q, p.k, p.v))
        att = torch.softmax(q.T @ k / q.shape[0] ** 0.5, -1)
        b = b + conv((v @ att.T).reshape(1, 16, 8, 8), p.out)
    z = b if off else b * _gate(g2, b)
    return lin(z.mean((2, 3)), net.head), {"gate1": _gate(g1, a), "gate2": _gate(g2, b)}, pre


def test_a_registered_user_module_is_captured_as_recomputed_from_its_weights(users):
    net, x = fill_random(SmallNet()), image()
    trace = capture.run(net, x)
    with torch.no_grad():
        logits, gates, pre = _reference(net, x)
    np.testing.assert_allclose(trace.prediction.probs, torch.softmax(logits[0], 0).numpy(), **TOL)
    g1, g2 = trace.select(ChannelWeights)
    assert (g1.layer, g2.layer, g1.family) == ("layer1.1", "layer2.3", "Recalibrate")
    np.testing.assert_allclose(g1.values, gates["gate1"].ravel().numpy(), **TOL)
    np.testing.assert_allclose(g2.values, gates["gate2"].ravel().numpy(), **TOL)
    assert not np.allclose(g1.values, torch.sigmoid(gates["gate1"]).ravel().numpy(), **TOL)
    aff, = trace.select(Affinity)  # default scale: 1 / sqrt(d)
    p = net.layer2[2]
    with torch.no_grad():
        q, k = conv(pre, p.q).flatten(2)[0], conv(pre, p.k).flatten(2)[0]
        rows = torch.softmax(q.T @ k / 2.0, -1)
    for i in (0, 27, 63):
        np.testing.assert_allclose(aff.row(i).ravel(), rows[i].numpy(), **TOL)
    assert isinstance(aff, Pairwise) and not isinstance(g1, Pairwise)
    row, = [f for f in families.page() if f.tag == "Recalibrate"]  # a row of its own
    assert "A test, 2026" in ui.family_row(row) and row.card_families == ("Recalibrate",)


def test_attention_off_equals_the_network_without_the_module_and_restores_exactly(users):
    net, x = fill_random(SmallNet()), image()
    with torch.no_grad():
        before = net(x)
        with attention_off(net) as off:
            neutral = net(x)
            assert hook_count(net) == 3
        after = net(x)
        without, _, _ = _reference(net, x, off=True)
        removed = copy.deepcopy(net)
        removed.layer1[1] = removed.layer2[2] = removed.layer2[3] = nn.Identity()
        np.testing.assert_allclose(removed(x).numpy(), without.numpy(), **TOL)
    assert sorted(off.layers) == ["layer1.1", "layer2.2", "layer2.3"] and not off.left_on
    np.testing.assert_allclose(neutral.numpy(), without.numpy(), **TOL)
    assert not np.allclose(neutral.numpy(), before.numpy(), atol=1e-3)
    assert torch.equal(before, after) and hook_count(net) == 0
    with torch.no_grad(), attention_off(net, stages=[]) as none:  # no stage chosen: nothing off
        assert torch.equal(net(x), before) and len(none) == 0


def test_an_unregistered_look_alike_is_never_captured_and_attention_off_says_so(users):
    net, x = fill_random(SmallNet(gate=LookAlike)), image()
    trace = capture.run(net, x)
    assert trace.select(ChannelWeights) == [] and len(trace.select(Affinity)) == 1
    with torch.no_grad():
        before = net(x)
        with pytest.warns(AttentionLeftOn) as said:
            with attention_off(net) as off:
                partly = net(x)
    assert [str(w.message) for w in said] == off.left_on and off.layers == ["layer2.2"]
    assert [s.split(" looks like attention")[0] for s in off.left_on] == [
        "LookAlike at 'layer1.1'", "LookAlike at 'layer2.3'"]
    assert not torch.equal(partly, before)  # the registered pairwise block did switch off
    with pytest.raises(AttentionError, match="LookAlike"):
        with attention_off(net, strict=True):
            pass
    assert hook_count(net) == 0


def test_decorator_registration_of_a_spatial_gate_and_a_module_without_a_neutral_value():
    @visattn.register_attention(family="Where", kind="spatial", tap="act")
    class Where(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act = nn.Conv2d(2, 1, 3, padding=1), nn.Sigmoid()

        def forward(self, x):
            return x * self.act(self.conv(torch.cat([x.mean(1, keepdim=True),
                                                     x.amax(1, keepdim=True)], 1)))

    @visattn.register_attention(family="Where", kind="channel", tap="act", neutral=None)
    class Stuck(Recalibrate):  # a subclass is a class of its own: registered on its own
        pass

    try:
        net = fill_random(nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), Where(), Stuck(4)))
        x = image(12)
        trace = capture.run(net, x)
        sp, = trace.select(SpatialMap)
        with torch.no_grad():
            a = conv(x, net[0])
            want = torch.sigmoid(conv(torch.cat([a.mean(1, keepdim=True), a.amax(1, keepdim=True)],
                                                1), net[1].conv))
        np.testing.assert_allclose(sp.values, want[0, 0].numpy(), **TOL)
        assert trace.select(ChannelWeights)[0].family == "Where"
        with pytest.warns(AttentionLeftOn, match="Stuck at '2'.*no neutral value"):
            with attention_off(net) as off:
                pass
        assert off.layers == ["1"]
        with pytest.raises(ValueError, match="registered already"):
            visattn.register_attention(Where, family="Where", kind="spatial", tap="act")
    finally:
        registry.unregister_attention(Where)
        registry.unregister_attention(Stuck)
    assert "Where" not in [f.tag for f in registry.families()]


def test_registration_mistakes_are_sentences():
    with pytest.raises(ValueError, match="kind must be one of"):
        visattn.register_attention(LookAlike, family="X", kind="gates", tap="act")
    with pytest.raises(ValueError, match=r"tap=\(query path, key path\)"):
        visattn.register_attention(LookAlike, family="X", kind="pairwise", tap="q")
    with pytest.raises(ValueError, match="neutral="):
        visattn.register_attention(LookAlike, family="X", kind="custom", taps=("act",),
                                   build=lambda c: [])
    with pytest.raises(TypeError):
        visattn.register_attention(len, family="X", kind="channel", tap="act")
    with pytest.raises(ValueError, match="not a registered family"):
        visattn.register_attention(LookAlike, kind="channel", tap="act",
                                   family=visattn.Family("X", shown_under="Nowhere"))
    assert registry.entry_for(LookAlike(2)) is None


def test_a_tap_that_does_not_fire_is_named():
    visattn.register_attention(LookAlike, family="LookAlike", kind="channel", tap="sigmod")
    try:
        with pytest.raises(RuntimeError, match="LookAlike at '1'.*'sigmod' did not fire"):
            capture.run(nn.Sequential(nn.Conv2d(3, 4, 1), LookAlike(4)), image(8))
    finally:
        registry.unregister_attention(LookAlike)


def test_every_record_type_is_exported_and_states_its_shapes():
    kinds = {n for n, c in inspect.getmembers(records, inspect.isclass)
             if c.__module__ == records.__name__ and issubclass(c, records.Record)}
    assert kinds <= set(visattn.__all__)
    assert {"Pairwise", "Trace", "Prediction", "Segmentation", "register_attention",
            "attention_off"} <= set(visattn.__all__)
    shapes = ("(C,)", "(H, W)", "(K, C)", "(A, B)", "(n, N)", "(heads, N, d)")
    for name in kinds - {"Record"}:
        assert any(s in getattr(records, name).__doc__ for s in shapes), name


# ----- every built-in entry: capture, ablation, the Families page --------------------------

def _identity(block, x):
    return x


def _mean_of_branches(block, x):
    from timm.layers.selective_kernel import SelectiveKernel
    if isinstance(block, SelectiveKernel):
        return torch.stack([path(x) for path in block.paths]).mean(0)
    if hasattr(block, "rsoftmax"):  # timm SplitAttn: conv, BN, act, then the splits
        y = block.act0(block.bn0(block.conv(x)))
    else:  # pytorchcv SABlock takes the splits
        y = x
    return y.reshape(1, block.radix, -1, *y.shape[2:]).mean(1)


class _OneFrame(nn.Module):
    """Hosts a space-time block on a photo: a clip of one frame."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x):
        return self.block(x[:, :, None]).squeeze(2)


def _examples():
    """Each built-in class -> (a small instance hosting it, input channels, the hosting
    block's output with the attention off). A new entry needs one line here."""
    from visattn.models.a2net import DoubleAttention
    from visattn.models.gsop import GSoP
    from visattn.models.i3d_nl import NonLocal3d
    from visattn.models.mmseg_r50d8 import (CAM, PAM, CrissCrossAttention, DisentangledNonLocal2d,
                                            NonLocal2d)
    from visattn.models.triplet import TripletAttention
    from pytorchcv.models.bamresnet import BamBlock
    from pytorchcv.models.cbamresnet import CbamBlock
    from pytorchcv.models.common.att import SABlock, SEBlock
    from timm.layers import selective_kernel as sk
    from timm.layers.bottleneck_attn import BottleneckAttn
    from timm.layers.cbam import CbamModule
    from timm.layers.eca import CecaModule, EcaModule
    from timm.layers.global_context import GlobalContext
    from timm.layers.non_local_attn import NonLocalAttn
    from timm.layers.split_attn import SplitAttn
    from timm.layers.squeeze_excite import SEModule
    from timm.models.senet import SEModule as LegacySEModule
    return {
        NonLocalAttn: (lambda: NonLocalAttn(16, rd_ratio=1 / 2), 16, _identity),
        NonLocal2d: (lambda: NonLocal2d(16), 16, _identity),
        DisentangledNonLocal2d: (lambda: DisentangledNonLocal2d(16), 16, _identity),
        NonLocal3d: (lambda: _OneFrame(NonLocal3d(16)), 16, _identity),
        SEModule: (lambda: SEModule(16, rd_ratio=1 / 4), 16, _identity),
        LegacySEModule: (lambda: LegacySEModule(16, reduction=4), 16, _identity),
        SEBlock: (lambda: SEBlock(16, reduction=4), 16, _identity),
        BamBlock: (lambda: BamBlock(16), 16, _identity),
        CbamModule: (lambda: CbamModule(16, rd_ratio=1 / 4), 16, _identity),
        CbamBlock: (lambda: CbamBlock(16, reduction_ratio=4), 16, _identity),
        DoubleAttention: (lambda: DoubleAttention(16, m=8, n=4), 16, _identity),
        GSoP: (lambda: GSoP(16, reduced=8), 16, _identity),
        GlobalContext: (lambda: GlobalContext(16, fuse_add=True, fuse_scale=True), 16, _identity),
        EcaModule: (lambda: EcaModule(16), 16, _identity),
        CecaModule: (lambda: CecaModule(16), 16, _identity),
        sk.SelectiveKernelAttn: (lambda: sk.SelectiveKernel(16, 16, split_input=False,
                                                            rd_divisor=4), 16, _mean_of_branches),
        CrissCrossAttention: (lambda: CrissCrossAttention(16), 16, _identity),
        SplitAttn: (lambda: SplitAttn(16, 16, radix=2), 16, _mean_of_branches),
        SABlock: (lambda: SABlock(16, groups=1, radix=2, min_channels=4), 32, _mean_of_branches),
        TripletAttention: (lambda: TripletAttention(16), 16, _identity),
        BottleneckAttn: (lambda: BottleneckAttn(16, feat_size=(8, 8), num_heads=2), 16, None),
        PAM: (lambda: PAM(16, 8), 16, _identity),
        CAM: (CAM, 16, _identity),
    }


EXAMPLES = _examples()
BUILTIN = registry.entries()  # collected before any test registers its own classes


def test_every_built_in_entry_has_an_example_here():
    assert {e.cls for e in BUILTIN} == set(EXAMPLES)


@pytest.mark.parametrize("entry", BUILTIN, ids=lambda e: e.cls.__name__)
def test_each_built_in_entry_drives_capture_ablation_and_the_families_page(entry):
    make, channels, off_reference = EXAMPLES[entry.cls]
    block = fill_random(make(), seed=3)
    x = torch.randn(1, channels, 8, 8, generator=torch.Generator().manual_seed(4))
    net = nn.Sequential(block)
    trace = capture.run(net, x)  # capture: records of the entry's family
    assert len(trace) > 0 and {r.family for r in trace} == {entry.family.tag}
    (layer, _, _), = registry.registered(net)  # "0", or "0.attn" inside SK's convolution
    assert all(r.layer == layer and r.grid[-2:] == (8, 8) for r in trace)  # (T, H, W) for clips
    with torch.no_grad():  # ablation: the neutral value, exactly restored
        before = net(x)
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            with attention_off(net) as off:
                neutral = net(x)
        after = net(x)
    assert torch.equal(before, after) and hook_count(net) == 0
    if off_reference is None:  # no neutral value: said, and the output is unchanged
        assert entry.neutral is None and off.left_on and torch.equal(neutral, before)
        assert any(issubclass(w.category, AttentionLeftOn) for w in said)
    else:
        assert off.layers == [layer] and not said
        with torch.no_grad():
            np.testing.assert_allclose(neutral.numpy(), off_reference(block, x).numpy(),
                                       atol=1e-5, rtol=1e-4)
        assert not np.allclose(neutral.numpy(), before.numpy(), atol=1e-4)
    rows = [f for f in families.page() if entry.family.tag in f.card_families]
    assert len(rows) == 1  # the Families page: one row shows the family, with its paper
    shown = ui.family_row(rows[0])
    assert rows[0].link in shown and rows[0].name in shown
    assert entry.family.link in shown and entry.family.paper in shown  # BoTNet's too
    own = entry.family.shown_under is None
    assert (rows[0] is entry.family) == own and entry.family.link.startswith("https://arxiv.org/")


def test_the_old_pairwise_tuple_is_deprecated():
    with pytest.warns(DeprecationWarning, match="isinstance\\(rec, Pairwise\\)"):
        old = records.PAIRWISE
    assert all(issubclass(kind, records.Record) for kind in old)


def test_danet_channel_attention_rows_reproduce_the_blocks_own_output():
    """CAM's captured (C, C) rows, applied to the block input, give what the block itself
    adds to its input (gamma = 1): out - x = A @ x, computed by the module, not by us."""
    from visattn.models.mmseg_r50d8 import CAM
    from visattn.records import AxisGate
    block = CAM()
    with torch.no_grad():
        block.gamma.scale.fill_(1.0)
    x = torch.randn(1, 12, 5, 7, generator=torch.Generator().manual_seed(8)) * 0.3
    trace = capture.run(nn.Sequential(block), x)
    (rec,) = trace.select(AxisGate)
    assert rec.family == "DANet" and rec.values.shape == (12, 12) and rec.value_kind == "probability"
    added = (block(x) - x)[0].reshape(12, -1).detach().numpy()
    np.testing.assert_allclose(rec.values @ x[0].reshape(12, -1).numpy(), added, atol=1e-5)
    np.testing.assert_allclose(rec.values.sum(1), 1.0, atol=1e-5)
