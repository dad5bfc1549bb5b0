"""The runtime-spec conformance suite (conformance/) against ocipy: every case that runc passes on this machine
(conformance/expected_runc.json, written with docs/conformance.md) must pass for ocipy too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
EXPECTED = PROJECT / "conformance" / "expected_runc.json"

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


@pytest.mark.timeout(300)
def test_ocipy_passes_every_case_runc_passes(tmp_path: Path) -> None:
    expected = json.loads(EXPECTED.read_text())["cases"]
    out = tmp_path / "results.json"
    p = subprocess.run(  # noqa: PLW1510 (the return code is checked below)
        [
            sys.executable,
            "-m",
            "conformance",
            "--runtime",
            "ocipy",
            "--tap-dir",
            str(tmp_path),
            "--json",
            str(out),
            "--quiet",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert out.exists(), "the suite did not finish: rc=%d\n%s\n%s" % (p.returncode, p.stdout, p.stderr[-3000:])
    results = {r["id"]: r for r in json.loads(out.read_text())["ocipy"]}
    missing = sorted(set(expected) - set(results))
    assert not missing, f"cases in expected_runc.json that the suite no longer has: {missing}"
    regressions = []
    for cid, status in sorted(expected.items()):
        r = results[cid]
        if status == "pass" and r["status"] != "pass":
            bad = "; ".join("{}: {}".format(a["name"], a["detail"][:300]) for a in r["assertions"] if not a["ok"])
            regressions.append("{} ({}): {}".format(cid, r["status"], bad or r["skip_reason"]))
    assert not regressions, "ocipy fails cases runc passes here (see %s.tap):\n" % (tmp_path / "ocipy") + "\n".join(
        regressions
    )
