"""Folder runs under `torchrun`: which process this is, its share of the images and the
joins at the end. torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them (or with
one process) this is a world of one and nothing here touches torch.distributed.

Images are split by index (batch b of the images still to do goes to rank b mod N): no
padding, so no image is counted twice whatever N, and an image shares its batch with the
same images as in one process. The statistics are exact integer sums (excitation._Exact), so
one all_reduce gives the same bits as one process. gloo on CPU, NCCL on CUDA devices.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: Optional[torch.device] = None  # the device collectives use (CPU for gloo)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, items: Sequence, batch: int = 1) -> list:
        """This process's items, split by index with no padding: of the runs of `batch`
        consecutive items, every size-th starting at its rank. So each process's batches
        are the batches one process would make, and every image meets the same kernels."""
        runs = [items[i:i + batch] for i in range(0, len(items), batch)]
        return [item for run in runs[self.rank::self.size] for item in run]

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed as dist
            dist.barrier()

    def gather(self, obj: Any) -> list:
        """Every process's `obj`, in rank order, on every process."""
        if self.size == 1:
            return [obj]
        import torch.distributed as dist
        out: list = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def sum(self, vector: np.ndarray) -> np.ndarray:
        """The int64 `vector` summed over every process (one all_reduce)."""
        if self.size == 1:
            return vector
        import torch.distributed as dist
        t = torch.from_numpy(np.ascontiguousarray(vector, np.int64)).to(self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu().numpy()

    def close(self) -> None:
        if self.size > 1:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()


def launched(env=os.environ) -> bool:
    """Started by torchrun with more than one process."""
    return int(env.get("WORLD_SIZE", "1")) > 1


def rank_device(requested: Optional[str], env=os.environ) -> Optional[str]:
    """The device this process runs on: under torchrun, `cuda` (or no --device on a CUDA
    machine) means this process's own GPU, cuda:LOCAL_RANK."""
    if not launched(env):
        return requested
    if requested in (None, "cuda") and torch.cuda.is_available():
        return f"cuda:{int(env.get('LOCAL_RANK', '0'))}"
    return requested


def start(device: torch.device, env=os.environ) -> World:
    """Join the process group torchrun describes (NCCL for CUDA, else gloo)."""
    if not launched(env):
        return World()
    import torch.distributed as dist
    rank, size = int(env["RANK"]), int(env["WORLD_SIZE"])
    local = int(env.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", rank=rank, world_size=size, device_id=device)
        return World(rank, size, local, device)
    dist.init_process_group("gloo", rank=rank, world_size=size)
    return World(rank, size, local, torch.device("cpu"))


def joined_stats(world: World, stats, labels):
    """The statistics of every process, summed exactly with one all_reduce (the blocks and
    classes each process saw are gathered first, so every vector has the same layout)."""
    if world.size == 1:
        return stats
    seen = world.gather((stats.stages, stats.layout()))
    stages: dict = {}
    for s, _ in seen:
        for key, stage in s.items():
            stages.setdefault(key, stage)
    layout = sorted({tuple(entry) for _, lay in seen for entry in lay})
    layout = [list(e) for e in layout]
    from .excitation import ExcitationStats
    return ExcitationStats.unpacked(labels, stages, layout, world.sum(stats.packed(layout)))
