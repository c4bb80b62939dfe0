"""Weights end to end against local servers standing in for GitHub releases and the Hub:
download, verify, cache, load; and every failure leaves nothing behind, quickly."""
import dataclasses
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors

from visattn import checksums, weights, zoo
from visattn.weights import BundledFile, HubFile, UrlFile, WeightsError

from local_servers import (closed_port, elapsed, hub_file, never_answer, send_file,
                           send_truncated, serve)


def files_under(root) -> list[Path]:
    """Weight files under root (the checksum memo is not one)."""
    root = Path(root)
    return [p for p in root.rglob("*") if p.is_file() and p.name != checksums.MEMO_NAME] \
        if root.exists() else []


def with_weights(card: zoo.ModelCard, spec) -> zoo.ModelCard:
    """The same card, its weights served from somewhere else."""
    return dataclasses.replace(card, source=dataclasses.replace(card.source, weights=lambda: spec))


def random_state(card: zoo.ModelCard, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in card.source.build().state_dict().items()}


def assert_same_state(model: torch.nn.Module, state: dict) -> None:
    got = model.state_dict()
    assert got.keys() == state.keys()
    for k, v in state.items():
        assert torch.equal(got[k], v), k


def small_blob() -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.arange(1000.0)}, buf)
    return buf.getvalue()


# ----- URL path (pytorchcv's zipped .pth with sha1) -------------------------------------------

def test_pytorchcv_url_download_verify_cache_load(tmp_path):
    card = zoo.get("cbam_resnet50")
    real = card.weights
    state = random_state(card)
    buf = io.BytesIO()
    torch.save(state, buf)  # pytorchcv's .pth is a plain state_dict
    pth = buf.getvalue()
    sha1 = hashlib.sha1(pth).hexdigest()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(real.member, pth)
    route = "/osmr/" + real.url.rsplit("/", 1)[-1]
    seen = []
    with serve({route: send_file(archive.getvalue())}) as srv:
        spec = UrlFile(srv.url + route, sha1, "sha1", member=real.member)
        local = with_weights(card, spec)
        assert local.availability() == "download"
        model = zoo.build(local, pretrained=True, progress=lambda d, t: seen.append((d, t)))
        assert local.availability() == "cached"
        assert_same_state(model, state)
        assert seen and seen[-1] == (len(archive.getvalue()), len(archive.getvalue()))
        # a second load comes from the cache: no new request
        n = len(srv.requests)
        assert_same_state(zoo.build(local, pretrained=True), state)
        assert len(srv.requests) == n
    assert files_under(weights.cache_dir()) == [weights.cache_dir() / "url" / real.member]


def test_pytorchcv_card_uses_the_library_published_name_and_hash():
    from pytorchcv.models.common.model_store import get_model_name_suffix_data
    error, sha1, tag = get_model_name_suffix_data("bam_resnet50")
    spec = zoo.get("bam_resnet50").weights
    assert spec.url.endswith(f"/{tag}/bam_resnet50-{error}-{sha1[:8]}.pth.zip")
    assert (spec.digest, spec.algo, spec.member) == (sha1, "sha1", f"bam_resnet50-{error}-{sha1[:8]}.pth")


def test_timm_url_card_takes_the_sha256_prefix_from_the_file_name():
    from timm.models import get_pretrained_cfg
    spec = zoo.get("legacy_seresnet50").weights
    url = get_pretrained_cfg("legacy_seresnet50.in1k").url
    assert spec.url == url and spec.algo == "sha256" and url.endswith(f"-{spec.digest}.pth")


def test_wrong_hash_is_refused_and_nothing_is_cached():
    data = small_blob()
    with serve({"/w.pth": send_file(data)}) as srv:
        spec = UrlFile(srv.url + "/w.pth", hashlib.sha256(b"other").hexdigest())
        with pytest.raises(WeightsError, match="does not match its published sha256"):
            weights.fetch(spec, who="testnet")
    assert files_under(weights.cache_dir()) == []


def test_truncated_transfer_is_refused_and_nothing_is_cached():
    data = small_blob()
    with serve({"/w.pth": send_truncated(data)}) as srv:
        spec = UrlFile(srv.url + "/w.pth", hashlib.sha256(data).hexdigest())
        with pytest.raises(WeightsError, match="testnet"):
            weights.fetch(spec, who="testnet")
    assert files_under(weights.cache_dir()) == []


def test_silent_server_times_out_and_nothing_is_cached(monkeypatch):
    monkeypatch.setattr(weights, "READ_TIMEOUT_S", 1.0)
    with serve({"/w.pth": never_answer}) as srv:
        spec = UrlFile(srv.url + "/w.pth", "0" * 64)
        t = elapsed(lambda: _expect_error(spec, "did not answer within"))
    assert t < 5
    assert files_under(weights.cache_dir()) == []


def _expect_error(spec, words):
    with pytest.raises(WeightsError, match=words):
        weights.fetch(spec, who="testnet")


def test_unreachable_host_fails_within_5_seconds_naming_model_and_command():
    spec = UrlFile(f"http://127.0.0.1:{closed_port()}/w.pth", "0" * 64)
    t = elapsed(lambda: _expect_error(spec, r"testnet: pretrained weights are not cached.*"
                                            r"python -m visattn download testnet"))
    assert t < 5


def test_offline_switch_fails_at_once_without_touching_the_network(monkeypatch):
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    with serve({"/w.pth": send_file(small_blob())}) as srv:
        spec = UrlFile(srv.url + "/w.pth", "0" * 64)
        t = elapsed(lambda: _expect_error(spec, "network access is off"))
        assert srv.requests == []
    assert t < 1
    card = zoo.get("cbam_resnet50")
    with pytest.raises(WeightsError, match=r"cbam_resnet50.*python -m visattn download cbam_resnet50"):
        zoo.build(card, pretrained=True)


def test_corrupted_cache_file_is_replaced_by_a_fresh_download():
    data = small_blob()
    with serve({"/w.pth": send_file(data)}) as srv:
        spec = UrlFile(srv.url + "/w.pth", hashlib.sha256(data).hexdigest())
        path = weights.fetch(spec)
        path.write_bytes(b"bit rot")
        again = weights.fetch(spec)
        assert again.read_bytes() == data and len(srv.requests) == 2


def test_corrupted_cache_file_offline_is_deleted_and_reported(monkeypatch):
    data = small_blob()
    with serve({"/w.pth": send_file(data)}) as srv:
        spec = UrlFile(srv.url + "/w.pth", hashlib.sha256(data).hexdigest())
        weights.fetch(spec).write_bytes(b"bit rot")
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    _expect_error(spec, "did not verify and was deleted")
    assert files_under(weights.cache_dir()) == []


# ----- Hub path (HF_ENDPOINT pointing at a local stand-in) ------------------------------------

def test_hub_download_verify_cache_load(monkeypatch, tmp_path):
    card = zoo.get("botnet26t_256")
    spec = card.weights
    state = random_state(card, seed=1)
    data = save_safetensors(state)
    route = f"/{spec.repo_id}/resolve/main/{spec.filename}"
    seen = []
    with serve({route: hub_file(data)}) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        model = zoo.build(card, pretrained=True, progress=lambda d, t: seen.append((d, t)))
        assert card.availability() == "cached"
    assert_same_state(model, state)
    assert seen[-1] == (len(data), len(data))
    blobs = files_under(weights.hub_cache())
    assert [p.name for p in blobs if "blobs" in p.parts] == [hashlib.sha256(data).hexdigest()]
    # offline afterwards: served from the Hub cache
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    assert_same_state(zoo.build(card, pretrained=True), state)


def test_hub_file_with_wrong_sha256_is_discarded(monkeypatch):
    data = save_safetensors({"w": torch.arange(10.0)})
    spec = HubFile("someone/tiny", "model.safetensors")
    route = f"/{spec.repo_id}/resolve/main/{spec.filename}"
    with serve({route: hub_file(data, etag="ab" * 32)}) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        _expect_error(spec, "does not match its ETag")
    assert not [p for p in files_under(weights.hub_cache()) if "blobs" in p.parts]


def test_unreachable_hub_fails_within_5_seconds(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    spec = zoo.get("seresnet50").weights
    t = elapsed(lambda: _expect_error(spec, r"Hub .* cannot be reached.*python -m visattn download"))
    assert t < 5


def test_missing_hub_file_is_named(monkeypatch):
    with serve({}) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        _expect_error(HubFile("someone/nothing"), "the Hub has no hf.co/someone/nothing")


# ----- bundled files and loading --------------------------------------------------------------

def test_bundled_file_is_verified(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "ASSETS", tmp_path)
    data = save_safetensors({"w": torch.ones(3)})
    (tmp_path / "w.safetensors").write_bytes(data)
    good = BundledFile("w.safetensors", hashlib.sha256(data).hexdigest())
    assert weights.fetch(good) == tmp_path / "w.safetensors"
    with pytest.raises(WeightsError, match="do not match their sha256"):
        weights.fetch(BundledFile("w.safetensors", "ab" * 32))
    with pytest.raises(WeightsError, match="missing"):
        weights.fetch(BundledFile("gone.safetensors", "ab" * 32))


class NotATensor:
    pass


def test_loading_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(2), "payload": NotATensor()}, path)
    with pytest.raises(WeightsError, match="not a readable checkpoint"):
        weights.load_state_dict(path)


def test_wrapped_checkpoints_are_unwrapped(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 3}, path)
    assert list(weights.load_state_dict(path)) == ["w"]


def test_a_checkpoint_that_does_not_fit_fails_loudly(tmp_path):
    card = zoo.get("skresnet34")
    state = random_state(card)
    state.pop("fc.weight")
    data = save_safetensors(state)
    with serve({"/sk.safetensors": send_file(data)}) as srv:
        spec = UrlFile(srv.url + "/sk.safetensors", hashlib.sha256(data).hexdigest())
        with pytest.raises(WeightsError, match=r"missing \['fc.weight'\]"):
            zoo.build(with_weights(card, spec), pretrained=True)


def test_mmseg_checkpoint_in_its_published_format_loads_through_the_url_path(tmp_path):
    """An mmseg 0.x checkpoint: legacy (non-zip) pickle, {'meta', 'state_dict'}, keys saved
    from DataParallel ('module.'), with the training-only auxiliary head."""
    card = zoo.get("danet_r50_d8_ade20k")
    state = random_state(card, seed=5)
    saved = {"module." + k: v for k, v in state.items()}
    saved["module.auxiliary_head.conv_seg.weight"] = torch.zeros(150, 256, 1, 1)
    buf = io.BytesIO()
    torch.save({"meta": {"CLASSES": list(card.class_names)}, "state_dict": saved}, buf,
               _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    name = card.weights.url.rsplit("/", 1)[-1]
    with serve({"/" + name: send_file(data)}) as srv:
        spec = UrlFile(srv.url + "/" + name, hashlib.sha256(data).hexdigest()[:8])
        model = zoo.build(with_weights(card, spec), pretrained=True)
    assert_same_state(model, state)
