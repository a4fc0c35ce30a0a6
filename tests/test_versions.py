"""The catalogue of version-sensitive claims: docs/versions.md lists exactly
``lessons.course.versions.CLAIMS``, every test it names exists, an unknown release fails naming
the claim, and the claims that no lesson test observes are observed here."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import redis.asyncio
import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.asyncio.client import connect

from lessons import ROOT_DIR
from lessons.cli.drift import table
from lessons.course.versions import (
    CLAIMS,
    Claim,
    Era,
    UnknownVersion,
    catalogue_rows,
    installed,
    unpinned,
)

CATALOGUE = ROOT_DIR / "docs" / "versions.md"


def test_the_catalogue_lists_every_claim_with_its_versions_and_tests() -> None:
    rows = [
        line for line in CATALOGUE.read_text(encoding="utf-8").splitlines() if line[:3] == "| `"
    ]
    assert rows == catalogue_rows(), (
        "docs/versions.md's table differs from lessons/course/versions.py: paste the output of "
        "`python -m lessons.course.versions` over its rows"
    )


@pytest.mark.parametrize("test", sorted({t for c in CLAIMS.values() for t in c.tests}))
def test_every_named_test_exists(test: str) -> None:
    path, name = test.split("::")
    assert re.search(rf"^(async )?def {name}\(", (ROOT_DIR / path).read_text(), re.M), test


def test_an_unknown_version_fails_naming_the_claim(monkeypatch: pytest.MonkeyPatch) -> None:
    claim = Claim("example", "uvicorn", "an example", (Era("0.1.0", "0.2.0", "x", ("0.1.0",)),), ())
    with pytest.raises(UnknownVersion, match=r"claim 'example'.*not on the installed"):
        claim.expect("x")
    known = Claim(
        "known", "uvicorn", "an example", (Era("0.1", installed("uvicorn"), "x", ()),), ()
    )
    known.expect("x")
    with pytest.raises(AssertionError, match="claim 'known'"):
        known.expect("y")
    assert "as uvicorn 0.1 to" in known.verdict("x")
    assert "the course checked" in known.verdict("y")


@pytest.mark.anyio
async def test_uvicorns_close_timeout() -> None:
    """Read off a protocol as uvicorn builds it, and off Config's settings."""
    config = uvicorn.Config(app=None, ws="websockets-sansio")  # type: ignore[arg-type]
    config.load()
    protocol = WebSocketsSansIOProtocol(config=config, server_state=ServerState(), app_state={})
    configurable = "close_timeout" in str(inspect.signature(uvicorn.Config))
    seen = f"{protocol.close_timeout:g} s, " + (
        "a setting changes it" if configurable else "no setting changes it"
    )
    CLAIMS["close-timeout"].expect(seen)


def test_the_websockets_clients_defaults() -> None:
    defaults = inspect.signature(connect).parameters
    max_queue, close_timeout = defaults["max_queue"].default, defaults["close_timeout"].default
    CLAIMS["client-defaults"].expect(f"max_queue {max_queue}, close_timeout {close_timeout:g} s")


def test_uvicorns_defaults() -> None:
    defaults = inspect.signature(uvicorn.Config).parameters
    size = defaults["ws_max_size"].default
    interval, timeout = defaults["ws_ping_interval"].default, defaults["ws_ping_timeout"].default
    graceful = defaults["timeout_graceful_shutdown"].default
    CLAIMS["server-defaults"].expect(
        f"ws_max_size {size / 2**20:g} MiB, pings every {interval:g} s with a {timeout:g} s "
        "timeout, " + ("no graceful shutdown timeout" if graceful is None else f"{graceful} s")
    )


def test_redis_pys_pool_size() -> None:
    pool = redis.asyncio.ConnectionPool()  # makes no connection
    CLAIMS["redis-pool-size"].expect(str(pool.max_connections))


def test_unpinned_names_each_release_that_differs_from_the_pins(tmp_path: Path) -> None:
    pins = tmp_path / "constraints.txt"
    pins.write_text(
        f"uvicorn=={installed('uvicorn')}    # via wslab\n"
        "websockets==1.0\n"
        'no-such-package==1.0\npytest==1.0 ; python_version < "3"\n',
        encoding="utf-8",
    )
    assert unpinned(pins) == [f"websockets {installed('websockets')} (the course pins 1.0)"]
    assert unpinned(tmp_path / "missing.txt") == []


def test_the_drift_table_says_which_claims_hold() -> None:
    key, other = "oversized-handshake", "client-defaults"
    pinned = {key: {"seen": "a", "version": "1", "holds": True}}
    newest = {key: {"seen": "b", "version": "2", "holds": False}}
    lines = table(pinned, newest, "newest")
    assert lines[0] == "| claim | pinned | newest | holds? |"
    assert f"| {key} | a [1] | b [2] | NO |" in lines
    assert any(line.startswith(f"| {other} |") and line.endswith("| ? |") for line in lines)
    assert len(lines) == 2 + len(CLAIMS)
