"""Lesson 04 in headless Chromium: log in, connect four ways, chat; CSWSH; P25."""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket

from lessons import find
from lessons.kit import LiveServer, scaled
from lessons.kit.browser import REQUIRE_BROWSER, chromium_path

pytestmark = pytest.mark.browser

LESSON = find("04_auth")
Chromium = LESSON.module("experiments").Chromium  # the lesson's browser
SECRET = "a-test-secret-that-is-at-least-32-bytes-long"
Serve = Callable[..., LiveServer]

HOSTS = ("127.0.0.1", "localhost")  # one host, two names: two sites for the browser

# A script any page can run: open a socket, report the first message or the close code.
OPEN_SOCKET = """(url) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  ws.onmessage = (event) => { resolve("message " + event.data); ws.close(); };
  ws.onclose = (event) => resolve("closed " + event.code);
})"""


@pytest.fixture
def lesson(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("WSLAB_JWT_SECRET", SECRET)
    return LESSON.module()


def log_in(page: Any, server: LiveServer, user: str, password: str | None = None) -> None:
    from playwright.sync_api import expect

    page.goto(server.http_url + "/")
    page.fill("#username", user)
    page.fill("#password", password or f"{user}-password")
    page.click("#login button")
    expect(page.locator("#who")).to_have_text(f"logged in as {user}")


def connect(page: Any, transport: str, user: str) -> None:
    from playwright.sync_api import expect

    page.select_option("#transport", transport)
    page.click("#connect button")
    expect(page.locator("#status")).to_have_text(f"connected as {user}")


@pytest.mark.anyio
async def test_the_notebooks_async_chromium_shows_cookie_scope_and_the_fix(
    serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    """Playwright's async API, as the notebook uses it: the same site (127.0.0.1, another
    port) reads alice's inbox; localhost, another site, gets no cookie; the fix refuses.
    (Above the browser tests: see the ``browser`` fixture.)"""
    if chromium_path() is None and not os.environ.get(REQUIRE_BROWSER):
        pytest.skip("Chromium not found")
    browser = await Chromium.launch()
    try:
        attacker = serve(LESSON.app("attacker"), log_level="critical")
        seen = {}
        for stem in ["pitfall_no_origin_check", "fix_no_origin_check"]:
            victim = serve(LESSON.app(stem), log_level="critical")
            await browser.post(f"{victim.http_url}/login?user=alice")
            target = victim.ws_url("/ws")
            capsys.readouterr()
            await browser.visit(
                *[f"http://{host}:{attacker.port}/?target={target}" for host in HOSTS],
                cookies=True,
            )
            seen[stem] = capsys.readouterr().out.splitlines()
    finally:
        await browser.close()
    inbox = 'read: {"type":"inbox","user":"alice","messages":["private note"]}'
    refused = "closed (1006), read nothing"
    assert seen["pitfall_no_origin_check"] == [
        f"a page on 127.0.0.1:{attacker.port} (cookies it holds for this host: ['session']): "
        f"closed (1000), {inbox}",
        f"a page on localhost:{attacker.port} (cookies it holds for this host: []): {refused}",
    ]
    assert [line.rsplit(": ", 1)[-1] for line in seen["fix_no_origin_check"]] == [refused] * 2


def test_log_in_connect_and_chat(
    serve: Serve, new_page: Callable[[], Any], lesson: ModuleType
) -> None:
    from playwright.sync_api import expect

    server = serve(lesson.app)
    alice, bob = new_page(), new_page()
    for page, user, transport in [(alice, "alice", "ticket"), (bob, "bob", "cookie")]:
        log_in(page, server, user)
        assert page.evaluate("document.cookie") == ""  # HttpOnly: the page cannot read it
        connect(page, transport, user)
        page.click("#join")
        expect(page.locator("#log")).to_contain_text("joined lobby")
    alice.fill("#text", "hello from Chromium")
    alice.keyboard.press("Enter")
    for page in (alice, bob):
        expect(page.locator("#log")).to_contain_text("[lobby] alice: hello from Chromium")


def test_every_transport_wrong_password_and_forbidden_room(
    serve: Serve, new_page: Callable[[], Any], lesson: ModuleType
) -> None:
    from playwright.sync_api import expect

    server = serve(lesson.app)
    page = new_page()
    page.goto(server.http_url + "/")
    page.fill("#username", "carol")
    page.fill("#password", "guess")
    page.click("#login button")
    expect(page.locator("#who")).to_have_text("login refused: wrong username or password")
    log_in(page, server, "carol")
    for transport in ["first-message", "query", "cookie", "ticket"]:
        connect(page, transport, "carol")
    page.fill("#room", "staff")
    page.click("#join")
    expect(page.locator("#log")).to_contain_text("error: carol may not join staff")


def test_page_shows_the_expiry_close_code(
    serve: Serve, new_page: Callable[[], Any], lesson: ModuleType
) -> None:
    from playwright.sync_api import expect

    lesson.app.state.auth.token_ttl = 2  # long enough to log in and connect on a busy machine
    server = serve(lesson.app)
    page = new_page()
    log_in(page, server, "bob")
    connect(page, "cookie", "bob")
    expired = "closed (4001 token expired)"
    expect(page.locator("#status")).to_have_text(expired, timeout=scaled(10) * 1000)


def test_another_origin_cannot_use_the_session_cookie(
    serve: Serve, new_page: Callable[[], Any], lesson: ModuleType
) -> None:
    """CSWSH: both servers are on 127.0.0.1, so the browser sends alice's cookie to both."""
    from playwright.sync_api import expect

    victim = serve(lesson.app)
    attacker = serve(LESSON.app("attacker"))
    page = new_page()
    log_in(page, victim, "alice")
    connect(page, "cookie", "alice")  # same origin: works
    cookies = page.context.cookies(attacker.http_url)
    assert [c["name"] for c in cookies] == ["wslab_session"]  # per host, not per port
    evil = page.context.new_page()
    evil.goto(f"{attacker.http_url}/?target={victim.ws_url('/ws/cookie')}")
    expect(evil.locator("#status")).to_have_text("closed (1006)")
    expect(evil.locator("#stolen")).to_be_empty()
    expect(page.locator("#status")).to_have_text("connected as alice")


def test_p22_cross_site_websocket_hijacking(serve: Serve, new_page: Callable[[], Any]) -> None:
    """The attacker's page reads alice's inbox on the pitfall and is refused by the fix."""
    from playwright.sync_api import expect

    attacker = serve(LESSON.app("attacker"))
    for stem, status in [
        ("pitfall_no_origin_check", "closed (1000)"),
        ("fix_no_origin_check", "closed (1006)"),
    ]:
        victim = serve(LESSON.app(stem))
        page = new_page()
        # alice logged in to the victim site earlier: her browser holds its session cookie.
        assert page.context.request.post(victim.http_url + "/login?user=alice").ok
        page.goto(f"{attacker.http_url}/?target={victim.ws_url('/ws')}")
        expect(page.locator("#status")).to_have_text(status)
        stolen = page.locator("#stolen")
        if stem.startswith("pitfall"):
            expect(stolen).to_contain_text('"user":"alice","messages":["private note"]')
        else:
            expect(stolen).to_be_empty()


def test_p25_a_browser_cannot_send_an_authorization_header(
    serve: Serve, new_page: Callable[[], Any]
) -> None:
    """The same URL from Chromium: refused by OAuth2PasswordBearer, welcomed by the fix."""
    page = new_page()
    for stem, seen in [
        ("pitfall_http_bearer", "closed 1006"),
        ("fix_http_bearer", 'message {"type":"welcome","user":"alice"}'),
    ]:
        server = serve(LESSON.app(stem))
        page.goto(server.http_url + "/openapi.json")  # any page of that origin
        assert page.evaluate(OPEN_SOCKET, server.ws_url("/ws?token=alice-token")) == seen


def test_a_browser_drops_a_socket_whose_server_picks_none_of_its_subprotocols(
    serve: Serve, new_page: Callable[[], Any]
) -> None:
    """Exercise 2's reason to accept with subprotocol="bearer": without it Chromium fails
    the connection (1006) although the server accepted it."""
    app = FastAPI()

    @app.websocket("/ws/{picked}")
    async def offered(websocket: WebSocket, picked: str) -> None:
        await websocket.accept(subprotocol="bearer" if picked == "bearer" else None)
        await websocket.send_json({"subprotocols": websocket.scope["subprotocols"]})

    server = serve(app)
    page = new_page()
    page.goto(server.http_url + "/openapi.json")
    with_protocols = OPEN_SOCKET.replace(
        "new WebSocket(url)", 'new WebSocket(url, ["bearer", "t"])'
    )
    seen = {
        picked: page.evaluate(with_protocols, server.ws_url(f"/ws/{picked}"))
        for picked in ("bearer", "none")
    }
    assert seen == {"bearer": 'message {"subprotocols":["bearer","t"]}', "none": "closed 1006"}
