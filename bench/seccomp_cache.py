"""compile_filter vs a hit of the seccomp cache (`ocipy.seccomp.compile_cached`) for a Podman-sized profile.

    .venv/bin/python bench/seccomp_cache.py [-n 30] [--profile /usr/share/containers/seccomp.json]

The profile is Podman's default (containers-common's seccomp.json, converted for amd64 as Podman does) when it is
installed, else an allow-list of every syscall name libseccomp knows (~370 names). Figures are medians in ms:
  warm   -- in one process, libseccomp already loaded: compile_filter, cache_key alone, a hit
  cold   -- each run a fresh interpreter timing only the call: compile_filter (with loading the precompiled
            declarations, ocipy/_seccomp_ffi.py, and the dlopen; before issue 15 also `import cffi` and parsing them)
            vs compile_cached on a filled cache (what a second `ocipy create` with the same profile pays)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "tests" / "security"))

from seccomp_profiles import PODMAN_CAPS, native_syscall_names, podman_spec_profile

PODMAN_JSON = "/usr/share/containers/seccomp.json"
CHILD = """
import json, sys, time
sys.path.insert(0, {project!r})
from ocipy import seccomp as sc
from ocipy.spec.linux import Seccomp
cfg = Seccomp.model_validate(json.loads(open({profile!r}).read()))
t = time.perf_counter()
prog = sc.compile_filter(cfg) if {mode!r} == "compile" else sc.compile_cached(cfg, cache_dir={cache!r})
print((time.perf_counter() - t) * 1000, "pycparser" in sys.modules)
"""


def podman_profile(path: str) -> dict[str, Any]:
    return podman_spec_profile(json.loads(Path(path).read_text()), PODMAN_CAPS)


def synthetic_profile() -> dict[str, Any]:
    names = native_syscall_names()
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
    }


def median_ms(fn: Any, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def cold_ms(profile: str, mode: str, cache: str, n: int) -> tuple[float, bool]:
    code = CHILD.format(project=str(PROJECT), profile=profile, mode=mode, cache=cache)
    times, cffi = [], False
    for _ in range(n):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        times.append(float(out[0]))
        cffi = cffi or out[1] == "True"
    return statistics.median(times), cffi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30)
    parser.add_argument("--profile", default=PODMAN_JSON)
    opts = parser.parse_args()

    from ocipy import seccomp as sc
    from ocipy.spec.linux import Seccomp

    if os.path.exists(opts.profile):
        doc, source = podman_profile(opts.profile), opts.profile
    else:
        doc, source = synthetic_profile(), "every name libseccomp knows"
    cfg = Seccomp.model_validate(doc)
    names = sum(len(c["names"]) for c in doc["syscalls"])
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "@cache", "seccomp")
        profile_json = os.path.join(tmp, "profile.json")
        Path(profile_json).write_text(json.dumps(doc))
        prog = sc.compile_cached(cfg, cache_dir=cache)  # fills the cache
        print(f"profile: {source}: {len(doc['syscalls'])} rules, {names} names, {len(prog.bpf) // 8} instructions")
        print(f"runs: {opts.n} (medians, ms)")
        print(f"warm  compile_filter        {median_ms(lambda: sc.compile_filter(cfg), opts.n):8.2f}")
        print(f"warm  cache_key             {median_ms(lambda: sc.cache_key(cfg), opts.n):8.2f}")
        print(f"warm  compile_cached (hit)  {median_ms(lambda: sc.compile_cached(cfg, cache_dir=cache), opts.n):8.2f}")
        miss, miss_cffi = cold_ms(profile_json, "compile", cache, opts.n)
        hit, hit_cffi = cold_ms(profile_json, "cached", cache, opts.n)
        print(f"cold  compile_filter        {miss:8.2f}   (C declarations parsed: {miss_cffi})")
        print(f"cold  compile_cached (hit)  {hit:8.2f}   (C declarations parsed: {hit_cffi})")


if __name__ == "__main__":
    main()
