"""Affinity rows: row(i) equals row i of the full softmax matrix computed here from the
block's weights and input, for corners and inner cells, for every head; and that full
matrix, applied to the values, reproduces the block's real output (so it is the matrix
the module uses, not just one the test believes in)."""
import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F

from visattn import capture
from visattn.records import Affinity

from helpers import bn, conv, liven

TOL = dict(atol=1e-5, rtol=1e-5)


def non_local_full(m, x):
    """Embedded Gaussian NL (timm): A = softmax(scale * theta^T phi), out = BN(z(A g)) + x."""
    b, c, h, w = x.shape
    theta, phi, g = (conv(x, m.t).flatten(2), conv(x, m.p).flatten(2), conv(x, m.g).flatten(2))
    scale = c ** -0.5  # timm: in_channels ** -0.5, not the reduced width
    attn = torch.softmax(scale * theta.transpose(1, 2) @ phi, dim=-1)  # (B, N, N)
    y = (attn @ g.transpose(1, 2)).transpose(1, 2).reshape(b, -1, h, w)
    return attn[:, None], bn(conv(y, m.z), m.norm) + x  # (B, heads=1, N, N)


def relative_logits(q, height_rel, width_rel, h, w):
    """q (heads, N, d) -> (heads, N, N) logits q_(r,c) . (height_rel[r'-r+H-1] + width_rel[c'-c+W-1]),
    gathered by explicit index arithmetic over all (query, key) pairs."""
    r = torch.arange(h).repeat_interleave(w)
    c = torch.arange(w).repeat(h)
    dr = r[None, :] - r[:, None] + h - 1  # (N query, N key)
    dc = c[None, :] - c[:, None] + w - 1
    qh = q @ height_rel.T  # (heads, N, 2H-1)
    qw = q @ width_rel.T
    rows = torch.arange(q.shape[1])[:, None]
    return qh[:, rows, dr] + qw[:, rows, dc]


def bottleneck_full(m, x):
    """BoTNet MHSA: per head softmax(scale q.k + rel(q)), out = pool(A v)."""
    b, _, h, w = x.shape
    qkv = conv(x, m.qkv)[0].flatten(1)
    dqk, dv, heads = m.dim_head_qk, m.dim_head_v, m.num_heads
    q = qkv[:heads * dqk].reshape(heads, dqk, -1).transpose(1, 2)
    k = qkv[heads * dqk:2 * heads * dqk].reshape(heads, dqk, -1).transpose(1, 2)
    v = qkv[2 * heads * dqk:].reshape(heads, dv, -1).transpose(1, 2)
    rel = relative_logits(q, m.pos_embed.height_rel, m.pos_embed.width_rel, h, w)
    assert not m.scale_pos_embed
    attn = torch.softmax(m.scale * q @ k.transpose(1, 2) + rel, dim=-1)  # (heads, N, N)
    out = (attn @ v).transpose(1, 2).reshape(1, heads * dv, h, w)
    if isinstance(m.pool, torch.nn.AvgPool2d):
        out = F.avg_pool2d(out, 2, 2)
    return attn[None], out


CASES = {
    "timm NonLocalAttn": (lambda: timm.create_model("resnet26", block_args=dict(attn_layer="nl")),
                          "NonLocalAttn", non_local_full, 96),
    "timm BottleneckAttn": (lambda: timm.create_model("botnet26t_256"), "BottleneckAttn",
                            bottleneck_full, 256),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    build, class_name, full, size = CASES[request.param]
    model = liven(build(), seed=5, size=size)
    saved = {}
    handles = []
    for path, m in model.named_modules():
        if type(m).__name__ == class_name:
            handles.append(m.register_forward_hook(
                lambda mod, args, out, path=path: saved.__setitem__(
                    path, (mod, args[0].clone(), out.clone()))))
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(2))
    trace = capture.run(model, x)
    for h in handles:
        h.remove()
    return trace, saved, full


def test_rows_equal_rows_of_the_full_matrix_for_every_head(case):
    trace, saved, full = case
    affinities = trace.select(Affinity)
    assert [a.layer for a in affinities] == list(saved)
    for aff in affinities:
        module, x, out = saved[aff.layer]
        with torch.no_grad():
            attn, recomputed = full(module, x)
        # the test's matrix is the module's matrix: it reproduces the block's output
        np.testing.assert_allclose(recomputed.numpy(), out.numpy(), atol=1e-4, rtol=1e-4)
        h, w = aff.grid
        n = h * w
        assert attn.shape == (1, aff.heads, n, n)
        corners = [0, w - 1, n - w, n - 1]
        cells = corners + [n // 2 + w // 3, int(np.random.default_rng(0).integers(n))]
        for i in cells:
            for head in range(aff.heads):
                row = aff.row(i, head)
                assert row.shape == (h, w)
                np.testing.assert_allclose(row.ravel(), attn[0, head, i].numpy(), **TOL)
            np.testing.assert_allclose(aff.row(i).ravel(), attn[0, :, i].mean(0).numpy(), **TOL)
        assert np.ptp(attn[0, 0, 0].numpy()) > 1e-4  # rows are not uniform: the test can see


def test_affinity_keeps_embeddings_not_the_matrix(case):
    trace = case[0]
    for aff in trace.select(Affinity):
        n = aff.grid[0] * aff.grid[1]
        d = aff.queries.shape[2]
        assert aff.nbytes < 4 * aff.heads * n * (2 * d + 1) + 4 * 2 * 64 * d  # O(N d), not O(N^2)


def test_negative_control_transposed_matrix_and_missing_relative_logits_are_caught(case):
    trace, saved, full = case
    aff = trace.select(Affinity)[0]
    module, x, _ = saved[aff.layer]
    with torch.no_grad():
        attn, _ = full(module, x)
    i = 1
    assert not np.allclose(aff.row(i, 0).ravel(), attn[0, 0, :, i].numpy(), **TOL)  # column
    if aff.extra is not None:
        bare = Affinity(queries=aff.queries, keys=aff.keys, scale=aff.scale, layer=aff.layer,
                        family=aff.family, name=aff.name, grid=aff.grid)
        assert not np.allclose(bare.row(i, 0).ravel(), attn[0, 0, i].numpy(), **TOL)


def test_row_refuses_cells_outside_the_grid(case):
    aff = case[0].select(Affinity)[0]
    with pytest.raises(IndexError):
        aff.row(aff.grid[0] * aff.grid[1])
