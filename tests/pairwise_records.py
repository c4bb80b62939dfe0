"""Random pairwise records of every kind the hover view computes, on a random photo: the
inputs of the tests of visattn/static/hover_math.js (Node) and the hover view (Chromium)."""
import numpy as np

from visattn.geometry import Geometry
from visattn.records import Affinity, CrissCross, Distribute, RelativePosition, Trace, TwoHop


def random_trace(seed=0, grid=(9, 11), photo=(230, 150), geometry=None):
    """One record of each pairwise kind (several heads, relative positions both ways) on a
    random photo."""
    rng = np.random.default_rng(seed)
    n = grid[0] * grid[1]
    f = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    common = dict(family="test", grid=grid)

    def rel(d):
        return RelativePosition(f(2 * grid[0] - 1, d), f(2 * grid[1] - 1, d))

    cc1 = CrissCross(queries=f(1, n, 4), keys=f(1, n, 4), scale=1.0, layer="cc", name="criss-cross",
                     **common)
    cc2 = CrissCross(queries=f(1, n, 4), keys=f(1, n, 4), scale=1.0, layer="cc", name="criss-cross",
                     call=1, **common)
    gather = rng.random((4, n)); gather /= gather.sum(1, keepdims=True)
    dist = rng.random((4, n)); dist /= dist.sum(0, keepdims=True)
    records = [
        Affinity(queries=f(1, n, 8), keys=f(1, n, 8), scale=0.4, layer="nl", name="affinity", **common),
        Affinity(queries=f(3, n, 5), keys=f(3, n, 5), scale=0.5, layer="mh", name="affinity", **common),
        Affinity(queries=f(2, n, 6), keys=f(2, n, 6), scale=0.3, extra=rel(6), layer="bot",
                 name="affinity", **common),
        Affinity(queries=f(2, n, 6), keys=f(2, n, 6), scale=0.3, extra=rel(6), extra_scaled=True,
                 layer="bot2", name="affinity", **common),
        cc1, cc2, TwoHop(first=cc1, second=cc2, layer="cc", name="two-hop", **common),
        Distribute(gather=gather.astype(np.float32), distribute=dist.astype(np.float32), layer="a2",
                   name="distribute rows", **common)]
    image = rng.integers(0, 256, (photo[1], photo[0], 3), dtype=np.uint8)
    geometry = geometry or Geometry.center_crop(photo, 160, (144, 176))
    return Trace("random", records, geometry, image=image)
