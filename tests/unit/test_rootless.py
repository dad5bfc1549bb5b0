"""ocipy/rootless.py: runc's `--rootless auto` detection and the state root choice (no root needed)."""

from __future__ import annotations

import pytest

from ocipy import rootless
from ocipy.errors import OcipyError


@pytest.mark.parametrize(
    ("text", "partial"),
    [
        ("         0          0 4294967295\n", False),  # the initial user namespace
        ("0 1000 1\n", True),  # `ocipy spec --rootless`: one id
        ("0 1001 1\n1 100000 65536\n", True),  # rootless Podman's namespace
        ("0 0 4294967294\n", True),  # all but one id
        ("", True),  # a user namespace whose map is not written yet
        ("junk\n", True),
    ],
)
def test_map_is_partial(text: str, partial: bool) -> None:
    assert rootless.map_is_partial(text) is partial


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Pretend euid and user namespace: returns a setter."""

    def set_(euid: int, userns: bool, env: dict[str, str]) -> None:
        monkeypatch.setattr(rootless.px, "geteuid", lambda: euid)
        monkeypatch.setattr(rootless, "_userns_cache", [userns])
        monkeypatch.setattr(rootless.px, "getenv", lambda name, default="": env.get(name, default))

    return set_


def test_detect_auto_and_overrides(host) -> None:  # type: ignore[no-untyped-def]
    host(0, False, {})
    assert rootless.detect("auto") is False
    assert rootless.detect("true") is True
    host(1000, False, {})
    assert rootless.detect("auto") is True and rootless.detect("") is True
    assert rootless.detect("false") is False
    host(0, True, {})  # uid 0 in rootless Podman's namespace
    assert rootless.detect("auto") is True
    assert "user namespace" in rootless.reason()
    with pytest.raises(OcipyError, match="invalid --rootless value: maybe"):
        rootless.detect("maybe")


def test_state_root(host, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    host(0, False, {"XDG_RUNTIME_DIR": "/run/user/0"})
    assert rootless.default_root() == "/run/ocipy"  # real root ignores XDG_RUNTIME_DIR (runc's compatibility rule)
    host(1000, False, {"XDG_RUNTIME_DIR": "/run/user/1000"})
    assert rootless.default_root() == "/run/user/1000/ocipy"
    host(0, True, {"XDG_RUNTIME_DIR": "/run/user/1000"})  # rootless Podman: uid 0 in its namespace
    assert rootless.default_root() == "/run/user/1000/ocipy"
    host(0, True, {"XDG_RUNTIME_DIR": "/run/user/1000", "USER": "root"})  # root in a namespace of its own
    assert rootless.default_root() == "/run/ocipy"
    host(1000, False, {"XDG_RUNTIME_DIR": "relative"})
    with pytest.raises(OcipyError, match=r"\$XDG_RUNTIME_DIR \(relative\) is not an absolute path"):
        rootless.default_root()
    host(1000, False, {})
    monkeypatch.setattr(rootless, "_writable_dir", lambda path: False)
    with pytest.raises(OcipyError) as err:
        rootless.default_root()
    assert "$XDG_RUNTIME_DIR is not set" in str(err.value) and "uid 1000" in str(err.value)
    assert "--root" in str(err.value)
    monkeypatch.setattr(rootless, "_writable_dir", lambda path: True)
    assert rootless.default_root() == "/run/ocipy"  # an unprivileged caller that may write /run/ocipy


def test_root_errors_name_their_source(host) -> None:  # type: ignore[no-untyped-def]
    exc = PermissionError(13, "Permission denied")
    host(1000, False, {"XDG_RUNTIME_DIR": "/run/user/1000"})
    assert "(from $XDG_RUNTIME_DIR): permission denied" in rootless.explain_root_error(
        "/run/user/1000/ocipy", exc, False
    )
    assert rootless.explain_root_error("/x", exc, True) == "state root /x (--root): permission denied"
    host(0, True, {})
    msg = rootless.explain_root_error("/run/ocipy", exc, False)
    assert "rootless (uid 0 in a user namespace" in msg and "XDG_RUNTIME_DIR" in msg
    host(0, False, {})
    assert rootless.explain_root_error("/run/ocipy", exc, False) == "state root /run/ocipy: permission denied"


def test_store_uses_the_rootless_root(host) -> None:  # type: ignore[no-untyped-def]
    from ocipy.store import Store

    host(1000, False, {"XDG_RUNTIME_DIR": "/run/user/1000"})
    assert Store().root == "/run/user/1000/ocipy"
    assert Store("/elsewhere").root == "/elsewhere"  # --root wins
