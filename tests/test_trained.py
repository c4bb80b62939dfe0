"""VisAttn's own trained models, from the weights shipped in assets/: the manifest's accuracy
recomputed, and attention measured against the scenes' ground-truth masks."""
import json

import numpy as np
import pytest
import torch

from visattn.models.tiny_resnet import ATTENTIONS
from visattn import scenes, zoo
from visattn.faithfulness import faithfulness
from tools.training import to_tensor
from visattn.zoo import MANIFEST

ENTRIES = {k: e for k, e in json.loads(MANIFEST.read_text()).items()  # the scene classifiers
           if e.get("task", "classify") == "classify"}  # (twin labellers: test_train_twins.py)
N_FAITH = 200  # held-out scenes for the attention measurements


@pytest.fixture(scope="module")
def held_out():
    entry = next(iter(ENTRIES.values()))
    return scenes.make_batch(entry["val_data_seed"], entry["val_size"])


def test_every_attention_kind_is_shipped_small_and_trained_offline():
    assert sorted(e["attention"] for e in ENTRIES.values()) == sorted(ATTENTIONS)
    total = sum((MANIFEST.parent / e["file"]).stat().st_size for e in ENTRIES.values())
    assert total <= 15e6
    for e in ENTRIES.values():
        assert 0.3e6 <= e["parameters"] <= 1e6
        assert e["command"].startswith("python tools/train.py --attention " + e["attention"])
        assert zoo.get(e["name"]).availability() == "bundled"


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_manifest_accuracy_is_recomputed_from_the_shipped_weights(name, held_out):
    entry = ENTRIES[name]
    images, _, labels = held_out
    assert len(images) == entry["val_size"]
    model = zoo.build(zoo.get(name), pretrained=True)
    x = to_tensor(images, np.array(entry["mean"], np.float32), np.array(entry["std"], np.float32))
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 500]).argmax(1) for i in range(0, len(x), 500)])
    acc = float((pred.numpy() == labels).mean())
    assert acc == pytest.approx(entry["val_accuracy"], abs=1.5 / len(labels))
    assert acc >= 0.90


def faith(name, held_out):
    images, masks, labels = (a[:N_FAITH] for a in held_out)
    return faithfulness(name, images, masks, labels).summary()


def test_non_local_rows_at_object_pixels_concentrate_on_the_object(held_out):
    """Mass on the object only: tiny_nl's rows do that from background pixels too (they
    hardly depend on the query), so this cannot tell a query-specific row from a fixed
    one; tests/test_twin_faithfulness.py does, on tiny_nl_twins."""
    s = faith("tiny_nl", held_out)
    (key, on_object), = s["affinity_object_query"].items()
    background = s["affinity_background_query"][key]
    print(f"\n{key}: object queries {on_object:.2f}, background queries {background:.2f}")
    assert on_object >= 1.5


@pytest.mark.parametrize("name", ["tiny_cbam", "tiny_bam"])
def test_spatial_attention_separates_object_from_background(name, held_out):
    s = faith(name, held_out)
    for key, auc in s["spatial_auc"].items():
        print(f"\n{name} {key}: AUC {auc:.3f}, energy {s['spatial_energy_ratio'][key]:.2f}, "
              f"pointing {s['pointing_game'][key]:.2f}")
    assert max(s["spatial_auc"].values()) >= 0.75


def between_within(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared distance of the class means to the grand mean over the mean squared
    distance of each vector to its class mean (class means through a one-hot matrix)."""
    onehot = np.eye(labels.max() + 1)[labels][:, np.unique(labels)]
    means = (onehot.T @ vectors) / onehot.sum(0)[:, None]
    between = ((means - vectors.mean(0)) ** 2).sum(1).mean()
    return float(between / ((vectors - onehot @ means) ** 2).sum(1).mean())


def test_se_gate_class_separation_is_reported(held_out):
    """The reported separation of each SE block equals the one computed from the gates read
    straight off the network (a hook on each SEModule's sigmoid, the manifest's
    normalisation); the last block's gates are class-specific (SENet's finding), far above
    the same gates with the labels shuffled."""
    from timm.layers.squeeze_excite import SEModule
    s = faith("tiny_se", held_out)
    sep = s["gate_class_separation"]
    print("\n" + "\n".join(f"tiny_se {k}: between/within {v:.3f}" for k, v in sep.items()))
    images, _, labels = (a[:N_FAITH] for a in held_out)
    model = zoo.build(zoo.get("tiny_se"), pretrained=True).eval()
    gates = {}
    for name, m in model.named_modules():
        if isinstance(m, SEModule):
            m.gate.register_forward_hook(
                lambda mod, i, out, name=name: gates.__setitem__(name, out.flatten(1).double().numpy()))
    e = ENTRIES["tiny_se"]
    with torch.no_grad():
        model(to_tensor(images, np.array(e["mean"], np.float32), np.array(e["std"], np.float32)))
    assert len(gates) == 5 and {k.split(":")[0] for k in sep} == set(gates)
    for key, value in sep.items():
        assert value == pytest.approx(between_within(gates[key.split(":")[0]], labels), rel=1e-4)
    last = gates["layer4.0.attn"]
    shuffled = between_within(last, np.random.default_rng(0).permutation(labels))
    assert sep["layer4.0.attn:channel gate"] > max(1.0, 10 * shuffled)
