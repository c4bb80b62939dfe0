"""The app with the twin labeller and DNLNet: the twin scene runs at the size the network
was trained at, the Non-local tab says what the twin network was trained for, and a DNL
row is shown beside its unary map."""
import matplotlib
import numpy as np
from scipy.stats import spearmanr

from visattn import ui
from visattn.records import Affinity, Segmentation, SpatialMap
from visattn.weights import ASSETS

TWIN_EXAMPLE = ASSETS / "examples" / "twins_10.png"


def test_twin_scene_on_tiny_nl_twins_runs_at_its_training_size_and_says_why():
    session, label, summary, _, _ = ui.run_analysis(str(TWIN_EXAMPLE), "tiny_nl_twins")
    top = label
    trace = session.trace
    assert trace.geometry.input_size == (64, 64)  # not the ADE20K processing size
    assert isinstance(trace.prediction, Segmentation) and set(top) <= {
        "background", "unique object", "twin object"}
    assert (trace.prediction.class_map == 2).any()  # it finds the twins
    key = next(r.key for r in trace if isinstance(r, Affinity))
    _, info, _ = ui.show_affinity(session, key, ui.MEAN_OF_HEADS, None, 0.5, "jet")
    assert ui.NONLOCAL_NOTES["tiny_nl_twins"] in info
    other, *_ = ui.run_analysis(str(TWIN_EXAMPLE), "tiny_nl")
    key = next(r.key for r in other.trace if isinstance(r, Affinity))
    _, info, _ = ui.show_affinity(other, key, ui.MEAN_OF_HEADS, None, 0.5, "jet")
    assert ui.NONLOCAL_NOTES["tiny_nl_twins"] not in info


JET = np.round(matplotlib.colormaps["jet"](np.linspace(0, 1, 256))[:, :3] * 255)


def read_jet(pixels: np.ndarray) -> np.ndarray:
    """The [0, 1] value of each (n, 3) pixel's nearest jet colour."""
    d = ((pixels[:, None, :].astype(np.float64) - JET[None]) ** 2).sum(-1)
    return d.argmin(1) / 255


def test_a_dnl_row_is_shown_beside_its_unary_map():
    """Fully opaque colours, read back at every cell's centre: the left panel is the centre
    pixel's row (softmax of the record's scaled q . k), the right one the unary map, with a
    white gap between; a plain Non-local network shows its row alone."""
    photo = str(ASSETS / "examples" / "chelsea.jpg")
    session, *_ = ui.run_analysis(photo, "dnl_r50_d8_ade20k", pretrained=False, seg_size=256)
    trace = session.trace
    (rec,) = [r for r in trace if isinstance(r, Affinity)]
    (unary,) = [r for r in trace if isinstance(r, SpatialMap) and r.name == "unary map"]
    image, info, _ = ui.show_affinity(session, rec.key, ui.MEAN_OF_HEADS, None, 1.0, "jet")
    width = (image.shape[1] - 8) // 2  # two panels as wide as the shown photo, 8 px apart
    assert (image[:, width:width + 8] == 255).all()
    gh, gw = rec.grid
    centre = (gh // 2) * gw + gw // 2
    assert rec.heads == 1 and rec.extra is None
    q, k = rec.queries[0].astype(np.float64), rec.keys[0].astype(np.float64)
    logits = rec.scale * k @ q[centre]
    row = np.exp(logits - logits.max())
    scale = width / trace.geometry.image_size[0]
    at = np.array([[(y0 + y1) / 2 * scale, (x0 + x1) / 2 * scale] for x0, y0, x1, y1 in
                   (trace.geometry.cell_box(c, rec.grid) for c in range(gh * gw))]).astype(int)
    left = read_jet(image[at[:, 0], at[:, 1]])
    right = read_jet(image[at[:, 0], width + 8 + at[:, 1]])
    assert spearmanr(left, row).statistic > 0.95
    assert spearmanr(right, unary.values.ravel()).statistic > 0.95
    # two different maps: the right panel follows the unary map, clearly not the row (random
    # weights may correlate the two somewhat; seeded, they do at about 0.7)
    assert spearmanr(right, unary.values.ravel()).statistic > spearmanr(right, row).statistic + 0.2
    assert ui.UNARY_NOTE in info
    plain, *_ = ui.run_analysis(photo, "nonlocal_r50_d8_ade20k", pretrained=False, seg_size=256)
    key = next(r.key for r in plain.trace if isinstance(r, Affinity))
    image, info, _ = ui.show_affinity(plain, key, ui.MEAN_OF_HEADS, None, 0.5, "jet")
    assert ui.UNARY_NOTE not in info and image.shape[1] == width
