"""P35, fixed: a handshake too big to parse (a 10 kB token in the URL), up to uvicorn 0.54."""

import uvicorn
from fastapi import FastAPI, WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class AnsweringProtocol(WebSocketsSansIOProtocol):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.handshake_exc is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self.conn.data_to_send()))  # the refusal it made
            self.transport.close()


WS = AnsweringProtocol  # on the command line: --ws fix_oversized_handshake:AnsweringProtocol

app = FastAPI()


@app.websocket("/ws")
async def hello(websocket: WebSocket, token: str = "") -> None:
    await websocket.accept()
    await websocket.send_text(f"hello, your token has {len(token)} characters")
    await websocket.close()


if __name__ == "__main__":
    uvicorn.run(app, ws=WS)
