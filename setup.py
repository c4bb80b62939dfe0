"""The package list for setuptools (the metadata is in pyproject.toml): every package under
visattn/, plus the repository's top-level models/ and assets/ folders installed inside the
visattn namespace (visattn.models, visattn/assets), so an install adds no top-level
`models` package and the checkout keeps its layout."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["visattn", "visattn.*"]) + ["visattn.models", "visattn.assets"],
      package_dir={"visattn.models": "models", "visattn.assets": "assets"})
