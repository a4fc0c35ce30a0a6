"""What docs/websocket-implementations.md says of uvicorn's default and of the kit's guard,
measured as `wslab bench --implementations` measures it: this fails the day it stops being
true. uvicorn 0.55 writes a refused handshake's answer itself (claim ``oversized-handshake``
in lessons/kit/versions.py); it still has no deadline for a handshake that never ends."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from lessons.bench.implementations import GUARDED_NAME, measure_one
from lessons.kit.versions import CLAIMS


@pytest.mark.timeout(180)
def test_the_default_leaves_unfinished_handshakes_unanswered_and_the_guard_answers_them() -> None:
    with ThreadPoolExecutor(2) as pool:  # side by side: each waits on its own deadlines
        plain, guarded = pool.map(measure_one, ["websockets-sansio", GUARDED_NAME])
    assert plain.errors == guarded.errors == []
    # uvicorn's default: oversized handshakes by version; no answer for an unfinished one
    claim = CLAIMS["oversized-handshake"]
    silent, answers = (era.behaviour for era in claim.eras)
    seen = (plain.long_query, plain.long_header, plain.oversized_released)
    claim.expect({(None, None, False): silent, (414, 431, True): answers}.get(seen, str(seen)))
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
