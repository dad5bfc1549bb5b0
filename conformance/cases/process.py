"""config.md#configProcess: args, env, cwd, user, terminal, hostname/domainname, oomScoreAdj, noNewPrivileges,
scheduler, ioPriority, and the extensibility rules."""

from __future__ import annotations

import array
import json
import os
import select
import socket
import threading
import time
from pathlib import Path

from ..framework import Ctx, case
from ._util import set_args

C = "config.md"


@case("process.args", C + "#configProcess", "MUST", "args ... with similar semantics to execvp's argv")
def _args(t: Ctx) -> None:
    f = t.probe(t.config(), "a b", "", "c")
    t.eq("argv is args, verbatim", f.get("argv"), ["/probe", "a b", "", "c"])


@case(
    "process.args-path-lookup",
    C + "#configProcess",
    "MUST",
    "that entry is used with the same semantics as execvp's file",
)
def _execvp(t: Ctx) -> None:
    cfg = t.config()
    b = t.bundle(set_args(cfg, ["probe", "looked-up"]))
    cid, _r = t.create(b)
    t.start(cid)
    t.wait_status(cid, "stopped")
    out = t.output(cid)
    facts = json.loads(out.splitlines()[0]) if out.startswith("{") else {}
    t.eq("args[0] without a slash is found in PATH", facts.get("argv"), ["probe", "looked-up"])


@case("process.env", C + "#configProcess", "MUST", "env ... with the same semantics as IEEE Std 1003.1-2008's environ")
def _env(t: Ctx) -> None:
    cfg = t.config()
    cfg["process"]["env"] += ["CONF_A=1", "CONF_B=with space", "CONF_EMPTY="]
    f = t.probe(cfg)
    env = f.get("env", [])
    for v in ("CONF_A=1", "CONF_B=with space", "CONF_EMPTY=", cfg["process"]["env"][0]):
        t.check(f"env has {v}", v in env, repr(env))


@case(
    "process.cwd",
    C + "#configProcess",
    "MUST",
    "cwd (string, REQUIRED) is the working directory that will be set for the executable.",
)
def _cwd(t: Ctx) -> None:
    cfg = t.config()
    cfg["process"]["cwd"] = "/usr/bin"
    f = t.probe(cfg)
    t.eq("cwd is process.cwd", f.get("cwd"), "/usr/bin")


@case(
    "process.user",
    C + "#configPOSIXUser",
    "MUST",
    "uid/gid: user and group ID in the container namespace; additionalGids: additional group IDs",
)
def _user(t: Ctx) -> None:
    cfg = t.config()
    cfg["process"]["user"] = {"uid": 1234, "gid": 2345, "additionalGids": [11, 22]}
    f = t.probe(cfg)
    t.eq("uid and euid are user.uid", (f.get("uid"), f.get("euid")), (1234, 1234))
    t.eq("gid and egid are user.gid", (f.get("gid"), f.get("egid")), (2345, 2345))
    t.check("additionalGids are the supplementary groups", {11, 22} <= set(f.get("groups", [])), repr(f.get("groups")))


@case("process.umask", C + "#configPOSIXUser", "MUST", "umask (int, OPTIONAL) is the umask of the user.")
def _umask(t: Ctx) -> None:
    cfg = t.config()
    cfg["process"]["user"]["umask"] = 0o027
    f = t.probe(cfg)
    t.eq("umask is user.umask", f.get("umask"), 0o027)


@case(
    "process.hostname",
    C + "#configHostname",
    "MUST",
    "hostname (string, OPTIONAL) specifies the container's hostname as seen by processes running inside",
)
def _hostname(t: Ctx) -> None:
    cfg = t.config()
    cfg["hostname"] = "conf-host"
    f = t.probe(cfg)
    t.eq("hostname is config.hostname", f.get("hostname"), "conf-host")


@case(
    "process.domainname",
    C + "#configDomainname",
    "MUST",
    "domainname (string, OPTIONAL) specifies the container's domainname as seen by processes running inside",
)
def _domainname(t: Ctx) -> None:
    cfg = t.config()
    cfg["domainname"] = "conf.example"
    f = t.probe(cfg)
    t.eq("domainname is config.domainname", f.get("domainname"), "conf.example")


@case(
    "process.oom-score-adj",
    C + "#configLinuxProcess",
    "MUST",
    "If oomScoreAdj is set, the runtime MUST set oom_score_adj to the given value.",
)
def _oom(t: Ctx) -> None:
    cfg = t.config()
    cfg["process"]["oomScoreAdj"] = 123
    f = t.probe(cfg)
    t.eq("oom_score_adj is oomScoreAdj", f.get("oom_score_adj"), 123)


@case(
    "process.oom-score-adj-unset",
    C + "#configLinuxProcess",
    "MUST",
    "If oomScoreAdj is not set, the runtime MUST NOT change the value of oom_score_adj.",
)
def _oom_unset(t: Ctx) -> None:
    mine = int(Path("/proc/self/oom_score_adj").read_text())
    f = t.probe(t.config())
    t.eq("oom_score_adj is the caller's", f.get("oom_score_adj"), mine)


@case(
    "process.no-new-privileges",
    C + "#configLinuxProcess",
    "MUST",
    "noNewPrivileges (bool, OPTIONAL) setting noNewPrivileges to true prevents the process from gaining "
    "additional privileges",
)
def _nnp(t: Ctx) -> None:
    cfg = t.config()
    cfg["process"]["noNewPrivileges"] = True
    f = t.probe(cfg, name="the container ran the probe (noNewPrivileges true)")
    t.eq("NoNewPrivs is 1 when true", f.get("NoNewPrivs"), "1")
    cfg = t.config()
    cfg["process"]["noNewPrivileges"] = False
    f = t.probe(cfg, name="the container ran the probe (noNewPrivileges false)")
    t.eq("NoNewPrivs is 0 when false", f.get("NoNewPrivs"), "0")


@case(
    "process.scheduler",
    C + "#configLinuxProcess",
    "MUST",
    "scheduler (object, OPTIONAL) is an object describing the scheduler properties for the process",
)
def _sched(t: Ctx) -> None:
    cfg = t.config()
    cfg["ociVersion"] = "1.3.0"
    cfg["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    f = t.probe(cfg)
    t.eq("the policy is SCHED_BATCH", f.get("sched_policy"), 3)
    t.eq("nice is scheduler.nice", f.get("nice"), 7)


@case(
    "process.io-priority",
    C + "#configLinuxProcess",
    "MUST",
    "ioPriority (object, OPTIONAL) configures the I/O priority settings for the container's processes",
)
def _ioprio(t: Ctx) -> None:
    cfg = t.config()
    cfg["ociVersion"] = "1.3.0"
    cfg["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
    f = t.probe(cfg)
    t.eq("ioprio is (BE << 13) | 6", f.get("ioprio"), (2 << 13) | 6)


@case(
    "process.console-size-ignored",
    C + "#configProcess",
    "MUST",
    "Runtimes MUST ignore consoleSize if terminal is false or unset.",
)
def _consolesize(t: Ctx) -> None:
    cfg = t.config()
    cfg["process"]["consoleSize"] = {"height": 10, "width": 40}
    f = t.probe(cfg)
    t.eq("no terminal is attached", f.get("isatty"), [0, 0, 0])


@case(
    "process.terminal",
    C + "#configProcess",
    "MUST",
    "if set to true on Linux a pseudoterminal pair is allocated for the process and the pseudoterminal pty is "
    "duplicated on the process's standard streams",
)
def _terminal(t: Ctx) -> None:
    sock_path = str(t.dir / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    srv.settimeout(20)
    got = {}

    def accept() -> None:
        try:
            conn, _ = srv.accept()
            fds = array.array("i")
            _msg, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(4 * fds.itemsize))
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
            got["fds"] = list(fds)
            conn.close()
        except OSError as e:
            got["error"] = str(e)

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    cfg = t.config()
    cfg["process"]["terminal"] = True
    cfg["process"]["args"] = ["/probe", "stat:/dev/console", "sleep:1"]
    b = t.bundle(cfg)
    cid, r = t.create(b, extra=("--console-socket", sock_path))
    th.join(20)
    srv.close()
    t.eq("create with terminal and --console-socket exits 0", r.rc, 0, str(r))
    fds = got.get("fds", [])
    t.check("the runtime sent the pty master over the console socket", len(fds) >= 1, repr(got))
    out = b""
    if fds and r.rc == 0:
        t.start(t.containers[-1])
        end = time.monotonic() + 10
        while time.monotonic() < end and b"}\r\n" not in out and b"}\n" not in out:
            ready, _, _ = select.select([fds[0]], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fds[0], 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
    for fd in fds:
        os.close(fd)
    facts = {}
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                facts = json.loads(line)
            except ValueError:
                pass
    t.eq("stdin, stdout and stderr are a terminal", facts.get("isatty"), [1, 1, 1])
    con = (facts.get("req") or {}).get("stat:/dev/console") or {}
    t.eq("/dev/console is a character device (the pty)", con.get("type"), "c", repr(con))
    del cid


@case(
    "config.unknown-properties",
    C + "#configExtensibility",
    "MUST",
    "Runtimes MAY log unknown properties but MUST otherwise ignore them.",
)
def _unknown(t: Ctx) -> None:
    cfg = t.config()
    cfg["org.example.unknown"] = {"x": [1, 2]}
    cfg["process"]["org.example.unknown"] = True
    cfg["linux"]["org.example.unknown"] = "y"
    f = t.probe(cfg, name="a config with unknown properties runs")
    del f


@case(
    "config.annotations-unknown",
    C + "#configAnnotations",
    "MUST",
    "Runtimes MUST handle unknown annotation keys like any other unknown property.",
)
def _annotations(t: Ctx) -> None:
    cfg = t.config()
    cfg["annotations"] = {"com.example.unknown.key": "value", "org.example.x": ""}
    t.probe(cfg, name="a config with unknown annotations runs")


@case(
    "config.apparmor",
    C + "#configLinuxProcess",
    "MUST",
    "apparmorProfile (string, OPTIONAL) specifies the name of the AppArmor profile for the process.",
)
def _apparmor(t: Ctx) -> None:
    lsm = Path("/sys/kernel/security/lsm").read_text().strip() if os.path.exists("/sys/kernel/security/lsm") else ""
    if "apparmor" not in lsm:
        t.skip(f"host: AppArmor is not enabled (LSMs: {lsm!r}), a profile cannot be applied or checked")


@case(
    "config.selinux",
    C + "#configLinuxProcess",
    "MUST",
    "selinuxLabel (string, OPTIONAL) specifies the SELinux label for the process.",
)
def _selinux(t: Ctx) -> None:
    lsm = Path("/sys/kernel/security/lsm").read_text().strip() if os.path.exists("/sys/kernel/security/lsm") else ""
    if "selinux" not in lsm:
        t.skip(f"host: SELinux is not enabled (LSMs: {lsm!r}), a label cannot be applied or checked")


@case(
    "seccomp.filter",
    "config-linux.md#configLinuxSeccomp",
    "MUST",
    "Seccomp provides application sandboxing mechanism in the Linux kernel (defaultAction, syscalls, errnoRet)",
)
def _seccomp(t: Ctx) -> None:
    cfg = t.config()
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        ],
    }
    f = t.probe(cfg, "mkdir:/tmp/conf-dir", "touch:/tmp/conf-file")
    t.eq("the process runs in seccomp filter mode", f.get("Seccomp"), "2")
    t.eq("a syscall with SCMP_ACT_ERRNO errnoRet 1 fails with EPERM", req_(f, "mkdir:/tmp/conf-dir"), 1)
    t.eq("other syscalls follow defaultAction ALLOW", req_(f, "touch:/tmp/conf-file"), 0)


@case(
    "seccomp.none",
    "config-linux.md#configLinuxSeccomp",
    "MUST",
    "seccomp (object, OPTIONAL): without it no filter is installed",
)
def _noseccomp(t: Ctx) -> None:
    f = t.probe(t.config())
    t.eq("no seccomp filter without linux.seccomp", f.get("Seccomp"), "0")


@case(
    "process.personality",
    "config-linux.md#configLinuxPersonality",
    "MUST",
    "domain (string, REQUIRED) the execution domain: LINUX and LINUX32",
)
def _personality(t: Ctx) -> None:
    cfg = t.config()
    cfg["linux"]["personality"] = {"domain": "LINUX32"}
    f = t.probe(cfg)
    t.eq("uname's machine is i686 under LINUX32", f.get("machine"), "i686")


def req_(f, key):
    return (f.get("req") or {}).get(key)
