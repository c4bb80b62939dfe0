"""Excitation statistics over a folder at dataset scale (`visattn stats`): a DataLoader's
workers decode and prepare images, one forward per batch on the network's device, the
gates folded into running sums (memory bounded by blocks x classes x channels), a tqdm bar
with ETA, and resumable: images done are listed in images.csv as they finish and the sums
are checkpointed every `checkpoint_s` seconds; a restart keeps what the checkpoint covers,
skips those images and appends the rest.

Under torchrun (`job.world`, visattn.distributed) each process takes every N-th image still
to do, writes its own ledger and checkpoint under parts/, and at the end one all_reduce
joins the sums and process 0 writes images.csv and the checkpoint; a restart with any
number of processes first folds in the parts a crashed run left. The ledger is kept in
file order, so it is the same whatever the number of processes."""
from __future__ import annotations

import contextlib
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from . import capture
from .device import of_module
from .distributed import World, joined_stats
from .excitation import ExcitationStats
from .folders import batch_length, batches, folder_classes, image_files
from .ledger import Ledger
from .preprocess import Preprocess

LabelSource = Literal["folders", "predicted"]
STATE = "excitation_state.npz"
LEDGER = "images.csv"
COLUMNS = ("image", "class", "predicted", "probability", "error")
PARTS = "parts"  # one ledger and checkpoint per process of a torchrun run
# --autocast: dtype, and how far its gates may be from float32 (max |difference|, measured
# on the first batch of every process; measured on CPU over 8 scenes: bf16 0.012 tiny_se,
# 0.002 seresnet50 (random weights); fp16 0.0025 and 0.0003)
AUTOCAST = {"bf16": (torch.bfloat16, 0.03), "fp16": (torch.float16, 0.005)}


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
    autocast: Optional[str] = None  # "bf16" / "fp16": the forward in that precision
    world: World = field(default_factory=World)
    autocast_gap: float = field(default=float("nan"), init=False)  # largest gate difference seen


def run(job: FolderStats) -> ExcitationStats:
    """Statistics of every image of the folder (resuming a run interrupted in `job.out`)."""
    files = image_files(job.folder)[:job.limit or None]
    if not files:
        raise ValueError(f"no images (JPEG, PNG, ...) in {job.folder}")
    if job.autocast and job.autocast not in AUTOCAST:
        raise ValueError(f"--autocast is one of {', '.join(AUTOCAST)} (got {job.autocast!r})")
    targets: Optional[list[int]] = None
    class_names = list(job.labels)
    if job.label_source == "folders":
        class_names, targets = folder_classes(Path(job.folder), files)
    world = job.world
    identity = {"model": job.name, "labels": job.label_source, "folder": str(Path(job.folder).resolve())}
    order = {_rel(job, f): i for i, f in enumerate(files)}
    if world.main:
        job.out.mkdir(parents=True, exist_ok=True)
        _absorb_parts(job, class_names, identity, order)
    world.barrier()
    ledger = Ledger(job.out / LEDGER, COLUMNS)  # process 0 has cut it to the checkpoint
    stats = _load(job.out / STATE, class_names)
    done = ledger.done()
    todo = world.share([i for i, f in enumerate(files) if _rel(job, f) not in done],
                       batch_length(job.preprocess, job.batch_size))
    if world.size == 1:
        _fold(job, files, todo, targets, class_names, stats, ledger,
              lambda: stats.save(job.out / STATE, rows=len(ledger.rows), **identity))
        ledger.reorder(lambda row: order.get(row[0], len(order)))
        stats.save(job.out / STATE, rows=len(ledger.rows), **identity)
        return stats
    segment = world.gather(uuid.uuid4().hex)[0]  # names this run's parts
    part_ledger = Ledger(job.out / PARTS / f"images.{world.rank}.csv", COLUMNS)
    part_ledger.keep_first(0)
    part = ExcitationStats(labels=class_names)
    state = job.out / PARTS / f"state.{world.rank}.npz"
    _fold(job, files, todo, targets, class_names, part, part_ledger,
          lambda: part.save(state, rows=len(part_ledger.rows), segment=segment, **identity))
    stats.merge(joined_stats(world, part, class_names))
    rows = world.gather(part_ledger.rows)
    gaps = world.gather(job.autocast_gap)
    job.autocast_gap = float(np.nanmax(gaps)) if not all(np.isnan(gaps)) else float("nan")
    if world.main:
        ledger.append([r for rank_rows in rows for r in rank_rows])
        ledger.reorder(lambda row: order.get(row[0], len(order)))
        stats.save(job.out / STATE, rows=len(ledger.rows), absorbed=[segment], **identity)
        _remove_parts(job.out)
    world.barrier()
    return stats


def _rel(job: FolderStats, path: Path) -> str:
    return Path(path).relative_to(job.folder).as_posix()


def _load(state: Path, labels: list[str]) -> ExcitationStats:
    return ExcitationStats.load(state, labels)[0] if state.is_file() else ExcitationStats(labels=labels)


def _resume(state: Path, ledger: Ledger, labels: list[str], identity: dict) -> tuple[ExcitationStats, dict]:
    """The checkpointed sums (the ledger cut back to the images they cover), or new sums."""
    if not state.is_file():
        ledger.keep_first(0)
        return ExcitationStats(labels=labels), {}
    stats, meta = ExcitationStats.load(state, labels)
    _same_run(state, meta, identity)
    ledger.keep_first(meta["rows"])
    return stats, meta


def _same_run(state: Path, meta: dict, identity: dict) -> None:
    if {k: meta.get(k) for k in identity} != identity:
        out = state.parent.parent if state.parent.name == PARTS else state.parent
        raise ValueError(f"{out} holds a run of another network, folder or label "
                         f"source ({meta.get('model')}, --labels {meta.get('labels')}); choose "
                         "another --out folder")


def _absorb_parts(job: FolderStats, labels: list[str], identity: dict, order: dict) -> None:
    """Process 0, before a run: the main checkpoint (its ledger cut back to it) plus what
    each process of an interrupted torchrun run checkpointed under parts/ (each part's
    ledger cut back to its own checkpoint), saved as the main checkpoint; parts/ emptied.
    A part already folded in (its run's id in the checkpoint) is not counted again."""
    ledger = Ledger(job.out / LEDGER, COLUMNS)
    stats, meta = _resume(job.out / STATE, ledger, labels, identity)
    parts = job.out / PARTS
    absorbed = set(meta.get("absorbed", []))
    segments = set()
    for state in sorted(parts.glob("state.*.npz")) if parts.is_dir() else []:
        part, part_meta = ExcitationStats.load(state, labels)
        _same_run(state, part_meta, identity)
        if part_meta.get("segment") in absorbed:
            continue
        rank = state.name.split(".")[1]
        rows = Ledger(parts / f"images.{rank}.csv", COLUMNS).rows[:part_meta["rows"]]
        stats.merge(part)
        ledger.append(rows)
        segments.add(part_meta.get("segment"))
    if segments:
        ledger.reorder(lambda row: order.get(row[0], len(order)))
        stats.save(job.out / STATE, rows=len(ledger.rows), absorbed=sorted(segments), **identity)
    _remove_parts(job.out)


def _remove_parts(out: Path) -> None:
    parts = out / PARTS
    if parts.is_dir():
        for f in parts.iterdir():
            f.unlink()
        parts.rmdir()


def _precision(job: FolderStats, device: torch.device):
    if not job.autocast:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST[job.autocast][0])


def _forward(job: FolderStats, x, device: torch.device, first: bool) -> list:
    """The batch's traces (in the --autocast precision); on the first batch with autocast
    its gates are checked against a float32 forward (largest difference kept in the job,
    ValueError over the tolerance)."""
    with _precision(job, device):
        traces = capture.run_batch(job.model, x, labels=job.labels, name=job.name, features=False)
    if first and job.autocast:
        exact = capture.run_batch(job.model, x, labels=job.labels, name=job.name, features=False)
        job.autocast_gap = gate_gap(traces, exact)
        tolerance = AUTOCAST[job.autocast][1]
        if job.autocast_gap > tolerance:
            raise ValueError(f"--autocast {job.autocast}: gates differ from float32 by up to "
                             f"{job.autocast_gap:.3g} on the first batch (tolerance {tolerance}); "
                             "run without --autocast")
    return traces


def gate_gap(traces, reference) -> float:
    """Largest |difference| between the channel gates of two lists of traces."""
    from .records import ChannelWeights
    gap = 0.0
    for t, r in zip(traces, reference):
        for a, b in zip(t.select(ChannelWeights), r.select(ChannelWeights)):
            gap = max(gap, float(np.max(np.abs(a.values.astype(np.float64) - b.values))))
    return gap


def _fold(job: FolderStats, files: list[Path], todo: list[int], targets, class_names,
          stats: ExcitationStats, ledger: Ledger, checkpoint) -> None:
    from tqdm.auto import tqdm
    device = of_module(job.model)
    world = job.world
    bar = tqdm(total=len(files), initial=len(files) - len(todo) * world.size, unit="image",
               desc=f"excitation statistics ({job.name})", disable=job.quiet or not world.main,
               smoothing=0.1)
    saved = time.monotonic()
    first = True
    try:
        for batch in batches([files[i] for i in todo], job.preprocess, job.batch_size, job.workers,
                             pin_memory=device.type == "cuda"):
            rows = [[_rel(job, files[todo[it.index]]), "", "", "", it.error] for it in batch.failed]
            for row in rows:
                tqdm.write(f"skipped {row[0]}: {row[-1]}", file=sys.stderr)
            if batch.x is not None:
                traces = _forward(job, batch.x.to(device, non_blocking=True), device, first)
                first = False
                for it, trace in zip(batch.items, traces):
                    i = todo[it.index]
                    cls = None if targets is None else targets[i]
                    stats.add(trace, cls)
                    (guess, p), = trace.prediction.top(1)
                    used = guess if cls is None else class_names[cls]
                    rows.append([_rel(job, files[i]), used, guess, f"{p:.4f}", ""])
            ledger.append(rows)
            bar.update(len(rows) * world.size)  # the others go at about the same pace
            if time.monotonic() - saved >= job.checkpoint_s:
                checkpoint()
                saved = time.monotonic()
    except KeyboardInterrupt:
        checkpoint()  # what was done is kept; the next run resumes after it
        raise
    finally:
        bar.close()
    checkpoint()
