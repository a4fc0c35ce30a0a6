"""P13, broken: a broadcast to a client that stopped reading."""

from contextlib import suppress

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


class Subscriber:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def send(self, message: str) -> None:
        await self.websocket.send_text(message)  # waits while this client's buffers are full


clients: set[Subscriber] = set()


async def broadcast(message: str) -> None:
    for subscriber in list(clients):
        with suppress(WebSocketDisconnect):
            await subscriber.send(message)


@app.websocket("/ws")
async def feed(websocket: WebSocket) -> None:
    await websocket.accept()
    subscriber = Subscriber(websocket)
    clients.add(subscriber)
    try:
        while True:
            await broadcast(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(subscriber)


@app.get("/stats")
async def stats() -> dict[str, int]:
    return {"clients": len(clients)}
