"""Random-weight networks are seeded by their name (issue 20, item 3): the same photo gives
the same maps in two processes, whatever each process did with torch's random numbers
before, and building one leaves the caller's random state where it was."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from visattn import loader

ROOT = Path(__file__).resolve().parents[1]
CHILD = r"""
import hashlib, sys
import numpy as np
import torch
import visattn
torch.manual_seed(int(sys.argv[1]))
torch.rand(int(sys.argv[2]))  # whatever ran before in this process
photo = np.random.default_rng(0).integers(0, 256, (80, 100, 3), np.uint8)
digest = hashlib.sha256()
for name in sys.argv[3:]:
    trace = visattn.analyze(photo, name, pretrained=False, device="cpu")
    for rec in trace:
        for field, array in sorted(rec.arrays().items()):
            digest.update(np.ascontiguousarray(array).tobytes())
    if trace.prediction is not None and hasattr(trace.prediction, "probs"):
        digest.update(trace.prediction.probs.tobytes())
print(digest.hexdigest())
print(repr(torch.rand(1).item()))
"""


def _child(seed: int, draws: int, *names: str) -> tuple[str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", CHILD, str(seed), str(draws), *names],
                          capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    digest, after = done.stdout.split()[-2:]
    return digest, float(after)


def _after(seed: int, draws: int) -> float:
    torch.manual_seed(seed)
    torch.rand(draws)
    return torch.rand(1).item()


@pytest.mark.timeout(600)
def test_random_weights_give_the_same_maps_in_two_processes():
    names = ("botnet26t_256", "cbam_resnet50")
    first, after_first = _child(1, 5, *names)
    second, after_second = _child(2, 1000, *names)
    assert first == second
    # the build forked torch's random state: the caller's next number is as if it never ran
    assert after_first == _after(1, 5) and after_second == _after(2, 1000)


def test_a_network_rebuilt_after_other_random_numbers_has_the_same_weights():
    from visattn import zoo
    card = zoo.get("botnet26t_256")
    a = loader.build(card, pretrained=False)
    torch.rand(3)
    b = loader.build(card, pretrained=False)
    assert list(a.state_dict()) == list(b.state_dict())
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert loader.seed_of(card.name) != loader.seed_of("cbam_resnet50")
