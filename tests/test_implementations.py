"""What docs/websocket-implementations.md says of uvicorn's implementations and of the
kit's choice (the default on a socket with TCP_USER_TIMEOUT), measured as
`wslab bench --implementations` measures it: this fails the day it stops being true."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from lessons.bench.implementations import KIT_NAME, measure_one
from lessons.course.versions import CLAIMS


@pytest.mark.timeout(180)
def test_what_uvicorn_bounds_and_what_it_holds() -> None:
    with ThreadPoolExecutor(2) as pool:  # side by side: each waits on its own deadlines
        plain, kit = pool.map(measure_one, ["websockets-sansio", KIT_NAME])
    assert plain.errors == kit.errors == []
    # oversized handshakes: by uvicorn's version, whatever the socket
    claim = CLAIMS["oversized-handshake"]
    silent, answers = (era.behaviour for era in claim.eras)
    for m in (plain, kit):
        seen = (m.long_query, m.long_header, m.oversized_released)
        claim.expect({(None, None, False): silent, (414, 431, True): answers}.get(seen, str(seen)))
    # half a handshake: no answer, the socket held, with or without the socket option
    held = CLAIMS["unfinished-head"].eras[-1].behaviour
    for m in (plain, kit):
        seen = held if (m.unfinished, m.unfinished_released) == (None, None) else str(m)
        CLAIMS["unfinished-head"].expect(seen)
    # a client that stops reading: only the kernel's TCP_USER_TIMEOUT lets it go
    assert plain.slow_reader_released is None
    assert kit.slow_reader_released is not None
    # the same for everything else the lessons rely on
    for m in (plain, kit):
        assert m.dead_peer_released is not None
        assert (m.close_mid_message, m.too_big) == (1002, 1009)
