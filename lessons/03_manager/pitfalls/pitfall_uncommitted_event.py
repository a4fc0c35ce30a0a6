"""P16, broken: an event for a change that may still fail."""

from contextlib import suppress
from typing import Any

from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

app = FastAPI()
tasks: dict[int, dict[str, Any]] = {}
subscribers: set[WebSocket] = set()


class NewTask(BaseModel):
    title: str = Field(min_length=1, max_length=200)


class TaskChange(BaseModel):
    done: bool


def create(title: str) -> dict[str, Any]:
    if any(task["title"] == title for task in tasks.values()):
        raise HTTPException(409, f"a task called {title!r} already exists")
    task = tasks[len(tasks) + 1] = {"id": len(tasks) + 1, "title": title, "done": False}
    return task


def update(task_id: int, change: TaskChange) -> dict[str, Any]:
    if task_id not in tasks:
        raise HTTPException(404, f"no task {task_id}")
    tasks[task_id]["done"] = change.done
    return tasks[task_id]


async def publish(event: dict[str, Any]) -> None:
    for subscriber in list(subscribers):
        with suppress(WebSocketDisconnect):
            await subscriber.send_json(event)


@app.post("/tasks", status_code=201)
async def create_task(new: NewTask) -> dict[str, Any]:
    await publish({"type": "task_created", "task": {"title": new.title}})
    return create(new.title)


@app.put("/tasks/{task_id}")
async def update_task(task_id: int, change: TaskChange) -> dict[str, Any]:
    await publish({"type": "task_updated", "task": {"id": task_id, "done": change.done}})
    return update(task_id, change)


@app.get("/tasks")
async def list_tasks() -> list[dict[str, Any]]:
    return list(tasks.values())


@app.websocket("/ws/tasks")
async def task_events(websocket: WebSocket) -> None:
    await websocket.accept()
    subscribers.add(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        subscribers.discard(websocket)
