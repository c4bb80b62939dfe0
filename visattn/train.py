"""Train VisAttn's own tiny attention ResNets on generated scenes (CPU, fixed seeds, resumable).

    python -m visattn.train --attention cbam            # one model
    python -m visattn.train --attention all             # every attention kind in turn

Writes assets/weights/tiny_<attention>.safetensors (fp16) and its entry in
assets/weights/manifest.json: architecture, seeds, data sizes, epochs, held-out accuracy
(measured with the shipped fp16 weights), normalisation, the command and code revision.
Checkpoints after every epoch go to out/train/<attention>/last.pt; rerunning the same
command resumes from there.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .models.tiny_resnet import ATTENTIONS, tiny_resnet

from . import scenes

ROOT = Path(__file__).resolve().parent.parent

WEIGHTS_DIR = ROOT / "assets" / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"


def dataset(seed: int, n: int, cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scenes for a dataset seed, generated once and kept as an .npz beside the checkpoints."""
    path = cache / f"scenes-{seed}-{n}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["images"], z["masks"], z["labels"]
    images, masks, labels = scenes.make_batch(seed, n)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=images, masks=masks, labels=labels)
    return images, masks, labels


def to_tensor(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - torch.from_numpy(mean).view(1, 3, 1, 1)) / torch.from_numpy(std).view(1, 3, 1, 1)


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    model.eval()
    hits = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
               for i in range(0, len(x), batch))
    return hits / len(x)


def code_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "visattn", "models"],
                               cwd=ROOT, text=True, capture_output=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def train_one(attention: str, args) -> dict:
    out = Path(args.out) / attention
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    images, _, labels = dataset(args.data_seed, args.train_size, Path(args.out))
    val_images, _, val_labels = dataset(args.val_seed, args.val_size, Path(args.out))
    mean = (images.reshape(-1, 3).mean(0) / 255.0).astype(np.float32)
    std = (images.reshape(-1, 3).std(0) / 255.0).astype(np.float32)
    x, y = to_tensor(images, mean, std), torch.from_numpy(labels)
    vx, vy = to_tensor(val_images, mean, std), torch.from_numpy(val_labels)

    model = tiny_resnet(attention, len(scenes.CLASSES))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    steps = args.epochs * (len(x) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps,
                                                pct_start=0.15)
    start_epoch, ckpt = 0, out / "last.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)  # our own checkpoint (optimizer state)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        torch.set_rng_state(state["rng"])
        start_epoch = state["epoch"]
        print(f"[{attention}] resuming after epoch {start_epoch}", flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[{attention}] {n_params / 1e6:.2f} M parameters, {len(x)} training scenes, "
          f"{args.epochs} epochs", flush=True)
    for epoch in range(start_epoch, args.epochs):
        model.train()
        t0, total, seen = time.time(), 0.0, 0
        order = torch.randperm(len(x))
        for i in range(0, len(x) - args.batch + 1, args.batch):
            idx = order[i:i + args.batch]
            xb = x[idx]
            flip = torch.rand(len(idx)) < 0.5
            xb[flip] = xb[flip].flip(3)
            loss = F.cross_entropy(model(xb), y[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, seen = total + loss.item() * len(idx), seen + len(idx)
        acc = accuracy(model, vx, vy)
        print(f"[{attention}] epoch {epoch + 1}/{args.epochs}  loss {total / seen:.3f}  "
              f"held-out acc {acc:.3f}  {time.time() - t0:.0f}s", flush=True)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "rng": torch.get_rng_state(),
                    "epoch": epoch + 1}, ckpt)
    return ship(attention, model, mean, std, (vx, vy), n_params, args)


def ship(attention: str, model, mean, std, val, n_params: int, args) -> dict:
    """fp16 safetensors into assets/weights and a manifest entry; the accuracy is measured
    with the fp16 weights actually shipped."""
    path = WEIGHTS_DIR / f"tiny_{attention}.safetensors"
    shipped = save_half(model, path, tiny_resnet(attention, len(scenes.CLASSES)))
    entry = {
        "name": f"tiny_{attention}",
        "architecture": f"models.tiny_resnet.tiny_resnet({attention!r})",
        "attention": attention,
        **shipped_entry(path, n_params, mean, std, scenes.CLASSES, args),
        "val_accuracy": accuracy(shipped, *val),
        "command": training_command("visattn.train", f"--attention {attention}", args),
        "trained_on": "generated scenes (visattn.scenes), CPU",
    }
    write_manifest_entry(entry)
    print(f"[{attention}] shipped {path} ({path.stat().st_size / 1e6:.2f} MB), held-out "
          f"accuracy {entry['val_accuracy']:.3f}", flush=True)
    return entry


def shipped_entry(path: Path, n_params: int, mean, std, classes, args) -> dict:
    """What every manifest entry says of a shipped network: its file and hash, the input it
    expects, and how it was trained (sizes, seeds, schedule, code revision, date)."""
    return {
        "parameters": n_params,
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "input_size": scenes.SIZE,
        "mean": [round(float(v), 6) for v in mean],
        "std": [round(float(v), 6) for v in std],
        "classes": list(classes),
        "seed": args.seed,
        "train_data_seed": args.data_seed, "train_size": args.train_size,
        "val_data_seed": args.val_seed, "val_size": args.val_size,
        "epochs": args.epochs, "batch": args.batch, "lr": args.lr,
        "code_revision": code_revision(),
        "trained": datetime.date.today().isoformat(),
    }


def training_command(module: str, choice: str, args) -> str:
    """The command line that trains this network again."""
    return (f"python -m {module} {choice} --epochs {args.epochs} "
            f"--train-size {args.train_size} --val-size {args.val_size} "
            f"--seed {args.seed} --data-seed {args.data_seed} --val-seed {args.val_seed}")


def save_half(model: torch.nn.Module, path: Path, fresh: torch.nn.Module) -> torch.nn.Module:
    """Write the model's state as fp16 safetensors to `path`; return `fresh` (a new model of
    the same architecture) loaded from exactly those fp16 values, for measuring."""
    from safetensors.torch import save_file
    path.parent.mkdir(parents=True, exist_ok=True)
    half = {k: (v.half() if v.is_floating_point() else v).contiguous()
            for k, v in model.state_dict().items()}
    save_file(half, str(path))
    fresh.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()})
    return fresh.eval()


def write_manifest_entry(entry: dict) -> None:
    """Add or replace one entry (by name) of assets/weights/manifest.json."""
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    manifest[entry["name"]] = entry
    MANIFEST.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")


def training_arguments(p: argparse.ArgumentParser, epochs: int, train_size: int, val_size: int,
                       batch: int) -> argparse.ArgumentParser:
    """The options every VisAttn training script takes (sizes, seeds, threads, output)."""
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--train-size", type=int, default=train_size)
    p.add_argument("--val-size", type=int, default=val_size)
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-seed", type=int, default=1)
    p.add_argument("--val-seed", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "out" / "train"))
    return p


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m visattn.train", description=__doc__.splitlines()[0])
    p.add_argument("--attention", required=True, help=f"one of {ATTENTIONS}, or 'all'")
    training_arguments(p, epochs=12, train_size=12000, val_size=2000, batch=128)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    kinds = ATTENTIONS if args.attention == "all" else [args.attention]
    for kind in kinds:
        train_one(kind, args)


if __name__ == "__main__":
    main()
