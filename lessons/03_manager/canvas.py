"""Shared canvas: a stroke goes to every other page; a clear goes to everyone.

A page that opens late starts blank: the exercise in the notebook adds the history.
Run it: ``wslab serve 03 --app canvas`` (or ``uvicorn canvas:app``), then open the page.
"""

from contextlib import suppress
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

Coordinate = Annotated[float, Field(ge=0, le=4000)]


class Stroke(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["stroke"]
    points: list[tuple[Coordinate, Coordinate]] = Field(min_length=1, max_length=2000)
    color: str = Field(default="#000000", pattern=r"^#[0-9a-fA-F]{6}$")
    width: float = Field(default=3, ge=1, le=50)


class Clear(BaseModel):
    type: Literal["clear"]


Event = TypeAdapter(Annotated[Stroke | Clear, Field(discriminator="type")])
app = FastAPI()
artists: set[WebSocket] = set()


async def share(event: dict[str, Any], exclude: WebSocket | None = None) -> None:
    for artist in list(artists):
        if artist is not exclude:
            with suppress(WebSocketDisconnect):
                await artist.send_json(event)


@app.websocket("/ws/canvas")
async def draw(websocket: WebSocket) -> None:
    await websocket.accept()
    artists.add(websocket)
    try:
        while True:
            try:
                event = Event.validate_json(await websocket.receive_text())
            except ValidationError as exc:
                await websocket.send_json({"type": "error", "error": exc.errors()[0]["msg"]})
                continue
            await share(event.model_dump(), exclude=None if event.type == "clear" else websocket)
    except WebSocketDisconnect:
        pass
    finally:
        artists.discard(websocket)


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(Path(__file__).with_name("canvas.html"))
