"""What a browser or a websockets client is told when the handshake is refused."""

import pytest
from starlette.testclient import TestClient
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


def test_refusal_is_http_403_in_process(app) -> None:
    """Fails: in-process there is no HTTP answer to read, only the ASGI close."""
    with TestClient(app) as client:
        response = client.get("/ws", headers={"connection": "upgrade", "upgrade": "websocket"})
    assert response.status_code == 403


@pytest.mark.anyio
async def test_refusal_is_http_403_on_the_wire(live_url: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{live_url}/ws", open_timeout=5):
            pass
    assert refused.value.response.status_code == 403
