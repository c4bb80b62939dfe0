"""Excitation statistics over a folder at dataset scale (`visattn stats`): a DataLoader's
workers decode and prepare images, one forward per batch on the network's device, the
gates folded into running sums (memory bounded by blocks x classes x channels), a tqdm bar
with ETA, and resumable: images done are listed in images.csv as they finish and the sums
are checkpointed every `checkpoint_s` seconds; a restart keeps what the checkpoint covers,
skips those images and appends the rest."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence

import torch.nn as nn

from . import capture
from .device import of_module
from .excitation import ExcitationStats
from .folders import batches, folder_classes, image_files
from .ledger import Ledger
from .preprocess import Preprocess

LabelSource = Literal["folders", "predicted"]
STATE = "excitation_state.npz"
LEDGER = "images.csv"
COLUMNS = ("image", "class", "predicted", "probability", "error")


@dataclass
class FolderStats:
    """What `run` needs: the folder, the network (on its device) and how to batch it."""
    folder: Path
    out: Path
    model: nn.Module
    name: str  # recorded in the checkpoint: a resumed run must be the same run
    preprocess: Preprocess
    labels: Sequence[str]  # the network's class names
    label_source: LabelSource = "predicted"
    batch_size: int = 32
    workers: int = 0
    limit: int = 0
    checkpoint_s: float = 60.0
    quiet: bool = False


def run(job: FolderStats) -> ExcitationStats:
    """Statistics of every image of the folder (resuming a run interrupted in `job.out`)."""
    files = image_files(job.folder)[:job.limit or None]
    if not files:
        raise ValueError(f"no images (JPEG, PNG, ...) in {job.folder}")
    targets: Optional[list[int]] = None
    class_names = list(job.labels)
    if job.label_source == "folders":
        class_names, targets = folder_classes(Path(job.folder), files)
    job.out.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(job.out / LEDGER, COLUMNS)
    identity = {"model": job.name, "labels": job.label_source, "folder": str(Path(job.folder).resolve())}
    stats = _resume(job.out / STATE, ledger, class_names, identity)
    done = ledger.done()
    todo = [i for i, f in enumerate(files) if _rel(job, f) not in done]
    _fold(job, files, todo, targets, class_names, stats, ledger, identity)
    return stats


def _rel(job: FolderStats, path: Path) -> str:
    return Path(path).relative_to(job.folder).as_posix()


def _resume(state: Path, ledger: Ledger, labels: list[str], identity: dict) -> ExcitationStats:
    """The checkpointed sums (the ledger cut back to the images they cover), or new sums."""
    if not state.is_file():
        ledger.keep_first(0)
        return ExcitationStats(labels=labels)
    stats, meta = ExcitationStats.load(state, labels)
    if {k: meta.get(k) for k in identity} != identity:
        raise ValueError(f"{state.parent} holds a run of another network, folder or label "
                         f"source ({meta.get('model')}, --labels {meta.get('labels')}); choose "
                         "another --out folder")
    ledger.keep_first(meta["rows"])
    return stats


def _fold(job: FolderStats, files: list[Path], todo: list[int], targets, class_names,
          stats: ExcitationStats, ledger: Ledger, identity: dict) -> None:
    from tqdm.auto import tqdm
    device = of_module(job.model)
    checkpoint = lambda: stats.save(job.out / STATE, rows=len(ledger.rows), **identity)  # noqa: E731
    bar = tqdm(total=len(files), initial=len(files) - len(todo), unit="image",
               desc=f"excitation statistics ({job.name})", disable=job.quiet, smoothing=0.1)
    saved = time.monotonic()
    try:
        for batch in batches([files[i] for i in todo], job.preprocess, job.batch_size, job.workers):
            rows = [[_rel(job, files[todo[it.index]]), "", "", "", it.error] for it in batch.failed]
            for row in rows:
                tqdm.write(f"skipped {row[0]}: {row[-1]}", file=sys.stderr)
            if batch.x is not None:
                traces = capture.run_batch(job.model, batch.x.to(device), labels=job.labels,
                                           name=job.name, features=False)
                for it, trace in zip(batch.items, traces):
                    i = todo[it.index]
                    cls = None if targets is None else targets[i]
                    stats.add(trace, cls)
                    (guess, p), = trace.prediction.top(1)
                    used = guess if cls is None else class_names[cls]
                    rows.append([_rel(job, files[i]), used, guess, f"{p:.4f}", ""])
            ledger.append(rows)
            bar.update(len(rows))
            if time.monotonic() - saved >= job.checkpoint_s:
                checkpoint()
                saved = time.monotonic()
    except KeyboardInterrupt:
        checkpoint()  # what was done is kept; the next run resumes after it
        raise
    finally:
        bar.close()
    checkpoint()
