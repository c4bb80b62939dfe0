"""visattn cam: each record's map against Grad-CAM at its block (agreement.json and the
picture, as the app's Analyses tab shows them)."""
from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path

from ..render import COLORMAPS
from .common import UserError, add_network_options, image_list, open_from_args, out_dirs


def add(sub, names: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "cam", parents=[names], help="attention maps against Grad-CAM of the predicted class",
        description="For each photo and each spatial map or pairwise layer (its mean row), "
                    "Grad-CAM (pytorch-grad-cam) of the predicted class at the block holding "
                    "the attention module, the rank correlation and top-pixel IoU of the two "
                    "(agreement.json, as the app exports it) and both maps on the photo side "
                    "by side (attention_vs_gradcam.png), in OUT/<photo>/<record>/.")
    add_network_options(s)
    s.add_argument("images", nargs="+", metavar="IMAGE", help="photo files or folders of them")
    s.add_argument("--out", required=True, metavar="DIR", help="folder for the results")
    s.add_argument("--record", default="*", metavar="PATTERN",
                   help="records whose key matches this shell pattern (default: all)")
    s.add_argument("--top", type=float, default=20.0, metavar="PCT",
                   help="the IoU compares the top PCT %% of pixels (default 20)")
    s.add_argument("--alpha", type=float, default=0.6, help="map opacity in the picture")
    s.add_argument("--cmap", default="jet", choices=COLORMAPS)
    s.set_defaults(run=run)


def run(args) -> int:
    from ..image import ImageError
    from ..pipeline import analyze
    net = open_from_args(args)
    if net.task not in ("classify", None):
        raise UserError("Grad-CAM explains a class score: choose a classifier.", 2)
    images = image_list(args.images)
    failed = 0
    for image, folder in zip(images, out_dirs(images, Path(args.out))):
        try:
            write_cams(analyze(image, net), net.module, folder, args)
        except (ImageError, OSError, ValueError) as exc:
            failed += 1
            print(f"FAILED {image}: {exc}", file=sys.stderr)
    print(f"{len(images) - failed} of {len(images)} images compared; results in {args.out}")
    return 1 if failed else 0


def write_cams(trace, module, folder: Path, args) -> None:
    """agreement.json and attention_vs_gradcam.png per matching record, in folder/<record>."""
    from PIL import Image

    from .. import render
    from ..export import safe_name
    from ..gradcam import comparable, compare
    records = [r for r in comparable(trace) if fnmatch.fnmatchcase(r.key, args.record)]
    if not records:
        raise ValueError(f"no spatial map or pairwise layer matches {args.record!r}")
    for rec in records:
        found = compare(trace, module, rec.key, args.top / 100.0)
        where = folder / safe_name(rec.key)
        where.mkdir(parents=True, exist_ok=True)
        (where / "agreement.json").write_text(json.dumps(found.report(trace.model), indent=2))
        picture = render.attention_beside_cam(trace, found.attention, found.cam, args.alpha, args.cmap)
        Image.fromarray(picture).save(where / "attention_vs_gradcam.png")
        s = found.scores
        if found.empty:
            print(f"{rec.key}: {found.sentence} -> {where}")
            continue
        print(f"{rec.key}: rank correlation {s['spearman']:.3f}, IoU of the top "
              f"{args.top:g} % {s['top_iou']:.3f} -> {where}")
