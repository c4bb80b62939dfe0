import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# the app remembers its visitors in a file (a restart still tells them): one per test run
import tempfile  # noqa: E402

os.environ["VISATTN_VISITORS_FILE"] = os.path.join(tempfile.mkdtemp(prefix="visattn-test-"),
                                                   "visitors.txt")

import torch  # noqa: E402

torch.set_num_threads(2)


import pytest  # noqa: E402

from local_servers import closed_port as free_port  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _zoo_without_clip_cards():
    """A clip analysis adds the clip networks to the zoo; every test module leaves the zoo as
    the photo tests expect it, without them."""
    yield
    from visattn import zoo_video
    zoo_video.forget_cards()


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


@pytest.fixture(scope="session")
def server_url():
    from visattn.ui import LAUNCH_OPTIONS, build
    demo = build()
    for _ in range(5):
        try:
            demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                        quiet=True, **LAUNCH_OPTIONS)
            break
        except OSError:
            continue
    yield demo.local_url.rstrip("/")
    demo.close()
