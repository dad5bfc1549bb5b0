"""A foreground wait turns the cyclic collector back on for what is made from then on, and leaves out what the
command made while it was off (ocipy/foreground.py `collect_from_now`): the first collection after a plain
gc.enable() walked every object of the command (~0.3 ms of an exec)."""

from __future__ import annotations

import gc

from ocipy import foreground


def test_the_wait_collects_only_what_comes_after() -> None:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        made_before = [[i] for i in range(5000)]  # tracked containers, as imports and a command's work make
        foreground.collect_from_now()
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(made_before)  # frozen: no collection walks them again
        assert gc.get_count()[0] < 100  # nothing left pending for the first allocation to trigger on
    finally:
        gc.unfreeze()
        if not was_enabled:
            gc.disable()
