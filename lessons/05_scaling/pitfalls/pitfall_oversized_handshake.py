"""P35, broken: a handshake too big to parse (a 10 kB token in the URL), up to uvicorn 0.54."""

import uvicorn
from fastapi import FastAPI, WebSocket

WS = "websockets-sansio"  # uvicorn's default WebSocket implementation (`--ws auto`)

app = FastAPI()


@app.websocket("/ws")
async def hello(websocket: WebSocket, token: str = "") -> None:
    await websocket.accept()
    await websocket.send_text(f"hello, your token has {len(token)} characters")
    await websocket.close()


if __name__ == "__main__":
    uvicorn.run(app, ws=WS)
