"""What both training scripts share: the options, the training loop (AdamW, one-cycle
schedule, a checkpoint after every epoch, resumed on a rerun), fp16 shipping and the
manifest entry.

Nothing here knows where the checkout is: every script writes under the folders it is
given (`--assets` for the shipped weights, labels and manifest; `--out` for checkpoints and
cached scenes), both relative to the working directory by default.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]  # only for the code revision (git, read-only)

MANIFEST = Path("weights") / "manifest.json"  # inside an assets folder, where visattn.zoo reads it


def manifest_path(args) -> Path:
    """The manifest.json of the assets folder a script was told to write into."""
    return Path(args.assets) / MANIFEST


def weights_dir(args) -> Path:
    return manifest_path(args).parent


def to_tensor(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """(n, h, w, 3) uint8 images -> (n, 3, h, w) float, normalised with mean and std in [0, 1]."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - torch.from_numpy(mean).view(1, 3, 1, 1)) / torch.from_numpy(std).view(1, 3, 1, 1)


def normalised(images: np.ndarray, val_images: np.ndarray):
    """Channel mean and std of the training images; both sets as normalised tensors.
    -> (mean, std, x, val_x)."""
    mean = (images.reshape(-1, 3).mean(0) / 255.0).astype(np.float32)
    std = (images.reshape(-1, 3).std(0) / 255.0).astype(np.float32)
    return mean, std, to_tensor(images, mean, std), to_tensor(val_images, mean, std)


def cached(path: Path, make: Callable[[], dict]) -> dict:
    """The arrays of an .npz made once by `make` and kept at `path`."""
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    arrays = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return arrays


def fit(name: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, args,
        loss_of: Callable, report: Callable[[torch.nn.Module], str]) -> float:
    """Train `model` on (x, y) for args.epochs epochs of shuffled batches: AdamW, one-cycle
    learning rate, `loss_of(model, xb, yb)` per batch. After every epoch, print `report(model)`
    and write the checkpoint <args.out>/<name>/last.pt, from which a rerun resumes.
    -> CPU seconds spent training, over every run of this checkpoint."""
    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    steps = args.epochs * (len(x) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps,
                                                pct_start=0.15)
    start_epoch, ckpt, spent = 0, out / "last.pt", 0.0
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)  # our own checkpoint (optimizer state)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        torch.set_rng_state(state["rng"])
        start_epoch, spent = state["epoch"], state.get("seconds", 0.0)
        print(f"[{name}] resuming after epoch {start_epoch}", flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[{name}] {n_params / 1e6:.3f} M parameters, {len(x)} training examples, "
          f"{args.epochs} epochs", flush=True)
    for epoch in range(start_epoch, args.epochs):
        model.train()
        t0, cpu0, total, seen = time.time(), time.process_time(), 0.0, 0
        order = torch.randperm(len(x))
        for i in range(0, len(x) - args.batch + 1, args.batch):
            idx = order[i:i + args.batch]
            loss = loss_of(model, x[idx], y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, seen = total + loss.item() * len(idx), seen + len(idx)
        spent += time.process_time() - cpu0
        print(f"[{name}] epoch {epoch + 1}/{args.epochs}  loss {total / max(seen, 1):.4f}  "
              f"{report(model)}  {time.time() - t0:.0f}s", flush=True)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "rng": torch.get_rng_state(),
                    "epoch": epoch + 1, "seconds": spent}, ckpt)
    return spent


def code_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                             capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "visattn", "models", "tools"],
                               cwd=REPO, text=True, capture_output=True, timeout=10).stdout.strip()
        return (rev or "unknown") + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def shipped_entry(path: Path, n_params: int, mean, std, classes, input_size: int, args) -> dict:
    """What every manifest entry says of a shipped network: its file and hash, the input it
    expects, and how it was trained (sizes, seeds, schedule, code revision, date)."""
    return {
        "parameters": n_params,
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "input_size": input_size,
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


def ship(name: str, model: torch.nn.Module, fresh: torch.nn.Module, mean, std, args, *,
         scores: Callable[..., dict], val, classes, size: int, fields: dict,
         command: tuple[str, str], trained_on: str, write: Callable[[dict, Any], None]) -> dict:
    """Ship a trained network: fp16 safetensors at <assets>/weights/<name>.safetensors and
    its manifest entry, written by `write`: `fields` (architecture, task, ...), what every
    entry says (`shipped_entry`), the held-out `scores(shipped, *val)` as val_<key>,
    measured with the fp16 weights actually shipped, and the command that trains it again
    (`command` = (script, choice)). Returns the entry."""
    path = weights_dir(args) / f"{name}.safetensors"
    shipped = save_half(model, path, fresh)
    n_params = sum(p.numel() for p in model.parameters())
    measured = scores(shipped, *val)
    measured = measured if isinstance(measured, dict) else {"accuracy": measured}
    entry = {"name": name, **fields,
             **shipped_entry(path, n_params, mean, std, classes, size, args),
             **{f"val_{k}": v for k, v in measured.items()},
             "command": training_command(*command, args), "trained_on": trained_on}
    write(entry, args)
    said = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in measured.items())
    print(f"[{name}] shipped {path} ({path.stat().st_size / 1e6:.2f} MB), held-out {said}",
          flush=True)
    return entry


def training_command(script: str, choice: str, args) -> str:
    """The command line (from the checkout's root) that trains this network again."""
    return (f"python tools/{script} {choice} --epochs {args.epochs} "
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


def load_half(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    """`model` loaded from fp16 safetensors written by save_half, in eval mode."""
    from safetensors.torch import load_file
    state = load_file(str(path))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


def read_manifest(args) -> dict:
    path = manifest_path(args)
    return json.loads(path.read_text()) if path.exists() else {}


def write_manifest_entry(entry: dict, args) -> None:
    """Add or replace one entry (by name) of the manifest in args.assets."""
    manifest = read_manifest(args)
    manifest[entry["name"]] = entry
    path = manifest_path(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")


def write_label_files(assets: Path, name: str, labels, colours) -> None:
    """<assets>/labels/<name>.txt (one class per line) and <name>_palette.txt (R G B per
    line): the class names and colours a card reads."""
    folder = Path(assets) / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    (folder / f"{name}_palette.txt").write_text(
        "\n".join(" ".join(str(int(v)) for v in rgb) for rgb in colours) + "\n")


def training_arguments(p: argparse.ArgumentParser, epochs: int, train_size: int, val_size: int,
                       batch: int) -> argparse.ArgumentParser:
    """The options every VisAttn training script takes (sizes, seeds, threads, folders)."""
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--train-size", type=int, default=train_size)
    p.add_argument("--val-size", type=int, default=val_size)
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-seed", type=int, default=1)
    p.add_argument("--val-seed", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--assets", default="assets",
                   help="assets folder to ship into: weights/<name>.safetensors, "
                        "weights/manifest.json, labels/ (default: ./assets, the checkout's "
                        "when run from its root)")
    p.add_argument("--out", default=str(Path("out") / "train"),
                   help="checkpoints and cached scenes (default: ./out/train)")
    return p


def labeller_arguments(p: argparse.ArgumentParser, models: dict, noun: str, rows_n: int,
                       **defaults) -> argparse.ArgumentParser:
    """The options of a script that trains a labeller with its Non-local block and the
    control without it: --model, the training options, --rows-only, --rows-n."""
    p.add_argument("--model", default="all", help=f"one of {list(models)}, or 'all'")
    training_arguments(p, **defaults)
    p.add_argument("--rows-only", action="store_true",
                   help="only re-measure the shipped Non-local network's rows (manifest 'rows')")
    p.add_argument("--rows-n", type=int, default=rows_n, help=f"held-out {noun} for the rows")
    return p


def train_then_rows(args, models: dict, train: Callable, read: Callable, write: Callable,
                    rows: Callable, noun: str) -> None:
    """Train each chosen network (unless --rows-only), then measure the rows of those with
    the block (`rows(name, entry, n, args)`, with the shipped weights) into their entry."""
    for name in models if args.model == "all" else [args.model]:
        if not args.rows_only:
            train(name, args)
        if not models[name]:  # the control has no block, so no rows
            continue
        entry = read(args)[name]
        entry["rows"] = rows(name, entry, args.rows_n, args)
        entry[f"rows_{noun}"] = args.rows_n
        write(entry, args)
        print(f"[{name}] rows on {args.rows_n} held-out {noun}: {entry['rows']}", flush=True)


def labeller_main(argv, script: str, doc: str, models: dict, noun: str, rows_n: int,
                  defaults: dict, labels: tuple[str, tuple, Any], train: Callable,
                  read: Callable, write: Callable, rows: Callable) -> None:
    """The whole command of a labeller's training script (tools/<script>): its options,
    the label files (`labels` = (name, class names, colours)), training, then the rows."""
    p = argparse.ArgumentParser(prog=f"python tools/{script}", description=doc.splitlines()[0])
    labeller_arguments(p, models, noun, rows_n, **defaults)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    write_label_files(Path(args.assets), *labels)
    train_then_rows(args, models, train, read, write, rows, noun)
