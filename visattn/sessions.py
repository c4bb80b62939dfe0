"""The old name of visattn.visitors (bounded per-visitor memory and temporary files), kept
for one release; the app's Session is visattn.ui.common.Session."""
from .visitors import *  # noqa: F401,F403
from .visitors import VISITORS  # noqa: F401
