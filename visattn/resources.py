"""Where VisAttn's parts live, installed or in a repository checkout.

Installed (`pip install .`, a wheel), the repository's top-level `models/` and `assets/`
folders are the package `visattn.models` and the package data `visattn/assets`
(setup.py maps them there, so the install adds no top-level `models` package). In a
checkout they stay at the top level, as the product card fixes the layout; `mount_models`
then imports `models/` under the same name, `visattn.models`. Every import therefore reads
`visattn.models.<file>` and every asset is found through `importlib.resources`, in both cases.
"""
from __future__ import annotations

import atexit
import contextlib
import importlib.util
import sys
from importlib import resources
from pathlib import Path

MODELS = "visattn.models"


def _checkout_root() -> Path:
    """The repository folder holding this package (meaningful in a checkout only)."""
    return Path(__file__).resolve().parent.parent


def mount_models() -> None:
    """Make `visattn.models` importable: installed, it is a real subpackage; in a checkout,
    the top-level models/ folder is loaded under that name (once)."""
    if MODELS in sys.modules or importlib.util.find_spec(MODELS) is not None:
        return
    folder = _checkout_root() / "models"
    spec = importlib.util.spec_from_file_location(
        MODELS, folder / "__init__.py", submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODELS] = module
    spec.loader.exec_module(module)


_KEEP = contextlib.ExitStack()  # extracted copies of zipped assets live until exit
atexit.register(_KEEP.close)


def assets_dir() -> Path:
    """The assets folder (labels, examples, bundled weights and their manifest) as a real
    path: package data when installed (extracted once if the package is zipped), else the
    checkout's top-level assets/."""
    packaged = resources.files("visattn").joinpath("assets")
    if packaged.is_dir():
        return _KEEP.enter_context(resources.as_file(packaged))
    return _checkout_root() / "assets"

