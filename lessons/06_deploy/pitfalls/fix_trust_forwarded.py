"""P42, fixed: an app that takes the client's address from X-Forwarded-For."""

import os

from fastapi import FastAPI, WebSocket
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

PROXY = os.environ.get("PROXY", "127.0.0.1")  # the proxy's address: the only one to trust
api = FastAPI()


@api.websocket("/ws")
async def whoami(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"you are": websocket.client.host if websocket.client else None})
    await websocket.close()


app = ProxyHeadersMiddleware(api, trusted_hosts=PROXY)
