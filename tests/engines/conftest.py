"""Session fixtures for the engine tests: one busybox image (from busybox-static), a private Podman, a private
containerd and a private dockerd (on that containerd), each driving ocipy (or $ENGINES_RUNTIME, e.g. runc, to check
the tests themselves against the reference runtime). Daemons are stopped by pid at the end, their mounts detached
and their temp dirs removed. The engines are installed by scripts/engines (run by scripts/setup)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginectl import Containerd, Dockerd, Podman, build_busybox_tar, engine_runtime, missing_binaries, private_dir

NOT_ROOT = os.geteuid() != 0


def _need(*binaries: str) -> None:
    if NOT_ROOT:
        pytest.skip("engine tests need root")
    missing = missing_binaries(*binaries)
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/engines installs them)")


@pytest.fixture(scope="session")
def engines_work() -> Iterator[Path]:
    _need("tar")
    work = private_dir("ocipy-engines-")
    yield work
    subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)


@pytest.fixture(scope="session")
def runtime(engines_work: Path) -> str:
    return engine_runtime(engines_work)


@pytest.fixture(scope="session")
def busybox_tar(engines_work: Path) -> Path:
    _need("/bin/busybox")
    return build_busybox_tar(engines_work)


@pytest.fixture(scope="session")
def podman(runtime: str, busybox_tar: Path) -> Iterator[Podman]:
    _need("podman", "conmon", "/usr/bin/catatonit")
    pm = Podman(private_dir("ocipy-podman-"), runtime)
    # Podman (as root) gives the runtime no --root: ocipy keeps state, and its seccomp cache, in /run/ocipy
    cache = Path("/run/ocipy/@cache")
    cache_was_there = cache.exists()
    try:
        pm.setup(busybox_tar)
        yield pm
    finally:
        pm.cleanup()
        if not cache_was_there:
            shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="session")
def oci_archive(podman: Podman, engines_work: Path) -> Path:
    """The busybox image as an OCI archive (for `ctr image import`)."""
    archive = engines_work / "busybox-oci.tar"
    if not archive.exists():
        podman("save", "--format", "oci-archive", "-o", str(archive), podman.image, check=True)
    return archive


@pytest.fixture(scope="session")
def containerd(oci_archive: Path) -> Iterator[Containerd]:
    _need("containerd", "ctr", "containerd-shim-runc-v2")
    cd = Containerd(private_dir("ocipy-containerd-"))
    try:
        cd.start()
        cd.import_oci_archive(oci_archive)
        yield cd
    finally:
        cd.stop()


@pytest.fixture(scope="session")
def dockerd(containerd: Containerd, runtime: str, busybox_tar: Path) -> Iterator[Dockerd]:
    _need("dockerd", "/usr/bin/docker")
    dk = Dockerd(private_dir("ocipy-docker-"), containerd, runtime)
    try:
        dk.start()
        dk("import", "-c", 'CMD ["/bin/sh"]', str(busybox_tar), dk.image, check=True)
        yield dk
    finally:
        dk.stop()
