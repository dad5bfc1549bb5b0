"""`python -m ocipy`: the same entry point as the `ocipy` command."""

import sys

from ocipy.cli import main

sys.exit(main())
