"""In-process tests with Starlette's TestClient: fast, and blind to the wire."""

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect


def test_a_message_comes_back_to_the_room(app) -> None:
    with TestClient(app) as client, client.websocket_connect("/ws?user=ada") as ws:
        assert ws.receive_text() == "ada joined"
        ws.send_text("hello")
        assert ws.receive_text() == "ada: hello"


def test_a_nameless_client_is_refused(app) -> None:
    """TestClient reports the refusal as a close code: 1008, before any accept."""
    with TestClient(app) as client, pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/ws"):
            pass
    assert refused.value.code == 1008
