"""P03, fixed: a handler reads a field the message does not have."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError

app = FastAPI()


class Say(BaseModel):
    text: str


@app.websocket("/ws")
async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            try:
                message = Say.model_validate_json(await websocket.receive_text())
                await websocket.send_json({"type": "said", "text": message.text})
            except ValidationError as exc:
                await websocket.send_json({"type": "error", "error": exc.errors(include_url=False)})
    except WebSocketDisconnect:
        pass
