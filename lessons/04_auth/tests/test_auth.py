"""Lesson 04's app: login, four credential transports, authorization, expiry, attacks."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import httpx
import jwt
import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import InvalidStatus

from lessons import find
from lessons.course.versions import CLAIMS
from lessons.kit import LiveClient, LiveServer, scaled
from lessons.kit.browser import REQUIRE_BROWSER
from lessons.kit.probes import denial_log

LESSON = find("04_auth")
Chromium = LESSON.module("experiments").Chromium  # the lesson's browser
EXPERIMENTS = LESSON.module("experiments")
knock = EXPERIMENTS.knock
SECRET = "a-test-secret-that-is-at-least-32-bytes-long"
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def loaded() -> Iterator[tuple[ModuleType, dict[str, Any]]]:
    """The app module, loaded once: hashing the demo passwords is deliberately slow."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WSLAB_JWT_SECRET", SECRET)
        patch.delenv("WSLAB_ALLOWED_ORIGINS", raising=False)
        module = LESSON.module()
    yield module, dict(module.app.state.auth.users)


@pytest.fixture
def lesson(loaded: tuple[ModuleType, dict[str, Any]]) -> ModuleType:
    """The app module with fresh state: tokens signed with SECRET, no rooms, no tickets."""
    module, users = loaded
    auth = module.Auth(secret=SECRET, users=dict(users), allowed_origins=None)
    auth.first_message_deadline = 0.5
    module.app.state.auth = auth
    module.app.state.rooms = defaultdict(set)
    return module


@pytest.fixture
def client(lesson: ModuleType) -> Iterator[TestClient]:
    with TestClient(lesson.app) as test_client:
        yield test_client


@pytest.fixture
def server(lesson: ModuleType, serve: Callable[..., LiveServer]) -> LiveServer:
    return serve(lesson.app)


def token_for(lesson: ModuleType, name: str) -> str:
    auth = lesson.app.state.auth
    return auth.issue_token(auth.users[name])


def unsigned(claims: dict[str, Any]) -> str:
    """An ``alg: none`` token: header and claims, no signature."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def refusal(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """The HTTP status and ``detail`` of a refused handshake; fails if it is accepted."""
    try:
        async with LiveClient(url, additional_headers=headers) as ws:
            pytest.fail(f"accepted, first message: {await ws.receive()}")
    except InvalidStatus as refused:
        body = bytes(refused.response.body or b"")
        return refused.response.status_code, json.loads(body)["detail"] if body else ""


# Login over HTTP, tickets, the signing secret.


def test_login_returns_a_short_lived_jwt_and_an_httponly_cookie(client: TestClient) -> None:
    response = client.post("/login", json={"username": "alice", "password": "alice-password"})
    assert response.status_code == 200
    body = response.json()
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice" and 0 < claims["exp"] - time.time() <= 901
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"wslab_session={body['access_token']};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong"), ("mallory", "x"), ("alice", "")]
)
def test_login_refuses_bad_credentials_with_401(
    client: TestClient, username: str, password: str
) -> None:
    response = client.post("/login", json={"username": username, "password": password})
    assert response.status_code == 401
    assert response.json() == {"detail": "wrong username or password"}
    assert "set-cookie" not in response.headers


def test_passwords_are_stored_salted_and_hashed(lesson: ModuleType) -> None:
    users = lesson.app.state.auth.users
    assert len({user.salt for user in users.values()}) == len(users)
    assert all(b"password" not in user.password_hash for user in users.values())


def test_an_unknown_name_costs_the_same_time_as_a_known_one(lesson: ModuleType) -> None:
    """Side by side, so both see the same load; the fastest of each (what a hash costs,
    without the waits a busy machine adds) stay within a factor of 2.

    Without the dummy hash an unknown name answers about a thousand times faster."""
    auth = lesson.app.state.auth

    def seconds(name: str) -> float:
        started = time.perf_counter()
        with pytest.raises(lesson.AuthError):
            auth.login(name, "a wrong password")
        return time.perf_counter() - started

    known, unknown = [], []
    for _ in range(7):
        known.append(seconds("alice"))
        unknown.append(seconds("mallory"))
    ratio = min(unknown) / min(known)
    assert 0.5 < ratio < 2, f"unknown/known = {ratio:.2f}"


def test_the_page_and_its_script_are_served_from_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.text == (LESSON.path / "index.html").read_text(encoding="utf-8")
    assert '<script src="page.js">' in page.text
    script = client.get("/page.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.text == (LESSON.path / "page.js").read_text(encoding="utf-8")


def test_ticket_needs_a_bearer_token(client: TestClient, lesson: ModuleType) -> None:
    assert client.post("/ticket").status_code == 401
    refused = client.post("/ticket", headers={"authorization": "Bearer garbage"})
    assert refused.status_code == 401 and refused.json()["detail"].startswith("invalid token")
    bearer = {"authorization": f"Bearer {token_for(lesson, 'bob')}"}
    issued = client.post("/ticket", headers=bearer).json()
    assert issued["expires_in"] == 30 and len(issued["ticket"]) >= 32


def test_secret_comes_from_the_environment(lesson: ModuleType) -> None:
    token = token_for(lesson, "alice")
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["sub"] == "alice"


def test_no_secret_means_a_random_one_per_process_and_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("WSLAB_JWT_SECRET", raising=False)
    with caplog.at_level(logging.WARNING, logger="wslab.auth"):
        first, second = LESSON.module(), LESSON.module()
    assert first.app.state.auth.secret != second.app.state.auth.secret
    assert len(first.app.state.auth.secret) >= 32
    warnings = [r.getMessage() for r in caplog.records if r.name == "wslab.auth"]
    assert (
        warnings == ["WSLAB_JWT_SECRET is not set: using a random secret for this process only"] * 2
    )


def test_token_lifetime_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSLAB_JWT_SECRET", SECRET)
    monkeypatch.setenv("WSLAB_TOKEN_TTL", "1.5")
    auth = LESSON.module().app.state.auth
    claims = jwt.decode(auth.issue_token(auth.users["bob"]), SECRET, algorithms=["HS256"])
    assert auth.token_ttl == 1.5 and 1 <= claims["exp"] - claims["iat"] <= 3


def test_a_short_secret_is_refused_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSLAB_JWT_SECRET", "your-secret-key-here")
    with pytest.raises(RuntimeError, match="at least 32 bytes"):
        LESSON.module()


# The four transports, in-process.


def test_query_token_transport(client: TestClient, lesson: ModuleType) -> None:
    with client.websocket_connect(f"/ws/query?token={token_for(lesson, 'alice')}") as ws:
        assert ws.receive_json()["user"] == "alice"


def test_ticket_transport_works_once(client: TestClient, lesson: ModuleType) -> None:
    bearer = {"authorization": f"Bearer {token_for(lesson, 'bob')}"}
    ticket = client.post("/ticket", headers=bearer).json()["ticket"]
    with client.websocket_connect(f"/ws/ticket?ticket={ticket}") as ws:
        assert ws.receive_json()["user"] == "bob"
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        client.websocket_connect(f"/ws/ticket?ticket={ticket}"),
    ):
        pass
    assert refused.value.status_code == 401
    assert refused.value.json() == {"detail": "unknown or already used ticket"}


def test_expired_ticket_is_refused(client: TestClient, lesson: ModuleType) -> None:
    auth = lesson.app.state.auth
    auth.ticket_ttl = 0
    ticket = auth.issue_ticket(auth.verify_token(token_for(lesson, "bob")))
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        client.websocket_connect(f"/ws/ticket?ticket={ticket}"),
    ):
        pass
    assert refused.value.json() == {"detail": "ticket expired"}


def test_ticket_of_a_deleted_user_is_refused(client: TestClient, lesson: ModuleType) -> None:
    auth = lesson.app.state.auth
    ticket = auth.issue_ticket(auth.verify_token(token_for(lesson, "carol")))
    del auth.users["carol"]
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        client.websocket_connect(f"/ws/ticket?ticket={ticket}"),
    ):
        pass
    assert refused.value.json() == {"detail": "unknown user"}


def test_cookie_transport_checks_the_origin(client: TestClient, lesson: ModuleType) -> None:
    client.cookies.set("wslab_session", token_for(lesson, "carol"))
    with client.websocket_connect("/ws/cookie", headers={"origin": "http://testserver"}) as ws:
        assert ws.receive_json()["user"] == "carol"
    for headers in [{"origin": EVIL}, {}]:
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            client.websocket_connect("/ws/cookie", headers=headers),
        ):
            pass
        assert refused.value.status_code == 403


def test_cookie_transport_honours_a_configured_allowlist(
    monkeypatch: pytest.MonkeyPatch, lesson: ModuleType
) -> None:
    monkeypatch.setenv("WSLAB_ALLOWED_ORIGINS", "https://chat.example, https://admin.example")
    lesson.app.state.auth.allowed_origins = LESSON.module("credentials").load_origins()
    with TestClient(lesson.app) as test_client:
        test_client.cookies.set("wslab_session", token_for(lesson, "carol"))
        with test_client.websocket_connect(
            "/ws/cookie", headers={"origin": "https://admin.example"}
        ) as ws:
            assert ws.receive_json()["user"] == "carol"
        with (
            pytest.raises(WebSocketDenialResponse),
            test_client.websocket_connect("/ws/cookie", headers={"origin": "http://testserver"}),
        ):
            pass


def test_first_message_transport(client: TestClient, lesson: ModuleType) -> None:
    with client.websocket_connect("/ws/first-message") as ws:
        ws.send_json({"type": "auth", "token": token_for(lesson, "alice")})
        assert ws.receive_json()["user"] == "alice"


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        ('{"type": "auth", "token": "garbage"}', "invalid token: Not enough segments"),
        ('{"type": "say", "room": "lobby"}', "expected an auth message"),
        ("not json", "expected an auth message"),
    ],
)
def test_first_message_refusals_close_1008(client: TestClient, first: str, reason: str) -> None:
    with client.websocket_connect("/ws/first-message") as ws:
        ws.send_text(first)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert (closed.value.code, closed.value.reason) == (1008, reason)


# Authorization per message: rooms, and the server stamps the sender.


def test_rooms_are_authorized_per_message_and_the_sender_is_stamped(
    client: TestClient, lesson: ModuleType
) -> None:
    with (
        client.websocket_connect(f"/ws/query?token={token_for(lesson, 'alice')}") as alice,
        client.websocket_connect(f"/ws/query?token={token_for(lesson, 'carol')}") as carol,
    ):
        alice.receive_json(), carol.receive_json()
        carol.send_json({"type": "join", "room": "staff"})
        assert carol.receive_json() == {"type": "error", "error": "carol may not join staff"}
        carol.send_json({"type": "say", "room": "staff", "text": "let me in"})
        assert carol.receive_json() == {"type": "error", "error": "join staff first"}
        for ws in (alice, carol):
            ws.send_json({"type": "join", "room": "lobby"})
            assert ws.receive_json() == {"type": "joined", "room": "lobby"}
        carol.send_json({"type": "say", "room": "lobby", "text": "hi", "user": "alice"})
        said = {"type": "message", "room": "lobby", "user": "carol", "text": "hi"}
        assert alice.receive_json() == said and carol.receive_json() == said
        alice.send_json({"type": "shout", "room": "lobby"})
        assert alice.receive_json()["type"] == "error"


# The attack table: every row refused before accept, with the documented status.


def attack(lesson: ModuleType, row: str) -> tuple[str, dict[str, str], int, str]:
    """(path, headers, expected status, expected detail) for one row of the attack table."""
    auth = lesson.app.state.auth
    now = int(time.time())
    alice = {"sub": "alice", "exp": now + 60}
    if row == "no token":
        return "/ws/query", {}, 401, "missing token"
    if row == "garbage":
        return "/ws/query?token=garbage", {}, 401, "invalid token: Not enough segments"
    if row == "expired":
        token = jwt.encode({"sub": "alice", "exp": now - 5}, SECRET, algorithm="HS256")
        return f"/ws/query?token={token}", {}, 401, "invalid token: Signature has expired"
    if row == "another secret":
        token = jwt.encode(alice, "another-secret-also-at-least-32-bytes-x", algorithm="HS256")
        return f"/ws/query?token={token}", {}, 401, "invalid token: Signature verification failed"
    if row == "alg none":
        token = unsigned(alice)
        return (
            f"/ws/query?token={token}",
            {},
            401,
            "invalid token: The specified alg value is not allowed",
        )
    if row == "deleted user":
        token = token_for(lesson, "carol")
        del auth.users["carol"]
        return f"/ws/query?token={token}", {}, 401, "unknown user"
    if row == "replayed ticket":
        ticket = auth.issue_ticket(auth.verify_token(token_for(lesson, "alice")))
        auth.redeem_ticket(ticket)  # its rightful use
        return f"/ws/ticket?ticket={ticket}", {}, 401, "unknown or already used ticket"
    assert row == "wrong origin"
    cookie = {"cookie": f"wslab_session={token_for(lesson, 'alice')}", "origin": EVIL}
    return "/ws/cookie", cookie, 403, f"origin not allowed: {EVIL}"


ATTACKS = [
    "no token",
    "garbage",
    "expired",
    "another secret",
    "alg none",
    "deleted user",
    "replayed ticket",
    "wrong origin",
]


@pytest.mark.parametrize("row", ATTACKS)
def test_attack_is_refused_in_process(client: TestClient, lesson: ModuleType, row: str) -> None:
    path, headers, status, detail = attack(lesson, row)
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        client.websocket_connect(path, headers=headers),
    ):
        pass
    assert (refused.value.status_code, refused.value.json()) == (status, {"detail": detail})


@pytest.mark.anyio
@pytest.mark.parametrize("row", ATTACKS)
async def test_attack_is_refused_on_the_wire(
    server: LiveServer, lesson: ModuleType, row: str
) -> None:
    path, headers, status, detail = attack(lesson, row)
    assert await refusal(server.ws_url(path), headers) == (status, detail)


@pytest.mark.anyio
@pytest.mark.parametrize("row", ["garbage", "expired", "another secret", "alg none"])
async def test_bad_tokens_sent_as_first_message_close_1008_before_any_message(
    server: LiveServer, lesson: ModuleType, row: str
) -> None:
    path, _, _, detail = attack(lesson, row)
    token = path.partition("token=")[2]
    async with LiveClient(server.ws_url("/ws/first-message")) as ws:
        await ws.send_json({"type": "auth", "token": token})
        assert await ws.wait_closed() == (1008, detail)
    assert not any(" ← " in line for line in ws.transcript), ws.transcript


# Real tier: the same routes through uvicorn.


@pytest.mark.anyio
async def test_real_login_ticket_and_chat(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        login = await http.post("/login", json={"username": "bob", "password": "bob-password"})
        bearer = {"authorization": f"Bearer {login.json()['access_token']}"}
        ticket = (await http.post("/ticket", headers=bearer)).json()["ticket"]
    async with LiveClient(server.ws_url(f"/ws/ticket?ticket={ticket}")) as ws:
        assert (await ws.receive_json())["user"] == "bob"
        await ws.send_json({"type": "join", "room": "staff"})
        assert await ws.receive_json() == {"type": "joined", "room": "staff"}
        await ws.send_json({"type": "say", "room": "staff", "text": "hi", "user": "alice"})
        assert (await ws.receive_json())["user"] == "bob"


@pytest.mark.anyio
async def test_real_query_cookie_and_first_message(server: LiveServer, lesson: ModuleType) -> None:
    token = token_for(lesson, "alice")
    clients = [
        LiveClient(server.ws_url(f"/ws/query?token={token}")),
        LiveClient(
            server.ws_url("/ws/cookie"),
            additional_headers={"cookie": f"wslab_session={token}"},
            origin=server.http_url,
        ),
        LiveClient(server.ws_url("/ws/first-message")),
    ]
    for ws in clients:
        async with ws:
            if ws.url.endswith("first-message"):
                await ws.send_json({"type": "auth", "token": token})
            assert (await ws.receive_json())["user"] == "alice"


@pytest.mark.anyio
async def test_first_message_deadline_closes_1008(server: LiveServer) -> None:
    async with LiveClient(server.ws_url("/ws/first-message")) as ws:
        started = time.perf_counter()
        assert await ws.wait_closed(timeout=5) == (1008, "authentication timeout")
    assert time.perf_counter() - started < scaled(3)


@pytest.mark.anyio
async def test_every_transport_closes_4001_when_the_token_expires(
    lesson: ModuleType, serve: Callable[..., LiveServer]
) -> None:
    """P24 on the app: a 1 s token; each connection is closed at expiry, not left open."""
    auth = lesson.app.state.auth
    auth.token_ttl = 1
    live = serve(lesson.app)
    token = token_for(lesson, "alice")
    ticket = auth.issue_ticket(auth.verify_token(token))
    clients = [
        LiveClient(live.ws_url(f"/ws/query?token={token}")),
        LiveClient(live.ws_url(f"/ws/ticket?ticket={ticket}")),
        LiveClient(
            live.ws_url("/ws/cookie"),
            additional_headers={"cookie": f"wslab_session={token}"},
            origin=live.http_url,
        ),
        LiveClient(live.ws_url("/ws/first-message")),
    ]
    for ws in clients:
        await ws.connect()
    await clients[-1].send_json({"type": "auth", "token": token})

    async def session(ws: LiveClient) -> tuple[int | None, str | None]:
        assert (await ws.receive_json())["type"] == "welcome"
        await ws.send_json({"type": "join", "room": "lobby"})
        return await ws.wait_closed(timeout=5)

    results = await asyncio.gather(*(session(ws) for ws in clients))
    assert results == [(4001, "token expired")] * 4


# P09 on the app: the denial response, real server versus TestClient.


@pytest.mark.anyio
async def test_refusal_is_a_401_denial_response_and_its_log(server: LiveServer) -> None:
    """The client gets its 401 with the reason; what uvicorn logs after it depends on its
    version (claim ``denial-response-log``: an ERROR up to 0.54, nothing on 0.55)."""
    assert await refusal(server.ws_url("/ws/query")) == (401, "missing token")
    CLAIMS["denial-response-log"].expect(await denial_log(LESSON.app(), "/ws/query"))


# P20 on the app: transport 1 puts the token in uvicorn's log; transport 2 only a spent ticket.


@pytest.mark.anyio
async def test_app_logs_the_query_token_but_only_a_spent_ticket(
    lesson: ModuleType, serve_file
) -> None:
    live = serve_file(LESSON.app_path, env={"WSLAB_JWT_SECRET": SECRET})
    token = token_for(lesson, "alice")
    async with LiveClient(live.ws_url(f"/ws/query?token={token}")) as ws:
        await ws.receive_json()
    line = live.wait_for_output(r'"WebSocket /ws/query')
    assert f"token={token}" in line and "[accepted]" in line  # replayable until exp
    async with httpx.AsyncClient(base_url=live.http_url) as http:
        bearer = {"authorization": f"Bearer {token}"}
        ticket = (await http.post("/ticket", headers=bearer)).json()["ticket"]
    async with LiveClient(live.ws_url(f"/ws/ticket?ticket={ticket}")) as ws:
        await ws.receive_json()
    assert f"ticket={ticket}" in live.wait_for_output(r'"WebSocket /ws/ticket')
    assert await refusal(live.ws_url(f"/ws/ticket?ticket={ticket}")) == (
        401,
        "unknown or already used ticket",
    )


# The notebook's helpers for this lesson: a handshake in one line, a browser that may be missing.


def test_a_knock_ending_a_cell_adds_nothing_to_the_line_it_printed() -> None:
    from IPython.core.formatters import DisplayFormatter

    assert DisplayFormatter().format(EXPERIMENTS.Knock(101)) == ({}, {})


@pytest.mark.anyio
async def test_knock_prints_what_the_client_saw_in_one_line(
    server: LiveServer, lesson: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = await knock(server.ws_url("/ws/query"))
    welcomed = await knock(server.ws_url(f"/ws/query?token={token_for(lesson, 'bob')}"))
    silent = await knock(server.ws_url("/ws/first-message"), wait=2)
    lines = capsys.readouterr().out.splitlines()
    assert (refused.status, welcomed.status, silent.status) == (401, 101, 101)
    assert lines[0] == 'refused: HTTP 401 {"detail":"missing token"}'
    assert lines[1].startswith('accepted; ← {"type":"welcome","user":"bob"')
    assert lines[1].endswith("still open after 0.2 s")
    assert lines[2].startswith("accepted; closed after 0.")
    assert lines[2].endswith("s: 1008 'authentication timeout'")
    assert silent.close_code == 1008 and len(lines) == 3


@pytest.mark.anyio
async def test_knock_serves_an_app_and_filters_its_log(
    lesson: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = await knock(lesson.app, "/ws/query?token=x", log='"WebSocket /ws/query')
    lines = capsys.readouterr().out.splitlines()
    assert seen.status == 401 and lines[0].startswith("refused: HTTP 401")
    assert lines[1:] == [
        line for line in (f"  server log: {text}" for text in seen.log.lines) if "WebSocket" in line
    ]
    assert len(lines) == 2 and lines[1].endswith('"WebSocket /ws/query?token=x" 401')


@pytest.mark.anyio
async def test_without_chromium_the_notebook_says_so_in_one_line_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WSLAB_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv(REQUIRE_BROWSER, raising=False)
    browser = await Chromium.launch()
    await browser.post("http://127.0.0.1:9/login")
    assert await browser.cookie_names("http://127.0.0.1:9/") == []
    await browser.visit("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")
    assert not browser
    assert browser.status == (
        "Chromium not found (install chromium or set WSLAB_CHROMIUM): "
        "the browser steps of this notebook are skipped"
    )
    assert capsys.readouterr().out.splitlines() == ["skipped: no browser"]
    monkeypatch.setenv(REQUIRE_BROWSER, "1")
    with pytest.raises(RuntimeError, match="Chromium not found"):
        await Chromium.launch()
