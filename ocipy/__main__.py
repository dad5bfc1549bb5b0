"""`python -m ocipy`: the same entry point as the `ocipy` command."""

from ocipy.cli import entry

entry()
