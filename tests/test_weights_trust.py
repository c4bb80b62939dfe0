"""Issue 21, items 5 and 6: weights verified by content, and cache trouble never takes the
bundled networks down.

(a) a cached file with one byte flipped, its size and mtime kept, is caught: every load
hashes the file at its first use in the process, the memo on disk is not trusted for
content; (c) a Hub file planted in the cache under its own hash is refused: Hub files are
checked against the sha256 the Hub gave when VisAttn downloaded them; a file with no
published hash is said to be trusted on first use only. A weight cache on a read-only
or full disk: bundled networks still load (the memo is best-effort)."""
import errno
import hashlib
import os

import pytest
import torch

from visattn import checksums, weights, zoo
from visattn.weights import HubFile, UrlFile, WeightsError

from local_servers import hub_file, send_file, serve
from test_weights_verification import plant_hub, random_checkpoint, small_card


def _new_process():
    """What a new process knows: only the memo on disk."""
    checksums._HASHED_HERE.clear()


def test_a_flipped_byte_with_size_and_mtime_kept_is_caught(monkeypatch):
    card0 = zoo.get("tiny_se")
    _, data = random_checkpoint(card0, seed=5)
    with serve({"/w.pth": send_file(data)}) as srv:
        spec = UrlFile(srv.url + "/w.pth", hashlib.sha256(data).hexdigest())
        card = small_card(spec)
        zoo.build(card, pretrained=True)  # downloaded, verified, hash remembered
    path = weights.cached(spec)
    st = path.stat()
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as they were
    _new_process()
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    with pytest.raises(WeightsError, match="did not verify and was deleted"):
        zoo.build(card, pretrained=True)
    assert not path.exists()


def test_a_hub_file_planted_under_its_own_hash_is_refused(monkeypatch):
    _, data = random_checkpoint(zoo.get("tiny_se"), seed=6, fmt="safetensors")
    spec = HubFile("someone/planted", "model.safetensors")
    snap = plant_hub(spec, data, hashlib.sha256(data).hexdigest())  # self-consistent
    card = small_card(spec)
    assert card.availability() == "download"
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    with pytest.raises(WeightsError, match="did not verify and was deleted"):
        zoo.build(card, pretrained=True)
    assert not snap.exists()


def test_a_hub_file_downloaded_by_visattn_is_recorded_and_verified_offline(monkeypatch):
    state, data = random_checkpoint(zoo.get("tiny_se"), seed=7, fmt="safetensors")
    spec = HubFile("someone/real", "model.safetensors", revision="f" * 40)
    with serve({f"/{spec.repo_id}/resolve/{spec.revision}/{spec.filename}":
                hub_file(data, commit=spec.revision)}) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        zoo.build(small_card(spec), pretrained=True)
    _new_process()
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    model = zoo.build(small_card(spec), pretrained=True)
    for k, v in state.items():
        assert torch.equal(model.state_dict()[k], v)


def test_a_file_without_a_published_hash_is_said_to_be_trusted_on_first_use(monkeypatch):
    from visattn.ui import inputs
    _, data = random_checkpoint(zoo.get("tiny_se"), seed=8)
    with serve({"/download": send_file(data)}) as srv:
        spec = UrlFile(srv.url + "/download?id=1", None, name="se.pth")
        card = small_card(spec)
        zoo.build(card, pretrained=True)
    assert weights.trusted_on_first_use(spec)
    assert not weights.trusted_on_first_use(zoo.get("tiny_se").weights)  # bundled: hashed
    assert inputs._status(card, True) == inputs.TOFU_STATUS
    monkeypatch.setattr(zoo, "get", lambda name: card)
    assert "trusted on first use only" in inputs.trust_note(card.name)


def test_bundled_networks_load_with_a_cache_that_cannot_be_created(tmp_path, monkeypatch):
    """An unwritable cache for root too: its folder would have to be made under a file."""
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    monkeypatch.setenv("VISATTN_CACHE", str(blocker / "cache"))
    _new_process()
    zoo.build(zoo.get("tiny_nl"), pretrained=True)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_bundled_networks_load_when_the_cache_disk_is_full_or_read_only(code, monkeypatch):
    real = checksums.Path.write_text

    def refuse(self, *args, **kwargs):
        if checksums.MEMO_NAME in self.name:
            raise OSError(code, os.strerror(code))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(checksums.Path, "write_text", refuse)
    _new_process()
    model = zoo.build(zoo.get("tiny_nl"), pretrained=True)
    assert model is not None
    assert not (weights.cache_dir() / checksums.MEMO_NAME).exists()
