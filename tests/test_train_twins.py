"""The twin-scene labellers: the training script runs (a few steps, into a scratch folder),
and the shipped weights give the manifest's held-out accuracies: with its Non-local block
the network tells twins from unique objects, without it (the control) it cannot."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tools import train_twins
from tools.training import to_tensor
from visattn import scenes, zoo
from visattn.zoo import MANIFEST

ENTRIES = {k: e for k, e in json.loads(MANIFEST.read_text()).items() if e.get("task") == "segment"}


def test_both_labellers_are_shipped_small_with_their_recipe():
    assert set(ENTRIES) == set(train_twins.MODELS)
    for name, e in ENTRIES.items():
        assert (MANIFEST.parent / e["file"]).stat().st_size < 1e6
        assert e["command"].startswith(f"python tools/train_twins.py --model {name}")
        assert e["train_data_seed"] != e["val_data_seed"] and e["code_revision"]
        assert e["train_cpu_seconds"] <= 15 * 60 and e["threads"] == 1
        assert zoo.get(name).availability() == "bundled" and zoo.get(name).task == "segment"
    # the same network, with and without the Non-local block
    nl = load_file(str(MANIFEST.parent / ENTRIES["tiny_nl_twins"]["file"]))
    none = load_file(str(MANIFEST.parent / ENTRIES["tiny_none_twins"]["file"]))
    assert {k for k in nl if not k.startswith("nl.")} == set(none)
    assert {k.split(".")[1] for k in nl if k.startswith("nl.")} == {"g", "theta", "phi", "conv_out"}


@pytest.fixture(scope="module")
def held_out():
    e = ENTRIES["tiny_nl_twins"]
    images, masks, twins = scenes.make_twin_batch(e["val_data_seed"], e["val_size"])
    labels = np.zeros(images.shape[:3], np.int64)  # 0 background, 1 unique, 2 twin
    for k, (m, (i, j)) in enumerate(zip(masks, twins)):
        labels[k][m.any(0)] = 1
        labels[k][m[i] | m[j]] = 2
    return images, labels


def accuracies(name, images, labels):
    e = ENTRIES[name]
    model = zoo.build(zoo.get(name), pretrained=True)
    x = to_tensor(images, np.array(e["mean"], np.float32), np.array(e["std"], np.float32))
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 200]) for i in range(0, len(x), 200)]).numpy()
    on = labels > 0
    said_twin = (logits[:, 2] > logits[:, 1])[on]
    return float((logits.argmax(1) == labels).mean()), float((said_twin == (labels[on] == 2)).mean())


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_manifest_accuracies_are_recomputed_from_the_shipped_weights(name, held_out):
    pixels, twin_vs_unique = accuracies(name, *held_out)
    e = ENTRIES[name]
    n = held_out[1].size
    assert pixels == pytest.approx(e["val_pixel_accuracy"], abs=20 / n)
    assert twin_vs_unique == pytest.approx(e["val_twin_vs_unique_accuracy"], abs=1e-3)
    twin_share = (held_out[1] == 2).sum() / (held_out[1] > 0).sum()
    chance = max(twin_share, 1 - twin_share)  # always saying the commoner label
    print(f"\n{name}: pixels {pixels:.3f}, twin-vs-unique {twin_vs_unique:.3f} "
          f"(chance {chance:.3f})")
    if name == "tiny_nl_twins":
        assert twin_vs_unique >= 0.90
    else:  # without the block: near chance
        assert twin_vs_unique <= chance + 0.1


def test_training_runs_a_few_steps_and_ships_a_manifest_entry(tmp_path):
    """Into the folders it is told (--assets, --out), and nowhere else: the checkout's
    assets/ stays as it was."""
    shipped = [MANIFEST.parent, MANIFEST.parent.parent / "labels"]  # the checkout's weights, labels
    before = {p: p.stat().st_mtime_ns for d in shipped for p in d.rglob("*")}
    assets = tmp_path / "assets"
    train_twins.main(["--model", "tiny_nl_twins", "--epochs", "1", "--train-size", "64",
                      "--val-size", "16", "--batch", "32", "--rows-n", "3",
                      "--assets", str(assets), "--out", str(tmp_path / "out")])
    assert {p: p.stat().st_mtime_ns for d in shipped for p in d.rglob("*")} == before
    entry = json.loads((assets / "weights" / "manifest.json").read_text())["tiny_nl_twins"]
    assert entry["command"].startswith("python tools/train_twins.py --model tiny_nl_twins --epochs 1")
    weights = assets / "weights" / entry["file"]
    assert weights.stat().st_size < 1e6
    assert all(v.dtype == torch.float16 for k, v in load_file(str(weights)).items()
               if "num_batches" not in k)
    assert 0 <= entry["val_twin_vs_unique_accuracy"] <= 1 and entry["rows"]["scenes"] == 3
    assert (tmp_path / "out" / "tiny_nl_twins" / "last.pt").exists()
    assert (assets / "labels" / "twins.txt").read_text().split("\n")[:3] == list(scenes.TWIN_LABELS)


def test_the_twin_examples_are_the_twin_scenes_they_name():
    """The twins_<seed>.png examples (the photo examples for tiny_nl_twins; the Families
    page's Non-local example is a clip since issue 23) are those twin scenes."""
    from PIL import Image

    from visattn.weights import ASSETS
    images = sorted((ASSETS / "examples").glob("twins_*.png"))
    assert images
    for image in images:
        scene = scenes.twin_scene(int(image.stem.split("twins_")[1]))
        assert np.array_equal(np.asarray(Image.open(image).convert("RGB")), scene.image)
        assert (scene.label_map() == 2).any()  # the scene has its twins
