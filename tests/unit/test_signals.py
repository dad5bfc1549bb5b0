"""`kill`'s signal names: the machine's numbers (the interpreter's `signal` module), not a hand-written table."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from ocipy import signals
from ocipy.errors import OcipyError


def test_every_name_the_signal_module_knows() -> None:
    for sig in signal.Signals:
        assert signals.parse_signal(sig.name) == sig.value, sig.name
        assert signals.parse_signal(sig.name.removeprefix("SIG").lower()) == sig.value
    assert signals.SIGRTMIN == signal.SIGRTMIN and signals.SIGRTMAX == signal.SIGRTMAX
    assert signals.parse_signal("RTMIN+2") == signal.SIGRTMIN + 2
    assert signals.parse_signal("RTMAX-2") == signal.SIGRTMAX - 2
    assert signals.parse_signal(str(int(signal.SIGRTMAX))) == signal.SIGRTMAX


@pytest.mark.parametrize("bad", ["NOPE", "RTMIN+99", "RTMAX+1", "65", "-1", "SIG"])
def test_unknown(bad: str) -> None:
    with pytest.raises(OcipyError, match="^unknown signal"):
        signals.parse_signal(bad)


def test_no_hand_written_numbers() -> None:
    source = (Path(signals.__file__)).read_text()
    # a table of `"NAME": number` pairs would be machine-specific (x86/ARM numbers differ from MIPS, SPARC, Alpha)
    assert not re.search(r'"[A-Z]+\d?":\s*\d+', source)
