"""The kubelet's side of the CRI: cri-api v1 over gRPC on containerd's unix socket.

Stubs are generated at import time from tests/cri/cri_api.proto (the protocol subset the suite uses) with PyPI's
grpcio-tools into a temp dir; docs/kubernetes.md says why this over a package that ships stubs. `Cri` wraps the
calls with the defaults a kubelet would send, and keeps the pod configs (CreateContainer wants them again).
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
PROTO = HERE / "cri_api.proto"


def _generate() -> tuple[Any, Any]:
    out = Path(tempfile.mkdtemp(prefix="ocipy-cri-stubs-"))
    include = Path(protoc.__file__).parent / "_proto"
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{HERE}",
            f"-I{include}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            str(PROTO),
        ]
    )
    if rc != 0:
        raise RuntimeError(f"protoc failed on {PROTO} (exit {rc})")
    sys.path.insert(0, str(out))
    try:
        pb2 = importlib.import_module("cri_api_pb2")
        pb2_grpc = importlib.import_module("cri_api_pb2_grpc")
    finally:
        sys.path.remove(str(out))
        shutil.rmtree(out, ignore_errors=True)
    return pb2, pb2_grpc


pb, pb_grpc = _generate()

# seconds a pod or container call may take before the client gives up (a runtime that fails a call can leave
# containerd retrying for ever; the suite must fail, not hang)
CALL = 45

Ns = pb.NamespaceMode


@dataclass
class Pod:
    id: str
    config: Any
    handler: str
    containers: list[str] = field(default_factory=list)


class Cri:
    def __init__(self, socket: Path, logs: Path, cgroup_parent: str) -> None:
        self.channel = grpc.insecure_channel(f"unix://{socket}")
        self.rt = pb_grpc.RuntimeServiceStub(self.channel)
        self.img = pb_grpc.ImageServiceStub(self.channel)
        self.logs = logs
        self.cgroup_parent = cgroup_parent
        self.pods: dict[str, Pod] = {}
        self.netns_paths: list[str] = []  # every pod network namespace containerd made (checked at the end)

    def close(self) -> None:
        self.channel.close()

    # -- pods --------------------------------------------------------------------------------------------------

    def run_pod(
        self,
        handler: str,
        *,
        host_network: bool = False,
        pid: int = Ns.CONTAINER,
        hostname: str | None = None,
        privileged: bool = False,
        timeout: float = 120,
    ) -> Pod:
        uid = uuid.uuid4().hex
        name = "pod-" + uid[:8]
        logdir = self.logs / f"default_{name}_{uid}"
        logdir.mkdir(parents=True, exist_ok=True)
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace="default", attempt=0),
            hostname="" if host_network and hostname is None else (hostname or name),
            log_directory=str(logdir),
            labels={"ocipy-test": "cri"},
            annotations={"test/handler": handler},
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=f"{self.cgroup_parent}/pod{uid}",
                security_context=pb.LinuxSandboxSecurityContext(
                    namespace_options=pb.NamespaceOption(
                        network=Ns.NODE if host_network else Ns.POD, pid=pid, ipc=Ns.POD
                    ),
                    privileged=privileged,
                ),
            ),
        )
        resp = self.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=config, runtime_handler=handler), timeout=timeout)
        pod = Pod(resp.pod_sandbox_id, config, handler)
        self.pods[pod.id] = pod
        spec = json.loads(self.pod_status(pod, verbose=True).info["info"])["runtimeSpec"]
        self.netns_paths += [n["path"] for n in spec["linux"]["namespaces"] if n["type"] == "network" and n.get("path")]
        return pod

    def pod_status(self, pod: Pod, verbose: bool = False) -> Any:
        return self.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod.id, verbose=verbose), timeout=30)

    def stop_pod(self, pod: Pod) -> None:
        self.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod.id), timeout=CALL)

    def remove_pod(self, pod: Pod) -> None:
        self.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod.id), timeout=CALL)
        self.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id), timeout=CALL)
        self.pods.pop(pod.id, None)

    def list_pods(self) -> list[Any]:
        return list(self.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items)

    def remove_all_pods(self) -> list[str]:
        """Stop and remove every pod; the ids of those that could not be removed."""
        failed = []
        for item in self.list_pods():
            try:
                self.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=item.id), timeout=CALL)
                self.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=item.id), timeout=CALL)
            except grpc.RpcError:
                failed.append(item.id)
        self.pods.clear()
        return failed

    # -- containers --------------------------------------------------------------------------------------------

    def create(
        self,
        pod: Pod,
        name: str,
        cmd: list[str],
        *,
        attempt: int = 0,
        security: Any = None,
        resources: Any = None,
        envs: dict[str, str] | None = None,
        mounts: list[Any] | None = None,
        image: str = "localhost/ocipy-busybox:1",
    ) -> str:
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name, attempt=attempt),
            image=pb.ImageSpec(image=image),
            command=cmd[:1],
            args=cmd[1:],
            envs=[pb.KeyValue(key=k, value=v) for k, v in (envs or {}).items()],
            mounts=mounts or [],
            log_path=f"{name}/{attempt}.log",
            labels={"name": name},
            linux=pb.LinuxContainerConfig(
                resources=resources or pb.LinuxContainerResources(),
                security_context=security
                or pb.LinuxContainerSecurityContext(
                    namespace_options=pod.config.linux.security_context.namespace_options
                ),
            ),
        )
        resp = self.rt.CreateContainer(
            pb.CreateContainerRequest(pod_sandbox_id=pod.id, config=config, sandbox_config=pod.config), timeout=CALL
        )
        pod.containers.append(resp.container_id)
        return str(resp.container_id)

    def start(self, cid: str) -> None:
        self.rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=CALL)

    def run(self, pod: Pod, name: str, cmd: list[str], **kw: Any) -> str:
        cid = self.create(pod, name, cmd, **kw)
        self.start(cid)
        return cid

    def stop(self, cid: str, timeout: int = 0) -> None:
        self.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=timeout), timeout=timeout + CALL)

    def remove(self, cid: str) -> None:
        self.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=CALL)

    def status(self, cid: str, verbose: bool = False) -> Any:
        return self.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=verbose), timeout=30)

    def list(self, pod: Pod | None = None) -> list[Any]:
        flt = pb.ContainerFilter(pod_sandbox_id=pod.id) if pod else pb.ContainerFilter()
        return list(self.rt.ListContainers(pb.ListContainersRequest(filter=flt), timeout=30).containers)

    def exec_sync(self, cid: str, cmd: list[str], timeout: int = 0) -> Any:
        return self.rt.ExecSync(
            pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout), timeout=(timeout or 60) + 30
        )

    def sh(self, cid: str, script: str) -> str:
        """ExecSync `sh -c script`, which must succeed; its stdout."""
        r = self.exec_sync(cid, ["sh", "-c", script])
        assert r.exit_code == 0, f"{script!r}: exit {r.exit_code}, stdout {r.stdout!r}, stderr {r.stderr!r}"
        return str(r.stdout.decode())

    def stats(self, cid: str) -> Any:
        return self.rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid), timeout=30).stats

    def update(self, cid: str, resources: Any) -> None:
        self.rt.UpdateContainerResources(
            pb.UpdateContainerResourcesRequest(container_id=cid, linux=resources), timeout=60
        )

    def pid(self, cid: str) -> int:
        return int(json.loads(self.status(cid, verbose=True).info["info"])["pid"])

    def wait_state(self, cid: str, state: int, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(cid).status
            if st.state == state:
                return st
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"container {cid[:12]} is {pb.ContainerState.Name(st.state)}, not "
                    f"{pb.ContainerState.Name(state)} after {timeout}s"
                )
            time.sleep(0.1)

    def log_path(self, pod: Pod, name: str, attempt: int = 0) -> Path:
        return Path(pod.config.log_directory) / name / f"{attempt}.log"
