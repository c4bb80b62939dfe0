"""VisAttn's version (read by pyproject.toml and `visattn --version`)."""
__version__ = "0.9.0"
