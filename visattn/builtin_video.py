"""The built-in entries of space-time attention classes (video networks).

mmcv's NonLocal3d (models/i3d_nl.py keeps its attribute names): `theta` gives the queries
on the block's (T, H, W) volume, `phi` the keys after its max-pool when the block
sub-samples, so the record's rows are over the keys the block really uses.
"""
from __future__ import annotations

from .models.i3d_nl import NonLocal3d
from .probes import BlockCall, as_array
from .records import Record
from .records_video import SpaceTimeAffinity
from .registry import register_attention


def _spacetime(c: BlockCall) -> list[Record]:
    """theta (C', T, H, W) and phi (C', T', H', W') of one call -> SpaceTimeAffinity."""
    theta, phi = c.need("theta"), c.need("phi")
    queries = as_array(theta.flatten(1).transpose(0, 1))[None].copy(order="C")  # (1, N, C')
    keys = as_array(phi.flatten(1).transpose(0, 1))[None].copy(order="C")  # (1, M, C')
    common = c.common("affinity") | {"grid": tuple(int(s) for s in theta.shape[1:])}
    return [SpaceTimeAffinity(queries=queries, keys=keys,
                              key_grid=tuple(int(s) for s in phi.shape[1:]),
                              scale=float(c.module.scale), **common)]


register_attention(NonLocal3d, family="Non-local", kind="custom", taps=("theta", "phi"),
                   build=_spacetime, neutral="identity")
