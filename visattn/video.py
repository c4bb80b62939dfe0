"""Clips in: decoding a video (OpenCV's FFmpeg backend), a folder or zip of frames, or an
array, with caps checked before anything large is decoded; frames sampled as the network
was trained; and `analyze_video(source, model) -> Trace`.

Sampling is mmaction2's `SampleFrames` in test mode with one clip: `clip_len` frames
`frame_interval` apart, centred in the video (offset int((n - clip_len * interval + 1) / 2)
when the video is long enough, else 0), indices past the end wrapped around ("loop"). I3D
uses 32x2x1: 32 frames, every second one, one clip.

Every refusal is a `VideoError` whose message is one sentence for the person who gave the
file: too big, too long, too many frames, frames too large, damaged, no frames, audio only,
a still image renamed, nothing that looks like a video.
"""
from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from .records_video import Clip

MAX_BYTES = 200 * 2 ** 20  # a video file, or the frames of a zip together
MAX_DURATION_S = 600.0  # ten minutes
MAX_FRAMES = 20_000  # frames in the source
MAX_FRAME_PIXELS = 1920 * 1088  # per frame (a 1080p video; 4K is refused from its header)
CLIP_SUFFIXES = (".mp4", ".webm", ".gif")  # the video files the page and examples take
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

ClipSource = Union[str, Path, np.ndarray, Sequence]


class VideoError(ValueError):
    """A clip that cannot be used; the message is one sentence."""


@dataclass(frozen=True)
class Sampling:
    """mmaction2's SampleFrames(clip_len, frame_interval, num_clips=1, test_mode=True)."""
    clip_len: int
    frame_interval: int = 1

    def indices(self, total: int) -> np.ndarray:
        """(clip_len,) int64 frame indices into a video of `total` frames."""
        if total <= 0:
            raise VideoError("The clip holds no frames.")
        span = self.clip_len * self.frame_interval
        offset = int((total - span + 1) / 2.0) if total > span - 1 else 0
        return np.mod(offset + np.arange(self.clip_len) * self.frame_interval, total).astype(np.int64)


ALL_FRAMES = None  # a network without a sampling of its own sees every frame (up to 64)
_SAMPLING: dict[str, Sampling] = {}
DEFAULT_MAX_FRAMES = 64


def register_sampling(name: str, sampling: Sampling) -> None:
    """The frames network `name` was trained on (its card's name)."""
    _SAMPLING[name] = sampling


def sampling_for(name: str) -> Optional[Sampling]:
    return _SAMPLING.get(name)


# ----- what a file is -----------------------------------------------------------------
_STILL = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"BM", "BMP"),
          (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))
_AUDIO = ((b"ID3", "MP3"), (b"fLaC", "FLAC"), (b"\xff\xfb", "MP3"), (b"\xff\xf3", "MP3"),
          (b"\xff\xf2", "MP3"))


def _still_or_audio(head: bytes) -> Optional[str]:
    """A sentence if the header says still image or audio file, else None."""
    for magic, name in _STILL:
        if head.startswith(magic):
            return f"This is a still {name} image, not a video: give it as a photo."
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "This is a still WebP image, not a video: give it as a photo."
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "This is a WAV audio file: it holds no video."
    for magic, name in _AUDIO:
        if head.startswith(magic):
            return f"This is an {name} audio file: it holds no video."
    if head.startswith(b"OggS") and b"vorbis" in head[:64].lower():
        return "This is an Ogg audio file: it holds no video."
    return None


def _looks_like_text(head: bytes) -> bool:
    return bool(head) and all(b in b"\t\n\r" or 32 <= b < 127 for b in head[:256])


def _natural_key(name: str):
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]


# ----- decoding -----------------------------------------------------------------------
def _check_header(width: int, height: int, count: int, fps: float, what: str) -> None:
    if width * height > MAX_FRAME_PIXELS:
        raise VideoError(f"The {what}'s frames are {width} x {height} pixels; at most "
                         f"{MAX_FRAME_PIXELS / 1e6:.1f} megapixels per frame are accepted (1080p).")
    if count > MAX_FRAMES:
        raise VideoError(f"The {what} has {count} frames; at most {MAX_FRAMES} are accepted.")
    if fps > 0 and count / fps > MAX_DURATION_S:
        raise VideoError(f"The {what} lasts {count / fps:.0f} s; at most "
                         f"{MAX_DURATION_S:.0f} s are accepted.")


def _decode_file(path: Path, sampling: Optional[Sampling], max_bytes: int) -> Clip:
    import cv2
    size = path.stat().st_size
    if size > max_bytes:
        raise VideoError(f"The video is {size / 2 ** 20:.0f} MB; at most "
                         f"{max_bytes / 2 ** 20:.0f} MB are accepted.")
    if size == 0:
        raise VideoError("The file is empty.")
    with open(path, "rb") as f:
        head = f.read(512)
    said = _still_or_audio(head)
    if said:
        raise VideoError(said)
    if _looks_like_text(head):
        raise VideoError("This is a text file, not a video.")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise VideoError("The file cannot be read as a video: it is damaged, holds no "
                             "video stream (audio only?), or is in a format FFmpeg does not know.")
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if width <= 0 or height <= 0:
            raise VideoError("The file holds no video picture (audio only, or damaged).")
        _check_header(width, height, max(count, 0), fps, "video")
        frames, seen = _read_frames(cap, count, sampling)
    finally:
        cap.release()
    if seen == 0:
        raise VideoError("The video holds no frames that can be decoded (damaged or empty).")
    if count <= 0 or any(int(i) not in frames for i in _indices(sampling, count)):
        count = seen  # the header's count was missing or too large: sample what is there
        _check_header(width, height, count, fps, "video")
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        try:
            frames, _ = _read_frames(cap, count, sampling)
        finally:
            cap.release()
    idx = _indices(sampling, count)
    if any(int(i) not in frames for i in idx):
        raise VideoError("The video's frames cannot all be decoded (damaged).")
    return Clip(frames=np.stack([frames[int(i)] for i in idx]), indices=idx, fps=fps,
                frame_count=count, source=path.name[:60])


def _indices(sampling: Optional[Sampling], count: int) -> np.ndarray:
    if sampling is not None:
        return sampling.indices(count)
    return Sampling(min(count, DEFAULT_MAX_FRAMES), max(1, count // DEFAULT_MAX_FRAMES)).indices(count) \
        if count > DEFAULT_MAX_FRAMES else np.arange(count, dtype=np.int64)


def _read_frames(cap, count: int, sampling: Optional[Sampling]) -> tuple[dict[int, np.ndarray], int]:
    """(frames by index, frames seen), decoded in order, only the sampled ones kept (RGB
    uint8); without a count, none kept, only counted (up to MAX_FRAMES)."""
    import cv2
    if count <= 0:  # no count in the header: count the frames without keeping any
        seen = 0
        while seen < MAX_FRAMES and cap.grab():
            seen += 1
        return {}, seen
    wanted = set(_indices(sampling, count).tolist())
    frames: dict[int, np.ndarray] = {}
    seen = 0
    for i in range(max(wanted) + 1):
        if not cap.grab():
            break
        seen = i + 1
        if i in wanted:
            ok, bgr = cap.retrieve()
            if not ok or bgr is None:
                break
            frames[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return frames, seen


def _decode_frames(named: list[tuple[str, bytes]], sampling: Optional[Sampling],
                   what: str) -> Clip:
    """Frames given as image files (a folder's or a zip's), in natural name order."""
    from .image import ImageError, load_image
    if not named:
        raise VideoError(f"The {what} holds no image frames ({', '.join(FRAME_EXTENSIONS)}).")
    if len(named) > MAX_FRAMES:
        raise VideoError(f"The {what} has {len(named)} frames; at most {MAX_FRAMES} are accepted.")
    named.sort(key=lambda nb: _natural_key(nb[0]))
    idx = _indices(sampling, len(named))
    frames, shape = [], None
    for i in idx:
        name, data = named[int(i)]
        try:
            rgb = load_image(data, max_pixels=MAX_FRAME_PIXELS)
        except ImageError as exc:
            raise VideoError(f"Frame {name[:40]!r} of the {what} cannot be used: {exc}") from None
        if shape is not None and rgb.shape != shape:
            raise VideoError(f"The {what}'s frames differ in size ({name[:40]!r} is "
                             f"{rgb.shape[1]} x {rgb.shape[0]}, the first {shape[1]} x {shape[0]}).")
        shape = rgb.shape
        frames.append(rgb)
    return Clip(frames=np.stack(frames), indices=idx, fps=0.0, frame_count=len(named), source=what)


def _folder(path: Path, sampling, max_bytes: int) -> Clip:
    files = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTENSIONS]
    total = sum(p.stat().st_size for p in files)
    if total > max_bytes:
        raise VideoError(f"The folder's frames are {total / 2 ** 20:.0f} MB together; at most "
                         f"{max_bytes / 2 ** 20:.0f} MB are accepted.")
    return _decode_frames([(p.name, p.read_bytes()) for p in files], sampling, "folder")


def _zip(path: Path, sampling, max_bytes: int) -> Clip:
    try:
        with zipfile.ZipFile(path) as z:
            infos = [i for i in z.infolist() if not i.is_dir()
                     and Path(i.filename).suffix.lower() in FRAME_EXTENSIONS
                     and not Path(i.filename).name.startswith(".")]
            total = sum(i.file_size for i in infos)
            if total > max_bytes:
                raise VideoError(f"The zip's frames are {total / 2 ** 20:.0f} MB unpacked; at "
                                 f"most {max_bytes / 2 ** 20:.0f} MB are accepted.")
            named = [(i.filename, z.read(i)) for i in infos]
    except (zipfile.BadZipFile, OSError, EOFError):
        raise VideoError("The zip file is damaged.") from None
    return _decode_frames(named, sampling, "zip")


def _array(frames, sampling) -> Clip:
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
        raise VideoError(f"Frames must be a (T, H, W, 3) uint8 RGB array, not {a.dtype} "
                         f"{tuple(a.shape)}.")
    if len(a) == 0:
        raise VideoError("The clip holds no frames.")
    _check_header(a.shape[2], a.shape[1], len(a), 0.0, "clip")
    idx = _indices(sampling, len(a))
    return Clip(frames=np.ascontiguousarray(a[idx]), indices=idx, frame_count=len(a), source="array")


def load_clip(source: ClipSource, sampling: Optional[Sampling] = None,
              max_bytes: int = MAX_BYTES) -> Clip:
    """A clip's sampled frames: a video file (mp4, webm, gif, avi, mkv, ...), a folder or a
    .zip of frame images (natural name order), a (T, H, W, 3) uint8 array, or a list of
    (H, W, 3) arrays. `sampling` None: every frame (at most 64, evenly spread).
    Raises VideoError with one sentence."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise VideoError(f"There is no file {str(path)[-60:]!r}.")
        if path.is_dir():
            return _folder(path, sampling, max_bytes)
        if zipfile.is_zipfile(path):
            return _zip(path, sampling, max_bytes)
        return _decode_file(path, sampling, max_bytes)
    if isinstance(source, (bytes, bytearray, io.IOBase)):
        raise VideoError("Give a clip as a file path, a folder, a zip or an array of frames.")
    return _array(source if isinstance(source, np.ndarray) else np.stack(list(source)), sampling)


# ----- analysis -----------------------------------------------------------------------


def write_webm(frames: np.ndarray, path: Union[str, Path], fps: float = 2.0, scale: int = 1) -> Path:
    """(T, H, W, 3) uint8 RGB frames -> a VP8 WebM, which every browser plays (OpenCV's
    'mp4v' MPEG-4 Part 2, its only mp4 encoder, plays in none). `scale` enlarges each frame
    by pixel repetition first, so that small frames survive VP8's 16-px blocks."""
    import cv2
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"frames must be (T, H, W, 3) uint8 with T >= 1, not {frames.shape} {frames.dtype}")
    h, w = frames.shape[1] * scale, frames.shape[2] * scale
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"VP80"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError("OpenCV's FFmpeg backend cannot write VP8 WebM here")
    try:
        for f in frames:
            big = np.repeat(np.repeat(f, scale, axis=0), scale, axis=1)
            writer.write(np.ascontiguousarray(big[:, :, ::-1]))  # OpenCV writes BGR
    finally:
        writer.release()
    return path


BROWSER_CODECS = {"avc1", "h264", "x264", "vp80", "vp90", "vp08", "vp09", "av01", "theo"}
CODEC_NAMES = {"fmp4": "MPEG-4 Part 2 (mp4v)", "xvid": "MPEG-4 Part 2 (Xvid)",
               "divx": "MPEG-4 Part 2 (DivX)", "hevc": "H.265/HEVC", "hev1": "H.265/HEVC",
               "hvc1": "H.265/HEVC", "mjpg": "Motion JPEG", "gif ": "GIF"}


def unplayable_codec(path: Union[str, Path]) -> Optional[str]:
    """The name of the clip's codec where browsers' video players cannot show it (OpenCV's
    mp4v, HEVC, Motion JPEG, GIF), else None (a playable codec, or a file OpenCV cannot
    open: its analysis says why). VisAttn decodes such clips itself all the same."""
    import cv2
    if not Path(path).is_file():
        return None
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            return None
        tag = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("latin-1").lower()
    finally:
        cap.release()
    if not tag.strip("\0 ") or tag in BROWSER_CODECS:
        return None
    return CODEC_NAMES.get(tag, repr(tag.strip("\0 ")))
