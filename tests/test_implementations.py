"""What docs/websocket-implementations.md says of uvicorn's default and of the kit's guard,
measured as `wslab bench --implementations` measures it: this fails the day it stops being
true (for instance when uvicorn writes the refused handshake's answer itself)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from lessons.kit.implementations import GUARDED_NAME, measure_one


@pytest.mark.timeout(180)
def test_the_default_leaves_hostile_clients_unanswered_and_the_guard_answers_them() -> None:
    with ThreadPoolExecutor(2) as pool:  # side by side: each waits on its own deadlines
        plain, guarded = pool.map(measure_one, ["websockets-sansio", GUARDED_NAME])
    assert plain.errors == guarded.errors == []
    # uvicorn's default: no answer, socket held, for oversized and unfinished handshakes
    assert (plain.long_query, plain.long_header, plain.oversized_released) == (None, None, False)
    assert (plain.unfinished, plain.unfinished_released) == (None, None)
    assert plain.slow_reader_released is None
    # the guard: an HTTP status for each, and every socket released
    assert (guarded.long_query, guarded.long_header, guarded.oversized_released) == (
        414,
        431,
        True,
    )
    assert guarded.unfinished == 408 and guarded.unfinished_released is not None
    assert guarded.slow_reader_released is not None
    # the same for everything else the lessons rely on
    for m in (plain, guarded):
        assert m.dead_peer_released is not None
        assert (m.close_mid_message, m.too_big) == (1002, 1009)
