"""P07, fixed: a report handler calls a slow synchronous function, beside an echo."""

import time

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

app = FastAPI()
REPORT_SECONDS = 0.25


def run_report() -> str:
    """A slow synchronous call (here ``time.sleep``; a sync sqlite3 query behaves alike)."""
    time.sleep(REPORT_SECONDS)
    return f"report ready after {REPORT_SECONDS}s"


@app.websocket("/ws/report")
async def report(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.receive_text()
            await websocket.send_text("report started")
            await websocket.send_text(await run_in_threadpool(run_report))
    except WebSocketDisconnect:
        pass


@app.websocket("/ws/echo")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
