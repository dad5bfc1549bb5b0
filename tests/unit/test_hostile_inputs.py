"""200 hostile or malformed inputs through the real CLI: each exits 1 with exactly one line on stderr, no traceback,
and leaves the state root empty. Seeded, so a failure replays."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
SEED = 20240601
N_IDS = 160
N_BUNDLES = 40

ODD = [
    "é",
    "ａ",
    "／",
    "．",
    "\u202e",
    "\u0301",
    "😀",
    "\u00a0",
    "\t",
    " ",
    "\n",
    "ß",
    "İ",
    "\ufeff",
    "\\",
    "*",
    "$",
    "%",
]
BASES = ["../x", "a/b", "/etc", "..", ".", "", "-", "--", "x/../y", "./a", "a/", "a//b", "..a/..", "a\\b"]


def hostile_ids(rng: random.Random) -> list[str]:
    ids: list[str] = list(BASES)
    while len(ids) < N_IDS:
        kind = rng.randrange(6)
        if kind == 0:
            ids.append("x" * rng.choice([1025, 2000, 5000, 70000]))
        elif kind == 1:
            ids.append("".join(rng.choice(ODD + ["a", "1", "."]) for _ in range(rng.randint(1, 12))))
        elif kind == 2:
            ids.append(rng.choice(["a", "web", "c1"]) + rng.choice(ODD) + rng.choice(["", "b", ".."]))
        elif kind == 3:
            ids.append("/".join(rng.choice(["..", ".", "a", "etc", "proc"]) for _ in range(rng.randint(2, 5))))
        elif kind == 4:
            # well-formed ids that name no container
            ids.append("".join(rng.choice("abcXYZ019_+-.") for _ in range(rng.randint(1, 40))).lstrip("-") or "q")
        else:
            ids.append(rng.choice(["..", "."]) * rng.randint(2, 6))
    # argv cannot carry NUL (the store's unit test covers it); everything else goes through as is
    return [i.replace("\x00", "") for i in ids[:N_IDS]]


def hostile_bundles(rng: random.Random) -> list[bytes]:
    docs: list[bytes] = [b"", b"{", b"null", b"[]", b'"x"', b"\xff\xfe", b"{}", b'{"ociVersion": 1}']
    while len(docs) < N_BUNDLES:
        kind = rng.randrange(5)
        if kind == 0:
            docs.append(
                json.dumps({"ociVersion": "1.0.0", "process": {"args": rng.choice([None, 5, "sh", [1]])}}).encode()
            )
        elif kind == 1:
            docs.append(json.dumps({"ociVersion": "1.0.0", "root": {"path": "r" * 5000}, "process": []}).encode())
        elif kind == 2:
            docs.append(json.dumps({"ociVersion": "1.0.0", "mounts": [{"destination": rng.choice(ODD)}] * 3}).encode())
        elif kind == 3:
            docs.append(("{" * rng.randint(100, 20000)).encode())
        else:
            docs.append(json.dumps({"ociVersion": "1.0.0", "linux": {"uidMappings": [{"size": 10**30}]}}).encode())
    return docs[:N_BUNDLES]


def run(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.run(
        [sys.executable, "-m", "ocipy", "--root", str(root), *args],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


def check(out: subprocess.CompletedProcess[bytes], root: Path, what: str) -> None:
    err = out.stderr.decode("utf-8", "replace")
    assert out.returncode == 1, f"{what}: exit {out.returncode}: {err[:300]}"
    assert "Traceback" not in err, f"{what}: {err[:2000]}"
    assert "internal error" not in err, f"{what}: an unexpected exception, not a clear message: {err[:500]}"
    assert err.count("\n") == 1 and err.endswith("\n"), f"{what}: not one line: {err[:500]!r}"
    assert not root.exists() or list(root.iterdir()) == [], f"{what}: left {list(root.iterdir())}"


def test_hostile_ids(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    verbs = [["state"], ["delete"], ["kill"], ["start"], ["kill", "--all"], ["pause"], ["resume"]]
    root = tmp_path / "root"
    for i, cid in enumerate(hostile_ids(rng)):
        verb = verbs[i % len(verbs)]
        # half the time after `--`, so ids that look like flags reach the store too
        args = [*verb, "--", cid] if i % 2 else [*verb, cid]
        if verb[0] == "kill" and i % 3 == 0:
            args.append(rng.choice(["TERM", "9", "bogus", "", "99"]))
        check(run(root, *args), root, f"{args!r:.200}")


def test_hostile_bundles(tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    root = tmp_path / "root"
    for i, doc in enumerate(hostile_bundles(rng)):
        bundle = tmp_path / f"b{i}"
        (bundle / "rootfs").mkdir(parents=True)
        (bundle / "config.json").write_bytes(doc)
        check(run(root, "create", "--bundle", str(bundle), f"hostile{i}"), root, f"bundle {doc[:80]!r}")
