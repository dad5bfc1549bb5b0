"""`python -m ocipy`: the same entry point as the `ocipy` command."""

import gc

gc.disable()  # ocipy.cli's GC policy: off for the command's work, on again for long waits

from ocipy import boot  # noqa: E402

boot.start()  # the verb's modules from its image in __pycache__ (docs/startup.md), as the launchers do

from ocipy.cli import entry  # noqa: E402

entry()
