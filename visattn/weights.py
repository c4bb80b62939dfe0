"""Weights: one way to fetch, verify, cache and load every network's checkpoint.

Three kinds of weight file:
  HubFile      a file in a Hugging Face Hub repo (huggingface_hub; honours HF_ENDPOINT,
               HF_HOME, HF_HUB_OFFLINE); verified against the Hub's sha256 ETag
  UrlFile      a plain URL with a published hash (pytorchcv: sha1 of the .pth inside a
               .zip; torch-hub style names: sha256 prefix)
  BundledFile  a file shipped in assets/, with its sha256

Downloads stream into a temporary file beside the cache and are moved into place only
after the hash matches, so the cache never holds a partial or wrong file. Cached files
are verified again before each load. Checkpoints load only through safetensors or
torch.load(weights_only=True).

VISATTN_CACHE chooses the cache folder (default ~/.cache/visattn); VISATTN_OFFLINE=1
(or HF_HUB_OFFLINE=1) forbids network access.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import torch

Progress = Callable[[int, Optional[int]], None]  # (bytes done, bytes total or None)
ASSETS = Path(__file__).resolve().parent.parent / "assets"
CONNECT_TIMEOUT_S = 4.0  # an unreachable host must fail fast
READ_TIMEOUT_S = 20.0  # silence from a server that accepted the connection


class WeightsError(RuntimeError):
    """Weights are missing, unreachable or do not verify; the message says what to do."""


# ----- where weights come from ------------------------------------------------------------

@dataclass(frozen=True)
class HubFile:
    repo_id: str
    filename: str = "model.safetensors"
    revision: Optional[str] = None

    def describe(self) -> str:
        return f"hf.co/{self.repo_id}/{self.filename}"


@dataclass(frozen=True)
class UrlFile:
    url: str
    digest: Optional[str]  # hex digest or a prefix (>= 8 digits); None: no hash is published
    algo: str = "sha256"  # "sha1" | "sha256"
    member: Optional[str] = None  # the file inside a .zip download; the hash is of this file
    name: Optional[str] = None  # the cache file name, where the URL does not end in one

    def __post_init__(self):
        if self.digest is not None and len(self.digest) < 8:
            raise ValueError("a published hash needs at least 8 hex digits")

    @property
    def filename(self) -> str:
        return self.member or self.name or self.url.rsplit("/", 1)[-1]

    def describe(self) -> str:
        return self.url


@dataclass(frozen=True)
class BundledFile:
    path: str  # relative to assets/
    sha256: str

    def describe(self) -> str:
        return f"assets/{self.path}"


WeightFile = Union[HubFile, UrlFile, BundledFile]


# ----- settings ---------------------------------------------------------------------------

def cache_dir() -> Path:
    return Path(os.environ.get("VISATTN_CACHE") or Path.home() / ".cache" / "visattn")


def offline() -> bool:
    flags = (os.environ.get("VISATTN_OFFLINE", ""), os.environ.get("HF_HUB_OFFLINE", ""))
    return any(f.strip().lower() in ("1", "true", "yes", "on") for f in flags)


def hub_cache() -> Path:
    """huggingface_hub's cache, read from the environment now (the library reads it once,
    at import): HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    return Path(home) / "hub"


def _url_path(spec: UrlFile) -> Path:
    return cache_dir() / "url" / spec.filename


# ----- hashing ----------------------------------------------------------------------------

def file_digest(path: Path, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _matches(path: Path, algo: str, digest: Optional[str]) -> bool:
    """True if the file has the published hash; with none published, only a complete
    transfer and, later, a strict load of every key vouch for it."""
    return digest is None or file_digest(path, algo).startswith(digest.lower())


# ----- lookup without network -------------------------------------------------------------

def cached(spec: WeightFile) -> Optional[Path]:
    """The local, verified file for `spec`, or None if it is not on this machine."""
    if isinstance(spec, BundledFile):
        path = ASSETS / spec.path
        return path if path.is_file() else None
    if isinstance(spec, UrlFile):
        path = _url_path(spec)
        return path if path.is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache
        hit = try_to_load_from_cache(spec.repo_id, spec.filename, revision=spec.revision,
                                     cache_dir=hub_cache())
    except Exception:  # a malformed cache is treated as a miss
        return None
    return Path(hit) if isinstance(hit, str) else None


# ----- fetching ----------------------------------------------------------------------------

def fetch(spec: WeightFile, progress: Optional[Progress] = None, who: str = "") -> Path:
    """The verified local file for `spec`, downloading it if needed.

    `who` names the model in error messages. Raises WeightsError, never hangs: connecting
    gives up after CONNECT_TIMEOUT_S, a silent server after READ_TIMEOUT_S.
    """
    who = who or spec.describe()
    if isinstance(spec, BundledFile):
        path = ASSETS / spec.path
        if not path.is_file():
            raise WeightsError(f"{who}: bundled weights {spec.describe()} are missing from this "
                               "installation; reinstall VisAttn from its repository.")
        if not _matches(path, "sha256", spec.sha256):
            raise WeightsError(f"{who}: {path} does not match its sha256 {spec.sha256}; "
                               "reinstall VisAttn from its repository.")
        return path
    hit = cached(spec)
    why = "network access is off (VISATTN_OFFLINE / HF_HUB_OFFLINE)"
    if hit is not None:
        if _cached_file_ok(hit, spec):
            return hit
        why = f"the cached copy did not verify and was deleted; {why}"
    if offline():
        raise WeightsError(_missing(who, spec, why))
    if isinstance(spec, UrlFile):
        return _download_url(spec, progress, who)
    return _download_hub(spec, progress, who)


def _missing(who: str, spec: WeightFile, why: str) -> str:
    name = who.split(":")[0]
    where = hub_cache() if isinstance(spec, HubFile) else cache_dir()
    return (f"{who}: pretrained weights are not cached on this machine and {why}. "
            f"Needed: {spec.describe()} (cache: {where}). Fetch them where there is "
            f"network with `python -m visattn download {name}`.")


def _cached_file_ok(path: Path, spec: WeightFile) -> bool:
    """Verify a cached file against its hash; a file that fails is deleted (and then
    downloaded again where there is network)."""
    if isinstance(spec, UrlFile):
        if _matches(path, spec.algo, spec.digest):
            return True
        path.unlink(missing_ok=True)
        return False
    return _hub_blob_ok(path)


def _download_url(spec: UrlFile, progress: Optional[Progress], who: str) -> Path:
    import httpx
    final = _url_path(spec)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=".part-", dir=final.parent))
    try:
        download = tmp_dir / (spec.name or spec.url.rsplit("/", 1)[-1].split("?")[0] or "download")
        timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        try:
            with httpx.stream("GET", spec.url, timeout=timeout, follow_redirects=True) as resp:
                if resp.status_code != 200:
                    raise WeightsError(f"{who}: {spec.url} answered HTTP {resp.status_code}.")
                total = int(resp.headers["content-length"]) if "content-length" in resp.headers else None
                done = 0
                with open(download, "wb") as out:
                    for chunk in resp.iter_bytes(1 << 20):
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
        except httpx.TimeoutException:
            raise WeightsError(f"{who}: {spec.url} did not answer in time; "
                               "the download was abandoned and nothing was cached.") from None
        except httpx.HTTPError as exc:
            raise WeightsError(_missing(who, spec, f"the download failed ({type(exc).__name__}: {exc})")) from None
        if total is not None and done != total:
            raise WeightsError(f"{who}: the transfer of {spec.url} stopped at {done} of {total} "
                               "bytes; nothing was cached. Try again.")
        payload = _unzip(download, spec, who) if spec.member else download
        if not _matches(payload, spec.algo, spec.digest):
            raise WeightsError(f"{who}: the file from {spec.url} does not match its published "
                               f"{spec.algo} {spec.digest} (got {file_digest(payload, spec.algo)[:16]}…); "
                               "it was discarded, nothing was cached.")
        os.replace(payload, final)
        return final
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _unzip(archive: Path, spec: UrlFile, who: str) -> Path:
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extract(spec.member, archive.parent / "unzipped")
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise WeightsError(f"{who}: the archive from {spec.url} is damaged or lacks "
                           f"{spec.member} ({exc}); nothing was cached.") from None
    return archive.parent / "unzipped" / spec.member


def _hub_tqdm(progress: Optional[Progress]):
    """A tqdm class that reports huggingface_hub's byte counts to `progress`."""
    from tqdm.auto import tqdm

    class Reporter(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = progress is not None or kwargs.get("disable", False)
            super().__init__(*args, **kwargs)
            self.done = int(kwargs.get("initial", 0) or 0)

        def update(self, n=1):  # a disabled tqdm counts nothing itself
            out = super().update(n)
            self.done += int(n or 0)
            if progress is not None:
                progress(self.done, int(self.total) if self.total else None)
            return out

    return Reporter


def _hub_preflight(spec: HubFile, endpoint: str, who: str) -> None:
    """One quick HEAD without retries: huggingface_hub retries an unreachable Hub with
    back-off for ~25 s, and a user offline should hear so within seconds."""
    import httpx
    url = f"{endpoint.rstrip('/')}/{spec.repo_id}/resolve/{spec.revision or 'main'}/{spec.filename}"
    try:
        resp = httpx.head(url, timeout=httpx.Timeout(CONNECT_TIMEOUT_S), follow_redirects=False)
    except httpx.HTTPError as exc:
        raise WeightsError(_missing(who, spec, f"the Hub ({endpoint}) cannot be reached "
                                               f"({type(exc).__name__})")) from None
    if resp.status_code in (401, 403, 404):
        raise WeightsError(f"{who}: the Hub has no {spec.describe()} (HTTP {resp.status_code}).")


def _download_hub(spec: HubFile, progress: Optional[Progress], who: str) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)
    endpoint = os.environ.get("HF_ENDPOINT") or None
    _hub_preflight(spec, endpoint or "https://huggingface.co", who)
    try:
        path = Path(hf_hub_download(spec.repo_id, spec.filename, revision=spec.revision,
                                    endpoint=endpoint, cache_dir=hub_cache(),
                                    etag_timeout=CONNECT_TIMEOUT_S,
                                    tqdm_class=_hub_tqdm(progress)))
    except LocalEntryNotFoundError:  # (a subclass of EntryNotFoundError)
        raise WeightsError(_missing(who, spec, f"the Hub ({endpoint or 'huggingface.co'}) "
                                               "cannot be reached")) from None
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise WeightsError(f"{who}: the Hub has no {spec.describe()} ({type(exc).__name__}).") from None
    except Exception as exc:  # httpx errors, timeouts, HTTP 5xx wrapped by huggingface_hub
        raise WeightsError(_missing(who, spec, f"the download failed ({type(exc).__name__}: "
                                               f"{str(exc)[:200]})")) from None
    if not _hub_blob_ok(path):
        raise WeightsError(f"{who}: the file the Hub sent for {spec.describe()} does not match "
                           "its sha256 ETag; it was discarded, nothing was cached.")
    return path


def _hub_blob_ok(path: Path) -> bool:
    """huggingface_hub names each cached blob by its ETag, which for LFS files is the
    file's sha256: check it, and drop the file from the cache if it does not match."""
    blob = path.resolve()
    etag = blob.name
    if len(etag) != 64 or any(c not in "0123456789abcdef" for c in etag):
        return True  # small non-LFS files carry a git-sha1 ETag; safetensors validates on load
    if file_digest(blob) == etag:
        return True
    blob.unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    return False


# ----- loading -----------------------------------------------------------------------------

def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, or from a pickle with torch.load(weights_only=True).
    Wrapped checkpoints ({'state_dict': ...}, {'model': ...}) are unwrapped."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors.")
    return state
