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

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python tools/train_twins.py`: the checkout's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tools.training import (cached, fit, labeller_main, load_half,  # noqa: E402
                            normalised, read_manifest, ship, weights_dir,
                            write_manifest_entry)
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
    return ship(name, model, tiny_twin_net(MODELS[name]), mean, std, args, scores=pixel_scores,
                val=(vx, vy), classes=scenes.TWIN_LABELS, size=scenes.SIZE,
                fields={"task": "segment",
                        "architecture": f"models.tiny_twins.tiny_twin_net(non_local={MODELS[name]})",
                        "attention": "nl" if MODELS[name] else "none",
                        "data": "visattn.scenes.make_twin_batch",
                        "class_weights": list(CLASS_WEIGHTS),
                        "rows_scenes": args.rows_n if MODELS[name] else 0,
                        "train_cpu_seconds": round(seconds), "threads": args.threads},
                command=("train_twins.py", f"--model {name}"),
                trained_on="generated twin scenes (visattn.scenes.twin_scene), CPU",
                write=write_manifest_entry)


def measure_rows(name: str, entry: dict, n: int, args) -> dict:
    """Medians of the twin-row scores (visattn.twin_faithfulness) of a Non-local network on
    the first n held-out twin scenes of its manifest entry, through the app's own flow."""
    from visattn.twin_faithfulness import twin_rows
    from visattn.zoo import bundled_source
    shipped = load_half(tiny_twin_net(MODELS[name]), weights_dir(args) / entry["file"])
    images, masks, twins = scenes.make_twin_batch(entry["val_data_seed"], n)
    return twin_rows(shipped, images, masks, twins,
                     preprocess=bundled_source(entry).preprocess()).medians()


def main(argv=None) -> None:
    labeller_main(argv, "train_twins.py", __doc__, MODELS, "scenes", 500,
                  dict(epochs=10, train_size=6000, val_size=1000, batch=32),
                  ("twins", scenes.TWIN_LABELS, scenes.TWIN_COLOURS), train, read_manifest,
                  write_manifest_entry, measure_rows)


if __name__ == "__main__":
    main()
