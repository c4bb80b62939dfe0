"""Clips through the page's API (issue 23): /analyze_video beside /analyze and /affinity, a
sentence for a file that is no clip or a photo network given a clip, and the network list
that follows the input (photo networks for a photo, clip networks for a clip)."""
import cv2
import numpy as np
import pytest

from visattn import scenes, zoo_video
from visattn.ui import clip_input, inputs
from visattn.video import write_webm


@pytest.fixture
def client(server_url, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    from gradio_client import Client
    return Client(server_url, verbose=False, analytics_enabled=False,
                  download_files=str(tmp_path / "downloads"))


def webm(tmp_path, seed=2):
    return write_webm(scenes.moving_clip(seed).frames, tmp_path / "clip.webm", fps=4)


def test_analyze_video_beside_analyze_and_affinity(client, tmp_path):
    from gradio_client import handle_file
    names = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/analyze", "/affinity", "/analyze_video"} <= set(names)
    params = [p["parameter_name"] for p in names["/analyze_video"]["parameters"]]
    assert params[:3] == ["video_path", "model_name", "pretrained"]
    top, summary, gallery, name = client.predict(handle_file(str(webm(tmp_path))),
                                                 "tiny_nl_clips", True, api_name="/analyze_video")
    assert name == "tiny_nl_clips" and "4 frames of this clip" in summary
    # the classes it gave each frame, then the frames it saw (no still thumbnail of a
    # space-time row); its prediction: the classes' shares of the clip's pixels
    assert [g["caption"] for g in gallery] == ["classes in each frame, with legend"] + \
        [f"frame {k}" for k in range(4)]
    assert top["label"] == "background" and len(top["confidences"]) == 4


def test_affinity_of_a_clip_takes_a_frame(client, tmp_path):
    """/affinity after /analyze_video: its new last parameter `frame` picks the pixel's frame;
    the row is the server analysis' row of that position across time, its cell computed
    here from the clip's own time cells; a frame outside the clip gets a sentence."""
    import visattn
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    params = [p["parameter_name"] for p in
              client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/affinity"]["parameters"]]
    assert params[-1] == "frame" and params[:4] == ["layer", "head", "x", "y"]
    clip = webm(tmp_path)
    client.predict(handle_file(str(clip)), "tiny_nl_clips", True, api_name="/analyze_video")
    trace = visattn.analyze_video(clip, "tiny_nl_clips")
    rec = trace["nl:affinity"]
    T, h, w = rec.grid
    for frame, (x, y) in ((0, (10, 50)), (3, (40, 12))):
        image, numbers = client.predict("nl:affinity", "", x, y, 0.5, "jet", False, frame,
                                        api_name="/affinity")
        s = trace.geometry.to_grid(x, y, (h, w))
        cell = rec.cell(trace.clip.time_cell(frame, T), *divmod(s, w))
        want = rec.row(cell).ravel()
        assert (numbers["frame"], numbers["cell"], numbers["grid"]) == (frame, cell, [T, h, w])
        assert np.abs(np.asarray(numbers["row"]) - want).max() <= 1e-5 * want.max()
        assert numbers["key_grid"] == list(rec.key_grid)
    with pytest.raises(AppError, match="frame is a whole number from 0 to 3"):
        client.predict("nl:affinity", "", 5, 5, 0.5, "jet", False, 4, api_name="/affinity")


def test_bad_clips_and_photo_networks_get_sentences(client, tmp_path):
    from gradio_client import handle_file
    still = tmp_path / "still.mp4"
    ok, png = cv2.imencode(".png", np.zeros((20, 20, 3), np.uint8))
    still.write_bytes(png.tobytes())
    with pytest.raises(Exception, match=r"(?i)still image|not a video"):
        client.predict(handle_file(str(still)), "tiny_nl_clips", True,
                       api_name="/analyze_video")
    with pytest.raises(Exception, match="tiny_nl is a photo network; for a clip choose one of .*tiny_nl_clips"):
        client.predict(handle_file(str(webm(tmp_path))), "tiny_nl", True,
                       api_name="/analyze_video")


def test_the_network_list_follows_the_input():
    clip_input.ensure_clip_cards()
    clips = {v for _, v in inputs.model_choices(clips=True)}
    photos = {v for _, v in inputs.model_choices()}
    assert clips == set(zoo_video.names()) >= {"tiny_nl_clips", "i3d_nl_r50_kinetics400"}
    assert not clips & photos and "tiny_nl" in photos
    assert clip_input.choose_for("clip", "tiny_nl", True).value == "tiny_nl_clips"
    assert clip_input.choose_for("clip", "i3d_nl_r50_kinetics400", True).value == "i3d_nl_r50_kinetics400"
    back = clip_input.choose_for("photo", "tiny_nl_clips", True)
    assert back.value not in clips and {v for _, v in back.choices} == photos
    assert inputs.default_model()[0] not in clips
