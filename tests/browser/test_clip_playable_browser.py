"""A clip the browser's player cannot show (OpenCV's mp4v, the only mp4 its wheels write)
is said in a sentence beside Gradio's own "Video not playable", and still analysed; a VP8
WebM plays and gets no such sentence."""
import cv2
import pytest
from playwright.sync_api import expect

from visattn import scenes
from visattn.video import write_webm

pytestmark = pytest.mark.browser
SAID = "cannot play this clip"


def mp4v_clip(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"mp4v"), 4,
                             frames.shape[2:0:-1])
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_an_mp4v_clip_is_said_and_analysed_a_webm_plays(server_url, page, tmp_path):
    frames = scenes.moving_clip(5).frames
    page.goto(server_url)
    page.locator("#clip input[type=file]").set_input_files(str(write_webm(frames, tmp_path / "c.webm",
                                                                          scale=4)))
    expect(page.locator("#model input")).to_have_value(__import__("re").compile("tiny_nl_clips"),
                                                       timeout=30_000)
    page.wait_for_timeout(1500)
    assert page.get_by_text(SAID).count() == 0  # a clip the player shows is not remarked on
    page.locator("#clip button[aria-label='Clear']").click()
    page.locator("#clip input[type=file]").set_input_files(str(mp4v_clip(tmp_path / "c.mp4", frames)))
    expect(page.get_by_text(SAID)).to_be_visible(timeout=30_000)
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("The network saw 4 frames", timeout=60_000)
