"""The README's twin figure: the same query pixel, on one twin of an example twin scene, in
`tiny_nl_twins` (rows trained to find the twin) and in `tiny_nl` (the scene classifier),
drawn by the app's own Non-local view (`render.affinity_view`).

    python docs/make_twin_figure.py          # writes docs/twins.png
"""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from visattn import pipeline, render, scenes  # noqa: E402
from visattn.records import Pairwise  # noqa: E402

SEED = 10  # assets/examples/twins_10.png


def main() -> None:
    scene = scenes.twin_scene(SEED)
    i, _ = scene.twins[0]
    ys, xs = np.nonzero(scene.masks[i])
    x, y = int(np.median(xs)), int(np.median(ys))  # a pixel near the middle of twin i
    panels = []
    for name in ("tiny_nl_twins", "tiny_nl"):
        trace = pipeline.analyze(ROOT / "assets" / "examples" / f"twins_{SEED}.png", name)
        rec = next(r for r in trace if isinstance(r, Pairwise))
        cell = trace.geometry.to_grid(x, y, rec.grid, clamp=True)
        panels.append(render.affinity_view(trace, rec, cell))
    out = ROOT / "docs" / "twins.png"
    from PIL import Image
    Image.fromarray(render.side_by_side(*panels, gap=16)).save(out)
    print(f"wrote {out}: query pixel ({x}, {y}) on object {i}")


if __name__ == "__main__":
    main()
