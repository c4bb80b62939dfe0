"""The package: a wheel built from the checkout installs into a folder of its own and works
from anywhere (assets as package data, the console script, no top-level `models`)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "setup.py", "README.md", "requirements.txt", "visattn", "models", "assets",
           "tools", "bench")  # the checkout's tools and benchmarks are in the tree, not in the wheel


def _run(cmd: list[str], cwd: Path, **env) -> subprocess.CompletedProcess:
    import os
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=240,
                          env={**os.environ, **env})


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the checkout (the build leaves nothing in the shared
    tree), without network: setuptools as installed."""
    pytest.importorskip("setuptools")
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(
            ROOT / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                        if (ROOT / name).is_dir() else {}))
    dist = tmp_path_factory.mktemp("dist")
    done = _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                 "--no-index", "-w", str(dist)], src)
    assert done.returncode == 0, done.stdout + done.stderr
    return next(dist.glob("visattn-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("target")
    done = _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target",
                 str(target), str(wheel)], target)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


def _packages_in_checkout() -> set[str]:
    """Every package under visattn/ (a folder with __init__.py), as dotted names."""
    return {".".join(p.parent.relative_to(ROOT).parts)
            for p in (ROOT / "visattn").rglob("__init__.py") if "__pycache__" not in p.parts}


def test_wheel_holds_the_package_its_assets_and_no_top_level_models(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {n for n in tops if not n.endswith(".dist-info")} == {"visattn"}  # no `models`, `tools`
    for pkg in _packages_in_checkout():
        assert f"{pkg.replace('.', '/')}/__init__.py" in names, f"{pkg} is missing from the wheel"
    shipped = {n for n in names if n.startswith(("visattn/assets/", "visattn/static/"))}
    for folder in ("assets", "visattn/static"):
        for f in (ROOT / folder).rglob("*"):
            if f.is_file():
                rel = f.relative_to(ROOT).as_posix()
                assert ("visattn/" + rel if folder == "assets" else rel) in shipped, rel
    for f in (ROOT / "models").glob("*.py"):
        assert f"visattn/models/{f.name}" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "visattn = visattn.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("/METADATA")))
    requires = {line.split(": ", 1)[1].replace(" ", "") for line in metadata.decode().splitlines()
                if line.startswith("Requires-Dist: ")}
    pins = {line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()}
    assert requires == pins - {""}  # the app's pins are the package's dependencies


PROBE = """
import importlib.util, json, sys
import visattn
from visattn import labels, zoo
from visattn.weights import ASSETS
card = zoo.get("tiny_se")
trace = visattn.analyze(str(ASSETS / "examples" / "scene_solid_cross.png"), "tiny_se", device="cpu")
print(json.dumps({
    "file": visattn.__file__, "version": visattn.__version__, "assets": str(ASSETS),
    "models": sys.modules["visattn.models"].__file__,
    "top_level_models": importlib.util.find_spec("models") is not None,
    "imagenet": len(labels.load("imagenet")), "bundled": card.availability(),
    "records": len(trace.records), "top": trace.prediction.top(1)[0][0]}))
"""


def test_installed_package_imports_from_another_folder_with_its_assets(installed, tmp_path):
    import json
    done = _run([sys.executable, "-c", PROBE], tmp_path, PYTHONPATH=str(installed),
                PYTHONSAFEPATH="1")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(got["file"]).parent == installed / "visattn"
    assert Path(got["assets"]) == installed / "visattn" / "assets"
    assert Path(got["models"]).parent == installed / "visattn" / "models"
    assert not got["top_level_models"]
    from visattn import labels
    from visattn.version import __version__
    assert got["version"] == __version__
    assert got["imagenet"] == len(labels.load("imagenet"))
    assert got["bundled"] == "bundled" and got["records"] > 0


def test_console_script_runs(installed, tmp_path):
    script = installed / "bin" / "visattn"
    assert script.is_file()
    done = _run([sys.executable, str(script), "--version"], tmp_path, PYTHONPATH=str(installed))
    assert done.returncode == 0, done.stderr
    from visattn.version import __version__
    assert __version__ in done.stdout
