"""P17, fixed: a push loop that a quick reconnect starts twice."""

import asyncio
import random
from contextlib import suppress

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

INTERVAL = 0.5  # seconds between two pushes


class DashboardManager:
    def __init__(self) -> None:
        self.connections: list[WebSocket] = []
        self.task: asyncio.Task[None] | None = None
        self.started = 0  # loops ever started: each push says which loop sent it
        self.running = 0  # loops running now

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.connections.append(websocket)
        if self.task is None:
            self.task = asyncio.create_task(self.broadcast_metrics())  # held, and owned

    def disconnect(self, websocket: WebSocket) -> None:
        if websocket in self.connections:
            self.connections.remove(websocket)
        if not self.connections:
            self.task.cancel()  # takes effect at once, even in the middle of the sleep
            self.task = None

    async def broadcast_metrics(self) -> None:
        self.started += 1
        self.running += 1
        loop, tick = self.started, 0
        try:
            while True:
                tick += 1
                metrics = {"loop": loop, "tick": tick, "cpu": random.randint(5, 95)}
                for connection in list(self.connections):
                    with suppress(WebSocketDisconnect):
                        await connection.send_json(metrics)
                await asyncio.sleep(INTERVAL)
        finally:
            self.running -= 1


manager = DashboardManager()
app = FastAPI()


@app.websocket("/ws/dashboard")
async def dashboard(websocket: WebSocket) -> None:
    await manager.connect(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        manager.disconnect(websocket)


@app.get("/stats")
async def stats() -> dict[str, int]:
    return {"push_loops": manager.running, "watchers": len(manager.connections)}
