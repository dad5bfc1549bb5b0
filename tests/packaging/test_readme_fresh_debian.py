"""The README on a fresh Debian machine (scripts/fresh-debian): `./scripts/demo` as root, as a user
through sudo, and as a user without sudo (who is told how to run it); and the Install (pip) section followed by
the `spec`/`run` flow of "Using it". A minimal bookworm from mmdebstrap, cached
under $OCIPY_CACHE; each case in a chroot in a private mount namespace with an empty environment."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.root
@pytest.mark.timeout(1800)
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chroot, mount namespace)")
@pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="mmdebstrap not installed (Debian: mmdebstrap)")
def test_readme_on_a_fresh_debian() -> None:
    res = subprocess.run(
        [str(PROJECT / "scripts" / "fresh-debian")], capture_output=True, text=True, timeout=1700, check=False
    )
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
    assert res.stdout.splitlines()[-1] == "fresh-debian: 4 passed, 0 failed", res.stdout
