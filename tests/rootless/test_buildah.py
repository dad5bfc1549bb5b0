"""Debian's Buildah (1.28) building from a Containerfile with a RUN step through ocipy (`buildah bud --runtime
<ocipy> --isolation oci --network none`), rootless as the throw-away user and as root with private storage.

The runtime given to Buildah is a small wrapper that logs each call and execs the ocipy launcher, so the tests show
that the RUN step really went through ocipy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from rootlessctl import IMAGE, RootlessUser, mounts_under, unmount_under

pytestmark = [pytest.mark.rootless, pytest.mark.timeout(300)]

CONTAINERFILE = """FROM localhost/busybox:latest
RUN echo built-by-run > /built && id -u > /uid && cat /proc/self/uid_map > /uid_map
CMD ["cat", "/built"]
"""
ULIMITS = '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'


def wrapper(directory: Path, runtime: str) -> tuple[str, Path]:
    """A runtime that appends its argv to a log and execs `runtime` (both readable by everyone)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    log = directory / "calls.log"
    log.touch()
    log.chmod(0o666)
    path = directory / "ocipy"
    path.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {runtime} "$@"\n')
    path.chmod(0o755)
    return str(path), log


def _need_buildah() -> None:
    if shutil.which("buildah") is None:
        pytest.skip("buildah is not installed (scripts/engines installs it)")


def test_buildah_bud_rootless(podman_user: RootlessUser) -> None:
    _need_buildah()
    user = podman_user  # the busybox image is in the user's store (shared by Podman and Buildah)
    runtime, log = wrapper(user.work / "buildah-bin", user.runtime)
    ctx = user.files("build", "ctx")
    (ctx / "Containerfile").write_text(CONTAINERFILE)
    user.chown_tree(ctx)
    p = user.run(["buildah", "bud", "--runtime", runtime, "--isolation", "oci", "--network", "none", "-t",
                  "localhost/rl-built", "."], cwd=ctx, timeout=240)  # fmt: skip
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
    calls = log.read_text().splitlines()
    assert any(c.startswith(("create ", "run ")) for c in calls), calls
    p = user.podman("run", "--rm", "--network", "none", "localhost/rl-built")
    assert p.returncode == 0 and p.stdout == "built-by-run\n", p.stderr
    p = user.podman("run", "--rm", "--network", "none", "localhost/rl-built", "sh", "-c", "cat /uid /uid_map")
    lines = p.stdout.splitlines()
    assert lines[0] == "0"  # root in the build container...
    assert lines[1].split() == ["0", str(user.uid), "1"]  # ...which is the user on the host
    user.podman("rmi", "-f", "localhost/rl-built")


@pytest.fixture
def root_buildah(busybox_tar_root: Path) -> Iterator[tuple[list[str], dict[str, str], Path]]:
    """Buildah as root with private storage (--root/--runroot in a temp dir) and the busybox image committed there."""
    work = Path(tempfile.mkdtemp(prefix="ocipy-buildah-"))
    work.chmod(0o755)
    (work / "containers.conf").write_text(ULIMITS)
    env = {**os.environ, "CONTAINERS_CONF": str(work / "containers.conf"), "TMPDIR": str(work)}
    base = ["buildah", "--root", str(work / "root"), "--runroot", str(work / "runroot"), "--storage-driver", "overlay"]
    cache = Path("/run/ocipy/@cache")
    cache_was_there = cache.exists()
    try:
        c = subprocess.run([*base, "from", "scratch"], env=env, capture_output=True, text=True, check=True).stdout
        c = c.strip()
        for step in (["add", c, str(busybox_tar_root), "/"], ["config", "--cmd", "/bin/sh", c],
                     ["commit", "-q", c, IMAGE], ["rm", c]):  # fmt: skip
            subprocess.run([*base, *step], env=env, capture_output=True, text=True, check=True)
        yield base, env, work
    finally:
        subprocess.run([*base, "rm", "--all"], env=env, capture_output=True, check=False)
        subprocess.run([*base, "rmi", "--all", "--force"], env=env, capture_output=True, check=False)
        unmount_under(work)
        assert not mounts_under(work)
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)
        if not cache_was_there:
            shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture
def busybox_tar_root(tmp_path: Path) -> Path:
    from rootlessctl import build_busybox_tar

    if not os.path.exists("/bin/busybox"):
        pytest.skip("busybox-static is not installed")
    return build_busybox_tar(tmp_path)


def test_buildah_bud_as_root(root_buildah: tuple[list[str], dict[str, str], Path], user: RootlessUser) -> None:
    _need_buildah()
    if os.geteuid() != 0:
        pytest.skip("needs root")
    base, env, work = root_buildah
    runtime, log = wrapper(work / "bin", user.runtime)
    ctx = work / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(CONTAINERFILE)
    p = subprocess.run([*base, "bud", "--runtime", runtime, "--isolation", "oci", "--network", "none", "-t",
                        "localhost/root-built", "."], cwd=ctx, env=env, capture_output=True, text=True,
                       timeout=240, check=False)  # fmt: skip
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
    assert any(c.startswith(("create ", "run ")) for c in log.read_text().splitlines()), log.read_text()
    c = subprocess.run([*base, "from", "localhost/root-built"], env=env, capture_output=True, text=True, check=True)
    ctr = c.stdout.strip()
    p = subprocess.run([*base, "run", "--runtime", runtime, "--isolation", "oci", "--network", "none", ctr, "cat",
                        "/built", "/uid"], env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert p.returncode == 0 and p.stdout == "built-by-run\n0\n", f"{p.stdout}\n{p.stderr}"
