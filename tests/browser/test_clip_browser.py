"""Clips in a real browser (issue 23): a video given beside the photo is what Analyse
analyses, the picker then lists the clip networks, the Non-local tab shows every frame and
the row of the pointed position on all of them, computed in the page (no /gradio_api/
request while pointing) and equal to the server's analysis of the same file; `[` and `]`
move the query in time, arrow keys in space; a file that is not a video gets a sentence."""
import os
import re

import cv2
import numpy as np
import pytest
from playwright.sync_api import expect

import visattn
from visattn import scenes
from visattn.video import write_webm

pytestmark = pytest.mark.browser


def make_clip(tmp_path, seed=11):
    """A generated moving clip (scenes.moving_clip) as a VP8 webm, which the browser plays."""
    return write_webm(scenes.moving_clip(seed).frames, tmp_path / "clip.webm", fps=4)


def analyse_clip(page, url, clip):
    page.goto(url)
    page.locator("#clip input[type=file]").set_input_files(str(clip))
    expect(page.locator("#model input")).to_have_value(re.compile("tiny_nl_clips"), timeout=30_000)
    page.locator("#analyse").click()


def open_clip_view(page):
    page.get_by_role("tab", name="Non-local").click()
    page.wait_for_function("() => window.visattn && window.visattn.lastRow && "
                           "window.visattn.lastRow.frame !== undefined", timeout=60_000)
    canvas = page.locator("#nl-hover canvas")
    canvas.scroll_into_view_if_needed()
    return canvas


def point(page, canvas, frame, fx, fy, columns, frames):
    """Move the pointer to a fraction (fx, fy) of frame `frame` in the grid -> lastRow."""
    box = canvas.bounding_box()
    rows = -(-frames // columns)
    tw, th = box["width"] / columns, box["height"] / rows
    before = page.evaluate("window.visattn.drawn")
    page.mouse.move(box["x"] + (frame % columns + fx) * tw, box["y"] + (frame // columns + fy) * th)
    page.wait_for_function("n => window.visattn.drawn > n", arg=before, timeout=10_000)
    return page.evaluate("window.visattn.lastRow")


def press(page, canvas, key):
    before = page.evaluate("window.visattn.drawn")
    canvas.press(key)
    page.wait_for_function("n => window.visattn.drawn > n", arg=before, timeout=10_000)
    return page.evaluate("window.visattn.lastRow")


def test_clip_rows_in_the_page_are_the_servers_and_keys_move_in_space_and_time(
        server_url, page, tmp_path, artifacts):
    clip = make_clip(tmp_path)
    analyse_clip(page, server_url, clip)
    expect(page.locator("#summary")).to_contain_text("4 frames of this clip", timeout=90_000)
    canvas = open_clip_view(page)
    trace = visattn.analyze_video(clip, "tiny_nl_clips")  # what the server analysed
    rec = trace["nl:affinity"]
    T, h, w = rec.grid
    api_calls = []
    page.on("request", lambda r: api_calls.append(r.url) if "/gradio_api/" in r.url else None)
    rng = np.random.default_rng(3)
    for frame in range(4):
        for fx, fy in rng.uniform(0.05, 0.95, (3, 2)):
            row = point(page, canvas, frame, fx, fy, columns=4, frames=4)
            assert row["frame"] == frame and row["grid"] == [T, h, w]
            assert row["x"] == int(fx * 64) or abs(row["x"] - fx * 64) <= 1
            assert abs(row["y"] - fy * 64) <= 1
            s = trace.geometry.to_grid(row["x"], row["y"], (h, w))
            cell = rec.cell(trace.clip.time_cell(frame, T), *divmod(s, w))
            want = rec.row(cell).ravel()
            assert row["cell"] == cell
            assert np.abs(np.asarray(row["row"]) - want).max() <= 2e-3 * want.max()
            peak = int(np.argmax(want)) // (want.size // rec.key_grid[0])
            assert row["peakFrames"] == list(trace.clip.frame_span(peak, rec.key_grid[0]))
    # keys: ] and [ move one frame (same pixel), arrows one cell in space (same frame)
    start = point(page, canvas, 1, 0.5, 0.5, columns=4, frames=4)
    later = press(page, canvas, "]")
    assert later["frame"] == 2 and (later["x"], later["y"]) == (start["x"], start["y"])
    assert later["cell"] == start["cell"] + h * w
    back = press(page, canvas, "[")
    assert back["frame"] == 1 and back["cell"] == start["cell"]
    right = press(page, canvas, "ArrowRight")
    assert right["frame"] == 1 and right["cell"] == start["cell"] + 1
    down = press(page, canvas, "ArrowDown")
    assert down["cell"] == start["cell"] + 1 + w
    assert not api_calls, f"pointing sent requests: {api_calls[:3]}"
    expect(page.locator("#nl-hover .va-numbers")).to_contain_text("Where it looks across time")
    page.screenshot(path=os.path.join(artifacts, "hover_clip_tiny_nl_clips.png"), full_page=False)


def test_a_file_that_is_not_a_video_gets_a_sentence(server_url, page, tmp_path):
    fake = tmp_path / "photo.mp4"
    cv2.imwrite(str(fake.with_suffix(".png")), np.zeros((20, 20, 3), np.uint8))
    fake.write_bytes(fake.with_suffix(".png").read_bytes())  # a still image renamed .mp4
    analyse_clip(page, server_url, fake)
    expect(page.get_by_text(re.compile(r"still image|not a video|damaged|no frames", re.I)).first
           ).to_be_visible(timeout=30_000)
