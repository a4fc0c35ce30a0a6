"""Task board: REST changes, pushed to every WebSocket subscriber once they are committed.

Run it: ``wslab serve 03 --app board`` (or ``uvicorn board:app``), then open the page.
"""

from contextlib import suppress
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

app = FastAPI()
tasks: dict[int, dict[str, Any]] = {}
subscribers: set[WebSocket] = set()


class NewTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)


class TaskChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=1, max_length=200)
    done: bool | None = None


def check_title(title: str | None, task_id: int = 0) -> None:
    if any(task["title"] == title and task["id"] != task_id for task in tasks.values()):
        raise HTTPException(409, f"a task called {title!r} already exists")


async def publish(event: dict[str, Any]) -> None:
    for subscriber in list(subscribers):
        with suppress(WebSocketDisconnect):
            await subscriber.send_json(event)


@app.get("/tasks")
async def list_tasks() -> list[dict[str, Any]]:
    return list(tasks.values())


@app.post("/tasks", status_code=201)
async def create_task(new: NewTask) -> dict[str, Any]:
    check_title(new.title)  # raises 409 before anything is changed or published
    task_id = max(tasks, default=0) + 1
    task = tasks[task_id] = {"id": task_id, "title": new.title, "done": False}
    await publish({"type": "task_created", "task": task})
    return task


@app.put("/tasks/{task_id}")
async def update_task(task_id: int, change: TaskChange) -> dict[str, Any]:
    if task_id not in tasks:
        raise HTTPException(404, f"no task {task_id}")
    check_title(change.title, task_id)
    tasks[task_id].update(change.model_dump(exclude_none=True))
    await publish({"type": "task_updated", "task": tasks[task_id]})
    return tasks[task_id]


@app.websocket("/ws/tasks")
async def task_events(websocket: WebSocket) -> None:
    """Every task now, then ``task_created`` and ``task_updated`` as they happen."""
    await websocket.accept()
    await websocket.send_json({"type": "tasks", "tasks": list(tasks.values())})
    subscribers.add(websocket)
    try:
        while True:
            await websocket.receive_text()
            await websocket.send_json({"type": "error", "error": "this endpoint only pushes"})
    except WebSocketDisconnect:
        pass
    finally:
        subscribers.discard(websocket)


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(Path(__file__).with_name("board.html"))
