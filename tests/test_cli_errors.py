"""Every user error on the command line is one sentence on stderr and a non-zero exit:
unknown model, missing weights, a bad or outside query, an unreadable file."""
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from visattn import cli
from helpers import random_photo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(random_photo(48, 80, 0)).save(path)
    return path


@pytest.fixture
def text_file(tmp_path) -> Path:
    path = tmp_path / "letter.jpg"
    path.write_text("Dear reader, this is not a photo.\n" * 5)
    return path


def run(capsys, *argv) -> tuple[int, str]:
    status = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


@pytest.mark.parametrize("command", ["analyze", "stats", "ablate"])
def test_unknown_model(command, photo, tmp_path, capsys):
    target = photo.parent if command == "stats" else photo
    out = ["--out", tmp_path / "o"] if command != "ablate" else []
    status, err = run(capsys, command, target, "--model", "nope", *out)
    assert status == 2
    assert "unknown model 'nope'" in err and "list-models" in err


@pytest.mark.parametrize("command", ["analyze", "stats", "ablate"])
def test_missing_weights_offline(command, photo, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    target = photo.parent if command == "stats" else photo
    out = ["--out", tmp_path / "o"] if command != "ablate" else []
    status, err = run(capsys, command, target, "--model", "cbam_resnet50", *out)
    assert status == 1
    assert "pretrained weights are not cached" in err
    assert "python -m visattn download cbam_resnet50" in err and "--random" in err
    assert err.count("\n") == 1  # said once, not once per photo


def test_query_outside_the_photo_is_refused_not_clamped(photo, tmp_path, capsys):
    status, err = run(capsys, "analyze", photo, "--model", "tiny_nl", "--query", "80,10",
                      "--out", tmp_path / "o", "--quiet")
    assert status == 1
    assert "query (80, 10) is outside the 80×48 photo" in err
    assert not (tmp_path / "o" / "photo").exists()
    status, _ = run(capsys, "analyze", photo, "--model", "tiny_nl", "--query", "79,47",
                    "--out", tmp_path / "o", "--quiet")
    assert status == 0


@pytest.mark.parametrize("query", ["-1,5", "1,x", "1,2,3"])
def test_malformed_or_negative_queries_are_refused_by_the_parser(query, photo, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["analyze", str(photo), "--model", "tiny_nl", "--out", str(tmp_path),
                  f"--query={query}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "negative" in err or "X,Y in photo pixels" in err


def test_unreadable_files(text_file, tmp_path, capsys):
    status, err = run(capsys, "analyze", text_file, tmp_path / "missing.png", "--model",
                      "tiny_se", "--out", tmp_path / "o", "--quiet")
    assert status == 1
    assert f"FAILED {text_file}: This file is text" in err
    assert "No image file at" in err
    status, err = run(capsys, "ablate", text_file, "--model", "tiny_se")
    assert status == 1 and "This file is text" in err
    status, err = run(capsys, "stats", tmp_path / "nowhere", "--model", "tiny_se",
                      "--out", tmp_path / "s")
    assert status == 2 and "is not a folder" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    status, err = run(capsys, "stats", empty, "--model", "tiny_se", "--out", tmp_path / "s")
    assert status == 2 and "no images" in err


def test_the_process_exits_non_zero_without_a_traceback(photo):
    done = subprocess.run([sys.executable, "-m", "visattn", "ablate", str(photo), "--model",
                           "nope"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown model 'nope'")
    assert "Traceback" not in done.stderr
