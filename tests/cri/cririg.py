"""A private containerd with its CRI plugin on, driven as the kubelet drives it (tests/cri and bench/cri_exec.py).

What it sets up, all private and all removed by `stop()`:
- a network namespace of its own (`ip netns add`), in which containerd runs (`nsenter --net`): the CNI bridge, its
  veth ends and the stream server live there, and "host network" pods get that namespace, so the host's own network
  is never touched;
- containerd's root, state, sockets, CNI config and IPAM data in one temp dir;
- the config: the TOML snippet docs/engines.md shows (read from the doc, so the docs are tested as written) with the
  private paths added, `runtimes.ocipy` pointing at the ocipy under test and `runtimes.runc` at runc 1.5.1;
- a pause image built here from tests/cri/pause.c (cc -static) and a busybox image (scripts/make-rootfs), both
  written as OCI archives and imported with `ctr -n k8s.io images import`;
- the pods' cgroups under one private parent per run in every v1 hierarchy (removed at the end).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
sys.path.insert(0, str(PROJECT / "tests" / "engines"))

from enginectl import (
    build_busybox_tar,
    engine_runtime,
    pids_mentioning,
    private_dir,
    remove_tree,
    stop_child,
    stop_pid,
)

DOC = PROJECT / "docs" / "engines.md"
DOC_MARKER = "<!-- tested: tests/cri loads the next toml block -->"
CACHE = Path(os.environ.get("OCIPY_CACHE", "/var/cache/ocipy"))
RUNC_REF = CACHE / "bin" / "runc-1.5.1"
CNI_BIN = "/usr/lib/cni"
SUBNET = "10.231.99.0/24"
PAUSE_IMAGE = "localhost/ocipy-pause:1"
BUSYBOX_IMAGE = "localhost/ocipy-busybox:1"
K8S_NS = "k8s.io"
CRI = "io.containerd.grpc.v1.cri"


def doc_containerd_config(doc: Path = DOC) -> dict[str, Any]:
    """The containerd config.toml snippet docs/engines.md shows (the toml block after DOC_MARKER), parsed."""
    text = doc.read_text()
    at = text.find(DOC_MARKER)
    if at < 0:
        raise AssertionError(f"{doc}: no '{DOC_MARKER}' before the containerd snippet")
    m = re.compile(r"```toml\n(.*?)```", re.DOTALL).search(text, at)
    if m is None:
        raise AssertionError(f"{doc}: no toml block after the marker")
    return tomllib.loads(m.group(1))


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def dump_toml(data: dict[str, Any]) -> str:
    """A TOML writer for what a containerd config holds (tables, strings, ints, bools, lists)."""
    out: list[str] = []

    def table(prefix: list[str], d: dict[str, Any]) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        if prefix and (scalars or not d):
            out.append("[" + ".".join(_toml_key(p) for p in prefix) + "]")
        for k, v in scalars.items():
            out.append(f"{_toml_key(k)} = {_toml_value(v)}")
        if scalars:
            out.append("")
        for k, v in d.items():
            if isinstance(v, dict):
                table([*prefix, k], v)

    table([], data)
    return "\n".join(out) + "\n"


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


# ------------------------------------------------------------------------------------------------------------------
# images: OCI archives written here, imported with ctr
# ------------------------------------------------------------------------------------------------------------------


def _blob(layout: tarfile.TarFile, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    info.mode = 0o644
    layout.addfile(info, io.BytesIO(data))
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_oci_archive(dest: Path, name: str, layer_tar: bytes, config: dict[str, Any]) -> Path:
    """An OCI image layout as a tar (one uncompressed layer), named `name` for `ctr images import`."""
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    with tarfile.open(dest, "w") as layout:
        layer = _blob(layout, layer_tar)
        cfg = _blob(layout, json.dumps(image_config).encode())
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
            }
        ).encode()
        man = _blob(layout, manifest)
        for fname, body in (
            ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
            (
                "index.json",
                json.dumps(
                    {
                        "schemaVersion": 2,
                        "manifests": [
                            {
                                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                **man,
                                "platform": {"architecture": "amd64", "os": "linux"},
                                "annotations": {
                                    "io.containerd.image.name": name,
                                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
                                },
                            }
                        ],
                    }
                ).encode(),
            ),
        ):
            info = tarfile.TarInfo(fname)
            info.size = len(body)
            info.mode = 0o644
            layout.addfile(info, io.BytesIO(body))
    return dest


def build_pause(work: Path) -> Path:
    """tests/cri/pause.c, compiled static, in a one-file layer."""
    binary = work / "pause"
    subprocess.run(
        ["cc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(HERE / "pause.c")],
        check=True,
        capture_output=True,
    )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        t.add(str(binary), arcname="pause", filter=lambda i: _owned_by_root(i, 0o755))
    return write_oci_archive(work / "pause-oci.tar", PAUSE_IMAGE, buf.getvalue(), {"Entrypoint": ["/pause"]})


def _owned_by_root(info: tarfile.TarInfo, mode: int) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = mode
    return info


def build_busybox(work: Path) -> Path:
    tar = build_busybox_tar(work)
    archive = write_oci_archive(
        work / "busybox-oci.tar",
        BUSYBOX_IMAGE,
        tar.read_bytes(),
        {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
    )
    tar.unlink()
    return archive


# ------------------------------------------------------------------------------------------------------------------
# cgroups (v1 hierarchies on this host; the unified one too when it is mounted)
# ------------------------------------------------------------------------------------------------------------------


def cgroup_roots() -> list[Path]:
    roots = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                roots.append(Path(fields[4]))
    return roots


def remove_cgroup_tree(rel: str) -> list[str]:
    """rmdir the cgroup `rel` (ours) and everything below it, deepest first, in every hierarchy; returns what
    could not be removed."""
    left = []
    for root in cgroup_roots():
        top = root / rel.lstrip("/")
        if not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for d in [*dirs, top]:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                left.append(str(d))
    return left


def cgroup_tree_pids(rel: str) -> list[int]:
    """Every process in the cgroup `rel` or below it, in any hierarchy."""
    found: set[int] = set()
    for root in cgroup_roots():
        top = root / rel.lstrip("/")
        if top.is_dir():
            for procs in top.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    found.update(int(x) for x in procs.read_text().split())
    return sorted(found)


def process_cgroup(pid: int, controller: str) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path
    raise AssertionError(f"pid {pid} has no {controller} cgroup")


# ------------------------------------------------------------------------------------------------------------------
# containerd with CRI
# ------------------------------------------------------------------------------------------------------------------


class CriContainerd:
    """containerd 1.6 with CRI, in a network namespace of its own, runtimes `ocipy` and `runc` (runc 1.5.1)."""

    def __init__(self, work: Path, ocipy: str, runc: str | None = None, base: dict[str, Any] | None = None) -> None:
        self.work = work
        self.base = base
        self.ocipy = ocipy
        self.runc = runc if runc is not None else (str(RUNC_REF) if RUNC_REF.exists() else shutil.which("runc") or "")
        self.sock = work / "containerd.sock"
        self.netns = "ocipy-cri-" + uuid.uuid4().hex[:8]
        self.cgroup_parent = "/ocipy-cri-" + uuid.uuid4().hex[:8]
        self.logs = work / "pod-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.config = work / "config.toml"
        self.log = work / "containerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.netns_made = False

    def config_data(self) -> dict[str, Any]:
        """The doc's snippet, plus private paths and this host's needs (the additions a real node does not want are
        the paths; `restrict_oom_score_adj` is in the doc as the fix for hosts without CAP_SYS_RESOURCE)."""
        w = self.work
        conf = doc_containerd_config() if self.base is None else self.base
        runtimes = conf.get("plugins", {}).get(CRI, {}).get("containerd", {}).get("runtimes", {})
        private = {
            "root": str(w / "root"),
            "state": str(w / "state"),
            "disabled_plugins": [
                "io.containerd.snapshotter.v1.btrfs",
                "io.containerd.snapshotter.v1.zfs",
                "io.containerd.snapshotter.v1.devmapper",
                "io.containerd.snapshotter.v1.aufs",
            ],
            "grpc": {"address": str(self.sock)},
            "ttrpc": {"address": str(self.sock) + ".ttrpc"},
            "debug": {"address": "", "level": "info"},
            "plugins": {
                CRI: {
                    "sandbox_image": PAUSE_IMAGE,
                    "restrict_oom_score_adj": True,
                    "stream_server_address": "127.0.0.1",
                    "cni": {"bin_dir": CNI_BIN, "conf_dir": str(w / "cni-conf"), "max_conf_num": 1},
                    "containerd": {
                        "runtimes": {
                            name: {"options": {"BinaryName": binary, "Root": str(w / f"{name}-root")}}
                            for name, binary in (("ocipy", self.ocipy), ("runc", self.runc))
                            if name in runtimes
                        }
                    },
                }
            },
        }
        return _merge(conf, private)

    def write_cni(self) -> None:
        d = self.work / "cni-conf"
        d.mkdir(parents=True, exist_ok=True)
        (d / "10-ocipy-cri.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "0.4.0",
                    "name": "ocipy-cri",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": "ocipycri0",
                            "isGateway": False,
                            "ipMasq": False,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": SUBNET}]],
                                "dataDir": str(self.work / "cni-ipam"),
                            },
                        }
                    ],
                },
                indent=1,
            )
        )

    def start(self, expect_cri: bool = True) -> None:
        self.config.write_text(dump_toml(self.config_data()))
        self.write_cni()
        subprocess.run(["ip", "netns", "add", self.netns], check=True, capture_output=True)
        self.netns_made = True
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True, capture_output=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.netns}", "containerd", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.work,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            if self.sock.exists() and self.ctr("version").returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"containerd did not come up: {self.log.read_text()[-3000:]}")
        if expect_cri and not self.cri_loaded():
            raise RuntimeError(f"containerd dropped its CRI plugin: {self.log.read_text()[-3000:]}")

    def cri_loaded(self) -> bool:
        """Whether containerd loaded its CRI plugin (`ctr plugins ls`: ok, not error)."""
        for line in self.ctr("plugins", "ls", check=True).stdout.splitlines():
            fields = line.split()
            if len(fields) >= 4 and fields[0] == "io.containerd.grpc.v1" and fields[1] == "cri":
                return fields[-1] == "ok"
        return False

    def ctr(self, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            ["ctr", "--address", str(self.sock), "--namespace", K8S_NS, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and p.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} -> {p.returncode}: {p.stderr}")
        return p

    def import_images(self, *archives: Path) -> None:
        for a in archives:
            self.ctr("images", "import", str(a), check=True)

    def netns_inode(self) -> int:
        return os.stat(f"/run/netns/{self.netns}").st_ino

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, client: Any = None) -> list[str]:
        """Remove every pod (through CRI when a client is given), stop containerd by pid, stop any shim it left,
        kill what is still in the pods' cgroups (ours by construction), remove those cgroups, the pod network
        namespaces containerd made, our netns and the temp dir. Returns what had to be cleaned up by force (a test
        fails on it); nothing stays either way."""
        leftovers: list[str] = []
        if client is not None and self.proc is not None and self.proc.poll() is None:
            try:
                leftovers += [f"pod {p} (CRI could not remove it)" for p in client.remove_all_pods()]
            except Exception as exc:  # noqa: BLE001 (clean-up goes on whatever the CRI says)
                leftovers.append(f"pods (CRI: {exc})")
        if self.proc is not None:
            stop_child(self.proc)
        for pid in pids_mentioning(str(self.sock)):  # shims: containerd-shim-runc-v2 -address SOCK ...
            leftovers.append(f"shim pid {pid}")
            stop_pid(pid)
        procs = cgroup_tree_pids(self.cgroup_parent)
        if procs:
            leftovers.append(f"container processes {procs}")
            for pid in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while cgroup_tree_pids(self.cgroup_parent) and time.monotonic() < deadline:
                time.sleep(0.05)
        leftovers += [f"cgroup {c}" for c in remove_cgroup_tree(self.cgroup_parent)]
        for path in getattr(client, "netns_paths", []):
            if os.path.exists(path):
                leftovers.append(f"netns {path}")
                subprocess.run(["umount", path], capture_output=True, check=False)
                with contextlib.suppress(OSError):
                    os.unlink(path)
        if self.netns_made:
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, check=False)
        remove_tree(self.work)
        return leftovers


def make_rig(work: Path) -> CriContainerd:
    """Build the images, start containerd with CRI and import them (the caller stops it). On failure nothing stays:
    containerd, shims, netns, cgroups and `work` are removed before the error propagates."""
    rig: CriContainerd | None = None
    try:
        ocipy = engine_runtime(work)
        images = work / "images"
        images.mkdir()
        pause = build_pause(images)
        busybox = build_busybox(images)
        rig = CriContainerd(work, ocipy)
        rig.start()
        rig.import_images(pause, busybox)
    except BaseException:
        if rig is not None:
            rig.stop()
        else:
            shutil.rmtree(work, ignore_errors=True)
        raise
    return rig


__all__ = [
    "BUSYBOX_IMAGE",
    "PAUSE_IMAGE",
    "RUNC_REF",
    "CriContainerd",
    "doc_containerd_config",
    "make_rig",
    "private_dir",
    "process_cgroup",
]
