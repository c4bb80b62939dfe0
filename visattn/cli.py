"""Command line: python -m visattn COMMAND ...

    python -m visattn analyze photos/*.jpg --model cbam_resnet50 --out results/
    python -m visattn analyze photo.jpg --model my_package.my_module:build_model \
        --weights my.safetensors --out results/      your own network (also stats, ablate)
    python -m visattn list-models           what is available and whether it is cached
    python -m visattn download NAME ...     fetch pretrained weights for later offline use
    python -m visattn download --all
    python -m visattn bench [-- --quick]    speed and memory (bench/performance.py)
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

from . import usermodel, weights, zoo
from .preprocess import Preprocess


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


def _network(name: str, pretrained: bool):
    """The shared model; missing weights become a UserError with what to do."""
    try:
        return zoo.load(name, pretrained=pretrained)
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
    return Network(module, module, pre, labels, None, not args.random)


def _open(args) -> Network:
    """The network a command runs: a zoo name, or a user's factory and weights file."""
    if usermodel.is_factory_spec(args.model):
        return _user_network(args)
    card = _card(args.model)
    if args.weights is not None:
        raise UserError("--weights goes with --model package.module:function; a zoo "
                        "network loads its own published weights.", 2)
    module = _network(args.model, not args.random)
    pre = dataclasses.replace(card.preprocess, **_preprocess_flags(args))
    labels = usermodel.labels_of(module, args.labels) if args.labels else card.class_names
    return Network(args.model, module, pre, labels, card.task, not args.random)


def _out_dirs(images: Sequence[str], out: Path) -> list[Path]:
    """One output folder per image, named after it; repeated names get a number."""
    seen: dict[str, int] = {}
    dirs = []
    for image in images:
        stem = Path(image).stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        dirs.append(out / (stem if seen[stem] == 1 else f"{stem}_{seen[stem]}"))
    return dirs


def cmd_analyze(args) -> int:
    from tqdm.auto import tqdm

    from .export import Query, export_folder
    from .image import ImageError
    from .pipeline import analyze
    from .records import Pairwise
    net = _open(args)  # unknown model, missing weights: said once, before any photo
    out = Path(args.out)
    failed = 0
    images = list(args.images)
    bar = tqdm(images, desc=f"analysing with {args.model}", unit="image", disable=args.quiet)
    for image, folder in zip(bar, _out_dirs(images, out)):
        try:
            trace = analyze(image, net.model, pretrained=net.pretrained,
                            preprocess=net.preprocess, labels=net.labels)
            outside = _outside(args.query, trace.geometry.image_size)
            if outside:
                w, h = trace.geometry.image_size
                raise ValueError(f"query {outside[0][0]},{outside[0][1]} is outside the "
                                 f"{w}x{h} photo (x from 0 to {w - 1}, y from 0 to {h - 1})")
            layers = [r.key for r in trace if isinstance(r, Pairwise)]
            queries = [Query(key, x, y) for key in layers for x, y in args.query
                       if fnmatch.fnmatchcase(key, args.layers)]
            written = export_folder(trace, folder, queries, args.cmap, args.layers, args.html)
        except (ImageError, weights.WeightsError, OSError, ValueError) as exc:
            failed += 1
            tqdm.write(f"FAILED {image}: {exc}", file=sys.stderr)
            continue
        top = trace.prediction.top(1) if trace.prediction else []
        guess = f", {top[0][0]} ({top[0][1]:.0%})" if top else ""
        tqdm.write(f"ok {image} -> {folder} ({len(written)} files{guess})")
    print(f"{len(images) - failed} of {len(images)} images analysed; results in {out}")
    return 1 if failed else 0


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def cmd_stats(args) -> int:
    from tqdm.auto import tqdm

    from . import render
    from .excitation import ExcitationStats
    from .image import ImageError
    from .pipeline import analyze
    net = _open(args)
    if not Path(args.folder).is_dir():
        raise UserError(f"{args.folder} is not a folder; give a folder of images.", 2)
    files = sorted(p for p in Path(args.folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if args.limit:
        files = files[:args.limit]
    if not files:
        raise UserError(f"no images (JPEG, PNG, ...) in {args.folder}", 2)
    stats = ExcitationStats(labels=list(net.labels))
    failed = 0
    for path in tqdm(files, desc="excitation statistics", unit="image", disable=args.quiet):
        try:
            stats.add(analyze(path, net.model, pretrained=net.pretrained,
                              preprocess=net.preprocess, labels=net.labels))
        except ImageError as exc:
            failed += 1
            tqdm.write(f"skipped {path}: {exc}", file=sys.stderr)
    if not stats.blocks():
        print(f"{args.model} has no channel gates to gather statistics of", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "excitation.csv").write_text(stats.to_csv())
    from PIL import Image
    Image.fromarray(render.divergence_plot(stats)).save(out / "divergence.png")
    for key in stats.blocks():
        print(f"{key:40s} stage {stats.stages[key]}  class divergence {stats.divergence(key):.3f}")
    print(f"{stats.images} images ({failed} skipped); wrote {out / 'excitation.csv'} and "
          f"{out / 'divergence.png'}")
    return 0


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
        prog="python -m visattn",
        description="VisAttn: see what the attention modules inside CNNs do.")
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
    network.add_argument("--labels", metavar="FILE", help="class names, one per line")
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
    s = sub.add_parser(
        "analyze", parents=[network, batch], help="capture every attention map of a network on photos and save them",
        description="Run a network on each photo and write, per photo, a folder with every "
                    "captured map as PNG (overlays/), the raw arrays (arrays.npz) and a JSON "
                    "of model, preprocessing, layers and queries (meta.json). A photo that "
                    "cannot be read is reported and skipped; the exit status is 1 if any was.")
    s.add_argument("images", nargs="+", metavar="IMAGE", help="photo files (JPEG, PNG, ...)")
    s.add_argument("--layers", default="*", metavar="PATTERN",
                   help="only records whose key matches this shell pattern, e.g. '*spatial*' "
                        "or 'layer4.*' (default: all)")
    s.add_argument("--query", type=_query, action="append", default=[], metavar="X,Y",
                   help="a photo pixel whose attention row to save for every pairwise layer "
                        "(Non-local, BoTNet, CCNet, DANet); repeatable")
    s.add_argument("--cmap", default="jet", choices=["jet", "viridis", "inferno", "turbo"])
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
        description="Run a network over every image in a folder (one at a time: memory does "
                    "not grow) and write the mean and spread of every channel gate per block "
                    "and predicted class (excitation.csv), and the class divergence per block, "
                    "which shows where gates become class-specific (divergence.png).")
    s.add_argument("folder", help="a folder of images (searched recursively)")
    s.add_argument("--limit", type=int, default=0, help="use at most this many images")
    s.set_defaults(run=cmd_stats)
    s = sub.add_parser(
        "ablate", parents=[network], help="switch attention off stage by stage and see the prediction change",
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
