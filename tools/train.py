"""Train VisAttn's own tiny attention ResNets on generated scenes (CPU, fixed seeds, resumable).

    python tools/train.py --attention cbam            # one model
    python tools/train.py --attention all             # every attention kind in turn
    python tools/train.py --attention se --assets /tmp/assets --out /tmp/train

Writes <assets>/weights/tiny_<attention>.safetensors (fp16) and its entry in
<assets>/weights/manifest.json (--assets, default ./assets: run from the checkout's root to
update the bundled networks): architecture, seeds, data sizes, epochs, held-out accuracy
(measured with the shipped fp16 weights), normalisation, the command and code revision.
Checkpoints after every epoch go to <out>/<attention>/last.pt (--out, default
./out/train); rerunning the same command resumes from there.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python tools/train.py`: the checkout's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tools.training import (cached, fit, normalised, ship, training_arguments,  # noqa: E402
                            write_manifest_entry)
from visattn import scenes  # noqa: E402
from visattn.models.tiny_resnet import ATTENTIONS, tiny_resnet  # noqa: E402


def dataset(seed: int, n: int, cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scenes for a dataset seed, generated once and kept as an .npz beside the checkpoints:
    images, masks, labels."""
    def make():
        images, masks, labels = scenes.make_batch(seed, n)
        return {"images": images, "masks": masks, "labels": labels}
    z = cached(cache / f"scenes-{seed}-{n}.npz", make)
    return z["images"], z["masks"], z["labels"]


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    model.eval()
    hits = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
               for i in range(0, len(x), batch))
    return hits / len(x)


def flipped_loss(model: torch.nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (label smoothing 0.05) on the batch, half of it flipped left-right."""
    flip = torch.rand(len(xb)) < 0.5
    xb[flip] = xb[flip].flip(3)
    return F.cross_entropy(model(xb), yb, label_smoothing=0.05)


def train_one(attention: str, args) -> dict:
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    images, _, labels = dataset(args.data_seed, args.train_size, Path(args.out))
    val_images, _, val_labels = dataset(args.val_seed, args.val_size, Path(args.out))
    mean, std, x, vx = normalised(images, val_images)
    y, vy = torch.from_numpy(labels), torch.from_numpy(val_labels)
    model = tiny_resnet(attention, len(scenes.CLASSES))
    fit(attention, model, x, y, args, flipped_loss,
        lambda m: f"held-out acc {accuracy(m, vx, vy):.3f}")
    return ship(f"tiny_{attention}", model, tiny_resnet(attention, len(scenes.CLASSES)), mean, std,
                args, scores=accuracy, val=(vx, vy), classes=scenes.CLASSES, size=scenes.SIZE,
                fields={"architecture": f"models.tiny_resnet.tiny_resnet({attention!r})",
                        "attention": attention},
                command=("train.py", f"--attention {attention}"),
                trained_on="generated scenes (visattn.scenes), CPU", write=write_manifest_entry)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python tools/train.py", description=__doc__.splitlines()[0])
    p.add_argument("--attention", required=True, help=f"one of {ATTENTIONS}, or 'all'")
    training_arguments(p, epochs=12, train_size=12000, val_size=2000, batch=128)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for kind in ATTENTIONS if args.attention == "all" else [args.attention]:
        train_one(kind, args)


if __name__ == "__main__":
    main()
