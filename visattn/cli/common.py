"""What every command shares: the user's mistakes as one sentence, argument types, the
download bar, and opening the network a command runs (through visattn.open_network)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from ..opener import Network, open_network
from ..weights import WeightsError


class UserError(Exception):
    """A mistake or a missing piece the user can fix: printed as one sentence, no traceback."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class ProgressBar:
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


# ----- argument types ---------------------------------------------------------------------
def query(text: str) -> tuple[int, int]:
    try:
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a query is X,Y in photo pixels, e.g. 120,80 "
                                         f"(got {text[:40]!r})") from None
    if x < 0 or y < 0:
        raise argparse.ArgumentTypeError(f"a query pixel cannot be negative (got {x},{y})")
    return x, y


def numbers(text: str, count: Sequence[int], cast=float) -> tuple:
    try:
        values = tuple(cast(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) not in count:
        raise argparse.ArgumentTypeError(f"expected {' or '.join(map(str, count))} numbers "
                                         f"separated by commas (got {text[:40]!r})")
    return values


def pair(text: str) -> tuple[int, int]:
    """'224' or '224,320' (H, W)."""
    values = numbers(text, (1, 2), int)
    return (values[0], values[-1])


def triple(text: str) -> tuple[float, float, float]:
    return numbers(text, (3,))


def at_least(low: int):
    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {low} "
                                             f"(got {text[:20]!r})")
        return value
    return whole


# ----- the network a command runs ---------------------------------------------------------
def preprocess_flags(args) -> dict:
    """Preprocess fields given on the command line (the rest stay the network's own)."""
    flags = dict(size=args.input_size, mode=args.resize, crop_pct=args.crop_pct,
                 interpolation=args.interpolation, mean=args.mean, std=args.std)
    return {k: v for k, v in flags.items() if v is not None}


def open_from_args(args) -> Network:
    """--model (a zoo name or package.module:function) with --weights / --random, --device,
    the input flags and --labels, through visattn.open_network; every failure a UserError
    that says what to do."""
    from ..device import DeviceError
    from ..device import resolve as resolve_device
    from ..usermodel import is_factory_spec, read_labels
    mine = is_factory_spec(args.model)
    if mine and args.weights is None and not args.random:
        raise UserError(f"give the weights of {args.model} with --weights FILE (safetensors "
                        "or a torch state dict), or --random for random weights.", 2)
    if not mine and args.weights is not None:
        raise UserError("--weights goes with --model package.module:function; a zoo "
                        "network loads its own published weights.", 2)
    try:
        labels = read_labels(args.labels) if getattr(args, "labels", None) else None
        device = resolve_device(args.device)  # cuda when available, for your network too
        return open_network(args.model, weights=None if args.random else args.weights,
                            pretrained=not args.random, device=device,
                            preprocess=preprocess_flags(args), labels=labels)
    except KeyError:
        raise UserError(f"unknown model {args.model!r}; `python -m visattn list-models` lists "
                        "the networks.", 2) from None
    except DeviceError as exc:
        raise UserError(str(exc), 2) from None
    except WeightsError as exc:
        if mine:
            raise
        raise UserError(f"{exc} Or add --random to run the architecture with random "
                        "weights.") from None
    except (ValueError, OSError) as exc:
        raise UserError(str(exc), 2) from None


def add_network_options(parser: argparse.ArgumentParser) -> None:
    """--model, --weights, --random, --device and the input flags."""
    parser.add_argument("--model", required=True,
                        help="network name (see list-models), or your own network's factory "
                             "as package.module:function (with --weights)")
    parser.add_argument("--weights", metavar="FILE",
                        help="weights of your own network: .safetensors or a torch state dict "
                             "(read with weights_only=True), loaded strictly")
    parser.add_argument("--random", action="store_true",
                        help="random weights (architecture only, no download)")
    parser.add_argument("--device", metavar="DEVICE",
                        help="cpu, cuda, cuda:1, mps, ... (default: cuda when available, else cpu)")
    pre = parser.add_argument_group(
        "input", "how a photo becomes the network's input; default: the card's, or for your "
                 "own network its pretrained_cfg dict (timm's keys), else ImageNet 224 px")
    pre.add_argument("--input-size", type=pair, metavar="H[,W]", help="input size in pixels")
    pre.add_argument("--resize", choices=["crop", "keep_ratio"],
                     help="crop: short side to size / crop-pct, centre crop (timm); keep_ratio: "
                          "short side to H, long side at most W (mmsegmentation)")
    pre.add_argument("--crop-pct", type=float, metavar="F")
    pre.add_argument("--interpolation", choices=["bilinear", "bicubic", "nearest"])
    pre.add_argument("--mean", type=triple, metavar="R,G,B", help="RGB mean in 0..1")
    pre.add_argument("--std", type=triple, metavar="R,G,B", help="RGB std in 0..1")


# ----- photos in, folders out -------------------------------------------------------------
def image_list(paths: Sequence[str]) -> list[str]:
    """The photos named, a folder standing for every image under it (sorted)."""
    from ..folders import image_files
    out: list[str] = []
    for p in paths:
        out += [str(f) for f in image_files(Path(p))] if Path(p).is_dir() else [p]
    return out


def out_dirs(images: Sequence[str], out: Path) -> list[Path]:
    """One output folder per image, named after it and always inside `out`: a name made
    safe from any file name ('..', absolute paths, odd characters), repeats numbered."""
    from ..names import folder_names
    return [out / name for name in folder_names(images)]
