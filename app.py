"""VisAttn web app (Hugging Face Space entry point): build the UI and launch it."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared vCPUs: no busy-waiting threads
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from visattn.ui import LAUNCH_OPTIONS, build  # noqa: E402

if __name__ == "__main__":
    on_space = bool(os.environ.get("SPACE_ID") or os.environ.get("SYSTEM") == "spaces")
    build().launch(server_name="0.0.0.0" if on_space else "127.0.0.1",
                   server_port=int(os.environ.get("PORT", 7860)), **LAUNCH_OPTIONS)
