"""docs/engines.md's containerd block, as a user would paste it: the CRI suite runs on it (cririg reads it from the
doc); here it is also merged into Debian's shipped /etc/containerd/config.toml, and the old form (no runc table) is
shown to make containerd 1.6 drop its CRI plugin, which is why the doc keeps `runtimes.runc`."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cririg import CRI, CriContainerd, _merge, doc_containerd_config, private_dir

pytestmark = [pytest.mark.engines, pytest.mark.timeout(120)]

DEBIAN_CONFIG = Path("/etc/containerd/config.toml")


def test_doc_block_declares_the_handler_beside_runc() -> None:
    conf = doc_containerd_config()
    assert conf["version"] == 2
    cri = conf["plugins"][CRI]
    runtimes = cri["containerd"]["runtimes"]
    assert runtimes["runc"]["runtime_type"] == runtimes["ocipy"]["runtime_type"] == "io.containerd.runc.v2"
    assert runtimes["ocipy"]["options"]["BinaryName"] == "/usr/local/bin/ocipy"
    assert cri["containerd"].get("default_runtime_name", "runc") in runtimes
    assert cri["restrict_oom_score_adj"] is True


@pytest.fixture
def bare_containerd(rig: Any) -> Iterator[Any]:
    """Start a second private containerd from a given base config (no pods: only whether CRI loads)."""
    started: list[CriContainerd] = []

    def start(base: dict[str, Any]) -> CriContainerd:
        cd = CriContainerd(private_dir("ocipy-cri-doc-"), "/usr/local/bin/ocipy", runc="runc", base=base)
        started.append(cd)
        cd.start(expect_cri=False)
        return cd

    yield start
    for cd in started:
        assert not cd.stop(), "leftovers"


@pytest.mark.skipif(not DEBIAN_CONFIG.exists(), reason=f"no {DEBIAN_CONFIG} (Debian's containerd package ships it)")
def test_doc_block_merged_into_debians_config(bare_containerd: Any) -> None:
    base = tomllib.loads(DEBIAN_CONFIG.read_text())
    cd = bare_containerd(_merge(base, doc_containerd_config()))
    assert cd.cri_loaded(), cd.log.read_text()[-2000:]


def test_without_a_runc_table_containerd_drops_cri(bare_containerd: Any) -> None:
    conf = copy.deepcopy(doc_containerd_config())
    del conf["plugins"][CRI]["containerd"]["runtimes"]["runc"]
    cd = bare_containerd(conf)
    assert not cd.cri_loaded()
    assert "no corresponding runtime configured in `containerd.runtimes`" in cd.log.read_text()
