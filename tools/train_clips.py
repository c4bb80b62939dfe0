"""Train the moving-clip labeller with its space-time Non-local block (`tiny_nl_clips`) and
without it (the control, `tiny_none_clips`) on CPU, fixed seeds, resumable.

    python tools/train_clips.py                        # both, one after the other
    python tools/train_clips.py --model tiny_nl_clips
    python tools/train_clips.py --rows-only            # re-measure the shipped rows

Per-pixel labels: background, or the class of the object (visattn.scenes.moving_clip): an
object that comes back in a later frame wears its class's tag only the first time, so its
untagged pixels can be labelled only by matching them to the tagged appearance. Writes <assets>/weights/<name>.safetensors (fp16),
<assets>/labels/clips.txt and clips_palette.txt, and an entry of
<assets>/weights/clips.json (the clip networks' manifest: same fields as manifest.json's)
whose accuracies (all pixels; the class on untagged object pixels, the part that needs
other frames, chance 1/3; on tagged object pixels) are measured on held-out clips with the fp16 weights actually shipped. Checkpoints
go to <out>/<name>/last.pt; rerunning the same command resumes.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python tools/train_clips.py`: the checkout's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tools.training import (cached, fit, labeller_main, load_half, ship,  # noqa: E402
                            weights_dir)
from visattn import scenes  # noqa: E402
from visattn.models.tiny_clips import tiny_clip_net  # noqa: E402

MODELS = {"tiny_nl_clips": True, "tiny_none_clips": False}  # name -> has the Non-local block
CLASS_WEIGHTS = (0.25, 1.0, 1.0, 1.0)  # background pixels are ~92 % of a clip and easy
UNTAGGED_WEIGHT = 4.0  # the pixels whose class only another frame shows
CLIPS_MANIFEST = "clips.json"  # beside manifest.json


def clip_tensor(frames: np.ndarray, mean, std) -> torch.Tensor:
    """(n, T, h, w, 3) uint8 -> (n, 3, T, h, w) normalised."""
    x = torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float().div_(255.0)
    return (x - torch.tensor(mean).view(1, 3, 1, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1, 1)


def dataset(seed: int, n: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Clips of a dataset seed, generated once and kept beside the checkpoints: frames
    (n, T, 64, 64, 3) uint8, labels (n, T, 64, 64) int64 with the untagged pixels' labels
    offset by 10 (so one array carries both; `split` takes them apart)."""
    def make():
        frames, _, labels, untagged = scenes.make_clip_batch(seed, n)
        return {"frames": frames, "labels": labels + 10 * untagged}
    z = cached(cache / f"tagged-clips-{seed}-{n}.npz", make)
    return z["frames"], z["labels"]


def split(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels, untagged) from `dataset`'s combined labels."""
    return y % 10, y >= 10


@torch.no_grad()
def pixel_scores(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor,
                 batch: int = 50) -> dict:
    """Accuracy over all pixels (4 labels), and the class (the largest of the three class
    logits) on untagged object pixels (chance 1/3) and on tagged ones."""
    model.eval()
    hits, got, n = 0, {True: 0, False: 0}, {True: 0, False: 0}
    for i in range(0, len(x), batch):
        logits = model(x[i:i + batch])
        y, untagged = split(labels[i:i + batch])
        hits += int((logits.argmax(1) == y).sum())
        cls = logits[:, 1:].argmax(1) + 1
        for hidden in (True, False):
            on = (y > 0) & (untagged == hidden)
            got[hidden] += int((cls[on] == y[on]).sum())
            n[hidden] += int(on.sum())
    return {"pixel_accuracy": hits / labels.numel(), "untagged_accuracy": got[True] / n[True],
            "tagged_accuracy": got[False] / n[False]}


def weighted_loss(model, xb, yb):
    y, untagged = split(yb)
    per_pixel = F.cross_entropy(model(xb), y, reduction="none")
    weight = torch.tensor(CLASS_WEIGHTS)[y] * torch.where(untagged, UNTAGGED_WEIGHT, 1.0)
    return (per_pixel * weight).sum() / weight.sum()


def read_clips_manifest(args) -> dict:
    path = weights_dir(args) / CLIPS_MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def write_clips_entry(entry: dict, args) -> None:
    manifest = read_clips_manifest(args)
    manifest[entry["name"]] = entry
    path = weights_dir(args) / CLIPS_MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")


def train(name: str, args) -> dict:
    torch.manual_seed(args.seed)
    frames, labels = dataset(args.data_seed, args.train_size, Path(args.out))
    val_frames, val_labels = dataset(args.val_seed, args.val_size, Path(args.out))
    flat = frames.reshape(-1, 3)
    mean = (flat.mean(0) / 255.0).astype(np.float32)
    std = (flat.std(0) / 255.0).astype(np.float32)
    x, vx = clip_tensor(frames, mean, std), clip_tensor(val_frames, mean, std)
    y, vy = torch.from_numpy(labels), torch.from_numpy(val_labels)
    model = tiny_clip_net(MODELS[name])

    def report(m):
        s = pixel_scores(m, vx[:200], vy[:200])
        return (f"pixels {s['pixel_accuracy']:.3f}  untagged {s['untagged_accuracy']:.3f}  "
                f"tagged {s['tagged_accuracy']:.3f}")
    seconds = fit(name, model, x, y, args, weighted_loss, report)
    return ship(name, model, tiny_clip_net(MODELS[name]), mean, std, args, scores=pixel_scores,
                val=(vx, vy), classes=scenes.CLIP_LABELS, size=scenes.SIZE,
                fields={"task": "segment_clip",
                        "architecture": f"models.tiny_clips.tiny_clip_net(non_local={MODELS[name]})",
                        "attention": "nl" if MODELS[name] else "none",
                        "frames": scenes.CLIP_FRAMES, "data": "visattn.scenes.make_clip_batch",
                        "class_weights": list(CLASS_WEIGHTS),
                        "train_cpu_seconds": round(seconds), "threads": args.threads},
                command=("train_clips.py", f"--model {name}"),
                trained_on="generated moving clips (visattn.scenes.moving_clip), CPU",
                write=write_clips_entry)


def measure_rows(name: str, entry: dict, n: int, args) -> dict:
    """Medians of the cross-frame row scores (visattn.clip_metrics) of a network on the
    first n held-out clips of its entry, through visattn.analyze_video."""
    from visattn.clip_metrics import clip_rows
    shipped = load_half(tiny_clip_net(MODELS[name]), weights_dir(args) / entry["file"])
    return clip_rows(shipped, entry, n).medians()


def main(argv=None) -> None:
    labeller_main(argv, "train_clips.py", __doc__, MODELS, "clips", 100,
                  dict(epochs=10, train_size=3000, val_size=500, batch=16),
                  ("clips", scenes.CLIP_LABELS, scenes.CLIP_COLOURS), train, read_clips_manifest,
                  write_clips_entry, measure_rows)


if __name__ == "__main__":
    main()
