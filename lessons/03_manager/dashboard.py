"""Live dashboard: one push loop, owned, alive exactly while someone watches.

Run it: ``wslab serve 03 --app dashboard`` (or ``uvicorn dashboard:app``), then open the page.
"""

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse

INTERVAL = 1.0  # seconds between two pushes


class Dashboard:
    """The watchers, and the one task that pushes metrics to them.

    The first watcher starts the task, the last one cancels it, and so does shutdown. The
    task itself is the "is it running?" state: there is no flag to get out of step with it.
    """

    def __init__(self) -> None:
        self.watchers: set[WebSocket] = set()
        self.task: asyncio.Task[None] | None = None

    def watch(self, websocket: WebSocket) -> None:
        self.watchers.add(websocket)
        if self.task is None:
            self.task = asyncio.create_task(self.push())

    def release(self, websocket: WebSocket) -> None:
        self.watchers.discard(websocket)
        if not self.watchers and self.task is not None:
            self.task.cancel()
            self.task = None

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait([self.task])
            self.task = None

    async def push(self) -> None:
        tick = 0
        while True:
            tick += 1
            metrics = {"type": "metrics", "tick": tick, "ts": round(time.time(), 3)}
            metrics |= {"watchers": len(self.watchers), "load": random.randint(5, 95)}
            for watcher in list(self.watchers):
                with suppress(WebSocketDisconnect):
                    await watcher.send_json(metrics)
            await asyncio.sleep(INTERVAL)


dashboard = Dashboard()


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    await dashboard.stop()


app = FastAPI(lifespan=lifespan)


@app.websocket("/ws/dashboard")
async def watch(websocket: WebSocket) -> None:
    await websocket.accept()
    dashboard.watch(websocket)
    try:
        while True:
            await websocket.receive_text()  # nothing to say: this keeps the connection open
    except WebSocketDisconnect:
        pass
    finally:
        dashboard.release(websocket)


@app.get("/stats")
async def stats() -> dict[str, Any]:
    return {"push_loops": int(dashboard.task is not None), "watchers": len(dashboard.watchers)}


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(Path(__file__).with_name("dashboard.html"))
