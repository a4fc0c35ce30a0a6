"""Echo: from HTTP request/response to a persistent two-way connection.

Run it: ``wslab serve 01`` (or ``uvicorn app:app`` in this folder) and open the page.
"""

import json

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse

app = FastAPI(title="wslab 01: echo")

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>wslab 01: echo</title>
<style>body{font:16px system-ui;margin:2rem;max-width:40rem}#log{white-space:pre-wrap}</style>
</head>
<body>
<h1>Echo</h1>
<p id="status">connecting…</p>
<form id="form"><input id="text" autocomplete="off" placeholder="say something" autofocus>
<button>Send</button></form>
<div id="log"></div>
<script>
const log = (line) => { document.getElementById("log").textContent += line + "\\n"; };
const scheme = location.protocol === "https:" ? "wss" : "ws";
const ws = new WebSocket(`${scheme}://${location.host}/ws/echo`);
ws.onopen = () => { document.getElementById("status").textContent = "connected"; };
ws.onmessage = (event) => log("← " + event.data);
ws.onclose = (event) => {
  document.getElementById("status").textContent = `closed (${event.code})`;
};
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  ws.send(input.value);
  log("→ " + input.value);
  input.value = "";
};
</script>
</body>
</html>
"""


@app.get("/")
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE)


@app.get("/http/echo")
async def http_echo(text: str) -> dict[str, str]:
    """The same echo as one HTTP request and response, for comparison."""
    return {"reply": f"Echo: {text}"}


@app.websocket("/ws/echo")
async def echo(websocket: WebSocket) -> None:
    """Reply ``Echo: <text>`` to every text message."""
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"Echo: {text}")
    except WebSocketDisconnect:
        pass  # the client left: nothing to clean up here


@app.websocket("/ws/json")
async def echo_json(websocket: WebSocket) -> None:
    """Reply ``{"echo": <value>}`` to every JSON message; invalid JSON gets an error event."""
    await websocket.accept()
    try:
        while True:
            try:
                value = await websocket.receive_json()
            except json.JSONDecodeError as exc:
                await websocket.send_json({"type": "error", "error": f"invalid JSON: {exc}"})
                continue
            await websocket.send_json({"echo": value})
    except WebSocketDisconnect:
        pass


@app.websocket("/ws/bytes")
async def echo_bytes(websocket: WebSocket) -> None:
    """Reply ``b"Echo: " + data`` to every binary message."""
    await websocket.accept()
    try:
        while True:
            data = await websocket.receive_bytes()
            await websocket.send_bytes(b"Echo: " + data)
    except WebSocketDisconnect:
        pass


@app.websocket("/ws/raw")
async def raw(websocket: WebSocket) -> None:
    """Send every message back unchanged: text as text, binary as binary."""
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        else:
            await websocket.send_bytes(message["bytes"])
