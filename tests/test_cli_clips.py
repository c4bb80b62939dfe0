"""`visattn analyze clip.webm --model tiny_nl_clips --html` (issue 23): a clip goes through
analyze_video into a folder with its frames, meta.json and an offline viewer.html of the
clip; a file that is no clip is said and the exit status is 1."""
import json

import cv2
import numpy as np

from visattn import cli, hover, scenes
from visattn.video import write_webm


def test_a_clip_through_the_command_line(tmp_path, capsys):
    path = write_webm(scenes.moving_clip(6).frames, tmp_path / "moving.webm", fps=4)
    out = tmp_path / "out"
    assert cli.main(["analyze", str(path), "--model", "tiny_nl_clips", "--html", "--out", str(out)]) == 0
    meta = json.loads((out / "moving" / "meta.json").read_text())
    assert meta["model"] == "tiny_nl_clips" and meta["frames"] == 4 and meta["indices"] == [0, 1, 2, 3]
    assert meta["layers"] == [{"key": "nl:affinity", "grid": [4, 16, 16], "key_grid": [4, 8, 8], "heads": 1}]
    assert len(list((out / "moving" / "frames").glob("*.png"))) == 4
    html = (out / "moving" / "viewer.html").read_text()
    assert '"clip":{"frames":["data:image/png' in html and f'"version":{hover.SCHEMA_VERSION}' in html
    assert "http://" not in html and "https://" not in html  # nothing to fetch: offline

    still = tmp_path / "still.mp4"
    still.write_bytes(cv2.imencode(".png", np.zeros((20, 20, 3), np.uint8))[1].tobytes())
    assert cli.main(["analyze", str(still), "--model", "tiny_nl_clips", "--out", str(out)]) == 1
    assert "still PNG image, not a video" in capsys.readouterr().err
