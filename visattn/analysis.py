"""The old name of visattn.metrics (attention metrics), kept for one release."""
from .metrics import *  # noqa: F401,F403
from .metrics import _js_divergence  # noqa: F401
