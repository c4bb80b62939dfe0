"""Every probe, on a random-initialised real timm / pytorchcv model: the captured values equal
an independent recomputation from the block's own weights and its input (the papers'
formulas written out with functional ops), not just in shape."""
import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from pytorchcv.model_provider import get_model as pcv_model

from visattn import capture
from visattn.records import BranchWeights, SpatialMap

from helpers import bn, conv, liven, lin

TOL = dict(atol=1e-5, rtol=1e-5)


# ----- functional building blocks (test-side, independent of the library forward) -----------

def avg(x):
    return x.mean((2, 3), keepdim=True)


def mx(x):
    return x.amax((2, 3), keepdim=True)


# ----- recomputations: block + its input -> {record name: expected values} --------------------

def se_timm(m, x):
    assert isinstance(m.bn, torch.nn.Identity) and not m.add_maxpool
    return {"channel gate": torch.sigmoid(conv(F.relu(conv(avg(x), m.fc1)), m.fc2))}


def se_legacy(m, x):
    return {"channel gate": torch.sigmoid(conv(F.relu(conv(avg(x), m.fc1)), m.fc2))}


def se_pcv(m, x):
    return {"channel gate": torch.sigmoid(conv(F.relu(conv(avg(x), m.conv1)), m.conv2))}


def eca(m, x):
    y = F.conv1d(x.mean((2, 3))[:, None, :], m.conv.weight, None, padding=m.conv.padding)
    return {"channel gate": torch.sigmoid(y)}


def cbam_timm(m, x):
    ch, sp = m.channel, m.spatial
    mlp = lambda v: conv(F.relu(conv(v, ch.fc1)), ch.fc2)  # noqa: E731
    g = torch.sigmoid(mlp(avg(x)) + mlp(mx(x)))
    x = x * g
    s = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)  # timm: [mean, max]
    return {"channel gate": g, "spatial gate": torch.sigmoid(bn(conv(s, sp.conv.conv), sp.conv.bn))}


def cbam_pcv(m, x, order=("max", "mean")):
    mlp = lambda v: lin(F.relu(lin(v.flatten(1), m.ch_gate.mlp.fc1)), m.ch_gate.mlp.fc2)  # noqa
    g = torch.sigmoid(mlp(avg(x)) + mlp(mx(x)))
    x = x * g[:, :, None, None]
    pools = {"max": x.amax(1, keepdim=True), "mean": x.mean(1, keepdim=True)}
    s = torch.cat([pools[k] for k in order], 1)  # pytorchcv (like the authors): [max, mean]
    c = m.sp_gate.conv
    return {"channel gate": g, "spatial gate": torch.sigmoid(bn(conv(s, c.conv), c.bn))}


def bam_pcv(m, x):
    ca, sa = m.ch_att, m.sp_att
    mc = lin(F.relu(bn(lin(avg(x).flatten(1), ca.init_fc.fc), ca.init_fc.bn)), ca.final_fc)
    assert len(ca.main_fcs) == 0
    s = F.relu(bn(conv(x, sa.init_conv.conv), sa.init_conv.bn))
    for block in sa.dil_convs:
        s = F.relu(bn(conv(s, block.conv), block.bn))
    ms = conv(s, sa.final_conv.conv if hasattr(sa.final_conv, "conv") else sa.final_conv)
    gate = torch.sigmoid(mc[:, :, None, None] * ms)  # (B, C, H, W)
    return {"channel branch": mc, "spatial branch": ms, "gate (channel mean)": gate.mean(1)}


def gc_timm(m, x):
    b, c, h, w = x.shape
    weights = torch.softmax(conv(x, m.conv_attn).reshape(b, h * w), -1)
    context = (x.reshape(b, c, h * w) * weights[:, None]).sum(-1)[:, :, None, None]
    mlp = m.mlp_add
    y = conv(context, mlp.fc1)
    y = F.layer_norm(y.permute(0, 2, 3, 1), mlp.norm.normalized_shape, mlp.norm.weight,
                     mlp.norm.bias, mlp.norm.eps).permute(0, 3, 1, 2)
    return {"context weights": weights.reshape(b, h, w), "channel add": conv(F.relu(y), mlp.fc2)}


def sk_timm(m, x):  # x: (B, paths, C, H, W)
    s = F.relu(bn(conv(x.sum(1).mean((2, 3), keepdim=True), m.fc_reduce), m.bn))
    s = conv(s, m.fc_select).reshape(x.shape[0], m.num_paths, -1)
    return {"kernel weights": torch.softmax(s, 1)}


def splat_timm(m, x):
    y = F.relu(bn(conv(x, m.conv), m.bn0))
    b, rc, h, w = y.shape
    gap = y.reshape(b, m.radix, rc // m.radix, h, w).sum(1).mean((2, 3), keepdim=True)
    a = conv(F.relu(bn(conv(gap, m.fc1), m.bn1)), m.fc2)
    card = m.rsoftmax.cardinality
    a = torch.softmax(a.reshape(b, card, m.radix, -1), 2).transpose(1, 2)
    return {"split weights": a.reshape(b, m.radix, -1)}


def splat_pcv(m, x):
    b, rc, h, w = x.shape
    gap = x.reshape(b, m.radix, rc // m.radix, h, w).sum(1).mean((2, 3), keepdim=True)
    a = conv(F.relu(bn(conv(gap, m.conv1), m.bn)), m.conv2)
    a = torch.softmax(a.reshape(b, m.groups, m.radix, -1), 2).transpose(1, 2)
    return {"split weights": a.reshape(b, m.radix, -1)}


# ----- the cases ------------------------------------------------------------------------------

def timm_model(name, **kw):
    return lambda: timm.create_model(name, pretrained=False, **kw)


def pcv(name):
    return lambda: pcv_model(name, pretrained=False)


CASES = {
    "timm SE": (timm_model("seresnet50"), "SEModule", se_timm, 96),
    "timm legacy SE": (timm_model("legacy_seresnet50"), "SEModule", se_legacy, 96),
    "timm ECA": (timm_model("ecaresnet50d"), "EcaModule", eca, 96),
    "timm CBAM": (timm_model("resnet18", block_args=dict(attn_layer="cbam")), "CbamModule",
                  cbam_timm, 96),
    "timm GC": (timm_model("gcresnet50t"), "GlobalContext", gc_timm, 96),
    "timm SK": (timm_model("skresnet34"), "SelectiveKernelAttn", sk_timm, 96),
    "timm ResNeSt": (timm_model("resnest50d"), "SplitAttn", splat_timm, 96),
    "pytorchcv SE": (pcv("seresnet50"), "SEBlock", se_pcv, 224),
    "pytorchcv CBAM": (pcv("cbam_resnet50"), "CbamBlock", cbam_pcv, 224),
    "pytorchcv BAM": (pcv("bam_resnet50"), "BamBlock", bam_pcv, 224),
    "pytorchcv ResNeSt": (pcv("resnesta50"), "SABlock", splat_pcv, 224),
}


def capture_with_inputs(model, class_name, size):
    """Run capture.run while the test saves each block's input with its own hook."""
    inputs, blocks = {}, {}
    handles = []
    for path, m in model.named_modules():
        if type(m).__name__ == class_name:
            blocks[path] = m
            handles.append(m.register_forward_pre_hook(
                lambda mod, args, path=path: inputs.__setitem__(path, args[0].clone())))
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    try:
        trace = capture.run(model, x)
    finally:
        for h in handles:
            h.remove()
    return trace, blocks, inputs


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    build, class_name, recompute, size = CASES[request.param]
    model = liven(build(), seed=3, size=size)
    trace, blocks, inputs = capture_with_inputs(model, class_name, size)
    return trace, blocks, inputs, recompute


def test_captured_values_equal_recomputation(case):
    trace, blocks, inputs, recompute = case
    assert blocks, "the model has no block of this class"
    checked = 0
    for layer, block in blocks.items():
        with torch.no_grad():
            expected = recompute(block, inputs[layer])
        for name, exp in expected.items():
            exp = exp[0].numpy()
            rec = trace[f"{layer}:{name}"]
            got = rec.values
            assert got.size == exp.size, (rec.key, got.shape, exp.shape)
            np.testing.assert_allclose(got, exp.reshape(got.shape), **TOL, err_msg=rec.key)
            assert np.ptp(exp) > 1e-4, f"{rec.key}: degenerate values would make this test blind"
            checked += 1
    assert checked == len(trace.records)  # nothing captured that is not checked, and vice versa


def test_records_are_in_network_order_with_grid_and_stage(case):
    trace, blocks, inputs, _ = case
    layers = list(dict.fromkeys(r.layer for r in trace))
    assert layers == [p for p in blocks if p in layers] == list(inputs)  # forward order
    for rec in trace:
        x = inputs[rec.layer]
        if not isinstance(rec, BranchWeights) or x.ndim == 5:
            assert rec.grid in (tuple(x.shape[-2:]), ), rec.key
        assert rec.stage in (1, 2, 3, 4), rec.key
    stages = [r.stage for r in trace]
    assert stages == sorted(stages)


def test_value_ranges_follow_their_kind(case):
    trace = case[0]
    for rec in trace:
        if rec.value_kind == "gate":
            assert ((rec.values >= 0) & (rec.values <= 1)).all(), rec.key
        if isinstance(rec, BranchWeights):
            np.testing.assert_allclose(rec.values.sum(0), 1.0, atol=1e-5)
        if rec.value_kind == "probability" and isinstance(rec, SpatialMap):
            assert abs(rec.values.sum() - 1) < 1e-4


# ----- negative controls: the comparison catches plausible mistakes ---------------------------

def test_comparison_catches_wrong_gates():
    model = liven(pcv("cbam_resnet50")(), seed=3)
    trace, blocks, inputs = capture_with_inputs(model, "CbamBlock", 224)
    layer = "features.stage2.unit2.cbam"
    block, x = blocks[layer], inputs[layer]
    with torch.no_grad():
        right = cbam_pcv(block, x)
        swapped = cbam_pcv(block, x, order=("mean", "max"))  # timm's order on pytorchcv weights
        wrong_input = cbam_pcv(block, inputs["features.stage2.unit1.cbam"])  # another block's
    sp = trace[f"{layer}:spatial gate"].values
    np.testing.assert_allclose(sp, right["spatial gate"][0, 0].numpy(), **TOL)
    assert not np.allclose(sp, swapped["spatial gate"][0, 0].numpy(), **TOL)
    assert not np.allclose(sp, sp.T, **TOL)  # a transposed map is caught
    ch = trace[f"{layer}:channel gate"].values
    assert not np.allclose(ch, wrong_input["channel gate"][0].numpy(), **TOL)
    assert not np.allclose(ch, torch.logit(torch.from_numpy(ch)).numpy(), **TOL)  # pre-sigmoid


def test_channel_records_keep_the_top_channels_feature_maps():
    """The feature maps shown for a block are its input at the highest-weighted channels."""
    model = liven(timm_model("seresnet50")(), seed=3, size=96)
    trace, blocks, inputs = capture_with_inputs(model, "SEModule", 96)
    for layer, x in inputs.items():
        rec = trace[f"{layer}:channel gate"]
        order = np.argsort(-rec.values, kind="stable")[:len(rec.top_channels)]
        assert set(rec.top_channels) == set(order)  # ties aside, the same channels
        assert (np.diff(rec.values[rec.top_channels]) <= 0).all()  # highest first
        np.testing.assert_array_equal(rec.top_features, x[0, rec.top_channels].numpy())
