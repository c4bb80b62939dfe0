"""Train the twin-scene labeller with its Non-local block (`tiny_nl_twins`) and without it
(the control, `tiny_none_twins`) on CPU, fixed seeds, resumable.

    python tools/train_twins.py                        # both, one after the other
    python tools/train_twins.py --model tiny_nl_twins
    python tools/train_twins.py --rows-only            # re-measure the shipped rows

Per-pixel labels: background / unique object / twin object (visattn.scenes.twin_scene).
Writes <assets>/weights/<name>.safetensors (fp16), <assets>/labels/twins.txt and
twins_palette.txt, and a manifest entry whose accuracies (all pixels; twin-vs-unique on
object pixels, the part that needs the whole scene) are measured on held-out scenes with
the fp16 weights actually shipped (--assets, default ./assets: run from the checkout's root
to update the bundled networks). Checkpoints after every epoch go to <out>/<name>/last.pt
(--out, default ./out/train); rerunning the same command resumes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python tools/train_twins.py`: the checkout's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tools.training import (cached, fit, load_half, normalised, read_manifest,  # noqa: E402
                            save_half, shipped_entry, training_arguments, training_command,
                            weights_dir, write_label_files, write_manifest_entry)
from visattn import scenes  # noqa: E402
from visattn.models.tiny_twins import tiny_twin_net  # noqa: E402

MODELS = {"tiny_nl_twins": True, "tiny_none_twins": False}  # name -> has the Non-local block
CLASS_WEIGHTS = (0.25, 1.0, 1.0)  # background pixels are 87 % of a scene and easy


def dataset(seed: int, n: int, cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twin scenes of a dataset seed, generated once and kept beside the checkpoints:
    images (n, 64, 64, 3) uint8, labels (n, 64, 64) int64, masks (n, K, 64, 64) bool."""
    def make():
        images, masks, twins = scenes.make_twin_batch(seed, n)
        labels = np.stack([scenes.twin_labels(m, [tuple(t)]) for m, t in zip(masks, twins)])
        return {"images": images, "labels": labels, "masks": masks}
    z = cached(cache / f"twins-{seed}-{n}.npz", make)
    return z["images"], z["labels"], z["masks"]


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


def weighted_loss(model: torch.nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(xb), yb, weight=torch.tensor(CLASS_WEIGHTS))


def train(name: str, args) -> dict:
    torch.manual_seed(args.seed)
    images, labels, _ = dataset(args.data_seed, args.train_size, Path(args.out))
    val_images, val_labels, _ = dataset(args.val_seed, args.val_size, Path(args.out))
    mean, std, x, vx = normalised(images, val_images)
    y, vy = torch.from_numpy(labels), torch.from_numpy(val_labels)
    model = tiny_twin_net(MODELS[name])

    def report(m):
        score = pixel_scores(m, vx[:500], vy[:500])
        return (f"pixels {score['pixel_accuracy']:.3f}  "
                f"twin-vs-unique {score['twin_vs_unique_accuracy']:.3f}")
    seconds = fit(name, model, x, y, args, weighted_loss, report)
    return ship(name, model, mean, std, (vx, vy), seconds, args)


def ship(name: str, model, mean, std, val, seconds: float, args) -> dict:
    """fp16 safetensors and a manifest entry; accuracies measured with the shipped weights."""
    path = weights_dir(args) / f"{name}.safetensors"
    shipped = save_half(model, path, tiny_twin_net(MODELS[name]))
    n_params = sum(p.numel() for p in model.parameters())
    entry = {
        "name": name,
        "task": "segment",
        "architecture": f"models.tiny_twins.tiny_twin_net(non_local={MODELS[name]})",
        "attention": "nl" if MODELS[name] else "none",
        **shipped_entry(path, n_params, mean, std, scenes.TWIN_LABELS, scenes.SIZE, args),
        "data": "visattn.scenes.make_twin_batch",
        "class_weights": list(CLASS_WEIGHTS),
        **{f"val_{k}": v for k, v in pixel_scores(shipped, *val).items()},
        "rows_scenes": args.rows_n if MODELS[name] else 0,
        "train_cpu_seconds": round(seconds),
        "threads": args.threads,
        "command": training_command("train_twins.py", f"--model {name}", args),
        "trained_on": "generated twin scenes (visattn.scenes.twin_scene), CPU",
    }
    if MODELS[name]:
        entry["rows"] = measure_rows(shipped, entry, args.rows_n)
    write_manifest_entry(entry, args)
    print(f"[{name}] shipped {path} ({path.stat().st_size / 1e6:.2f} MB), held-out pixel "
          f"accuracy {entry['val_pixel_accuracy']:.3f}, twin-vs-unique "
          f"{entry['val_twin_vs_unique_accuracy']:.3f}", flush=True)
    return entry


def measure_rows(model: torch.nn.Module, entry: dict, n: int) -> dict:
    """Medians of the twin-row scores (visattn.twin_faithfulness) of a Non-local network on
    the first n held-out twin scenes of its manifest entry, through the app's own flow."""
    from visattn.twin_faithfulness import twin_rows
    from visattn.zoo import bundled_source
    images, masks, twins = scenes.make_twin_batch(entry["val_data_seed"], n)
    return twin_rows(model, images, masks, twins,
                     preprocess=bundled_source(entry).preprocess()).medians()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python tools/train_twins.py",
                                description=__doc__.splitlines()[0])
    p.add_argument("--model", default="all", help=f"one of {list(MODELS)}, or 'all'")
    training_arguments(p, epochs=10, train_size=6000, val_size=1000, batch=32)
    p.add_argument("--rows-only", action="store_true",
                   help="only re-measure the shipped Non-local network's rows (manifest 'rows')")
    p.add_argument("--rows-n", type=int, default=500, help="held-out scenes for the rows")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    write_label_files(Path(args.assets), "twins", scenes.TWIN_LABELS, scenes.TWIN_COLOURS)
    for name in MODELS if args.model == "all" else [args.model]:
        if not args.rows_only:
            train(name, args)
        elif MODELS[name]:
            entry = read_manifest(args)[name]
            shipped = load_half(tiny_twin_net(True), weights_dir(args) / entry["file"])
            entry["rows"] = measure_rows(shipped, entry, args.rows_n)
            entry["rows_scenes"] = args.rows_n
            write_manifest_entry(entry, args)
            print(f"[{name}] rows on {args.rows_n} held-out scenes: {entry['rows']}")


if __name__ == "__main__":
    main()
