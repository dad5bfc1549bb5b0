"""The map checks itself: every file under ocipy/ and shim/ is named in docs/architecture.md, and no doc or test
carries a path of a development machine."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
MAP = PROJECT / "docs" / "architecture.md"


def tracked(*dirs: str) -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", *dirs], cwd=PROJECT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [f for f in out.stdout.splitlines() if not f.endswith((".so", ".pyc"))]


def test_every_file_is_on_the_map() -> None:
    text = MAP.read_text()
    missing = [f for f in tracked("ocipy", "shim") if f not in text]
    assert not missing, "named nowhere in docs/architecture.md (add a row saying what to change there):\n" + "\n".join(
        missing
    )


def test_the_map_names_no_file_that_is_gone() -> None:
    files = set(tracked("ocipy", "shim"))
    named = set(re.findall(r"`((?:ocipy|shim)/[\w./-]+\.(?:py|c|h))`", MAP.read_text()))
    gone = sorted(n for n in named if n not in files and "<" not in n)
    assert not gone, f"docs/architecture.md names files that do not exist: {gone}"


def test_no_development_machine_paths() -> None:
    bad = []
    for f in tracked("docs", "tests", "README.md", "bench", "scripts", "conformance"):
        path = PROJECT / f
        if path.suffix not in (".md", ".py", ".sh", "") or not path.is_file():
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if re.search(r"/work/(main|wt|shared)\b|/root/\.pyenv", line) and "test_architecture_map" not in f:
                bad.append(f"{f}:{n}: {line.strip()}")
    assert not bad, "\n".join(bad)
