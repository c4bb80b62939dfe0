"""Where the web app listens: Gradio's own variables first (Hugging Face Spaces set
GRADIO_SERVER_NAME and GRADIO_SERVER_PORT), then PORT, then this machine only."""
from __future__ import annotations

import os
from typing import Mapping, Optional


def on_space(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("SPACE_ID") or environ.get("SYSTEM") == "spaces")


def server_address(environ: Optional[Mapping[str, str]] = None) -> dict:
    """{'server_name', 'server_port'} for `Blocks.launch`."""
    env = os.environ if environ is None else environ
    name = env.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if on_space(env) else "127.0.0.1")
    port = env.get("GRADIO_SERVER_PORT") or env.get("PORT") or "7860"
    return {"server_name": name, "server_port": int(port)}
