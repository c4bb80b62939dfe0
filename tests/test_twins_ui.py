"""The app with the twin labeller and DNLNet: the twin scene runs at the size the network
was trained at, the Non-local tab says what the twin network was trained for, and a DNL
row is shown beside its unary map."""
import numpy as np

from visattn import render, ui
from visattn.export import centre_cell
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


def test_a_dnl_row_is_shown_beside_its_unary_map():
    photo = str(ASSETS / "examples" / "chelsea.jpg")
    session, *_ = ui.run_analysis(photo, "dnl_r50_d8_ade20k", pretrained=False, seg_size=256)
    trace = session.trace
    (rec,) = [r for r in trace if isinstance(r, Affinity)]
    (unary,) = [r for r in trace if isinstance(r, SpatialMap) and r.name == "unary map"]
    image, info, _ = ui.show_affinity(session, rec.key, ui.MEAN_OF_HEADS, None, 0.5, "jet")
    alone = render.affinity_view(trace, rec, centre_cell(rec))
    beside = render.spatial_view(trace, unary)
    assert image.shape[1] == alone.shape[1] + 8 + beside.shape[1]
    np.testing.assert_array_equal(image[:alone.shape[0], :alone.shape[1]], alone)
    assert ui.UNARY_NOTE in info
    plain, *_ = ui.run_analysis(photo, "nonlocal_r50_d8_ade20k", pretrained=False, seg_size=256)
    key = next(r.key for r in plain.trace if isinstance(r, Affinity))
    image, info, _ = ui.show_affinity(plain, key, ui.MEAN_OF_HEADS, None, 0.5, "jet")
    assert ui.UNARY_NOTE not in info and image.shape[1] < 2 * alone.shape[1]
