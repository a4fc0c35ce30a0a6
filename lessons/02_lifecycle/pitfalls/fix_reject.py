"""P09, fixed: a room endpoint refuses a connection to a room that does not exist."""

from fastapi import FastAPI, Query, WebSocket, WebSocketDisconnect
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import WebSocketRequestValidationError
from fastapi.responses import JSONResponse

app = FastAPI()
ROOMS = {"lobby", "kitchen"}


@app.exception_handler(WebSocketRequestValidationError)
async def invalid(websocket: WebSocket, exc: WebSocketRequestValidationError) -> None:
    detail = jsonable_encoder(exc.errors())
    await websocket.send_denial_response(JSONResponse({"detail": detail}, status_code=422))


@app.websocket("/ws/rooms/{room}")
async def join(websocket: WebSocket, room: str, name: str = Query(min_length=1)) -> None:
    if room not in ROOMS:
        denial = JSONResponse({"detail": f"no room {room!r}"}, status_code=404)
        await websocket.send_denial_response(denial)
        return
    await websocket.accept()
    try:
        await websocket.send_text(f"{name} joined {room}")
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
