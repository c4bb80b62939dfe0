"""Train the twin-scene labeller with its Non-local block (`tiny_nl_twins`) and without it
(the control, `tiny_none_twins`) on CPU, fixed seeds, resumable.

    python -m visattn.train_twins                        # both, one after the other
    python -m visattn.train_twins --model tiny_nl_twins

Per-pixel labels: background / unique object / twin object (visattn.scenes.twin_scene).
Writes assets/weights/<name>.safetensors (fp16) and a manifest entry whose accuracies
(all pixels; twin-vs-unique on object pixels, the part that needs the whole scene) are
measured on held-out scenes with the fp16 weights actually shipped. Checkpoints after
every epoch go to out/train/<name>/last.pt; rerunning the same command resumes.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .models.tiny_twins import tiny_twin_net

from . import scenes
from .train import (MANIFEST, WEIGHTS_DIR, save_half, shipped_entry, to_tensor,
                    training_arguments, training_command, write_manifest_entry)

MODELS = {"tiny_nl_twins": True, "tiny_none_twins": False}  # name -> has the Non-local block
CLASS_WEIGHTS = (0.25, 1.0, 1.0)  # background pixels are 87 % of a scene and easy


def dataset(seed: int, n: int, cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twin scenes of a dataset seed, generated once and kept beside the checkpoints:
    images (n, 64, 64, 3) uint8, labels (n, 64, 64) int64, masks (n, K, 64, 64) bool."""
    path = cache / f"twins-{seed}-{n}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["images"], z["labels"], z["masks"]
    images, masks, twins = scenes.make_twin_batch(seed, n)
    labels = np.stack([scenes.twin_labels(m, [tuple(t)]) for m, t in zip(masks, twins)])
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, images=images, labels=labels, masks=masks)
    return images, labels, masks


@torch.no_grad()
def pixel_scores(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor,
                 batch: int = 250) -> dict:
    """Accuracy over all pixels (3 classes), and twin-vs-unique accuracy over object pixels
    (the larger of the unique and twin logits against the truth; chance is about 0.5)."""
    model.eval()
    hits = obj_hits = obj = 0
    for i in range(0, len(x), batch):
        logits, y = model(x[i:i + batch]), labels[i:i + batch]
        hits += int((logits.argmax(1) == y).sum())
        on = y > 0
        twin = logits[:, 2] > logits[:, 1]
        obj_hits += int((twin[on] == (y[on] == 2)).sum())
        obj += int(on.sum())
    return {"pixel_accuracy": hits / labels.numel(), "twin_vs_unique_accuracy": obj_hits / obj}


def train(name: str, args) -> dict:
    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    images, labels, _ = dataset(args.data_seed, args.train_size, Path(args.out))
    val_images, val_labels, _ = dataset(args.val_seed, args.val_size, Path(args.out))
    mean = (images.reshape(-1, 3).mean(0) / 255.0).astype(np.float32)
    std = (images.reshape(-1, 3).std(0) / 255.0).astype(np.float32)
    x, y = to_tensor(images, mean, std), torch.from_numpy(labels)
    vx, vy = to_tensor(val_images, mean, std), torch.from_numpy(val_labels)
    model = tiny_twin_net(MODELS[name])
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
        start_epoch, spent = state["epoch"], state["seconds"]
        print(f"[{name}] resuming after epoch {start_epoch}", flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[{name}] {n_params / 1e6:.3f} M parameters, {len(x)} training scenes, "
          f"{args.epochs} epochs", flush=True)
    for epoch in range(start_epoch, args.epochs):
        model.train()
        t0, cpu0, total = time.time(), time.process_time(), 0.0
        order = torch.randperm(len(x))
        for i in range(0, len(x) - args.batch + 1, args.batch):
            idx = order[i:i + args.batch]
            loss = F.cross_entropy(model(x[idx]), y[idx], weight=torch.tensor(CLASS_WEIGHTS))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        spent += time.process_time() - cpu0
        score = pixel_scores(model, vx[:500], vy[:500])
        print(f"[{name}] epoch {epoch + 1}/{args.epochs}  loss {total / len(x):.4f}  "
              f"pixels {score['pixel_accuracy']:.3f}  twin-vs-unique "
              f"{score['twin_vs_unique_accuracy']:.3f}  {time.time() - t0:.0f}s", flush=True)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "rng": torch.get_rng_state(),
                    "epoch": epoch + 1, "seconds": spent}, ckpt)
    return ship(name, model, mean, std, (vx, vy), n_params, spent, args)


def ship(name: str, model, mean, std, val, n_params: int, seconds: float, args) -> dict:
    """fp16 safetensors and a manifest entry; accuracies measured with the shipped weights."""
    path = WEIGHTS_DIR / f"{name}.safetensors"
    shipped = save_half(model, path, tiny_twin_net(MODELS[name]))
    entry = {
        "name": name,
        "task": "segment",
        "architecture": f"models.tiny_twins.tiny_twin_net(non_local={MODELS[name]})",
        "attention": "nl" if MODELS[name] else "none",
        **shipped_entry(path, n_params, mean, std, scenes.TWIN_LABELS, args),
        "data": "visattn.scenes.make_twin_batch",
        "class_weights": list(CLASS_WEIGHTS),
        **{f"val_{k}": v for k, v in pixel_scores(shipped, *val).items()},
        "rows_scenes": args.rows_n if MODELS[name] else 0,
        "train_cpu_seconds": round(seconds),
        "threads": args.threads,
        "command": training_command("visattn.train_twins", f"--model {name}", args),
        "trained_on": "generated twin scenes (visattn.scenes.twin_scene), CPU",
    }
    if MODELS[name]:
        entry["rows"] = measure_rows(shipped, entry, args.rows_n)
    write_manifest_entry(entry)
    print(f"[{name}] shipped {path} ({path.stat().st_size / 1e6:.2f} MB), held-out pixel "
          f"accuracy {entry['val_pixel_accuracy']:.3f}, twin-vs-unique "
          f"{entry['val_twin_vs_unique_accuracy']:.3f}", flush=True)
    return entry


def measure_rows(model: torch.nn.Module, entry: dict, n: int) -> dict:
    """Medians of the twin-row scores (visattn.twin_faithfulness) of a Non-local network on
    the first n held-out twin scenes of its manifest entry, through the app's own flow."""
    from .twin_faithfulness import twin_rows
    from .zoo import bundled_source
    images, masks, twins = scenes.make_twin_batch(entry["val_data_seed"], n)
    return twin_rows(model, images, masks, twins,
                     preprocess=bundled_source(entry).preprocess()).medians()


def load_shipped(entry: dict) -> torch.nn.Module:
    from safetensors.torch import load_file
    model = tiny_twin_net(MODELS[entry["name"]])
    state = load_file(str(WEIGHTS_DIR / entry["file"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


def write_labels() -> None:
    """assets/labels/twins.txt and twins_palette.txt, from visattn.scenes (the card's labels)."""
    from .labels import LABELS_DIR, write
    write("twins", list(scenes.TWIN_LABELS))
    (LABELS_DIR / "twins_palette.txt").write_text(
        "\n".join(" ".join(str(int(v)) for v in rgb) for rgb in scenes.TWIN_COLOURS) + "\n")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m visattn.train_twins",
                                description=__doc__.splitlines()[0])
    p.add_argument("--model", default="all", help=f"one of {list(MODELS)}, or 'all'")
    training_arguments(p, epochs=10, train_size=6000, val_size=1000, batch=32)
    p.add_argument("--rows-only", action="store_true",
                   help="only re-measure the shipped Non-local network's rows (manifest 'rows')")
    p.add_argument("--rows-n", type=int, default=500, help="held-out scenes for the rows")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    write_labels()
    for name in MODELS if args.model == "all" else [args.model]:
        if not args.rows_only:
            train(name, args)
        elif MODELS[name]:
            entry = json.loads(MANIFEST.read_text())[name]
            entry["rows"] = measure_rows(load_shipped(entry), entry, args.rows_n)
            entry["rows_scenes"] = args.rows_n
            write_manifest_entry(entry)
            print(f"[{name}] rows on {args.rows_n} held-out scenes: {entry['rows']}")


if __name__ == "__main__":
    main()
