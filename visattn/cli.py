"""Command line: python -m visattn COMMAND ...

    python -m visattn analyze photos/*.jpg --model cbam_resnet50 --out results/
    python -m visattn analyze photo.jpg --model my_package.my_module:build_model \
        --weights my.safetensors --out results/      your own network (also stats, ablate)
    python -m visattn list-models           what is available and whether it is cached
    python -m visattn download NAME ...     fetch pretrained weights for later offline use
    python -m visattn download --all
    python -m visattn bench [-- --quick]    speed and memory (bench/performance.py)
    visattn stats imagenet/val --model seresnet50 --labels folders --batch-size 64 \
        --workers 8 --device cuda --out senet/      SENet's excitation figure, resumable
    visattn cam photo.jpg --model cbam_resnet50 --out cams/     attention vs Grad-CAM

Installed (pip install .), `visattn` is the same as `python -m visattn`.
"""
from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import torch.nn as nn

from . import render, usermodel, weights, zoo
from .device import DeviceError
from .device import resolve as resolve_device
from .preprocess import Preprocess
from .version import __version__


class _ProgressBar:
    """A tqdm byte counter, opened on the first byte (so failures print no empty bar)."""

    def __init__(self, name: str):
        self.name, self.bar = name, None

    def __call__(self, done: int, total: Optional[int]) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm
            self.bar = tqdm(desc=self.name, total=total, unit="B", unit_scale=True,
                            unit_divisor=1024, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_list_models(args) -> int:
    print(f"{'name':20s} {'family':9s} {'task':9s} {'library':10s} {'weights':9s} {'size':>7s}")
    for card in zoo.cards():
        print(f"{card.name:20s} {card.family:9s} {card.task:9s} {card.source.library:10s} "
              f"{card.availability():9s} {card.download_mb:6.0f}M")
    print(f"\ncache: {weights.cache_dir()} (VISATTN_CACHE), Hub cache: {weights.hub_cache()}")
    return 0


def cmd_download(args) -> int:
    names = [c.name for c in zoo.cards()] if args.all else args.names
    if not names:
        print("name at least one model, or --all (see `python -m visattn list-models`)",
              file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        try:
            card = zoo.get(name)
        except KeyError as exc:
            print(f"{name}: {exc.args[0]}", file=sys.stderr)
            failed += 1
            continue
        if card.weights is None:
            print(f"{name}: no published weights (architecture only); nothing to fetch")
            continue
        was_cached = card.availability() in ("cached", "bundled")
        bar = _ProgressBar(name)
        try:
            path = zoo.fetch_verified(card, bar)
        except weights.WeightsError as exc:
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
            failed += 1
            continue
        finally:
            bar.close()
        size = path.stat().st_size / 1e6
        verb = ("bundled with VisAttn" if card.availability() == "bundled"
                else "already cached" if was_cached else "fetched")
        print(f"{name}: {verb}, {size:.1f} MB, verified -> {path}")
    return 1 if failed else 0


def _query(text: str) -> tuple[int, int]:
    try:
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a query is X,Y in photo pixels, e.g. 120,80 "
                                         f"(got {text[:40]!r})") from None
    if x < 0 or y < 0:
        raise argparse.ArgumentTypeError(f"a query pixel cannot be negative (got {x},{y})")
    return x, y


def _numbers(text: str, count: Sequence[int], cast=float) -> tuple:
    try:
        values = tuple(cast(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) not in count:
        raise argparse.ArgumentTypeError(f"expected {' or '.join(map(str, count))} numbers "
                                         f"separated by commas (got {text[:40]!r})")
    return values


def _pair(text: str) -> tuple[int, int]:
    """'224' or '224,320' (H, W)."""
    values = _numbers(text, (1, 2), int)
    return (values[0], values[-1])


def _positive(text: str) -> int:
    return _at_least(text, 1)


def _count(text: str) -> int:
    return _at_least(text, 0)


def _at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {low} (got {text[:20]!r})")
    return value


def _triple(text: str) -> tuple[float, float, float]:
    return _numbers(text, (3,))


def _outside(queries: Sequence[tuple[int, int]], size: tuple[int, int]) -> list[tuple[int, int]]:
    """The queries that fall outside a photo of `size` (W, H)."""
    return [(x, y) for x, y in queries if not (0 <= x < size[0] and 0 <= y < size[1])]


def _card(name: str) -> zoo.ModelCard:
    """The card, or a UserError naming the known networks."""
    try:
        return zoo.get(name)
    except KeyError:
        raise UserError(f"unknown model {name!r}; `python -m visattn list-models` lists the "
                        "networks.", 2) from None


def _device(args):
    """--device checked against this machine (None: cuda when available, else cpu)."""
    try:
        return resolve_device(args.device)
    except DeviceError as exc:
        raise UserError(str(exc), 2) from None


def _network(name: str, pretrained: bool, device=None):
    """The shared model; missing weights become a UserError with what to do."""
    try:
        return zoo.load(name, pretrained=pretrained, device=device)
    except weights.WeightsError as exc:
        raise UserError(f"{exc} Or add --random to run the architecture with random "
                        "weights.") from None


class UserError(Exception):
    """A mistake or a missing piece the user can fix: printed as one sentence, no traceback."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Network:
    """What a command runs: a zoo card or a user's network, its input and class names."""
    model: Union[str, nn.Module]  # what pipeline.analyze takes: a zoo name keeps the card's notes
    module: nn.Module
    preprocess: Preprocess
    labels: tuple[str, ...]
    task: Optional[str]  # None: a user's network, told by its output
    pretrained: bool = True
    device: Optional[str] = None  # where the module is


def _preprocess_flags(args) -> dict:
    """Preprocess fields given on the command line."""
    flags = dict(size=args.input_size, mode=args.resize, crop_pct=args.crop_pct,
                 interpolation=args.interpolation, mean=args.mean, std=args.std)
    return {k: v for k, v in flags.items() if v is not None}


def _user_network(args) -> Network:
    """package.module:function with --weights FILE (or --random)."""
    if args.weights is None and not args.random:
        raise UserError(f"give the weights of {args.model} with --weights FILE (safetensors "
                        "or a torch state dict), or --random for random weights.", 2)
    try:
        module = usermodel.load_model(args.model, None if args.random else args.weights)
        labels = usermodel.labels_of(module, args.labels)
    except (ValueError, OSError) as exc:
        raise UserError(str(exc), 2) from None
    pre = usermodel.preprocess_of(module, **_preprocess_flags(args))
    device = _device(args)
    return Network(module, module.to(device), pre, labels, None, not args.random, str(device))


def _open(args) -> Network:
    """The network a command runs: a zoo name, or a user's factory and weights file."""
    if usermodel.is_factory_spec(args.model):
        return _user_network(args)
    card = _card(args.model)
    if args.weights is not None:
        raise UserError("--weights goes with --model package.module:function; a zoo "
                        "network loads its own published weights.", 2)
    device = _device(args)
    module = _network(args.model, not args.random, device)
    pre = dataclasses.replace(card.preprocess, **_preprocess_flags(args))
    labels = usermodel.labels_of(module, args.labels) if args.labels else card.class_names
    return Network(args.model, module, pre, labels, card.task, not args.random, str(device))


def _out_dirs(images: Sequence[str], out: Path) -> list[Path]:
    """One output folder per image, named after it; repeated names get a number."""
    seen: dict[str, int] = {}
    dirs = []
    for image in images:
        stem = Path(image).stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        dirs.append(out / (stem if seen[stem] == 1 else f"{stem}_{seen[stem]}"))
    return dirs


def _image_list(paths: Sequence[str]) -> list[str]:
    """The photos named, a folder standing for every image under it (sorted)."""
    from .folders import image_files
    out: list[str] = []
    for p in paths:
        out += [str(f) for f in image_files(Path(p))] if Path(p).is_dir() else [p]
    return out


def _export_one(trace, image: str, folder: Path, args) -> list:
    """One analysis -> its folder (overlays, arrays, meta); ValueError for a query outside."""
    from .export import Query, export_folder
    from .records import Pairwise
    outside = _outside(args.query, trace.geometry.image_size)
    if outside:
        w, h = trace.geometry.image_size
        raise ValueError(f"query {outside[0][0]},{outside[0][1]} is outside the "
                         f"{w}x{h} photo (x from 0 to {w - 1}, y from 0 to {h - 1})")
    layers = [r.key for r in trace if isinstance(r, Pairwise)]
    queries = [Query(key, x, y) for key in layers for x, y in args.query
               if fnmatch.fnmatchcase(key, args.layers)]
    return export_folder(trace, folder, queries, args.cmap, args.layers, args.html)


ANALYZED = "analyzed.csv"  # the analyze run's ledger: what a restart skips


def cmd_analyze(args) -> int:
    """Photos and folders through a DataLoader, a batched forward, one folder per photo;
    resumable (photos listed in analyzed.csv are skipped)."""
    from tqdm.auto import tqdm

    from .folders import batches
    from .ledger import Ledger
    from .pipeline import analyze_batch
    net = _open(args)  # unknown model, missing weights: said once, before any photo
    out = Path(args.out)
    images = _image_list(args.images)
    folders = _out_dirs(images, out)
    ledger = Ledger(out / ANALYZED, ("image", "folder", "top1", "probability", "error"))
    done = ledger.done()
    todo = [i for i, image in enumerate(images) if image not in done]
    bar = tqdm(total=len(images), initial=len(images) - len(todo), unit="image",
               desc=f"analysing with {args.model}", disable=args.quiet)
    failed = 0
    for batch in batches([images[i] for i in todo], net.preprocess, args.batch_size,
                         args.workers, keep_rgb=True):
        rows = [[images[todo[it.index]], "", "", "", it.error] for it in batch.failed]
        traces = [] if batch.x is None else analyze_batch(
            batch.x, [it.rgb for it in batch.items], [it.geometry for it in batch.items],
            net.model, pretrained=net.pretrained, preprocess=net.preprocess, labels=net.labels,
            device=net.device)
        for it, trace in zip(batch.items, traces):
            image, folder = images[todo[it.index]], folders[todo[it.index]]
            try:
                written = _export_one(trace, image, folder, args)
            except (OSError, ValueError) as exc:
                rows.append([image, "", "", "", str(exc)])
                continue
            top = trace.prediction.top(1) if trace.prediction else []
            rows.append([image, folder, *(top[0] if top else ("", "")), ""])
            guess = f", {top[0][0]} ({top[0][1]:.0%})" if top else ""
            tqdm.write(f"ok {image} -> {folder} ({len(written)} files{guess})")
        for row in rows:
            if row[-1]:
                failed += 1
                tqdm.write(f"FAILED {row[0]}: {row[-1]}", file=sys.stderr)
        ledger.append(rows)
        bar.update(len(rows))
    bar.close()
    print(f"{len(images) - failed} of {len(images)} images analysed; results in {out}")
    return 1 if failed else 0


def cmd_stats(args) -> int:
    """Excitation statistics over a folder (folder_stats), the SENet figure and the CSVs."""
    from PIL import Image

    from . import render
    from .folder_stats import COLUMNS, LEDGER, FolderStats, run
    from .ledger import Ledger
    net = _open(args)
    if not Path(args.folder).is_dir():
        raise UserError(f"{args.folder} is not a folder; give a folder of images.", 2)
    out = Path(args.out)
    job = FolderStats(Path(args.folder), out, net.module, args.model, net.preprocess,
                      net.labels, args.label_source, args.batch_size, args.workers,
                      args.limit, args.checkpoint_s, args.quiet)
    try:
        stats = run(job)
    except ValueError as exc:
        raise UserError(str(exc), 2) from None
    if not stats.blocks():
        print(f"{args.model} has no channel gates to gather statistics of", file=sys.stderr)
        return 2
    classes = _chosen_classes(stats, args.classes)
    (out / "excitation.csv").write_text(stats.to_csv())
    (out / "excitation_classes.csv").write_text(stats.figure_csv(classes))
    Image.fromarray(render.divergence_plot(stats)).save(out / "divergence.png")
    Image.fromarray(render.excitation_figure(stats, classes)).save(out / "excitation_classes.png")
    for key in stats.blocks():
        print(f"{key:40s} stage {stats.stages[key]}  class divergence {stats.divergence(key):.3f}")
    skipped = len(Ledger(out / LEDGER, COLUMNS).failed())
    print(f"{stats.images} images ({skipped} skipped); wrote excitation.csv, "
          f"excitation_classes.csv, excitation_classes.png and divergence.png in {out}")
    return 0


def _chosen_classes(stats, text: Optional[str]) -> list[int]:
    """--classes a,b,c (names or numbers) as class indices; default the 4 most frequent."""
    if not text:
        return stats.frequent_classes(4)
    chosen = []
    for part in (s.strip() for s in text.split(",")):
        if part.isdigit():
            chosen.append(int(part))
        elif part in stats.labels:
            chosen.append(list(stats.labels).index(part))
        else:
            raise UserError(f"--classes: no class {part!r} (a class name or number)", 2)
    return chosen


def cmd_cam(args) -> int:
    """Each record's map against Grad-CAM at its block: agreement.json and the picture."""
    from .image import ImageError
    from .pipeline import analyze
    net = _open(args)
    if net.task not in ("classify", None):
        raise UserError("Grad-CAM explains a class score: choose a classifier.", 2)
    images = _image_list(args.images)
    failed = 0
    for image, folder in zip(images, _out_dirs(images, Path(args.out))):
        try:
            trace = analyze(image, net.model, pretrained=net.pretrained, preprocess=net.preprocess,
                            labels=net.labels, device=net.device)
            _write_cams(trace, net.module, folder, args)
        except (ImageError, OSError, ValueError) as exc:
            failed += 1
            print(f"FAILED {image}: {exc}", file=sys.stderr)
    print(f"{len(images) - failed} of {len(images)} images compared; results in {args.out}")
    return 1 if failed else 0


def _write_cams(trace, module: nn.Module, folder: Path, args) -> None:
    """agreement.json and attention_vs_gradcam.png per matching record, in folder/<record>."""
    import json

    from PIL import Image

    from . import render
    from .export import safe_name
    from .gradcam import comparable, compare
    records = [r for r in comparable(trace) if fnmatch.fnmatchcase(r.key, args.record)]
    if not records:
        raise ValueError(f"no spatial map or pairwise layer matches {args.record!r}")
    for rec in records:
        found = compare(trace, module, rec.key, args.top / 100.0)
        where = folder / safe_name(rec.key)
        where.mkdir(parents=True, exist_ok=True)
        (where / "agreement.json").write_text(json.dumps(found.report(trace.model), indent=2))
        left, right = (render.map_on_image(trace, m, 384, args.alpha, args.cmap, enlarge=True)
                       for m in (found.attention, found.cam))
        Image.fromarray(render.side_by_side(left, right)).save(where / "attention_vs_gradcam.png")
        s = found.scores
        print(f"{rec.key}: rank correlation {s['spearman']:.3f}, IoU of the top "
              f"{args.top:g} % {s['top_iou']:.3f} -> {where}")


def cmd_ablate(args) -> int:
    from .ablation import stage_ablation
    from .image import ImageError, load_image
    net = _open(args)
    if net.task not in ("classify", None):
        print("switching attention off compares class predictions: choose a classifier",
              file=sys.stderr)
        return 2
    try:
        rgb = load_image(args.image)
    except ImageError as exc:
        print(f"{args.image}: {exc}", file=sys.stderr)
        return 1
    try:
        rows = stage_ablation(net.module, rgb, net.preprocess, net.labels)
    except ValueError as exc:
        raise UserError(str(exc), 2) from None
    print(f"{'attention off':16s} {'modules':>7s}  {'top-1':38s} {'same?':6s} {'p(original top-1)':>18s}")
    for row in rows:
        what = "none (baseline)" if row.stage == 0 else \
            ("every stage" if row.stage is None else f"stage {row.stage}")
        label, p = row.top[0]
        print(f"{what:16s} {row.switched:7d}  {label[:30]:30s} {p:6.1%} {'yes' if row.same_top1 else 'NO':6s} "
              f"{row.baseline_prob_of_top1:18.1%}")
    for sentence in rows[-1].left_on:  # every stage: each module left on, once
        print(f"note: {sentence}", file=sys.stderr)
    return 0


def cmd_bench(args) -> int:
    """Run the repository's benchmark script (bench/performance.py) with the given options."""
    import subprocess
    script = Path(__file__).resolve().parent.parent / "bench" / "performance.py"
    if not script.is_file():
        print(f"the benchmarks live in the repository's bench/ folder; {script} is missing",
              file=sys.stderr)
        return 2
    options = args.options[1:] if args.options[:1] == ["--"] else args.options
    return subprocess.run([sys.executable, str(script), *options]).returncode


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="visattn",
        description="VisAttn: see what the attention modules inside CNNs do.")
    p.add_argument("--version", action="version", version=f"visattn {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    network = argparse.ArgumentParser(add_help=False)  # options of every command that runs one
    network.add_argument("--model", required=True,
                         help="network name (see list-models), or your own network's factory "
                              "as package.module:function (with --weights)")
    network.add_argument("--weights", metavar="FILE",
                         help="weights of your own network: .safetensors or a torch state dict "
                              "(read with weights_only=True), loaded strictly")
    network.add_argument("--random", action="store_true",
                         help="random weights (architecture only, no download)")
    network.add_argument("--device", metavar="DEVICE",
                         help="cpu, cuda, cuda:1, mps, ... (default: cuda when available, else cpu)")
    pre = network.add_argument_group(
        "input", "how a photo becomes the network's input; default: the card's, or for your "
                 "own network its pretrained_cfg dict (timm's keys), else ImageNet 224 px")
    pre.add_argument("--input-size", type=_pair, metavar="H[,W]", help="input size in pixels")
    pre.add_argument("--resize", choices=["crop", "keep_ratio"],
                     help="crop: short side to size / crop-pct, centre crop (timm); keep_ratio: "
                          "short side to H, long side at most W (mmsegmentation)")
    pre.add_argument("--crop-pct", type=float, metavar="F")
    pre.add_argument("--interpolation", choices=["bilinear", "bicubic", "nearest"])
    pre.add_argument("--mean", type=_triple, metavar="R,G,B", help="RGB mean in 0..1")
    pre.add_argument("--std", type=_triple, metavar="R,G,B", help="RGB std in 0..1")
    batch = argparse.ArgumentParser(add_help=False)  # ... over many images, into a folder
    batch.add_argument("--out", required=True, metavar="DIR", help="folder for the results")
    batch.add_argument("--quiet", action="store_true", help="no progress bar")
    batch.add_argument("--batch-size", type=_positive, default=32, metavar="N",
                       help="images per forward (default 32)")
    batch.add_argument("--workers", type=_count, default=0, metavar="N",
                       help="DataLoader worker processes that decode and prepare images "
                            "(default 0: in the main process)")
    names = argparse.ArgumentParser(add_help=False)  # class names of the network's outputs
    names.add_argument("--labels", "--class-names", dest="labels", metavar="FILE",
                       help="class names, one per line")
    s = sub.add_parser(
        "analyze", parents=[network, names, batch], help="capture every attention map of a network on photos and save them",
        description="Run a network on each photo and write, per photo, a folder with every "
                    "captured map as PNG (overlays/), the raw arrays (arrays.npz) and a JSON "
                    "of model, preprocessing, layers and queries (meta.json). A photo that "
                    "cannot be read is reported and skipped; the exit status is 1 if any was.")
    s.add_argument("images", nargs="+", metavar="IMAGE",
                   help="photo files (JPEG, PNG, ...) or folders of them; photos listed in "
                        "OUT/analyzed.csv by an earlier run are skipped")
    s.add_argument("--layers", default="*", metavar="PATTERN",
                   help="only records whose key matches this shell pattern, e.g. '*spatial*' "
                        "or 'layer4.*' (default: all)")
    s.add_argument("--query", type=_query, action="append", default=[], metavar="X,Y",
                   help="a photo pixel whose attention row to save for every pairwise layer "
                        "(Non-local, BoTNet, CCNet, DANet); repeatable")
    s.add_argument("--cmap", default="jet", choices=render.COLORMAPS)
    s.add_argument("--html", action="store_true",
                   help="also write viewer.html: point at any pixel of the photo to see where "
                        "it looks, for every pairwise layer, in one offline file")
    s.set_defaults(run=cmd_analyze)
    s = sub.add_parser("list-models", help="list the networks, their weights and sizes")
    s.set_defaults(run=cmd_list_models)
    s = sub.add_parser(
        "download", help="fetch and verify pretrained weights for later offline use",
        description="Download each model's published weights into the cache "
                    "(VISATTN_CACHE, or the Hugging Face cache for Hub files), verify their "
                    "hash, and say where they are.")
    s.add_argument("names", nargs="*", metavar="NAME", help="model names (see list-models)")
    s.add_argument("--all", action="store_true", help="every model of the zoo")
    s.set_defaults(run=cmd_download)
    s = sub.add_parser(
        "stats", parents=[network, batch], help="excitation statistics of the channel gates over a folder of images",
        description="Run a network over every image in a folder in batches (a DataLoader; "
                    "memory does not grow) and write the mean and spread of every channel "
                    "gate per block and class (excitation.csv), SENet's figure: per stage, the "
                    "mean gate of every channel for chosen classes (excitation_classes.png, "
                    ".csv), and the class divergence per block (divergence.png). Images done "
                    "are listed in images.csv; rerun the same command to resume.")
    s.add_argument("folder", help="a folder of images (searched recursively)")
    s.add_argument("--labels", dest="label_source", choices=["folders", "predicted"],
                   default="predicted",
                   help="each image's class: its first-level subfolder (ImageFolder layout) or "
                        "the network's prediction (default)")
    s.add_argument("--class-names", dest="labels", metavar="FILE",
                   help="names of the network's classes, one per line")
    s.add_argument("--classes", metavar="A,B,...",
                   help="classes drawn in excitation_classes.png (names or numbers; default: "
                        "the 4 with most images)")
    s.add_argument("--limit", type=int, default=0, help="use at most this many images")
    s.add_argument("--checkpoint-s", type=float, default=60.0, metavar="S",
                   help="save the running sums every S seconds (a restart resumes there)")
    s.set_defaults(run=cmd_stats)
    s = sub.add_parser(
        "cam", parents=[network, names], help="attention maps against Grad-CAM of the predicted class",
        description="For each photo and each spatial map or pairwise layer (its mean row), "
                    "Grad-CAM (pytorch-grad-cam) of the predicted class at the block holding "
                    "the attention module, the rank correlation and top-pixel IoU of the two "
                    "(agreement.json, as the app exports it) and both maps on the photo side "
                    "by side (attention_vs_gradcam.png), in OUT/<photo>/<record>/.")
    s.add_argument("images", nargs="+", metavar="IMAGE", help="photo files or folders of them")
    s.add_argument("--out", required=True, metavar="DIR", help="folder for the results")
    s.add_argument("--record", default="*", metavar="PATTERN",
                   help="records whose key matches this shell pattern (default: all)")
    s.add_argument("--top", type=float, default=20.0, metavar="PCT",
                   help="the IoU compares the top PCT %% of pixels (default 20)")
    s.add_argument("--alpha", type=float, default=0.6, help="map opacity in the picture")
    s.add_argument("--cmap", default="jet", choices=render.COLORMAPS)
    s.set_defaults(run=cmd_cam)
    s = sub.add_parser(
        "ablate", parents=[network, names], help="switch attention off stage by stage and see the prediction change",
        description="Set every attention module of one stage to neutral (gates = 1, BAM's = 0, "
                    "Non-local branches off) with hooks, stage by stage and everywhere, and "
                    "print how the top-1 prediction changes. The network itself is not changed.")
    s.add_argument("image", help="a photo")
    s.set_defaults(run=cmd_ablate)
    s = sub.add_parser(
        "bench", help="measure speed and memory against a plain forward (bench/performance.py)",
        description="Hook overhead, full analysis, click cost, Grad-CAM comparison, memory and "
                    "command-line throughput, as ratios measured side by side. Options after "
                    "'--' go to the script, e.g. python -m visattn bench -- --quick")
    s.add_argument("options", nargs=argparse.REMAINDER, help="options for bench/performance.py")
    s.set_defaults(run=cmd_bench)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a command; user errors print one sentence and give a non-zero exit status."""
    from .image import ImageError
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except (weights.WeightsError, ImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
