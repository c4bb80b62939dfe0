"""Weights: one way to fetch, verify, cache and load every network's checkpoint.

Three kinds of weight file:
  HubFile      a file in a Hugging Face Hub repo (huggingface_hub; honours HF_ENDPOINT,
               HF_HOME, HF_HUB_OFFLINE); verified against the Hub's sha256 ETag
  UrlFile      a plain URL with a published hash (pytorchcv: sha1 of the .pth inside a
               .zip; torch-hub style names: sha256 prefix)
  BundledFile  a file shipped in assets/, with its sha256

Downloads stream into a temporary file beside the cache and are moved into place only
after the hash matches, so the cache never holds a partial or wrong file. A cached file
counts as "verified" only once its hash matched: the published one, the ETag the Hub
gave when VisAttn downloaded it (recorded then), or, for a source without a published
hash, the sha256 recorded when VisAttn downloaded it (trusted on first use only, and said
so). A file planted in a cache, never downloaded and recorded by VisAttn, does not verify.
Every load hashes its file at its first use in the process (`fresh`); the memo of hashes
by size and mtime (`checksums`) only spares the page's status lookups. A file that fails
verification or a strict load is deleted (`discard`).
Web pages (quota and sign-in pages) are refused. Every network source gives up after
STALL_S seconds without a byte. Checkpoints load only through safetensors or
torch.load(weights_only=True).

VISATTN_CACHE chooses the cache folder (default ~/.cache/visattn); VISATTN_OFFLINE=1
(or HF_HUB_OFFLINE=1) forbids network access.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Union

import torch

from . import checksums
from .checksums import cache_dir
from .resources import assets_dir

Progress = Callable[[int, Optional[int]], None]  # (bytes done, bytes total or None)
ASSETS = assets_dir()  # package data (importlib.resources), or the checkout's assets/
STALL_S = 4.0  # no connection, no first byte, or no byte for this long: give up (< 5 s)
PIECE = 64 * 1024  # bytes read (and reported) at a time: a report every 0.64 s at 100 kB/s
LEFTOVER_S = 600.0  # a partial download untouched this long was abandoned (killed process)
CONNECT_TIMEOUT_S = STALL_S  # an unreachable host must fail fast
READ_TIMEOUT_S = STALL_S  # silence from a server that accepted the connection
WEB_PAGE_NOTE = ("a web page instead of the weights file (a download quota or sign-in page, "
                 "as Google Drive sends when a file has been fetched too often)")


class WeightsError(RuntimeError):
    """Weights are missing, unreachable or do not verify; the message says what to do.

    `public` is the sentence for someone who cannot see this machine (a Space visitor): no
    server paths, no shell commands; str() adds `local`, the paths and the fetch command."""

    def __init__(self, public: str, local: str = ""):
        super().__init__(f"{public} {local}".strip())
        self.public = public


# ----- where weights come from ------------------------------------------------------------

@dataclass(frozen=True)
class HubFile:
    repo_id: str
    filename: str = "model.safetensors"
    revision: Optional[str] = None  # the pinned commit (40 hex digits); None: the default branch

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

    @property
    def vouch_key(self) -> str:
        """Under which name the sha256 of a hashless file is recorded."""
        return f"url:{self.url}"


@dataclass(frozen=True)
class BundledFile:
    path: str  # relative to assets/
    sha256: str

    def describe(self) -> str:
        return f"assets/{self.path}"


WeightFile = Union[HubFile, UrlFile, BundledFile]


# ----- settings ---------------------------------------------------------------------------

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

def file_digest(path: Path, algo: str = "sha256", fresh: bool = False) -> str:
    """The file's hex digest, remembered by size and mtime (see checksums); `fresh`: hashed
    at least once in this process, whatever the memo on disk says."""
    return checksums.digest(path, algo, fresh)


def _matches(path: Path, algo: str, digest: str, fresh: bool = False) -> bool:
    return file_digest(path, algo, fresh).startswith(digest.lower())


# ----- lookup without network -------------------------------------------------------------

def cached(spec: WeightFile) -> Optional[Path]:
    """The local file for `spec`, verified or not, or None if it is not on this machine."""
    if isinstance(spec, BundledFile):
        path = ASSETS / spec.path
        return path if path.is_file() else None
    if isinstance(spec, UrlFile):
        path = _url_path(spec)
        return path if path.is_file() else None
    spec = pinned(spec)
    try:
        from huggingface_hub import try_to_load_from_cache
        hit = try_to_load_from_cache(spec.repo_id, spec.filename, revision=spec.revision,
                                     cache_dir=hub_cache())
    except Exception:  # a malformed cache is treated as a miss
        return None
    return Path(hit) if isinstance(hit, str) and Path(hit).is_file() else None


def pinned(spec: HubFile) -> HubFile:
    """The Hub file at its card's commit, else at the commit of its first verified download
    (remembered in checksums), else at the default branch."""
    if spec.revision is None and checksums.pinned(spec.repo_id):
        return replace(spec, revision=checksums.pinned(spec.repo_id))
    return spec


def _pin_after_download(spec: HubFile, path: Path) -> None:
    """Remember the commit huggingface_hub stored the file under (snapshots/<commit>/...)."""
    commit = Path(path).parts[-1 - len(Path(spec.filename).parts)]
    if spec.revision is None and len(commit) == 40:
        checksums.pin(spec.repo_id, commit)


def check(path: Path, spec: WeightFile, fresh: bool = False) -> bool:
    """Does the file have its hash: the published one (bundled files: the manifest's;
    mmseg/openmmlab and pytorchcv files: the prefix their names carry), for a Hub file the
    sha256 the Hub gave when VisAttn downloaded it, for a file without a published hash
    the sha256 recorded when VisAttn downloaded it (trusted on first use only)? A file
    found in a cache that VisAttn did not download and record does not verify. `fresh`:
    hash the content at least once in this process (every load does)."""
    if isinstance(spec, BundledFile):
        return _matches(path, "sha256", spec.sha256, fresh)
    if isinstance(spec, UrlFile):
        if spec.digest is not None:
            return _matches(path, spec.algo, spec.digest, fresh)
        vouched = checksums.recorded(spec.vouch_key)
        return vouched is not None and file_digest(path, "sha256", fresh) == vouched
    recorded = checksums.recorded(_hub_key(spec, path))
    return recorded is not None and Path(path).resolve().name == recorded and \
        _hub_blob_matches(path, fresh)


def trusted_on_first_use(spec: Optional[WeightFile]) -> bool:
    """No hash is published for this file: it is checked only against the sha256 recorded
    at its first download (a changed file is caught, a wrong first download is not)."""
    return isinstance(spec, UrlFile) and spec.digest is None


TOFU_NOTE = ("its authors publish no checksum, so the file is trusted on first use only: "
             "checked against the sha256 recorded when it was first downloaded")


def _hub_key(spec: HubFile, path: Path) -> str:
    """Where the ETag the Hub gave for a downloaded file is recorded: repository, the
    commit it was stored under (snapshots/<commit>/...), file name."""
    parts = Path(path).parts
    commit = parts[-1 - len(Path(spec.filename).parts)] if len(parts) > 1 else ""
    return f"hub:{spec.repo_id}@{commit}/{spec.filename}"


def verified(spec: WeightFile) -> Optional[Path]:
    """The local file for `spec` if it is here and verified, else None (no network; the
    hash is computed once per file version and remembered)."""
    path = cached(spec)
    return path if path is not None and check(path, spec) else None


def discard(spec: WeightFile, path: Path) -> None:
    """Delete a cached file that failed verification or a strict load (never a bundled one)."""
    if isinstance(spec, BundledFile):
        return
    if isinstance(spec, HubFile):
        checksums.unrecord(_hub_key(spec, path))
    blob = Path(path).resolve()
    for p in {Path(path), blob}:
        p.unlink(missing_ok=True)
        checksums.forget(p)
    if isinstance(spec, UrlFile) and spec.digest is None:
        checksums.unrecord(spec.vouch_key)


# ----- fetching ----------------------------------------------------------------------------

def fetch(spec: WeightFile, progress: Optional[Progress] = None, who: str = "") -> Path:
    """The local file for `spec`, downloading it if needed; verified against its hash, or
    (a hashless file not yet vouched for) to be verified by the caller's strict load.

    `who` names the model in error messages. Raises WeightsError, never hangs: each network
    source gives up after STALL_S seconds without progress.
    """
    who = who or spec.describe()
    if isinstance(spec, BundledFile):
        return _bundled(spec, who)
    hit = cached(spec)
    why = "network access is off"
    if hit is not None:
        if check(hit, spec, fresh=True):
            return hit
        discard(spec, hit)
        why = f"the cached copy did not verify and was deleted; {why}"
    if offline():
        raise WeightsError(*_missing(who, spec, why + " (VISATTN_OFFLINE / HF_HUB_OFFLINE)"))
    if isinstance(spec, UrlFile):
        return _download_url(spec, progress, who)
    return _download_hub(spec, progress, who)


def _bundled(spec: BundledFile, who: str) -> Path:
    path = ASSETS / spec.path
    if not path.is_file():
        raise WeightsError(f"{who}: the bundled weights are missing from this installation.",
                           f"({spec.describe()}) Reinstall VisAttn from its repository.")
    if not _matches(path, "sha256", spec.sha256, fresh=True):
        raise WeightsError(f"{who}: the bundled weights do not match their sha256.",
                           f"({path}, {spec.sha256}) Reinstall VisAttn from its repository.")
    return path


def _missing(who: str, spec: WeightFile, why: str) -> tuple[str, str]:
    """(sentence for anyone, the paths and command for whoever runs this machine)."""
    name = who.split(":")[0]
    where = hub_cache() if isinstance(spec, HubFile) else cache_dir()
    return (f"{who}: pretrained weights are not cached on this machine and {why}.",
            f"Needed: {spec.describe()} (cache: {where}). Fetch them where there is "
            f"network with `python -m visattn download {name}`.")


def looks_like_web_page(path: Path) -> bool:
    """An HTML page (a quota, error or sign-in page) where a binary file was expected."""
    with open(path, "rb") as f:
        head = f.read(1024).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<?xml"))


def _download_url(spec: UrlFile, progress: Optional[Progress], who: str) -> Path:
    final = _url_path(spec)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(final.parent, ".part-*")
    tmp_dir = Path(tempfile.mkdtemp(prefix=".part-", dir=final.parent))
    try:
        download = tmp_dir / (spec.name or spec.url.rsplit("/", 1)[-1].split("?")[0] or "download")
        html = _stream(spec, download, progress, who)
        if html or looks_like_web_page(download):
            raise WeightsError(f"{who}: {spec.url} sent {WEB_PAGE_NOTE}; nothing was cached. "
                               "Try again later.")
        payload = _unzip(download, spec, who) if spec.member else download
        if spec.digest is not None and not _matches(payload, spec.algo, spec.digest):
            got = file_digest(payload, spec.algo)[:16]
            checksums.forget(payload)
            raise WeightsError(f"{who}: the file from {spec.url} does not match its published "
                               f"{spec.algo} {spec.digest} (got {got}…); it was discarded, "
                               "nothing was cached.")
        sha256 = file_digest(payload, "sha256", fresh=True) if spec.digest is None else None
        checksums.forget(payload)
        os.replace(payload, final)
        if sha256 is not None:  # trusted on first use: this download is what later loads must match
            checksums.record(spec.vouch_key, sha256)
        return final
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _stream(spec: UrlFile, out_path: Path, progress: Optional[Progress], who: str) -> bool:
    """GET spec.url into out_path; True if the server said it sends HTML."""
    import httpx
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    try:
        with httpx.stream("GET", spec.url, timeout=timeout, follow_redirects=True) as resp:
            if resp.status_code != 200:
                raise WeightsError(f"{who}: {spec.url} answered HTTP {resp.status_code}; "
                                   "nothing was cached.")
            total = int(resp.headers["content-length"]) if "content-length" in resp.headers else None
            done = 0
            with open(out_path, "wb") as out:
                for chunk in resp.iter_bytes(PIECE):
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
            html = resp.headers.get("content-type", "").lower().startswith("text/html")
    except httpx.TimeoutException:
        raise WeightsError(f"{who}: {spec.url} did not answer within {STALL_S:.0f} s; "
                           "the download was abandoned and nothing was cached.") from None
    except httpx.HTTPError as exc:
        raise WeightsError(*_missing(who, spec, f"the download failed ({type(exc).__name__}: {exc})")) from None
    if total is not None and done != total:
        raise WeightsError(f"{who}: the transfer of {spec.url} stopped at {done} of {total} "
                           "bytes; nothing was cached. Try again.")
    return html


def _unzip(archive: Path, spec: UrlFile, who: str) -> Path:
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extract(spec.member, archive.parent / "unzipped")
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise WeightsError(f"{who}: the archive from {spec.url} is damaged or lacks "
                           f"{spec.member} ({exc}); nothing was cached.") from None
    return archive.parent / "unzipped" / spec.member


class _Watch:
    """When bytes last moved; a download that stays silent for STALL_S is abandoned."""

    def __init__(self, progress: Optional[Progress]):
        self.progress, self.last = progress, time.monotonic()

    def __call__(self, done: int, total: Optional[int]) -> None:
        self.last = time.monotonic()
        if self.progress is not None:
            self.progress(done, total)

    def stalled(self) -> bool:
        return time.monotonic() - self.last > STALL_S


def _hub_tqdm(watch: _Watch):
    """A tqdm class that reports huggingface_hub's byte counts to `watch`."""
    from tqdm.auto import tqdm

    class Reporter(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self.done = int(kwargs.get("initial", 0) or 0)
            watch(self.done, int(self.total) if self.total else None)

        def update(self, n=1):  # a disabled tqdm counts nothing itself
            out = super().update(n)
            self.done += int(n or 0)
            watch(self.done, int(self.total) if self.total else None)
            return out

    return Reporter


def _hub_url(spec: HubFile, endpoint: str) -> str:
    return f"{endpoint.rstrip('/')}/{spec.repo_id}/resolve/{spec.revision or 'main'}/{spec.filename}"


def _hub_preflight(spec: HubFile, endpoint: str, who: str) -> None:
    """One quick HEAD without retries: huggingface_hub retries an unreachable Hub with
    back-off for ~25 s, and a user offline should hear so within seconds."""
    import httpx
    try:
        resp = httpx.head(_hub_url(spec, endpoint), timeout=httpx.Timeout(STALL_S),
                          follow_redirects=False)
    except httpx.TimeoutException:
        raise WeightsError(f"{who}: the Hub ({endpoint}) did not answer within {STALL_S:.0f} s; "
                           "nothing was cached.") from None
    except httpx.HTTPError as exc:
        raise WeightsError(*_missing(who, spec, f"the Hub ({endpoint}) cannot be reached "
                                                f"({type(exc).__name__})")) from None
    if resp.status_code in (401, 403, 404):
        raise WeightsError(f"{who}: the Hub has no {spec.describe()} at revision "
                           f"{spec.revision or 'main'} (HTTP {resp.status_code}).")


def _download_hub(spec: HubFile, progress: Optional[Progress], who: str) -> Path:
    spec = pinned(spec)
    endpoint = os.environ.get("HF_ENDPOINT") or None
    _hub_preflight(spec, endpoint or "https://huggingface.co", who)
    watch = _Watch(progress)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["path"] = _hf_hub_download(spec, endpoint, watch)
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"hub-download {spec.repo_id}", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        if worker.is_alive() and watch.stalled():  # the thread is left to time out on its own
            raise WeightsError(f"{who}: the Hub ({endpoint or 'huggingface.co'}) stopped sending "
                               f"{spec.describe()} for {STALL_S:.0f} s; the download was "
                               "abandoned and nothing was cached.")
    if "error" in outcome:
        raise _hub_error(outcome["error"], spec, endpoint, who)
    path = Path(outcome["path"])
    if looks_like_web_page(path):
        discard(spec, path)
        raise WeightsError(f"{who}: the Hub sent {WEB_PAGE_NOTE} for {spec.describe()}; "
                           "nothing was cached.")
    if not _hub_blob_matches(path, fresh=True):
        discard(spec, path)
        raise WeightsError(f"{who}: the file the Hub sent for {spec.describe()} does not match "
                           "its ETag; it was discarded, nothing was cached.")
    checksums.record(_hub_key(spec, path), path.resolve().name)  # the repository's hash
    _pin_after_download(spec, path)
    clean_leftovers(path.resolve().parent, "*.incomplete")
    return path


def clean_leftovers(folder: Path, pattern: str, older_than_s: float = LEFTOVER_S) -> int:
    """Delete what killed downloads left in `folder` (huggingface_hub's *.incomplete
    blobs, our .part-* folders): untouched for `older_than_s`, so no download still
    running loses its file. Returns how many were deleted."""
    cutoff = time.time() - older_than_s
    gone = 0
    for p in Path(folder).glob(pattern):
        try:
            if p.stat().st_mtime >= cutoff:
                continue
            shutil.rmtree(p) if p.is_dir() else p.unlink()
            gone += 1
        except OSError:  # removed meanwhile, or not ours to remove
            continue
    return gone


def _hf_hub_download(spec: HubFile, endpoint: Optional[str], watch: _Watch) -> str:
    from huggingface_hub import constants, hf_hub_download
    constants.HF_HUB_DOWNLOAD_TIMEOUT = max(1, int(STALL_S))  # read at call time
    # huggingface_hub reads (and reports) DOWNLOAD_CHUNK_SIZE bytes at a time, 10 MB by
    # default: at 1 MB/s that is 10 s between reports, which the watch would take for a
    # stall. Small pieces: a report whenever bytes move (read at call time too).
    constants.DOWNLOAD_CHUNK_SIZE = PIECE
    return hf_hub_download(spec.repo_id, spec.filename, revision=spec.revision,
                           endpoint=endpoint, cache_dir=hub_cache(), etag_timeout=STALL_S,
                           tqdm_class=_hub_tqdm(watch))


def _hub_error(exc: BaseException, spec: HubFile, endpoint: Optional[str], who: str) -> WeightsError:
    from huggingface_hub.errors import (EntryNotFoundError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)
    hub = endpoint or "huggingface.co"
    if isinstance(exc, LocalEntryNotFoundError):  # (a subclass of EntryNotFoundError)
        return WeightsError(*_missing(who, spec, f"the Hub ({hub}) cannot be reached"))
    if isinstance(exc, (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError)):
        return WeightsError(f"{who}: the Hub has no {spec.describe()} at revision "
                            f"{spec.revision or 'main'} ({type(exc).__name__}).")
    return WeightsError(*_missing(who, spec, f"the download failed ({type(exc).__name__}: "
                                             f"{str(exc)[:200]})"))


def _hub_blob_matches(path: Path, fresh: bool = False) -> bool:
    """huggingface_hub names each cached blob by its ETag: the file's sha256 for LFS files,
    the git object id (sha1 of 'blob <size>\\0' + content) for plain ones."""
    blob = path.resolve()
    etag = blob.name
    if any(c not in "0123456789abcdef" for c in etag):
        return False
    if len(etag) == 64:
        return file_digest(blob, "sha256", fresh) == etag
    if len(etag) == 40:
        return file_digest(blob, "git-sha1", fresh) == etag
    return False


# ----- loading -----------------------------------------------------------------------------

def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, or from a pickle with torch.load(weights_only=True).
    Wrapped checkpoints ({'state_dict': ...}, {'model': ...}) are unwrapped."""
    path = Path(path)
    if looks_like_web_page(path):
        raise WeightsError(f"{path.name} is {WEB_PAGE_NOTE}, not a checkpoint.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path.name} is not a readable checkpoint ({type(exc).__name__}: "
                           f"{str(exc)[:200]}).") from None
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path.name} does not hold a state dict of tensors.")
    return state
