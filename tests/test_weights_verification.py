"""A weight file is "cached" only once verified, for every kind of source: URL with a
published hash, URL without one (its sha256 recorded at VisAttn's own download), Hub LFS blob
(sha256 ETag) and Hub plain file (git object id ETag). Planted garbage and planted
wrong checkpoints are refused and deleted with a sentence; verification is remembered by
size + mtime; web pages are refused; every source gives up within 5 s when its server
stalls; Hub files are pinned to a commit."""
import dataclasses
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors

from visattn import checksums, weights, zoo
from visattn.weights import HubFile, UrlFile, WeightsError

from local_servers import elapsed, hub_file, never_answer, send_file, serve

GARBAGE = os.urandom(4096)
ROOT = Path(__file__).resolve().parents[1]


def with_weights(card: zoo.ModelCard, spec) -> zoo.ModelCard:
    return dataclasses.replace(card, source=dataclasses.replace(card.source, weights=lambda: spec))


def small_card(spec) -> zoo.ModelCard:
    """VisAttn's tiny SE network, its weights served from `spec`."""
    return with_weights(zoo.get("tiny_se"), spec)


def random_checkpoint(card: zoo.ModelCard, seed: int = 0, fmt: str = "pth") -> tuple[dict, bytes]:
    torch.manual_seed(seed)
    state = {k: v.clone() for k, v in card.source.build().state_dict().items()}
    if fmt == "safetensors":
        return state, save_safetensors(state)
    buf = io.BytesIO()
    torch.save(state, buf)
    return state, buf.getvalue()


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def plant_hub(spec: HubFile, data: bytes, etag: str, commit: str = "c" * 40) -> Path:
    """A file in huggingface_hub's cache layout, as if downloaded at `commit`."""
    repo = weights.hub_cache() / ("models--" + spec.repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "blobs" / etag).write_bytes(data)
    snap = repo / "snapshots" / commit / spec.filename
    snap.parent.mkdir(parents=True, exist_ok=True)
    snap.symlink_to(os.path.relpath(repo / "blobs" / etag, snap.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / (spec.revision or "main")).write_text(commit)
    return snap


def plant_url(spec: UrlFile, data: bytes) -> Path:
    path = weights.cache_dir() / "url" / spec.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ----- one planted file per source kind -------------------------------------------------------

SEALED = HubFile("someone/sealed", "model.safetensors")


def _url_hashed(data):
    spec = UrlFile("http://127.0.0.1:9/w.pth", hashlib.sha256(b"the real file").hexdigest())
    return spec, plant_url(spec, data)


def _url_hashless(data):
    spec = UrlFile("http://127.0.0.1:9/download?id=1", None, name="w.pth.tar")
    return spec, plant_url(spec, data)


def _hub_blob(data):
    return SEALED, plant_hub(SEALED, data, hashlib.sha256(b"the real file").hexdigest())


def _hub_plain(data):
    spec = HubFile("someone/plain", "model.bin")
    return spec, plant_hub(spec, data, git_sha1(b"the real file"))


KINDS = {"url-with-hash": _url_hashed, "url-without-hash": _url_hashless,
         "hub-blob": _hub_blob, "hub-plain-file": _hub_plain}


def planted_payloads() -> dict[str, bytes]:
    _, pth = random_checkpoint(zoo.get("tiny_none"), seed=3)  # another network's checkpoint
    return {"garbage": GARBAGE, "html": b"<!DOCTYPE html><html><title>Quota exceeded</title>",
            "wrong-checkpoint": pth}


@pytest.mark.parametrize("payload", ["garbage", "html", "wrong-checkpoint"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_planted_file_is_not_cached_and_is_deleted_with_a_sentence(kind, payload, monkeypatch):
    spec, path = KINDS[kind](planted_payloads()[payload])
    card = small_card(spec)
    assert path.is_file()
    assert card.availability() == "download"  # not "cached": it does not verify
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    with pytest.raises(WeightsError) as err:
        zoo.build(card, pretrained=True)
    assert "deleted" in str(err.value), err.value
    assert not path.exists() and not path.resolve().exists()


def test_planted_garbage_as_the_cbam_checkpoint_does_not_start_the_app_on_it():
    from visattn import ui
    card = zoo.get("cbam_resnet50")
    plant_url(card.weights, GARBAGE)
    assert card.availability() == "download"
    assert ui.default_model()[0] == ui.PREFERRED_OWN


def test_a_verified_file_is_cached_and_verification_is_remembered(monkeypatch):
    card = zoo.get("tiny_se")
    _, data = random_checkpoint(card, fmt="safetensors")
    spec = UrlFile("http://127.0.0.1:9/w.safetensors", hashlib.sha256(data).hexdigest())
    path = plant_url(spec, data)
    calls = []
    real = dict(checksums._HASHERS)
    monkeypatch.setattr(checksums, "_HASHERS", {k: (lambda p, f=f, k=k: calls.append(k) or f(p))
                                                for k, f in real.items()})
    assert small_card(spec).availability() == "cached"
    assert small_card(spec).availability() == "cached"
    assert calls == ["sha256"]  # the second look costs nothing
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert small_card(spec).availability() == "cached"
    assert calls == ["sha256", "sha256"]  # a touched file is hashed again


def test_a_hashless_file_is_vouched_for_by_its_first_strict_load(monkeypatch):
    card0 = zoo.get("tiny_se")
    state, data = random_checkpoint(card0, seed=2)
    with serve({"/download": send_file(data)}) as srv:
        spec = UrlFile(srv.url + "/download?id=1", None, name="se.pth")
        card = small_card(spec)
        assert card.availability() == "download"
        model = zoo.build(card, pretrained=True)
        assert card.availability() == "cached"
    assert checksums.recorded(spec.vouch_key) == hashlib.sha256(data).hexdigest()
    for k, v in state.items():
        assert torch.equal(model.state_dict()[k], v)
    # the same size, other bytes: no longer what was vouched for
    path = weights.cached(spec)
    _, other = random_checkpoint(card0, seed=9)
    assert len(other) == len(data)
    path.write_bytes(other)
    assert card.availability() == "download"
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    with pytest.raises(WeightsError, match="did not verify and was deleted"):
        zoo.build(card, pretrained=True)
    assert not path.exists()


def test_hub_plain_file_verifies_by_its_git_object_id(monkeypatch):
    _, data = random_checkpoint(zoo.get("tiny_se"), seed=4)
    spec = HubFile("someone/plain", "pytorch_model.bin", revision="d" * 40)
    route = f"/{spec.repo_id}/resolve/{spec.revision}/{spec.filename}"
    with serve({route: hub_file(data, commit=spec.revision, etag=git_sha1(data))}) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        card = small_card(spec)
        zoo.build(card, pretrained=True)
    assert card.availability() == "cached"
    assert weights.verified(spec).resolve().name == git_sha1(data)


def test_web_pages_are_refused_whatever_the_server_says():
    page = b"<!DOCTYPE html><html><body>Google Drive - Quota exceeded</body></html>"
    for headers in ({"Content-Type": "text/html; charset=utf-8"},
                    {"Content-Type": "application/octet-stream"}):
        with serve({"/download": send_file(page, headers)}) as srv:
            spec = UrlFile(srv.url + "/download?id=1", None, name="w.pth.tar")
            with pytest.raises(WeightsError, match="web page instead of the weights"):
                weights.fetch(spec, who="net")
        assert weights.cached(spec) is None


def stall_after_head(data: bytes):
    """Answers HEAD like the Hub, then never sends the file."""
    head = hub_file(data)

    def route(h):
        if h.command == "HEAD":
            return head(h)
        never_answer(h)
    return route


@pytest.mark.parametrize("kind", ["url-with-hash", "url-without-hash", "hub-head", "hub-get"])
def test_every_source_fails_within_5_seconds_when_its_server_stalls(kind, monkeypatch):
    sealed = HubFile("someone/stalled", "model.safetensors", revision="e" * 40)
    hub_route = f"/{sealed.repo_id}/resolve/{sealed.revision}/{sealed.filename}"
    routes = {"/w.pth": never_answer,
              hub_route: never_answer if kind == "hub-head" else stall_after_head(b"x" * 100)}
    with serve(routes) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        spec = {"url-with-hash": UrlFile(srv.url + "/w.pth", "0" * 64),
                "url-without-hash": UrlFile(srv.url + "/w.pth", None),
                "hub-head": sealed, "hub-get": sealed}[kind]

        def fetch():
            with pytest.raises(WeightsError, match=r"did not answer|stopped sending"):
                weights.fetch(spec, who="net")
        took = elapsed(fetch)
    print(f"\n{kind}: a stalled server fails the download in {took:.1f} s")
    assert took < 5
    assert weights.cached(spec) is None


def test_hub_files_are_pinned_to_the_commit_of_their_first_verified_download(monkeypatch):
    _, data = random_checkpoint(zoo.get("tiny_se"), fmt="safetensors")
    spec = HubFile("someone/moving", "model.safetensors")
    first, later = "1" * 40, "2" * 40
    routes = {f"/{spec.repo_id}/resolve/main/{spec.filename}": hub_file(data, commit=first),
              f"/{spec.repo_id}/resolve/{first}/{spec.filename}": hub_file(data, commit=first)}
    with serve(routes) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        path = weights.fetch(spec)
        assert first in path.parts
        assert checksums.pinned(spec.repo_id) == first
        routes[f"/{spec.repo_id}/resolve/main/{spec.filename}"] = hub_file(b"moved on", commit=later)
        weights.discard(spec, path)  # gone from the cache: fetched again, at the pinned commit
        before = len(srv.requests)
        again = weights.fetch(spec)
        asked = [p for _, p in srv.requests[before:]]
    assert again.read_bytes() == data
    assert asked and all(f"/resolve/{first}/" in p for p in asked), asked


def test_a_card_revision_is_the_one_asked_for(monkeypatch):
    spec = zoo.timm_source("botnet26t_256.c1_in1k", revision="f" * 40).weights()
    assert spec.revision == "f" * 40
    with serve({}) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        with pytest.raises(WeightsError, match="at revision " + "f" * 40):
            weights.fetch(spec, who="botnet")
        assert all(f"/resolve/{'f' * 40}/" in p for _, p in srv.requests)


def test_download_command_verifies_a_hashless_file_by_loading_it(tmp_path, monkeypatch):
    """`download` says "verified" only for a file that is: a planted file without a published
    hash is loaded strictly first, and garbage is deleted with a sentence and exit 1."""
    card = zoo.get("triplet_resnet50")
    path = plant_url(card.weights, GARBAGE)
    env = dict(os.environ, VISATTN_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "visattn", "download", "triplet_resnet50"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "deleted" in done.stderr and "verified" not in done.stdout
    assert "Traceback" not in done.stderr
    assert not path.exists()


@pytest.mark.parametrize("kind", ["url-with-hash", "hub-blob", "hub-plain-file"])
def test_a_planted_random_checkpoint_of_the_right_layout_is_refused_where_a_hash_exists(
        kind, monkeypatch):
    """Random weights that would load strictly: only the hash can tell, and it does."""
    _, data = random_checkpoint(zoo.get("tiny_se"), seed=7)
    spec, path = KINDS[kind](data)
    card = small_card(spec)
    assert card.availability() == "download"
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    with pytest.raises(WeightsError, match="did not verify and was deleted"):
        zoo.build(card, pretrained=True)
    assert not path.exists()


def test_without_a_published_hash_a_planted_right_layout_file_is_refused(monkeypatch):
    """A source without a hash (the authors' Triplet file): a file of the right layout that
    VisAttn did not download is not trusted (issue 21, 6b): it is deleted, and online
    replaced by a download whose sha256 is recorded (trusted on first use only)."""
    _, planted = random_checkpoint(zoo.get("tiny_se"), seed=8)
    state, served = random_checkpoint(zoo.get("tiny_se"), seed=11)
    with serve({"/download": send_file(served)}) as srv:
        spec = UrlFile(srv.url + "/download?id=1", None, name="w.pth.tar")
        path = plant_url(spec, planted)
        card = small_card(spec)
        assert card.availability() == "download"
        monkeypatch.setenv("VISATTN_OFFLINE", "1")
        with pytest.raises(WeightsError, match="did not verify and was deleted"):
            zoo.build(card, pretrained=True)
        assert not path.exists() and checksums.recorded(spec.vouch_key) is None
        monkeypatch.delenv("VISATTN_OFFLINE")
        model = zoo.build(card, pretrained=True)
    assert checksums.recorded(spec.vouch_key) == hashlib.sha256(served).hexdigest()
    for k, v in state.items():
        assert torch.equal(model.state_dict()[k], v)
