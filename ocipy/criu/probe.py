"""Can checkpoint/restore work here? For `ocipy check`: criu found, its version, `criu check`, optional features."""

from __future__ import annotations

import subprocess

from ocipy.criu import log, swrk
from ocipy.errors import OcipyError

MIN_VERSION = (3, 11, 0)  # external network namespaces (what Podman's containers need), as runc asks


def report(name: str | None = None) -> dict[str, tuple[bool, str, str]]:
    """{item: (ok, detail, meaning)}."""
    try:
        path = swrk.find_criu(name)
    except OcipyError as exc:
        return {"criu": (False, exc.message, "checkpoint and restore cannot work (install CRIU >= 3.11)")}
    out: dict[str, tuple[bool, str, str]] = {}
    try:
        ver = swrk.version(path)
    except OcipyError as exc:
        return {"criu": (False, f"{path}: {exc.message}", "this criu does not answer its RPC (CRIU < 3.0?)")}
    text = ".".join(str(v) for v in ver)
    ok = ver >= MIN_VERSION
    out["criu"] = (
        ok,
        f"criu {text} at {path}",
        "checkpoint and restore use it" if ok else "too old: ocipy needs CRIU >= 3.11",
    )
    try:
        run = subprocess.run(
            [path, "check"], capture_output=True, text=True, timeout=60, env=swrk.child_env(), check=False
        )
        said = (run.stdout + run.stderr).strip()
        good = run.returncode == 0 and "Looks good" in said
        errs = [ln for ln in said.splitlines() if "Error" in ln]
        lines = said.splitlines()
        if good:
            detail = "Looks good."
        elif errs:
            detail = log.strip_prefix(errs[0])
        else:
            detail = lines[-1] if lines else f"exit status {run.returncode}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        good, detail = False, str(exc)
    out["criu check"] = (
        good,
        str(detail),
        "the kernel has what CRIU needs" if good else "CRIU says this kernel lacks something it needs: dumps may fail",
    )
    try:
        feats = swrk.features(path, {"mem_track": True, "lazy_pages": True})
    except OcipyError as exc:
        feats, why = {}, exc.message
    else:
        why = ""
    out["pre-dump"] = (
        feats.get("mem_track", False),
        "memory change tracking (soft-dirty)"
        + (": available" if feats.get("mem_track") else f": missing{why and ' (' + why + ')'}"),
        "checkpoint --pre-dump works"
        if feats.get("mem_track")
        else "--pre-dump cannot work (no CONFIG_MEM_SOFT_DIRTY)",
    )
    out["lazy pages"] = (
        feats.get("lazy_pages", False),
        "userfaultfd" + (": available" if feats.get("lazy_pages") else f": missing{why and ' (' + why + ')'}"),
        "--lazy-pages works" if feats.get("lazy_pages") else "--lazy-pages cannot work",
    )
    return out
