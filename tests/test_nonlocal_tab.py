"""The Non-local tab's server side (issue 23): the first hover message holds the first
layer's inputs, `send_layers` answers the view's request for more once per layer and only
for its own analysis; the centre-crop sentence is said on the tab as in the summary."""
import gradio as gr
from PIL import Image

from visattn import hover
from visattn.ui import tab_nonlocal
from visattn.ui.analyse_button import run_analysis
from helpers import random_photo


def session_of(tmp_path, model, h=120, w=200):
    path = tmp_path / "p.png"
    Image.fromarray(random_photo(h, w, 4)).save(path)
    return run_analysis(str(path), model, pretrained=False)[0]


def ask(session, keys, analysis):
    return tab_nonlocal.send_layers(session, gr.EventData(None, {"keys": keys, "analysis": analysis}))[0]


def test_layers_are_sent_once_each_and_only_for_their_analysis(tmp_path):
    session = session_of(tmp_path, "botnet26t_256")
    first = tab_nonlocal.nonlocal_tab(session, 0.5, "jet")[0]
    keys = [layer["key"] for layer in first["layers"]]
    assert first["analysis"] == session.analysis and len(keys) == 3
    assert [bool(layer.get("pending")) for layer in first["layers"]] == [False, True, True]
    assert ask(session, keys, "another analysis") == gr.skip()
    more = ask(session, keys[1:2], session.analysis)
    assert more["layers_of"] == session.analysis and [l["key"] for l in more["layers"]] == keys[1:2]
    assert ask(session, keys[:2], session.analysis) == gr.skip()  # both already sent
    rest = ask(session, keys, session.analysis)
    assert [l["key"] for l in rest["layers"]] == keys[2:]
    assert rest["layers"][0] == hover.payload(session.trace)["layers"][2]
    assert ask(session, "not a list", session.analysis) == gr.skip()


def test_the_centre_crop_is_said_on_the_tab(tmp_path):
    from visattn.ui.analyse_button import crop_note
    wide = session_of(tmp_path, "botnet26t_256", 120, 300)  # a fixed 256 x 256 centre crop
    text = tab_nonlocal.nonlocal_tab(wide, 0.5, "jet")[1]
    note = crop_note(wide.trace)
    x0, _, x1, _ = wide.trace.geometry.input_box()
    assert x1 - x0 < 300 and note and note in text
    whole = session_of(tmp_path, "tiny_nl", 120, 120)  # square: all of it seen
    x0, y0, x1, y1 = whole.trace.geometry.input_box()
    assert (x1 - x0, y1 - y0) == (120, 120) and "centre" not in tab_nonlocal.nonlocal_tab(whole, 0.5, "jet")[1]
