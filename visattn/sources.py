"""Where networks come from: for each library that ships weights (timm, pytorchcv,
mmsegmentation's checkpoints on our plain-PyTorch heads, the Triplet authors' file, VisAttn's
own bundled networks) how to build the architecture, prepare its input and find its
published weight file, read from the library's own metadata, never retyped. Nothing here
imports a network library until a source is used.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

import torch.nn as nn

from . import weights
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from .weights import BundledFile, HubFile, UrlFile, WeightFile


@dataclass(frozen=True)
class Source:
    """Where a network comes from: `library` builds `arch`; its metadata gives the
    preprocessing and the published weight file."""
    library: str  # "timm" | "pytorchcv" | ...
    arch: str  # the library's own name, e.g. "seresnet50.ra2_in1k"
    build: Callable[[], nn.Module]  # random-init network
    preprocess: Callable[[], Preprocess]
    weights: Callable[[], Optional[WeightFile]]
    extra_keys_ok: bool = False  # the library's own loader drops checkpoint extras
    adapt: Optional[Callable[[dict], dict]] = None  # checkpoint keys -> the model's


def timm_source(arch: str, revision: Optional[str] = None) -> Source:
    """A timm network; `revision` pins its Hub repository to a commit (without one, the
    commit of the first verified download is kept, see weights.pinned)."""
    def build() -> nn.Module:
        import timm
        return timm.create_model(arch, pretrained=False)

    def cfg():
        from timm.models import get_pretrained_cfg
        return get_pretrained_cfg(arch)

    def preprocess() -> Preprocess:
        c = cfg()
        return Preprocess(size=tuple(c.input_size[1:]), mode="crop", crop_pct=c.crop_pct,
                          interpolation=c.interpolation, mean=tuple(c.mean), std=tuple(c.std))

    def weight_file() -> Optional[WeightFile]:
        c = cfg()
        if c.hf_hub_id:
            return HubFile(c.hf_hub_id, c.hf_hub_filename or "model.safetensors", revision)
        if c.url:  # torch-hub style name: <name>-<sha256 prefix>.<ext>
            m = re.search(r"-([0-9a-f]{8,})\.[a-z.]+$", c.url)
            return UrlFile(c.url, m.group(1), "sha256") if m else None
        return None

    return Source("timm", arch, build, preprocess, weight_file)


def _pytorchcv_meta(arch: str) -> dict:
    """Row of pytorchcv's own model_metainfos.csv (error code, sha1, release, size, crop)."""
    from pytorchcv.models.common.model_store import get_model_metainfos_file_path, load_csv
    rows = load_csv(get_model_metainfos_file_path())
    for row in rows[1:]:
        if row[0] == arch:
            return dict(zip(rows[0], row))
    raise KeyError(f"pytorchcv publishes no weights for {arch!r}")


def pytorchcv_source(arch: str) -> Source:
    """pytorchcv's weights: imgclsmob GitHub releases, a .pth zipped, sha1 of the .pth."""
    def build() -> nn.Module:
        from pytorchcv.model_provider import get_model
        return get_model(arch, pretrained=False)

    def preprocess() -> Preprocess:
        meta = _pytorchcv_meta(arch)
        size = int(meta["img_size"])
        return Preprocess(size=(size, size), mode="crop", crop_pct=float(meta["img_scale"]),
                          interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD)

    def weight_file() -> WeightFile:
        from pytorchcv.models.common.model_store import imgclsmob_repo_url
        meta = _pytorchcv_meta(arch)
        sha1 = meta["checksum"]
        name = f"{arch}-{meta['error_value']}-{sha1[:8]}.pth"
        url = f"{imgclsmob_repo_url}/releases/download/{meta['repo_release_tag']}/{name}.zip"
        return UrlFile(url, sha1, "sha1", member=name)

    return Source("pytorchcv", arch, build, preprocess, weight_file, extra_keys_ok=True)


def mmseg_source(head: str, url: str, short_side: int = 512) -> Source:
    """mmsegmentation's R-50-D8 ADE20K networks, re-implemented in models/mmseg_r50d8 with
    mmseg's module names. Test pipeline: keep-ratio resize to (2048, 512) scaled to
    `short_side` (cv2 bilinear), RGB mean/std, whole-image inference (checked against
    mmseg by tests/test_mmseg_parity.py). The URL is the one mmseg's metafile publishes;
    its file name ends in the checkpoint's sha256 prefix."""
    def build() -> nn.Module:
        from .models.mmseg_r50d8 import SegmentorR50D8
        return SegmentorR50D8(head)

    def preprocess() -> Preprocess:
        return Preprocess(size=(short_side, 4 * short_side), mode="keep_ratio",
                          interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD)

    def adapt(state: dict) -> dict:
        from .models.mmseg_r50d8 import adapt_state_dict
        return adapt_state_dict(state)

    digest = re.search(r"-([0-9a-f]{8,})\.pth$", url).group(1)
    return Source("mmseg", f"{head}_r50-d8_512x512_80k_ade20k", build, preprocess,
                  lambda: UrlFile(url, digest, "sha256"), adapt=adapt)


def triplet_source() -> Source:
    """Triplet attention ResNet-50 with the authors' ImageNet weights (landskape-ai/
    triplet-attention, k = 7; Google Drive, no hash published): a timm ResNet-50 whose
    blocks carry models/triplet.TripletAttention; their checkpoint keys are renamed onto
    it by models.triplet.map_authors_checkpoint. Their evaluation: resize 256, centre crop
    224, bilinear, ImageNet mean/std."""
    def build() -> nn.Module:
        import timm
        from .models.triplet import TripletAttention
        return timm.create_model("resnet50", pretrained=False,
                                 block_args=dict(attn_layer=TripletAttention))

    def adapt(state: dict) -> dict:
        from .models.triplet import map_authors_checkpoint
        return map_authors_checkpoint(state)

    drive = "1ptKswHzVmULGbE3DuX6vMCjEbqwUvGiG"
    url = f"https://drive.usercontent.google.com/download?id={drive}&export=download&confirm=t"
    return Source("triplet-attention (authors)", "resnet50 + triplet attention (k=7)", build,
                  lambda: Preprocess((224, 224), "crop", 0.875, "bilinear"),
                  lambda: UrlFile(url, None, name="triplet_attention_resnet50_k7.pth.tar"),
                  adapt=adapt)


MANIFEST = weights.ASSETS / "weights" / "manifest.json"


def bundled_source(entry: dict) -> Source:
    """VisAttn's own tiny networks: architecture in models/, weights and input statistics
    from the training manifest in assets/weights."""
    attention, n_classes = entry["attention"], len(entry["classes"])

    def build() -> nn.Module:
        if entry.get("task") == "segment":  # the twin-scene labellers (tools/train_twins.py)
            from .models.tiny_twins import tiny_twin_net
            return tiny_twin_net(non_local=attention == "nl")
        from .models.tiny_resnet import tiny_resnet
        return tiny_resnet(attention, n_classes)

    def preprocess() -> Preprocess:
        side = int(entry["input_size"])
        return Preprocess(size=(side, side), mode="crop", crop_pct=1.0, interpolation="bilinear",
                          mean=tuple(entry["mean"]), std=tuple(entry["std"]))

    return Source("visattn", entry["name"], build, preprocess,
                  lambda: BundledFile(f"weights/{entry['file']}", entry["sha256"]))
