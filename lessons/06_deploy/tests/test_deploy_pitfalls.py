"""P39-P44 against real proxies: each broken half fails the way a client sees it, each
fixed half works the same way; and a rolling deploy through Caddy loses no message."""

from __future__ import annotations

import signal
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from lessons import find
from lessons.kit import LiveClient, scaled, wire
from lessons.kit.cluster import cluster
from lessons.kit.leaks import connections
from lessons.kit.proxy import tls
from lessons.kit.redis_server import RedisServer
from lessons.kit.server import SubprocessServer

LESSON = find("06_deploy")
EXPERIMENTS = LESSON.module("experiments")
deployment, rolling_deploy = EXPERIMENTS.deployment, EXPERIMENTS.rolling_deploy
quiet, supervised, whoami = EXPERIMENTS.quiet, EXPERIMENTS.supervised, EXPERIMENTS.whoami
pytestmark = pytest.mark.anyio
SPOOFED = {"X-Forwarded-For": "203.0.113.7"}


@pytest.fixture
def instances(redis_server: RedisServer) -> Iterator[Callable[..., list[SubprocessServer]]]:
    """``instances(stem, n)``: n processes of a lesson file sharing the test's Redis."""
    started: list[SubprocessServer] = []

    def start(stem: str = "app", count: int = 2, **options: Any) -> list[SubprocessServer]:
        options.setdefault("log_level", "warning")
        servers = cluster(LESSON.file(stem), redis_server.url, instances=count, **options)
        started.extend(servers)
        for server in servers:
            server.start()
        return servers

    yield start
    for server in started:
        server.stop()


# P40 -----------------------------------------------------------------------------------


async def test_p40_nginx_without_the_upgrade_headers_answers_every_handshake_404(
    instances: Callable[..., list[SubprocessServer]], nginx: Callable[..., Any]
) -> None:
    servers = instances(count=1)
    broken = nginx(servers, "pitfall_no_upgrade")
    with pytest.raises(InvalidStatus) as refused:
        async with LiveClient(broken.ws_url("/ws/lobby")):
            pass
    assert refused.value.response.status_code == 404
    fixed = nginx(servers, "fix_no_upgrade")
    async with LiveClient(fixed.ws_url("/ws/lobby")) as websocket:
        assert (await websocket.receive_json())["type"] == "welcome"


# P41 -----------------------------------------------------------------------------------


async def test_p41_a_quiet_connection_is_cut_at_the_proxy_timeout_without_a_heartbeat(
    serve_file: Callable[..., SubprocessServer], nginx: Callable[..., Any]
) -> None:
    broken = serve_file(
        LESSON.file("pitfall_idle_timeout"), log_level="warning", ws_ping_interval=None
    )
    cut = await quiet(nginx([broken], read_timeout=0.5).ws_url("/ws"), scaled(3))
    assert cut is not None and 0.4 < cut < scaled(2)


async def test_p41_a_heartbeat_below_the_proxy_timeout_keeps_it_open(
    serve_file: Callable[..., SubprocessServer], nginx: Callable[..., Any]
) -> None:
    fixed = serve_file(
        LESSON.file("fix_idle_timeout"),
        log_level="warning",
        env={"HEARTBEAT": "0.2"},
        ws_ping_interval=None,
    )
    assert await quiet(nginx([fixed], read_timeout=0.5).ws_url("/ws"), 1.5) is None


async def test_a_handshake_that_never_finishes_is_cut_by_the_proxy_not_by_uvicorn(
    serve_file: Callable[..., SubprocessServer], nginx: Callable[..., Any]
) -> None:
    """uvicorn holds half a request head while the client stays (claim ``unfinished-head``);
    nginx in front closes it after ``client_header_timeout``, and uvicorn never sees it."""
    server = serve_file(LESSON.file("fix_idle_timeout"), log_level="warning")
    proxy = nginx([server], header_timeout=0.5)
    with wire.raw_socket(proxy.ws_url("/ws")) as sock:
        sock.sendall(wire.upgrade_request(proxy.ws_url("/ws")).encode()[:30])
        started = time.monotonic()
        assert wire.closed_by_peer(sock, 3)
        assert 0.4 < time.monotonic() - started < scaled(3)
    assert not [c for c in connections(server.pid) if c.state != "LISTEN"]  # it never got there


# P42 -----------------------------------------------------------------------------------


async def test_p42_trusting_forwarded_headers_from_anyone_lets_a_client_choose_its_address(
    serve_file: Callable[..., SubprocessServer],
) -> None:
    broken = serve_file(
        LESSON.file("pitfall_trust_forwarded"), log_level="warning", proxy_headers=False
    )
    assert await whoami(broken.ws_url("/ws"), "127.0.0.2", SPOOFED) == "203.0.113.7"


@pytest.mark.parametrize("proxy", ["caddy", "nginx"])
async def test_p42_trusting_only_the_proxy_gives_the_real_address_and_ignores_spoofing(
    serve_file: Callable[..., SubprocessServer], request: pytest.FixtureRequest, proxy: str
) -> None:
    fixed = serve_file(LESSON.file("fix_trust_forwarded"), log_level="warning", proxy_headers=False)
    assert await whoami(fixed.ws_url("/ws"), "127.0.0.2", SPOOFED) == "127.0.0.2"
    front = request.getfixturevalue(proxy)([fixed])
    ca_file = front.ca_file if proxy == "caddy" else None
    # through the proxy, even a client that sends the header itself is seen as it is
    assert await whoami(front.ws_url("/ws"), "127.0.0.3", SPOOFED, ca_file) == "127.0.0.3"


async def test_p42_without_trusted_proxy_headers_every_client_is_the_proxy(
    serve_file: Callable[..., SubprocessServer], caddy: Callable[..., Any]
) -> None:
    fixed = serve_file(
        LESSON.file("fix_trust_forwarded"),
        log_level="warning",
        env={"PROXY": ""},
        proxy_headers=False,
    )
    front = caddy([fixed])
    assert await whoami(front.ws_url("/ws"), "127.0.0.3", ca_file=front.ca_file) == "127.0.0.1"


# P43 -----------------------------------------------------------------------------------


async def test_p43_a_client_without_verification_talks_to_an_impostor_and_one_with_the_ca_refuses(
    instances: Callable[..., list[SubprocessServer]],
    caddy: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    servers = instances(count=1)
    real, impostor = caddy(servers), caddy(servers)
    broken = LESSON.module("pitfall_tls_client")
    fixed = LESSON.module("fix_tls_client")
    await broken.main(impostor.ws_url("/ws/lobby"), str(real.ca_file))
    assert '"welcome"' in capsys.readouterr().out
    with pytest.raises(ssl.SSLCertVerificationError):
        await fixed.main(impostor.ws_url("/ws/lobby"), str(real.ca_file))
    await fixed.main(real.ws_url("/ws/lobby"), str(real.ca_file))
    assert '"welcome"' in capsys.readouterr().out


# P44 -----------------------------------------------------------------------------------


async def meets(url: str, ca_file: Path) -> bool:
    async with (
        LiveClient(url, name="A", ssl=tls(ca_file)) as a,
        LiveClient(url, name="B", ssl=tls(ca_file)) as b,
    ):
        welcomes = [await a.receive(), await b.receive()]
        assert welcomes[0] != welcomes[1], "round robin puts A and B on two instances"
        await a.send("hello from A")
        try:
            return await b.receive(timeout=1) == "hello from A"
        except TimeoutError:
            return False


@pytest.mark.parametrize(
    ("stem", "meet"), [("pitfall_local_rooms", False), ("fix_local_rooms", True)]
)
async def test_p44_rooms_in_memory_split_users_across_instances_and_redis_joins_them(
    instances: Callable[..., list[SubprocessServer]],
    caddy: Callable[..., Any],
    stem: str,
    meet: bool,
) -> None:
    front = caddy(instances(stem, 2))
    assert await meets(front.ws_url("/ws/lobby"), front.ca_file) is meet


# P39 -----------------------------------------------------------------------------------


def test_p39_a_supervisor_that_only_handles_ctrl_c_orphans_its_servers_on_sigterm() -> None:
    status, left = supervised(LESSON.file("pitfall_supervisor"), signal.SIGTERM)
    assert (status, left) == (-signal.SIGTERM, 2)
    status, left = supervised(LESSON.file("pitfall_supervisor"), signal.SIGINT)
    assert (status, left) == (0, 0)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_p39_the_fixed_supervisor_stops_its_servers_on_every_stop_signal(
    sig: signal.Signals,
) -> None:
    assert supervised(LESSON.file("fix_supervisor"), sig) == (0, 0)


# The rolling deploy -------------------------------------------------------------------


async def test_a_rolling_deploy_through_caddy_loses_no_message(redis_server: RedisServer) -> None:
    with deployment(LESSON.file("app"), redis_server.url) as (servers, front):
        counts = await rolling_deploy(servers, front.ws_url("/ws/deploy"), front.ca_file)
    assert not any(server.running for server in servers)
    assert counts["sent"] > 0 and counts["reconnects"] >= 2
    assert counts["received"] == [counts["sent"]] * 3, counts
    assert counts["same order"]
