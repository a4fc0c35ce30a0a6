"""Lesson 04's pitfalls P09, P19-P25: each broken file fails as a client sees it; the fix not."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import warnings
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from starlette.middleware.cors import CORSMiddleware
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import InvalidStatus

from lessons import find
from lessons.course.versions import CLAIMS
from lessons.kit import LiveClient, LiveServer, handshake_status, scaled

LESSON = find("04_auth")
SECRET = "a-test-secret-that-is-at-least-32-bytes-long"
EVIL = "http://evil.example"
Serve = Callable[..., LiveServer]


def token(sub: str = "alice", ttl: float = 60, secret: str = SECRET) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time() + ttl)}, secret, algorithm="HS256")


async def rejected(url: str, **options: Any) -> tuple[int, bytes]:
    """Status and body of a refused handshake."""
    try:
        async with LiveClient(url, **options):
            pytest.fail("the handshake was accepted")
    except InvalidStatus as refused:
        return refused.response.status_code, bytes(refused.response.body or b"")


# P09: WebSocketException before accept (1008 in-process, a bare 403 on the wire) vs a 401.


def test_p09_websocket_exception_looks_like_1008_in_process() -> None:
    with TestClient(LESSON.app("pitfall_websocket_exception")) as client:
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws"):
            pass
    assert (closed.value.code, closed.value.reason) == (1008, "invalid token")


@pytest.mark.anyio
async def test_p09_websocket_exception_is_a_bare_403_on_the_wire(serve: Serve) -> None:
    live = serve(LESSON.app("pitfall_websocket_exception"), log_level="critical")
    assert await rejected(live.ws_url("/ws?token=nope")) == (403, b"")


def test_p09_fix_http_exception_is_a_denial_response_in_process() -> None:
    with TestClient(LESSON.app("fix_websocket_exception")) as client:
        with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect("/ws"):
            pass
        with client.websocket_connect("/ws?token=alice-token") as ws:
            assert ws.receive_json() == {"type": "welcome", "user": "alice"}
    assert denied.value.status_code == 401
    assert denied.value.json() == {"detail": "invalid token"}


@pytest.mark.anyio
async def test_p09_fix_http_exception_is_a_401_with_its_reason_on_the_wire(serve: Serve) -> None:
    live = serve(LESSON.app("fix_websocket_exception"), log_level="critical")
    status, body = await rejected(live.ws_url("/ws?token=nope"))
    assert (status, json.loads(body)) == (401, {"detail": "invalid token"})
    async with LiveClient(live.ws_url("/ws?token=alice-token")) as ws:
        assert await ws.receive_json() == {"type": "welcome", "user": "alice"}


# P19: accept first, authenticate later.


@pytest.mark.anyio
async def test_p19_anonymous_clients_hold_accepted_sockets(serve: Serve) -> None:
    live = serve(LESSON.app("pitfall_accept_first"))
    assert await handshake_status(live.ws_url("/ws")) == 101  # nobody asked who we are
    clients = [LiveClient(live.ws_url("/ws"), name=f"anon{i}") for i in range(5)]
    for ws in clients:
        await ws.connect()
    try:
        await asyncio.gather(*(ws.receive_nothing(within=1.5) for ws in clients))
        assert all(ws.close_code is None for ws in clients)  # still held, 1.5 s later
    finally:
        for ws in clients:
            await ws.close()


@pytest.mark.anyio
async def test_p19_fix_closes_anonymous_clients_at_the_deadline(serve: Serve) -> None:
    live = serve(LESSON.app("fix_accept_first"))
    clients = [LiveClient(live.ws_url("/ws"), name=f"anon{i}") for i in range(5)]
    for ws in clients:
        await ws.connect()
    started = time.perf_counter()
    closes = await asyncio.gather(*(ws.wait_closed(timeout=5) for ws in clients))
    assert closes == [(1008, "authentication timeout")] * 5
    assert time.perf_counter() - started < scaled(3)
    async with LiveClient(live.ws_url("/ws")) as ws:
        await ws.send("alice-token")
        assert await ws.receive_json() == {"type": "welcome", "user": "alice"}


@pytest.mark.parametrize("stem", ["pitfall_accept_first", "fix_accept_first"])
def test_p19_both_welcome_a_valid_token_in_process(stem: str) -> None:
    with TestClient(LESSON.app(stem)) as client, client.websocket_connect("/ws") as ws:
        ws.send_text("alice-token")
        assert ws.receive_json() == {"type": "welcome", "user": "alice"}


# P20: the token in the URL lands in uvicorn's log, on uvicorn.error, not the access log.


@pytest.mark.anyio
@pytest.mark.parametrize("access_log", [True, False])
async def test_p20_token_is_in_the_log_despite_the_access_log_filter(
    access_log: bool, serve_file
) -> None:
    target = LESSON.file("pitfall_token_in_url")
    live = serve_file(target, access_log=access_log)
    async with LiveClient(live.ws_url("/ws?token=alice-token")) as ws:
        assert (await ws.receive_json())["user"] == "alice"
    line = live.wait_for_output(r'"WebSocket /ws')
    assert line.startswith("INFO:") and line.endswith(
        '"WebSocket /ws?token=alice-token" [accepted]'
    )


@pytest.mark.anyio
async def test_p20_fix_redacts_the_token(serve_file) -> None:
    live = serve_file(LESSON.file("fix_token_in_url"))
    async with LiveClient(live.ws_url("/ws?token=alice-token")) as ws:
        assert (await ws.receive_json())["user"] == "alice"
    assert await handshake_status(live.ws_url("/ws?token=stolen-guess")) == 401
    accepted = live.wait_for_output(r'"WebSocket /ws.*\[accepted\]')
    refused = live.wait_for_output(r'"WebSocket /ws.*" 401')
    output = live.output
    assert accepted.endswith('"WebSocket /ws?token=[redacted]" [accepted]')
    assert refused.endswith('"WebSocket /ws?token=[redacted]" 401')
    assert "alice-token" not in output and "stolen-guess" not in output


@pytest.mark.parametrize("stem", ["pitfall_token_in_url", "fix_token_in_url"])
def test_p20_both_verify_before_accept_in_process(stem: str) -> None:
    with TestClient(LESSON.app(stem)) as client:
        with client.websocket_connect("/ws?token=alice-token") as ws:
            assert ws.receive_json()["user"] == "alice"
        with pytest.raises(WebSocketDenialResponse), client.websocket_connect("/ws?token=x"):
            pass


@pytest.mark.parametrize(
    ("stem", "filtered"),
    [
        ("pitfall_token_in_url", {"uvicorn.access"}),
        ("fix_token_in_url", {"uvicorn.access", "uvicorn.error"}),
    ],
)
def test_p20_the_filter_is_installed_for_the_app_s_lifetime(stem: str, filtered: set[str]) -> None:
    module = LESSON.module(stem)
    loggers = {name: logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error")}
    with TestClient(module.app):
        installed = {name for name, log in loggers.items() if module.redact in log.filters}
    assert installed == filtered
    assert not any(module.redact in log.filters for log in loggers.values())


# P21: a client-sent identity.


async def spoof(live: LiveServer) -> dict[str, str]:
    """Alice sends a message claiming to be bob; return what bob receives."""
    async with (
        LiveClient(live.ws_url("/ws?token=alice-token"), name="alice") as alice,
        LiveClient(live.ws_url("/ws?token=bob-token"), name="bob") as bob,
    ):
        await alice.send_json({"user": "bob", "text": "I owe alice 100 euros"})
        return await bob.receive_json()


@pytest.mark.anyio
async def test_p21_anyone_can_speak_as_anyone(serve: Serve) -> None:
    received = await spoof(serve(LESSON.app("pitfall_client_identity")))
    assert received == {"user": "bob", "text": "I owe alice 100 euros"}


@pytest.mark.anyio
async def test_p21_fix_stamps_the_authenticated_sender(serve: Serve) -> None:
    received = await spoof(serve(LESSON.app("fix_client_identity")))
    assert received == {"user": "alice", "text": "I owe alice 100 euros"}


@pytest.mark.parametrize(
    ("stem", "shown"), [("pitfall_client_identity", "bob"), ("fix_client_identity", "alice")]
)
def test_p21_in_process(stem: str, shown: str) -> None:
    with TestClient(LESSON.app(stem)) as client:
        with client.websocket_connect("/ws?token=alice-token") as ws:
            ws.send_json({"user": "bob", "text": "hi"})
            assert ws.receive_json() == {"user": shown, "text": "hi"}


# P22: cookie auth with no Origin check.


def session_cookie(client: TestClient) -> str:
    return client.post("/login", params={"user": "alice"}).cookies["session"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("stem", "evil_status"), [("pitfall_no_origin_check", 101), ("fix_no_origin_check", 403)]
)
async def test_p22_a_foreign_origin_with_the_cookie(
    serve: Serve, stem: str, evil_status: int
) -> None:
    app = LESSON.app(stem)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        cookie = {"cookie": f"session={session_cookie(client)}"}
    live = serve(app)
    url = live.ws_url("/ws")
    assert await handshake_status(url, additional_headers=cookie, origin=EVIL) == evil_status
    assert await handshake_status(url, additional_headers=cookie, origin=live.http_url) == 101
    assert await handshake_status(url, origin=live.http_url) == 401


@pytest.mark.parametrize(
    ("url", "origin", "allowed"),
    [
        ("wss://chat.example/ws", "https://chat.example", ""),  # behind TLS (lesson 06)
        ("ws://127.0.0.1:8000/ws", "http://127.0.0.1:8000", ""),
        ("wss://chat.example/ws", "https://app.example", "https://app.example"),
    ],
)
def test_p22_fix_accepts_the_page_whatever_scheme_it_came_with(
    monkeypatch: pytest.MonkeyPatch, url: str, origin: str, allowed: str
) -> None:
    """The fix compares Origin with the scheme the request came with, or the configured list."""
    monkeypatch.setenv("WSLAB_ALLOWED_ORIGINS", allowed)
    with TestClient(LESSON.app("fix_no_origin_check")) as client:
        cookie = {"cookie": f"session={session_cookie(client)}"}
        with client.websocket_connect(url, headers={"origin": origin, **cookie}) as ws:
            assert ws.receive_json()["user"] == "alice"
        with (
            pytest.raises(WebSocketDenialResponse),
            client.websocket_connect(url, headers={"origin": "http://chat.example", **cookie}),
        ):
            pass


@pytest.mark.anyio
async def test_p22_cors_middleware_does_not_cover_websockets(serve: Serve) -> None:
    """CORSMiddleware only looks at HTTP requests: a WebSocket from any origin passes."""
    app = LESSON.app("pitfall_no_origin_check")
    app.add_middleware(CORSMiddleware, allow_origins=["http://127.0.0.1:1"])
    with TestClient(app) as client:
        cookie = {"cookie": f"session={session_cookie(client)}"}
    live = serve(app)
    assert await handshake_status(live.ws_url("/ws"), additional_headers=cookie, origin=EVIL) == 101


@pytest.mark.parametrize(
    ("stem", "refused"), [("pitfall_no_origin_check", False), ("fix_no_origin_check", True)]
)
def test_p22_in_process(stem: str, refused: bool) -> None:
    with TestClient(LESSON.app(stem)) as client:
        session_cookie(client)
        if refused:
            with (
                pytest.raises(WebSocketDenialResponse) as denied,
                client.websocket_connect("/ws", headers={"origin": EVIL}),
            ):
                pass
            assert denied.value.status_code == 403
        else:
            with client.websocket_connect("/ws", headers={"origin": EVIL}) as ws:
                assert ws.receive_json()["user"] == "alice"


# P23: three single changes: algorithms pinned, the exception named, the secret not in the source.


@pytest.fixture
def jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSLAB_JWT_SECRET", SECRET)


@pytest.mark.anyio
@pytest.mark.usefixtures("jwt_secret")
async def test_p23_without_algorithms_every_valid_token_is_refused(serve: Serve) -> None:
    live = serve(LESSON.app("pitfall_jwt_no_algorithms"), log_level="critical")
    status, body = await rejected(live.ws_url(f"/ws?token={token()}"))
    assert status == 401
    assert json.loads(body)["detail"] == (
        'invalid token: It is required that you pass in a value for the "algorithms" '
        "argument when calling decode()."
    )


@pytest.mark.anyio
@pytest.mark.usefixtures("jwt_secret")
async def test_p23_fix_pinned_algorithm_accepts_a_valid_token_and_refuses_alg_none(
    serve: Serve,
) -> None:
    live = serve(LESSON.app("fix_jwt_no_algorithms"), log_level="critical")
    async with LiveClient(live.ws_url(f"/ws?token={token()}")) as ws:
        assert await ws.receive_json() == {"type": "welcome", "user": "alice"}
    unsigned = jwt.encode({"sub": "alice", "exp": time.time() + 60}, None, algorithm="none")
    status, body = await rejected(live.ws_url(f"/ws?token={unsigned}"))
    assert (status, json.loads(body)) == (
        401,
        {"detail": "invalid token: The specified alg value is not allowed"},
    )


BAD_TOKENS = {  # a token maker, and what PyJWT says about it
    "expired": (lambda: token(ttl=-10), "Signature has expired"),
    "another secret": (
        lambda: token(secret="another-secret-of-32-bytes-or-more"),
        "Signature verification failed",
    ),
    "no exp": (
        lambda: jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"),
        'Token is missing the "exp" claim',
    ),
}


@pytest.mark.anyio
@pytest.mark.usefixtures("jwt_secret")
@pytest.mark.parametrize(
    ("stem", "says_why"), [("pitfall_jwt_bare_except", False), ("fix_jwt_bare_except", True)]
)
async def test_p23_a_bare_except_hides_every_cause_the_fix_names_each(
    serve: Serve, caplog: pytest.LogCaptureFixture, stem: str, says_why: bool
) -> None:
    live = serve(LESSON.app(stem), log_level="critical")
    refusals = []
    with caplog.at_level(logging.INFO, logger="wslab.auth"):
        for make, _ in BAD_TOKENS.values():
            status, body = await rejected(live.ws_url(f"/ws?token={make()}"))
            refusals.append((status, json.loads(body)["detail"]))
    logged = [r.getMessage() for r in caplog.records if r.name == "wslab.auth"]
    causes = [cause for _, cause in BAD_TOKENS.values()]
    if says_why:
        assert refusals == [(401, f"invalid token: {cause}") for cause in causes]
        assert logged == [f"refused a token: {cause}" for cause in causes]
    else:
        assert refusals == [(401, "invalid authentication")] * len(causes)
        assert logged == []


@pytest.mark.anyio
async def test_p23_whoever_reads_the_source_can_sign_tokens(serve: Serve) -> None:
    module = LESSON.module("pitfall_jwt_secret_in_source")
    live = serve(module.app, log_level="critical")
    with warnings.catch_warnings(record=True) as caught:  # 21 bytes, below 32
        warnings.simplefilter("always")
        forged = token(sub="bob", secret="your-secret-key-here-")
    warned = sorted({w.category.__name__ for w in caught})
    CLAIMS["short-hmac-key"].expect(f"warns {', '.join(warned)}" if warned else "no warning")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)  # the server's decode
        async with LiveClient(live.ws_url(f"/ws?token={forged}")) as ws:
            assert await ws.receive_json() == {"type": "welcome", "user": "bob"}


@pytest.mark.anyio
@pytest.mark.parametrize("secret_set", [True, False])
async def test_p23_fix_secret_from_the_environment_refuses_the_forged_token(
    serve: Serve, monkeypatch: pytest.MonkeyPatch, secret_set: bool
) -> None:
    if secret_set:
        monkeypatch.setenv("WSLAB_JWT_SECRET", SECRET)
    else:
        monkeypatch.delenv("WSLAB_JWT_SECRET", raising=False)
    module = LESSON.module("fix_jwt_secret_in_source")
    assert (module.SECRET_KEY == SECRET) is secret_set and len(module.SECRET_KEY) >= 32
    live = serve(module.app, log_level="critical")
    with pytest.warns(jwt.InsecureKeyLengthWarning):
        forged = token(sub="bob", secret="your-secret-key-here-")
    status, body = await rejected(live.ws_url(f"/ws?token={forged}"))
    assert (status, json.loads(body)) == (
        401,
        {"detail": "invalid token: Signature verification failed"},
    )
    async with LiveClient(live.ws_url(f"/ws?token={token(secret=module.SECRET_KEY)}")) as ws:
        assert await ws.receive_json() == {"type": "welcome", "user": "alice"}


# P24: the connection outlives its token.


@pytest.mark.anyio
@pytest.mark.usefixtures("jwt_secret")
async def test_p24_connection_outlives_its_token(serve: Serve) -> None:
    live = serve(LESSON.app("pitfall_outlives_token"))
    short = token(ttl=2)  # exp is whole seconds: ttl=1 can leave a few ms before expiry
    expires_at = jwt.decode(short, SECRET, algorithms=["HS256"])["exp"]
    async with LiveClient(live.ws_url(f"/ws?token={short}")) as ws:
        await ws.receive_nothing(within=expires_at - time.time() + 0.5)
        assert time.time() > expires_at  # the token is dead ...
        await ws.send("still here?")
        assert await ws.receive() == "alice: still here?"  # ... the connection is not
    assert await handshake_status(live.ws_url(f"/ws?token={short}")) == 401


@pytest.mark.anyio
@pytest.mark.usefixtures("jwt_secret")
async def test_p24_fix_closes_4001_at_expiry(serve: Serve) -> None:
    live = serve(LESSON.app("fix_outlives_token"))
    short = token(ttl=2)  # exp is whole seconds: ttl=1 can leave a few ms before expiry
    expires_at = jwt.decode(short, SECRET, algorithms=["HS256"])["exp"]
    async with LiveClient(live.ws_url(f"/ws?token={short}")) as ws:
        await ws.send("hello")
        assert await ws.receive() == "alice: hello"
        assert await ws.wait_closed(timeout=5) == (4001, "token expired")
    assert time.time() >= expires_at - 0.05


@pytest.mark.parametrize("stem", ["pitfall_outlives_token", "fix_outlives_token"])
@pytest.mark.usefixtures("jwt_secret")
def test_p24_both_refuse_an_expired_token_in_process(stem: str) -> None:
    with TestClient(LESSON.app(stem)) as client:
        with client.websocket_connect(f"/ws?token={token()}") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "alice: hi"
        with (
            pytest.raises(WebSocketDenialResponse) as denied,
            client.websocket_connect(f"/ws?token={token(ttl=-10)}"),
        ):
            pass
    assert denied.value.json() == {"detail": "invalid token: Signature has expired"}


# P25: OAuth2PasswordBearer on a WebSocket route.


def test_p25_oauth2_bearer_runs_on_websockets_today() -> None:
    """FastAPI 0.165: no crash (fastapi#2587 is fixed); a missing header is a 401 denial."""
    with TestClient(LESSON.app("pitfall_http_bearer")) as client:
        with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect("/ws"):
            pass
        headers = {"authorization": "Bearer alice-token"}
        with client.websocket_connect("/ws", headers=headers) as ws:
            assert ws.receive_json()["user"] == "alice"
    assert (denied.value.status_code, denied.value.json()) == (401, {"detail": "Not authenticated"})


@pytest.mark.anyio
async def test_p25_only_a_client_that_sets_headers_gets_in(serve: Serve) -> None:
    live = serve(LESSON.app("pitfall_http_bearer"))
    header = {"authorization": "Bearer alice-token"}
    assert await handshake_status(live.ws_url("/ws"), additional_headers=header) == 101
    # What a browser can send: the URL (and cookies). Never an Authorization header.
    assert await handshake_status(live.ws_url("/ws?token=alice-token")) == 401


@pytest.mark.anyio
async def test_p25_fix_reads_what_a_browser_can_send(serve: Serve) -> None:
    live = serve(LESSON.app("fix_http_bearer"))
    async with LiveClient(live.ws_url("/ws?token=alice-token")) as ws:
        assert await ws.receive_json() == {"type": "welcome", "user": "alice"}
    assert await handshake_status(live.ws_url("/ws?token=nope")) == 401


def test_p25_fix_in_process() -> None:
    with TestClient(LESSON.app("fix_http_bearer")) as client:
        with client.websocket_connect("/ws?token=alice-token") as ws:
            assert ws.receive_json()["user"] == "alice"
        with pytest.raises(WebSocketDenialResponse), client.websocket_connect("/ws"):
            pass
