import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402

torch.set_num_threads(2)


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def private_caches(tmp_path, monkeypatch):
    """Every test gets empty weight caches of its own: nothing read from or written to the
    user's ~/.cache, no network switch inherited from the shell."""
    monkeypatch.setenv("VISATTN_CACHE", str(tmp_path / "visattn-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    monkeypatch.delenv("VISATTN_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
