"""A page from another origin that opens a cookie-authenticated WebSocket (P22).

Serve it on another port than the victim (``uvicorn attacker:app --port 8001``) and open
``http://127.0.0.1:8001/?target=ws://127.0.0.1:8000/ws/cookie``: the page shows what the
socket let it read, or how it was refused.
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

app = FastAPI(title="wslab 04: a page from another origin")


@app.get("/")
async def page() -> FileResponse:
    return FileResponse(Path(__file__).with_name("attacker.html"))
