"""What an export holds: each query once, the automatic centre query only where nothing was
pinned, the scores, maps at the photo's own size, and the offline viewer."""
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.distance import jensenshannon

import visattn
from visattn.export import Query, export_files, export_zip

from helpers import random_photo


def trace_of(w=150, h=110):
    rgb = random_photo(h, w, 0)
    return visattn.analyze(rgb, "tiny_nl")


def js_to_lattice(rec, cell):
    """The query dependence of a row, from the record's queries and keys: the mean
    Jensen-Shannon divergence (bits) of softmax(scale q_cell . k) to the rows of the centres
    of a 4 x 4 lattice of equal bands over the grid, the query itself left out."""
    assert rec.heads == 1 and rec.extra is None  # tiny_nl: one head, plain dot products
    q, k = rec.queries[0].astype(np.float64), rec.keys[0].astype(np.float64)

    def row(i):
        logits = rec.scale * k @ q[i]
        e = np.exp(logits - logits.max())
        return e / e.sum()
    h, w = rec.grid
    centres = [int((r + 0.5) * h / 4) * w + int((c + 0.5) * w / 4) for r in range(4) for c in range(4)]
    return np.mean([jensenshannon(row(cell), row(j), base=2) ** 2 for j in centres if j != cell])


def test_queries_once_with_their_scores_and_the_centre_only_when_nothing_is_pinned():
    trace = trace_of()
    rec = trace.select(visattn.Affinity)[0]
    meta = json.loads(export_files(trace)["meta.json"])
    (auto,) = meta["queries"]
    x0, y0, x1, y1 = trace.geometry.cell_box(auto["cell"], rec.grid)
    assert auto["automatic"] and auto["cell"] == (rec.grid[0] // 2) * rec.grid[1] + rec.grid[1] // 2
    assert x0 <= auto["x"] < x1 and y0 <= auto["y"] < y1
    q = Query(rec.key, 40, 30)
    files = export_files(trace, [q, Query(rec.key, 100, 80), q])
    meta = json.loads(files["meta.json"])
    assert [(p["x"], p["y"], p["automatic"]) for p in meta["queries"]] == [(40, 30, False), (100, 80, False)]
    cell = trace.geometry.to_grid(40, 30, rec.grid)
    assert meta["queries"][0]["query_dependence"] == pytest.approx(js_to_lattice(rec, cell), rel=1e-5)
    assert meta["queries"][0]["query_dependence"] > 1e-4  # tiny_nl's rows differ, a little
    assert sum(name.startswith("queries/") for name in files) == 2


def test_maps_are_at_the_photo_size_and_the_zip_has_the_viewer():
    trace = trace_of(150, 110)
    rec = trace.select(visattn.Affinity)[0]
    data = export_zip(trace, [Query(rec.key, 10, 20)])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        png = [n for n in zf.namelist() if n.startswith("queries/")][0]
        image = Image.open(io.BytesIO(zf.read(png)))
        assert image.size[0] == 150 and image.size[1] == 110 + 34  # photo + colour bar
        assert zf.read("viewer.html").startswith(b"<!doctype html>")
    assert "viewer.html" not in export_files(trace)  # the command line writes it on request
