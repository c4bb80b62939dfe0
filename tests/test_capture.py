"""The recorder: per-call sinks under concurrency, hooks always removed, repeated calls."""
import threading

import numpy as np
import pytest
import torch
import torch.nn as nn
from pytorchcv.model_provider import get_model as pcv_model
from timm.layers.squeeze_excite import SEModule

from visattn import capture
from visattn.capture import stage_of

from helpers import hook_count, liven


@pytest.fixture(scope="module")
def cbam():
    return liven(pcv_model("cbam_resnet50", pretrained=False), seed=7)


def images(n, size=224):
    g = torch.Generator().manual_seed(11)
    return [torch.randn(1, 3, size, size, generator=g) for _ in range(n)]


def values(trace):
    return {r.key: r.values for r in trace}


def test_hooks_are_removed_after_a_run(cbam):
    before = hook_count(cbam)
    capture.run(cbam, images(1)[0])
    assert hook_count(cbam) == before == 0


def test_hooks_are_removed_after_a_forward_that_raises(cbam):
    def boom(module, args, output):
        raise RuntimeError("boom in stage 3")

    trap = cbam.features.stage3.register_forward_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            capture.run(cbam, images(1)[0])
    finally:
        trap.remove()
    assert hook_count(cbam) == 0
    # and the model still works normally afterwards
    assert len(capture.run(cbam, images(1)[0])) == 32


def test_two_threads_with_one_model_get_their_own_records(cbam):
    a, b = images(2)
    expected = {0: values(capture.run(cbam, a)), 1: values(capture.run(cbam, b))}
    assert not np.allclose(expected[0]["features.stage1.unit1.cbam:spatial gate"],
                           expected[1]["features.stage1.unit1.cbam:spatial gate"])
    results, errors = {0: [], 1: []}, []
    start = threading.Barrier(2)

    def work(k, x):
        try:
            start.wait()
            for _ in range(4):
                results[k].append(values(capture.run(cbam, x)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k, x)) for k, x in ((0, a), (1, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    for k in (0, 1):
        assert len(results[k]) == 4
        for got in results[k]:
            assert got.keys() == expected[k].keys()  # no record missing, none doubled
            for key, v in got.items():
                np.testing.assert_allclose(v, expected[k][key], atol=1e-5, err_msg=key)
    assert hook_count(cbam) == 0


class Twice(nn.Module):
    """One SE block applied twice in one forward (like CCNet's recurrent criss-cross)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.se = SEModule(32, rd_channels=8)

    def forward(self, x):
        x = self.stem(x)
        return self.se(self.se(x) * 2.0 + 1.0)


def test_a_block_called_twice_is_keyed_by_call_index():
    torch.manual_seed(0)
    model = Twice().eval()
    seen = []
    h = model.se.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    trace = capture.run(model, torch.randn(1, 3, 12, 10))
    h.remove()
    assert [r.key for r in trace] == ["se:channel gate", "se:channel gate#1"]
    assert [r.call for r in trace] == [0, 1]
    for rec, x in zip(trace, seen):
        with torch.no_grad():
            s = torch.relu(model.se.fc1(x.mean((2, 3), keepdim=True)))
            gate = torch.sigmoid(model.se.fc2(s)).flatten()
        np.testing.assert_allclose(rec.values, gate.numpy(), atol=1e-6)
        assert rec.grid == (12, 10)


def test_batches_are_refused_with_a_clear_message(cbam):
    with pytest.raises(ValueError, match="one image"):
        capture.run(cbam, torch.zeros(2, 3, 224, 224))


def test_model_without_attention_gives_an_empty_trace_and_its_prediction():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3)).eval()
    x = torch.randn(1, 3, 8, 8)
    trace = capture.run(model, x, labels=["a", "b", "c"])
    assert len(trace) == 0
    with torch.no_grad():
        probs = torch.softmax(model(x)[0], 0).numpy()
    np.testing.assert_allclose(trace.prediction.probs, probs, atol=1e-6)
    order = np.argsort(-probs)
    assert trace.prediction.top(2) == [("abc"[i], pytest.approx(probs[i])) for i in order[:2]]


@pytest.mark.parametrize("path, stage", [("layer3.1.se", 3), ("stages.0.2.attn", 1),
                                         ("features.stage4.unit1.cbam", 4), ("bam3", 3),
                                         ("nl2", 2), ("head.attn", None)])
def test_stage_from_layer_path(path, stage):
    assert stage_of(path) == stage
