"""VisAttn web app (Hugging Face Space entry point): build the UI and launch it."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared vCPUs: no busy-waiting threads
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("GRADIO_MCP_SERVER", "True")  # MCP tools at /gradio_api/mcp/; False: off

from visattn.launch import server_address  # noqa: E402
from visattn.ui import LAUNCH_OPTIONS, build  # noqa: E402

if __name__ == "__main__":
    build().launch(**server_address(), **LAUNCH_OPTIONS)
