"""VisAttn's plain-PyTorch NonLocalNet / DNLNet / CCNet / DANet R-50-D8 against mmsegmentation itself:
the key layout, the decode logits and the attention rows inside mmseg's modules, all from
files that tests/mmseg/generate.py regenerates in an mmsegmentation environment (see its
docstring). Weights are drawn identically on both sides by helpers.randomize_segmentor."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from visattn.models.mmseg_r50d8 import SegmentorR50D8, adapt_state_dict
from visattn import capture, zoo
from visattn.preprocess import prepare
from visattn.records import Affinity, CrissCross, SpatialMap, TwoHop

from helpers import randomize_segmentor, random_photo

HERE = Path(__file__).parent / "mmseg"
META = json.loads((HERE / "reference.json").read_text())
REF = np.load(HERE / "reference.npz")
HEADS = ("nonlocal", "ccnet", "danet", "dnl")


@pytest.fixture(scope="module", params=HEADS)
def built(request):
    torch.set_num_threads(1)  # the reference was made single-threaded
    head = request.param
    model = randomize_segmentor(SegmentorR50D8(head), META["seed"])
    x = torch.randn(1, 3, *META["size"], generator=torch.Generator().manual_seed(META["seed"]))
    with torch.no_grad():
        logits = model.decode_head(model.backbone(x))
    trace = capture.run(model, x)
    yield head, model, x, logits, trace
    torch.set_num_threads(2)


def test_state_dict_layout_is_mmsegs_minus_the_auxiliary_head(built):
    head, model = built[:2]
    theirs = {k: v for k, v in META["keys"][head].items() if not k.startswith("auxiliary_head.")}
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == theirs
    checkpoint = {"module." + k: torch.zeros(1) for k in META["keys"][head]}  # DataParallel-saved
    assert set(adapt_state_dict(checkpoint)) == {k for k in theirs
                                                 if not k.endswith("num_batches_tracked")}


def test_decode_logits_equal_mmsegs(built):
    head, _, _, logits, _ = built
    ref = REF[f"{head}/logits"]
    assert logits.shape == ref.shape
    np.testing.assert_allclose(logits.numpy(), ref, atol=1e-4, rtol=1e-4)
    assert np.ptp(ref) > 1.0  # the logits are far from constant: the test can see


def _ours_as_mmseg_rows(rec, cells):
    """Our (H, W) rows in the layout of mmseg's internal attention for those cells."""
    if isinstance(rec, CrissCross):
        return _cross_of(rec, cells)
    return np.stack([rec.row(i).ravel() for i in cells])


def test_attention_rows_equal_the_matrices_inside_mmseg(built):
    head, _, _, _, trace = built
    cells = META["cells"]
    pairwise = [r for r in trace if isinstance(r, Affinity)]
    assert len(pairwise) == (2 if head == "ccnet" else 1)
    for n, rec in enumerate(pairwise):
        ref = REF[f"{head}/attention{n}"]
        ours = _ours_as_mmseg_rows(rec, cells)
        np.testing.assert_allclose(ours, ref, atol=1e-5, err_msg=rec.key)
        assert ref.max() > 3.0 / ref.shape[1]  # peaked rows, not uniform
    if head == "ccnet":  # two hops reach the whole image and equal the matrix product
        hop = next(r for r in trace if isinstance(r, TwoHop))
        h, w = hop.grid
        a1 = np.stack([pairwise[0].row(i).ravel() for i in range(h * w)])
        a2 = np.stack([pairwise[1].row(i).ravel() for i in range(h * w)])
        for i in cells:
            np.testing.assert_allclose(hop.row(i).ravel(), (a2 @ a1)[i], atol=1e-6)
            assert (hop.row(i) > 0).all()


def test_negative_controls_are_caught(built):
    head, model, x, logits, trace = built
    wrong = SegmentorR50D8(head, contract_dilation=False)
    wrong.load_state_dict(model.state_dict())
    with torch.no_grad():
        wrong_logits = wrong.decode_head(wrong.backbone(x))
    assert not np.allclose(wrong_logits.numpy(), REF[f"{head}/logits"], atol=1e-4, rtol=1e-4)
    rec = next(r for r in trace if isinstance(r, Affinity))
    cells = META["cells"]
    ref = REF[f"{head}/attention0"]
    if head == "nonlocal":  # without the 1 / sqrt(256) scale
        unscaled = Affinity(queries=rec.queries, keys=rec.keys, scale=1.0, layer=rec.layer,
                            family=rec.family, name=rec.name, grid=rec.grid)
        assert not np.allclose(_ours_as_mmseg_rows(unscaled, cells), ref, atol=1e-5)
    if head == "ccnet":  # attending over the whole grid instead of the cross
        full = Affinity(queries=rec.queries, keys=rec.keys, scale=1.0, layer=rec.layer,
                        family=rec.family, name=rec.name, grid=rec.grid)
        assert not np.allclose(_cross_of(full, cells), ref, atol=1e-5)
    if head == "danet":  # rows and columns swapped
        h, w = rec.grid
        a = np.stack([rec.row(i).ravel() for i in range(h * w)])
        assert not np.allclose(a.T[cells], ref, atol=1e-5)
    if head == "dnl":  # not whitened, or without the temperature
        block = model.decode_head.dnl_block
        raw = _hooked(model, x, ("theta", "phi"))
        plain = Affinity(queries=raw["theta"].T[None].copy(), keys=raw["phi"].T[None].copy(),
                         scale=rec.scale, layer=rec.layer, family=rec.family, name=rec.name,
                         grid=rec.grid)
        assert not np.allclose(_ours_as_mmseg_rows(plain, cells), ref, atol=1e-5)
        cold = Affinity(queries=rec.queries, keys=rec.keys, scale=rec.scale * block.temperature,
                        layer=rec.layer, family=rec.family, name=rec.name, grid=rec.grid)
        assert not np.allclose(_ours_as_mmseg_rows(cold, cells), ref, atol=1e-5)


def _hooked(model, x, names) -> dict:
    """Outputs (d, N) of the DNL block's named submodules in one forward, as float64."""
    block, got = model.decode_head.dnl_block, {}
    handles = [getattr(block, n).register_forward_hook(
        lambda m, a, o, n=n: got.__setitem__(n, o[0].flatten(1).double().numpy()))
        for n in names]
    try:
        with torch.no_grad():
            model.decode_head(model.backbone(x))
    finally:
        for h in handles:
            h.remove()
    return got


@pytest.fixture(scope="module")
def dnl():
    torch.set_num_threads(1)
    model = randomize_segmentor(SegmentorR50D8("dnl"), META["seed"])
    x = torch.randn(1, 3, *META["size"], generator=torch.Generator().manual_seed(META["seed"]))
    yield model, x, capture.run(model, x)
    torch.set_num_threads(2)


def test_dnl_block_keeps_mmsegs_settings_and_names(dnl):
    block = dnl[0].decode_head.dnl_block
    settings = META["dnl/block"]
    assert (block.temperature, block.use_scale, settings["mode"]) == \
        (settings["temperature"], settings["use_scale"], "embedded_gaussian")
    assert all(hasattr(block, n) for n in ("theta", "phi", "g", "conv_mask"))


def test_dnl_rows_equal_a_recomputation_from_hooked_theta_and_phi(dnl):
    """Whitened rows: theta and phi minus their means over positions, dot products scaled by
    1 / sqrt(d) (use_scale) and divided by the temperature, softmax over keys."""
    model, x, trace = dnl
    block = model.decode_head.dnl_block
    got = _hooked(model, x, ("theta", "phi", "conv_mask"))
    theta = got["theta"] - got["theta"].mean(1, keepdims=True)
    phi = got["phi"] - got["phi"].mean(1, keepdims=True)
    logits = theta.T @ phi / np.sqrt(theta.shape[0]) / block.temperature  # (N queries, N keys)
    rows = np.exp(logits - logits.max(1, keepdims=True))
    rows /= rows.sum(1, keepdims=True)
    (rec,) = [r for r in trace if isinstance(r, Affinity)]
    ours = np.stack([rec.row(i).ravel() for i in range(rows.shape[0])])
    np.testing.assert_allclose(ours, rows, atol=1e-6)
    assert rows.max() > 5.0 / rows.shape[1]  # peaked: the check can see a wrong row
    raw = got["theta"].T @ got["phi"] / np.sqrt(theta.shape[0]) / block.temperature
    unwhitened = np.exp(raw - raw.max(1, keepdims=True))
    assert not np.allclose(ours, unwhitened / unwhitened.sum(1, keepdims=True), atol=1e-3)
    # the unary map: one softmax over positions of conv_mask's output, shared by all queries
    (unary,) = [r for r in trace if isinstance(r, SpatialMap)]
    u = np.exp(got["conv_mask"][0] - got["conv_mask"][0].max())
    np.testing.assert_allclose(unary.values.ravel(), u / u.sum(), atol=1e-6)


def test_dnl_unary_map_equals_mmsegs(dnl):
    (unary,) = [r for r in dnl[2] if isinstance(r, SpatialMap)]
    ref = torch.softmax(torch.from_numpy(REF["dnl/unary_logits"]).double(), 0).numpy()
    np.testing.assert_allclose(unary.values.ravel(), ref, atol=1e-5)
    assert ref.max() > 2.0 / ref.size  # not uniform


def _cross_of(rec, cells):
    """Rows read out at the criss-cross positions in mmseg's order: the column (self entry
    masked to 0), then the row."""
    h, w = rec.grid
    out = []
    for i in cells:
        r, c = divmod(i, w)
        row = rec.row(i)
        col = row[:, c].copy()
        col[r] = 0.0
        out.append(np.concatenate([col, row[r, :]]))
    return np.stack(out)


@pytest.mark.parametrize("size", list(META["imrescale_2048x512"]))
def test_resize_is_exactly_mmcvs_imrescale(size):
    w, h = map(int, size.split("x"))
    shape, digest = META["imrescale_2048x512"][size]
    img = random_photo(h, w, w * 31 + h)
    pre = zoo.get("nonlocal_r50_d8_ade20k").preprocess
    pre = type(pre)(**{**pre.__dict__, "size": (512, 2048)})
    x, geo = prepare(img, pre)
    assert [geo.resized[1], geo.resized[0], 3] == shape
    import cv2
    pixels = cv2.resize(img, geo.resized, interpolation=cv2.INTER_LINEAR)
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == digest
    mean = np.array(META["nonlocal/data_preprocessor"]["mean"])
    std = np.array(META["nonlocal/data_preprocessor"]["std"])
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), (pixels - mean) / std, atol=2e-5)


def test_cards_use_mmsegs_published_checkpoints_and_test_pipeline():
    for head in HEADS:
        card = zoo.get(f"{head}_r50_d8_ade20k")
        assert card.weights.url == META["urls"][head]
        assert META["urls"][head].endswith(f"-{card.weights.digest}.pth")
        resize = next(p for p in META[f"{head}/test_pipeline"] if p["type"] == "Resize")
        assert resize["keep_ratio"] and max(resize["scale"]) / min(resize["scale"]) == \
            card.preprocess.size[1] / card.preprocess.size[0]
        dp = META[f"{head}/data_preprocessor"]
        np.testing.assert_allclose(np.array(card.preprocess.mean) * 255, dp["mean"], atol=1e-9)
        np.testing.assert_allclose(np.array(card.preprocess.std) * 255, dp["std"], atol=1e-9)
        assert card.task == "segment" and len(card.class_names) == 150
