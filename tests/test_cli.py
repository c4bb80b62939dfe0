"""python -m visattn list-models | download: what a terminal user sees."""
import subprocess
import sys
import time

from safetensors.torch import save as save_safetensors

from visattn import cli, zoo

from local_servers import hub_file, serve


def test_download_fetches_verifies_and_says_where(monkeypatch, capsys):
    card = zoo.get("botnet26t_256")
    data = save_safetensors(card.source.build().state_dict())
    route = f"/{card.weights.repo_id}/resolve/main/{card.weights.filename}"
    with serve({route: hub_file(data)}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        assert cli.main(["download", card.name]) == 0
        out = capsys.readouterr().out
        assert f"{card.name}: fetched, {len(data) / 1e6:.1f} MB, verified -> " in out
        assert cli.main(["download", card.name]) == 0
        assert f"{card.name}: already cached" in capsys.readouterr().out
    assert card.availability() == "cached"


def test_download_all_offline_reports_each_failure_and_exits_nonzero(monkeypatch, capsys):
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    start = time.perf_counter()
    assert cli.main(["download", "--all"]) == 1
    assert time.perf_counter() - start < 10
    captured = capsys.readouterr()
    for card in zoo.cards():
        if card.availability() == "bundled":  # shipped in assets/: verified, nothing to fetch
            assert f"{card.name}: bundled with VisAttn" in captured.out
        else:
            assert f"{card.name}: FAILED" in captured.err
            assert f"python -m visattn download {card.name}" in captured.err


def test_unknown_names_and_no_names(capsys):
    assert cli.main(["download", "nope"]) == 1
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert cli.main(["download"]) == 2


def test_list_models_shows_every_card_with_state_and_size(capsys):
    assert cli.main(["list-models"]) == 0
    out = capsys.readouterr().out
    for card in zoo.cards():
        line = next(line for line in out.splitlines() if line.startswith(card.name + " "))
        assert card.family in line and card.availability() in line
        assert f"{card.download_mb:.0f}M" in line


def test_module_entry_point_help():
    done = subprocess.run([sys.executable, "-m", "visattn", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert all(cmd in done.stdout for cmd in ("analyze", "download", "list-models", "view"))


def test_analyze_writes_overlays_arrays_and_meta_per_image(tmp_path, capsys):
    import json

    import numpy as np
    from PIL import Image
    photos = []
    for k, size in enumerate([(120, 80), (90, 140)]):
        p = tmp_path / f"photo{k}.png"
        Image.fromarray(np.random.default_rng(k).integers(0, 256, (size[1], size[0], 3),
                                                          dtype=np.uint8)).save(p)
        photos.append(str(p))
    photos.append(photos[0])  # the same name twice gets its own folder
    out = tmp_path / "out"
    assert cli.main(["analyze", *photos, "--model", "tiny_nl", "--query", "60,40",
                     "--query", "10,10", "--out", str(out), "--quiet"]) == 0
    assert "3 of 3 images analysed" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["photo0", "photo0_2", "photo1"]
    meta = json.loads((out / "photo0" / "meta.json").read_text())
    assert meta["model"] == "tiny_nl" and [q["x"] for q in meta["queries"]] == [60, 10]
    arrays = np.load(out / "photo0" / "arrays.npz")
    assert "nl2:affinity/row_x60_y40" in arrays and arrays["image"].shape == (80, 120, 3)
    assert (out / "photo0" / "queries" / "nl2_affinity_x60_y40.png").exists()
    # --layers keeps only matching records
    assert cli.main(["analyze", photos[1], "--model", "tiny_cbam", "--layers", "*spatial*",
                     "--out", str(tmp_path / "sp"), "--quiet"]) == 0
    meta = json.loads((tmp_path / "sp" / "photo1" / "meta.json").read_text())
    assert meta["records"] and all("spatial" in r["key"] for r in meta["records"])


def test_analyze_refuses_unknown_models_and_bad_queries(capsys):
    assert cli.main(["analyze", "x.png", "--model", "nope", "--out", "o"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    import pytest
    with pytest.raises(SystemExit):
        cli.main(["analyze", "x.png", "--model", "tiny_nl", "--out", "o", "--query", "12"])
    assert "X,Y in photo pixels" in capsys.readouterr().err
