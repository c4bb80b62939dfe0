"""Devices: device= and --device (explicit CPU, the model cache keyed by device, a CUDA
run giving the CPU's records, one host copy per device and dtype), and ZeroGPU wrapping
only on a ZeroGPU Space."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import visattn
from visattn import cli, zoo
from visattn.device import DeviceError, on_zerogpu, resolve

MODEL = "tiny_se"


def test_device_cpu_explicit_and_the_model_cache_keyed_by_device(tmp_path):
    photo = Path(visattn.weights.ASSETS) / "examples" / "scene_solid_cross.png"
    on_cpu = visattn.analyze(photo, MODEL, device="cpu")
    again = visattn.analyze(photo, MODEL, device=torch.device("cpu"))
    for a, b in zip(on_cpu.records, again.records):
        np.testing.assert_array_equal(a.values, b.values)
    assert zoo.load(MODEL, device="cpu") is zoo.load(MODEL, device=torch.device("cpu"))
    assert next(zoo.load(MODEL, device="cpu").parameters()).device.type == "cpu"
    with pytest.raises(DeviceError):
        resolve("warp-drive")
    if not torch.cuda.is_available():
        assert resolve(None) == torch.device("cpu")
        with pytest.raises(DeviceError, match="no CUDA"):
            resolve("cuda:1")
        assert cli.main(["analyze", str(photo), "--model", MODEL, "--device", "cuda",
                         "--out", str(tmp_path), "--quiet"]) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_gives_the_cpu_records():
    photo = Path(visattn.weights.ASSETS) / "examples" / "scene_solid_cross.png"
    a, b = (visattn.analyze(photo, MODEL, device=d) for d in ("cpu", "cuda"))
    for ra, rb in zip(a.records, b.records):
        np.testing.assert_allclose(ra.values, rb.values, atol=1e-4)


def test_records_leave_the_device_in_one_copy_per_device_and_dtype():
    from visattn.capture import _host_copies
    tensors = [torch.arange(6.0).reshape(2, 3), torch.ones(4, dtype=torch.float16),
               torch.arange(5.0)[1:4], torch.zeros(1, 2, 2, dtype=torch.float16)]
    for got, want in zip(_host_copies(tensors), tensors):
        assert got.dtype == want.dtype and got.shape == want.shape
        torch.testing.assert_close(got, want)


def test_zerogpu_wraps_the_forward_only_on_a_zerogpu_space(monkeypatch):
    wrapped = []
    fake = types.ModuleType("spaces")
    fake.GPU = lambda fn: wrapped.append(fn) or (lambda *a, **k: ("gpu", fn(*a, **k)))
    monkeypatch.setitem(sys.modules, "spaces", fake)
    f = lambda: 1  # noqa: E731
    zero = {"SPACE_ID": "me/app", "SPACES_ZERO_GPU": "true"}
    assert on_zerogpu(f, zero)() == ("gpu", 1) and wrapped == [f]
    assert on_zerogpu(f, {"SPACE_ID": "me/app"}) is f  # a Space without ZeroGPU
    assert on_zerogpu(f, {}) is f  # this machine
    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed
    assert on_zerogpu(f, zero) is f
