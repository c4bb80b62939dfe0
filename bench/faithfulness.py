"""Faithfulness of VisAttn's own trained models on held-out generated scenes: accuracy,
spatial-map ROC-AUC / energy ratio / pointing game per block, Non-local row mass on the
object for object and background queries, channel-gate class separation per block; and,
on held-out twin scenes, whether Non-local rows follow the query (twin mass ratio, query
dependence, background mass on the twins) next to the labellers' accuracies.

    python bench/faithfulness.py [--n 500] [--write docs/FAITHFULNESS.md] [--only twins]
"""
import argparse
import json
import os
import platform
from pathlib import Path

import common  # noqa: E402,F401  (sets up threads and sys.path first)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from visattn import scenes, zoo  # noqa: E402
from tools.training import to_tensor  # noqa: E402
from tools.train_twins import pixel_scores  # noqa: E402
from visattn.faithfulness import faithfulness  # noqa: E402
from visattn.twin_faithfulness import BARS, twin_rows  # noqa: E402

TWINS_BEGIN, TWINS_END = "<!-- twins -->", "<!-- /twins -->"


def zeroed_query(name: str) -> torch.nn.Module:
    """The network with its Non-local query embedding zeroed: every row the same softmax."""
    model = zoo.build(zoo.get(name), pretrained=True)
    with torch.no_grad():
        model.nl.theta.conv.weight.zero_()
        model.nl.theta.conv.bias.zero_()
    return model


def twin_section(entries: dict, n: int) -> list[str]:
    """Markdown: the twin labellers' held-out accuracies and the rows' scores, with a
    query-independent block and the scene classifier's tiny_nl for contrast."""
    twins = {k: e for k, e in entries.items() if e.get("task") == "segment"}
    seed = next(iter(twins.values()))["val_data_seed"]
    images, masks, pairs = scenes.make_twin_batch(seed, n)
    labels = torch.from_numpy(np.stack([scenes.twin_labels(m, [tuple(t)])
                                        for m, t in zip(masks, pairs)]))
    bars = ", ".join(f"{k} {op} {v:g}" for k, (op, v) in BARS.items())
    trained = ", ".join(f"`{k}` {e['train_cpu_seconds'] / 60:.1f} CPU minutes"
                        for k, e in sorted(twins.items()))
    lines = [TWINS_BEGIN, "## Twin scenes: do the rows follow the query?\n",
             f"`python bench/faithfulness.py --only twins --n {n}`: "
             f"{n} held-out twin scenes (`visattn.scenes.make_twin_batch`, data seed {seed}); "
             "per pixel: background / unique object / twin object. Twin-vs-unique accuracy "
             "counts object pixels only (chance is about 0.5). Row scores are medians over "
             "queries (two per object, four background pixels per scene): twin mass ratio = "
             "row mass on the other twin / its area fraction (1 = uniform), query dependence "
             "= mean Jensen-Shannon divergence to the rows of the reference cells (bits), "
             f"background = mass on both twins / their area from background pixels. Bars: {bars}. "
             "The control rows zero the Non-local block's query embedding (every row the same "
             "softmax); `tiny_nl` was trained to classify the other scenes and is shown for "
             f"contrast. Training (`python tools/train_twins.py`, one thread): {trained}.\n",
             "| network | twin-vs-unique accuracy | pixel accuracy | twin mass ratio | "
             "query dependence | background mass on twins |", "|---|---|---|---|---|---|"]
    for name, entry in sorted(twins.items(), key=lambda kv: kv[1]["attention"] != "nl"):
        model = zoo.build(zoo.get(name), pretrained=True)
        x = to_tensor(images, np.array(entry["mean"], np.float32), np.array(entry["std"], np.float32))
        acc = pixel_scores(model, x, labels)
        cells = ["-", "-", "-"]
        if entry["attention"] == "nl":
            m = twin_rows(name, images, masks, pairs).medians()
            cells = [f"{m[k]:.2f}" for k in BARS]
        lines.append(f"| `{name}` | {acc['twin_vs_unique_accuracy']:.3f} | "
                     f"{acc['pixel_accuracy']:.3f} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
        if entry["attention"] == "nl":
            m = twin_rows(zeroed_query(name), images, masks, pairs,
                          preprocess=zoo.get(name).preprocess).medians()
            lines.append(f"| `{name}`, query embedding zeroed (control) | - | - | " +
                         " | ".join(f"{m[k]:.2f}" for k in BARS) + " |")
            print(lines[-1], flush=True)
    if "tiny_nl" in entries:  # the scene classifier's block, never trained on twins
        m = twin_rows("tiny_nl", images, masks, pairs).medians()
        lines.append("| `tiny_nl` (scene classifier, for contrast) | - | - | " +
                     " | ".join(f"{m[k]:.2f}" for k in BARS) + " |")
        print(lines[-1], flush=True)
    return lines + [TWINS_END]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="held-out scenes per model")
    ap.add_argument("--write", help="also write the tables as Markdown to this file")
    ap.add_argument("--only", choices=["twins"], help="only the twin-scene section (the rest "
                    "of the --write file is kept)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    entries = json.loads(zoo.MANIFEST.read_text())
    twins = twin_section(entries, args.n)
    if args.only:
        if args.write:
            text = Path(args.write).read_text()
            head, tail = text.rstrip("\n") + "\n\n", "\n"
            if TWINS_BEGIN in text:
                head, tail = text.split(TWINS_BEGIN)[0], text.split(TWINS_END)[-1]
            Path(args.write).write_text(head + "\n".join(twins) + tail)
            print(f"wrote {args.write}")
        return
    entries = {k: e for k, e in entries.items() if e.get("task", "classify") == "classify"}
    seed = next(iter(entries.values()))["val_data_seed"]
    images, masks, labels = scenes.make_batch(seed, args.n)
    lines = ["# Faithfulness of the project-trained models\n",
             f"`python bench/faithfulness.py --n {args.n}` on {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} CPUs, torch {torch.__version__}: {args.n} held-out scenes "
             f"(data seed {seed}), ground-truth object masks. Ratios: 1 = no better than uniform.\n",
             "| model | accuracy | record | metric | value |", "|---|---|---|---|---|"]
    for name, entry in sorted(entries.items()):
        s = faithfulness(name, images, masks, labels).summary()
        acc = f"{s['accuracy']:.3f}"
        rows = []
        for key, auc in s["spatial_auc"].items():
            rows.append((key, "spatial ROC-AUC / energy ratio / pointing game",
                         f"{auc:.3f} / {s['spatial_energy_ratio'][key]:.2f} / {s['pointing_game'][key]:.2f}"))
        for key, obj in s["affinity_object_query"].items():
            rows.append((key, "row mass on object / area, object vs background queries",
                         f"{obj:.2f} vs {s['affinity_background_query'][key]:.2f}"))
        for key, sep in s["gate_class_separation"].items():
            rows.append((key, "channel weights: between/within-class spread", f"{sep:.3f}"))
        for key, metric, value in rows or [("-", "-", "-")]:
            lines.append(f"| {name} | {acc} | `{key}` | {metric} | {value} |")
        print(f"{name}: accuracy {acc}", flush=True)
        for key, metric, value in rows:
            print(f"  {key:32s} {metric}: {value}", flush=True)
    if args.write:
        Path(args.write).write_text("\n".join(lines + [""] + twins) + "\n")
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
