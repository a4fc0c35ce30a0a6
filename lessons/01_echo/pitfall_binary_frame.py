"""P01, broken: a text-only handler dies on the first binary frame.

``receive_text()`` reads ``message["text"]``; a binary frame has only ``"bytes"``, so
the handler raises KeyError and uvicorn drops the connection.
"""

from fastapi import FastAPI, WebSocket

app = FastAPI()


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        text = await websocket.receive_text()
        await websocket.send_text(f"Echo: {text}")
