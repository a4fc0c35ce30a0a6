"""P03, fixed: validate every message with a pydantic model; answer errors with an event."""

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError


class Say(BaseModel):
    text: str


app = FastAPI()


@app.websocket("/ws")
async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            raw = await websocket.receive_text()
            try:
                message = Say.model_validate_json(raw)
            except ValidationError as exc:
                problems = [
                    f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors()
                ]
                await websocket.send_json({"type": "error", "error": problems})
                continue
            await websocket.send_json({"type": "said", "text": message.text})
    except WebSocketDisconnect:
        pass
