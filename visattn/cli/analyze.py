"""visattn analyze: photos and folders -> one folder per photo (pictures, the trace file
arrays.npz, meta.json, optionally viewer.html); batched, resumable, one failure never ends
the run. Under torchrun the processes split the photos (each writes its own photos'
folders and a ledger under OUT/parts/; process 0 joins the ledgers at the end)."""
from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

from ..render import COLORMAPS
from .common import add_network_options, image_list, open_from_args, out_dirs, query

ANALYZED = "analyzed.csv"  # the run's ledger: what a restart skips
PARTS = "parts"  # under torchrun: one ledger per process while the run goes on


def add(sub, names: argparse.ArgumentParser, batch: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "analyze", parents=[names, batch],
        help="capture every attention map of a network on photos and save them",
        description="Run a network on each photo and write, per photo, a folder with every "
                    "captured map as PNG (overlays/), the analysis itself (arrays.npz: "
                    "visattn.load or `visattn view` read it back) and a JSON of model, "
                    "preprocessing, layers and queries (meta.json). A photo that cannot be "
                    "read or analysed is reported and skipped; the exit status is 1 if any was.")
    add_network_options(s)
    s.add_argument("images", nargs="+", metavar="IMAGE",
                   help="photo files (JPEG, PNG, ...) or folders of them; photos listed in "
                        "OUT/analyzed.csv by an earlier run are skipped; or clips (mp4, "
                        "webm, gif, ... or a zip of frames) for a clip network such as "
                        "tiny_nl_clips")
    s.add_argument("--layers", default="*", metavar="PATTERN",
                   help="only records whose key matches this shell pattern, e.g. '*spatial*' "
                        "or 'layer4.*' (default: all)")
    s.add_argument("--query", type=query, action="append", default=[], metavar="X,Y",
                   help="a photo pixel whose attention row to save for every pairwise layer "
                        "(Non-local, BoTNet, CCNet, DANet); repeatable")
    s.add_argument("--cmap", default="jet", choices=COLORMAPS)
    s.add_argument("--html", action="store_true",
                   help="also write viewer.html: point at any pixel of the photo to see where "
                        "it looks, for every pairwise layer, in one offline file")
    s.set_defaults(run=run)


def export_one(trace, folder: Path, args) -> list:
    """One analysis -> its folder; ValueError for a query outside the photo."""
    from ..export import Query, export_folder, outside_photo
    from ..records import Pairwise
    for x, y in args.query:
        refusal = outside_photo(x, y, trace.geometry.image_size)
        if refusal:
            raise ValueError(f"query {refusal}")
    layers = [r.key for r in trace if isinstance(r, Pairwise)]
    queries = [Query(key, x, y) for key in layers for x, y in args.query
               if fnmatch.fnmatchcase(key, args.layers)]
    return export_folder(trace, folder, queries, args.cmap, args.layers, args.html)


def run_clips(args, clips: list) -> int:
    """Each clip through visattn.analyze_video -> OUT/<clip name>/: meta.json (model, the
    frames sampled, each space-time layer's grids), frames/*.png as the network saw them,
    and with --html viewer.html (every frame, the row of any position on all of them,
    offline). A clip that cannot be read is said and skipped; exit 1 if any was."""
    import json

    from PIL import Image

    from .. import zoo_video
    from ..hover import viewer_html
    from ..pipeline import analyze_video
    from ..video import VideoError
    from ..names import safe_name
    zoo_video.ensure_cards()
    net = open_from_args(args)  # unknown model, missing weights: said once, before any clip
    out, failures = Path(args.out), []
    for arg in clips:
        try:
            trace = analyze_video(arg, net)
        except (VideoError, ValueError, OSError) as exc:
            failures.append(arg)
            print(f"FAILED {arg}: {_sentence(exc)}", file=sys.stderr)
            continue
        folder = out / safe_name(Path(arg).stem, "clip")
        (folder / "frames").mkdir(parents=True, exist_ok=True)
        for k, rgb in enumerate(trace.clip.frames):
            Image.fromarray(rgb).save(folder / "frames" / f"{k:03d}.png")
        layers = [{"key": r.key, "grid": list(r.grid), "key_grid": list(getattr(r, "key_grid", r.grid)),
                   "heads": int(r.heads)} for r in trace if len(getattr(r, "grid", ())) == 3]
        meta = {"model": trace.model, "clip": Path(arg).name, "frames": len(trace.clip.frames),
                "indices": [int(i) for i in trace.clip.indices], "fps": trace.clip.fps,
                "layers": layers}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1))
        if args.html:
            (folder / "viewer.html").write_text(viewer_html(trace, cmap=args.cmap), encoding="utf-8")
        print(f"ok {arg} -> {folder} ({len(trace.clip.frames)} frames, {len(layers)} space-time layers)")
    print(f"{len(clips) - len(failures)} of {len(clips)} clips analysed; results in {out}")
    return 1 if failures else 0


def run(args) -> int:
    """Photos through a DataLoader, a batched forward, one folder per photo."""
    from tqdm.auto import tqdm

    from .. import distributed
    from ..device import of_module
    from ..folders import batch_length, batches
    from ..ledger import Ledger
    from ..pipeline import analyze_batch
    from ..zoo_video import is_clip_network
    # a clip network reads its inputs as clips (videos, zips of frames), a photo network as
    # photos (an animated GIF's first frame included)
    if is_clip_network(args.model):
        return run_clips(args, list(args.images))
    args.device = distributed.rank_device(args.device)  # torchrun: this process's GPU
    net = open_from_args(args)  # unknown model, missing weights: said once, before any photo
    world = distributed.start(of_module(net.module))
    try:
        return _run(args, net, world, tqdm, batch_length, batches, Ledger, analyze_batch)
    finally:
        world.close()


def _run(args, net, world, tqdm, batch_length, batches, Ledger, analyze_batch) -> int:
    out = Path(args.out)
    images = image_list(args.images)
    folders = out_dirs(images, out)
    order = {image: i for i, image in enumerate(images)}
    in_order = lambda row: order.get(row[0], len(order))  # noqa: E731
    columns = ("image", "folder", "top1", "probability", "error")
    parts = out / PARTS
    if world.main:  # what the processes of an interrupted torchrun run did
        ledger = Ledger(out / ANALYZED, columns)
        for part in sorted(parts.glob("analyzed.*.csv")) if parts.is_dir() else []:
            ledger.append(Ledger(part, columns).rows)
            part.unlink()
        if parts.is_dir():
            parts.rmdir()
    world.barrier()
    ledger = Ledger(out / ANALYZED, columns)
    done = ledger.done()
    todo = world.share([i for i, image in enumerate(images) if image not in done],
                       batch_length(net.preprocess, args.batch_size))
    mine = ledger if world.size == 1 else Ledger(parts / f"analyzed.{world.rank}.csv", columns)
    if world.size > 1:
        mine.keep_first(0)
    bar = tqdm(total=len(images), initial=len(images) - len(todo) * world.size, unit="image",
               desc=f"analysing with {net.name}", disable=args.quiet or not world.main)
    failures = []
    for batch in batches([images[i] for i in todo], net.preprocess, args.batch_size,
                         args.workers, keep_rgb=True):
        rows = [[images[todo[it.index]], "", "", "", it.error] for it in batch.failed]
        rows += _analyse_batch(batch, net, images, folders, todo, args, analyze_batch, tqdm)
        for row in rows:
            if row[-1]:
                failures.append(row)
                tqdm.write(f"FAILED {row[0]}: {row[-1]}", file=sys.stderr)
        mine.append(rows)
        bar.update(len(rows) * world.size)
    bar.close()
    if world.size > 1:
        everyone = [r for rows in world.gather(mine.rows) for r in rows]
        failures = [r for r in everyone if r[-1]]
        if world.main:
            ledger.append(everyone)
            for f in parts.iterdir():
                f.unlink()
            parts.rmdir()
        world.barrier()
    if world.main:
        ledger.reorder(in_order)
    else:
        return 1 if failures else 0
    print(f"{len(images) - len(failures)} of {len(images)} images analysed; results in {out}")
    if failures:
        print(f"{len(failures)} failed: " + ", ".join(row[0] for row in failures[:20])
              + (" ..." if len(failures) > 20 else ""), file=sys.stderr)
    return 1 if failures else 0


def _analyse_batch(batch, net, images, folders, todo, args, analyze_batch, tqdm) -> list[list]:
    """Ledger rows of one batch: a forward that fails fails its photos, an export that
    fails fails its photo; the run goes on either way."""
    if batch.x is None:
        return []
    try:
        traces = analyze_batch(batch.x, [it.rgb for it in batch.items],
                               [it.geometry for it in batch.items], net)
    except Exception as exc:  # noqa: BLE001 (one bad batch never ends the run; said per photo)
        return [[images[todo[it.index]], "", "", "", _sentence(exc)] for it in batch.items]
    rows = []
    for it, trace in zip(batch.items, traces):
        image, folder = images[todo[it.index]], folders[todo[it.index]]
        try:
            written = export_one(trace, folder, args)
        except Exception as exc:  # noqa: BLE001 (said with the photo's name, the run goes on)
            rows.append([image, "", "", "", _sentence(exc)])
            continue
        top = trace.prediction.top(1) if trace.prediction else []
        rows.append([image, folder, *(top[0] if top else ("", "")), ""])
        guess = f", {top[0][0]} ({top[0][1]:.0%})" if top else ""
        tqdm.write(f"ok {image} -> {folder} ({len(written)} files{guess})")
    return rows


def _sentence(exc: Exception) -> str:
    text = " ".join(str(exc).split())[:200]
    return text if isinstance(exc, (OSError, ValueError)) else f"{type(exc).__name__}: {text}"
