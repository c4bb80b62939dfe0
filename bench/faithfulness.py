"""Faithfulness of VisAttn's own trained models on held-out generated scenes: accuracy,
spatial-map ROC-AUC / energy ratio / pointing game per block, Non-local row mass on the
object for object and background queries, channel-gate class separation per block.

    python bench/faithfulness.py [--n 500] [--write docs/FAITHFULNESS.md]
"""
import argparse
import json
import os
import platform
from pathlib import Path

import common  # noqa: E402,F401  (sets up threads and sys.path first)

import torch  # noqa: E402

from visattn import analysis, scenes  # noqa: E402
from visattn.train import MANIFEST  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="held-out scenes per model")
    ap.add_argument("--write", help="also write the tables as Markdown to this file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    entries = json.loads(MANIFEST.read_text())
    seed = next(iter(entries.values()))["val_data_seed"]
    images, masks, labels = scenes.make_batch(seed, args.n)
    lines = ["# Faithfulness of the project-trained models\n",
             f"`python bench/faithfulness.py --n {args.n}` on {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} CPUs, torch {torch.__version__}: {args.n} held-out scenes "
             f"(data seed {seed}), ground-truth object masks. Ratios: 1 = no better than uniform.\n",
             "| model | accuracy | record | metric | value |", "|---|---|---|---|---|"]
    for name, entry in sorted(entries.items()):
        s = analysis.faithfulness(name, images, masks, labels).summary()
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
        Path(args.write).write_text("\n".join(lines) + "\n")
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
