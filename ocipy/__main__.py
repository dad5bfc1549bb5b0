"""`python -m ocipy`: the same entry point as the `ocipy` command."""

import gc

gc.disable()  # ocipy.cli's GC policy: off for the command's work, on again for long waits

from ocipy.cli import entry  # noqa: E402

entry()
