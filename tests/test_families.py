"""Triplet attention, A^2 double attention and GSoP, written from their papers: captured gates
and rows equal an independent recomputation from each module's weights, the module's own
output is rebuilt from them, and the Families page reaches every family (the authors'
Triplet checkpoint: test_triplet_checkpoint.py)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from visattn.models.a2net import DoubleAttention
from visattn.models.gsop import GSoP
from visattn.models.triplet import TripletAttention
from visattn import capture, families, ui, zoo
from visattn.records import Pairwise, AxisGate, Distribute, SpatialMap

from helpers import bn, conv, fill_random

TOL = dict(atol=1e-5, rtol=1e-5)


class Holder(torch.nn.Module):
    """One attention module on a random feature map, as capture.run needs a model."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return self.block(x)


def randomised(block, seed=0):
    return Holder(fill_random(block, seed)).eval()


def features(c=24, h=9, w=13, seed=1):
    return torch.randn(1, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_triplet_gates_and_output_equal_the_paper_formula():
    model = randomised(TripletAttention(24))
    x = features()
    trace = capture.run(model, x)
    t = model.block

    def gate(branch, rotated):  # Z-pool (max, mean over the first axis), conv + BN, sigmoid
        z = torch.cat([rotated.amax(1, keepdim=True), rotated.mean(1, keepdim=True)], 1)
        return torch.sigmoid(bn(conv(z, branch.conv.conv), branch.conv.bn))

    with torch.no_grad():
        g_cw = gate(t.cw, x.permute(0, 2, 1, 3))  # H left out: (C, W)
        g_hc = gate(t.hc, x.permute(0, 3, 2, 1))  # W left out: (H, C)
        g_hw = gate(t.hw, x)  # C left out: (H, W)
        out = (x * g_cw.permute(0, 2, 1, 3) + x * g_hc.permute(0, 3, 2, 1) + x * g_hw) / 3
        np.testing.assert_allclose(model(x).numpy(), out.numpy(), **TOL)
    cw, hc = trace.select(AxisGate)
    assert (cw.axes, hc.axes) == (("C", "W"), ("H", "C"))
    np.testing.assert_allclose(cw.values, g_cw[0, 0].numpy(), **TOL)
    np.testing.assert_allclose(hc.values, g_hc[0, 0].numpy(), **TOL)
    np.testing.assert_allclose(trace.select(SpatialMap)[0].values, g_hw[0, 0].numpy(), **TOL)
    with torch.no_grad():  # negative control: Z-pool in the other order is caught
        r = x.permute(0, 2, 1, 3)
        z = torch.cat([r.mean(1, keepdim=True), r.amax(1, keepdim=True)], 1)
        swapped = torch.sigmoid(bn(conv(z, t.cw.conv.conv), t.cw.conv.bn))
    assert not np.allclose(cw.values, swapped[0, 0].numpy(), **TOL)


def test_a2_gather_distribute_and_rows_equal_the_full_matrix():
    model = randomised(DoubleAttention(24, m=12, n=6))
    x = features()
    trace = capture.run(model, x)
    d = model.block
    with torch.no_grad():
        a = conv(x, d.conv_a).flatten(2)[0]  # (m, N)
        gather = torch.softmax(conv(x, d.conv_b).flatten(2)[0], dim=1)  # (n, N) over positions
        distribute = torch.softmax(conv(x, d.conv_v).flatten(2)[0], dim=0)  # (n, N) over descr.
        full = distribute.T @ gather  # (N, N): row i = where position i takes information from
        z = (a @ full.T).reshape(1, 12, 9, 13)  # = A gather^T distribute, position by position
        np.testing.assert_allclose(model(x).numpy(), (x + bn(conv(z, d.conv_out), d.bn)).numpy(),
                                   atol=1e-4, rtol=1e-4)
    maps = trace.select(SpatialMap)
    assert len(maps) == 6
    for k, rec in enumerate(maps):
        np.testing.assert_allclose(rec.values.ravel(), gather[k].numpy(), **TOL)
    rows = trace.select(Distribute)[0]
    n = 9 * 13
    for i in (0, 12, n // 2, n - 1):
        np.testing.assert_allclose(rows.row(i).ravel(), full[i].numpy(), **TOL)
        assert abs(rows.row(i).sum() - 1) < 1e-5
    assert not np.allclose(rows.row(5).ravel(), full[:, 5].numpy(), **TOL)  # not the column


def test_gsop_gates_equal_covariance_pooling_recomputed():
    model = randomised(GSoP(24, reduced=10))
    x = features()
    trace = capture.run(model, x)
    g = model.block
    with torch.no_grad():
        r = F.relu(bn(conv(x, g.reduce[0]), g.reduce[1])).flatten(2)[0]  # (C', N)
        r = r - r.mean(1, keepdim=True)
        cov = r @ r.T / r.shape[1]
        rows = torch.stack([  # row i of the covariance, convolved by its own 4 kernels
            (g.row_conv.weight[4 * i:4 * i + 4, 0, :, 0] @ cov[i]) + g.row_conv.bias[4 * i:4 * i + 4]
            for i in range(10)]).reshape(-1)
        gate = torch.sigmoid(g.fc.weight[:, :, 0, 0] @ F.relu(rows) + g.fc.bias)
    rec, = trace.records
    np.testing.assert_allclose(rec.values, gate.numpy(), **TOL)
    assert ((rec.values > 0) & (rec.values < 1)).all()


def test_every_family_has_networks_and_the_page_says_where_weights_are_missing():
    assert len(families.FAMILIES) == 12
    for fam in families.FAMILIES:
        pretrained, own = families.networks(fam)
        assert pretrained or own, fam.name
        row = ui.family_row(fam)
        assert fam.link in row
        if not pretrained:
            assert "No public pretrained weights" in row


@pytest.mark.parametrize("fam", families.FAMILIES, ids=lambda f: f.name)
def test_open_family_shows_a_network_of_that_family(fam):
    session, top, summary, maps, picker, pretrained, tab, tabs = ui.open_family(fam.name, 256)
    assert picker.value == session.trace.model
    picker = picker.value
    assert zoo.get(picker).family in fam.card_families
    assert len(session.trace) > 0 and summary.startswith(f"**{picker}**")
    clip = getattr(session.trace, "clip", None)
    assert (clip is not None) == (fam.name == "Non-local")  # Non-local's example is a clip
    has_rows = any(isinstance(r, Pairwise) for r in session.trace)
    assert tab == ("nonlocal" if has_rows else "overview")
