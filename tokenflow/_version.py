"""The package version, in a module of its own so that code inside the package reads it without
importing the package's face (``tokenflow/__init__.py``)."""

__version__ = "0.2.0"
