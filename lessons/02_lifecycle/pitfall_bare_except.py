"""P05, broken: a bare ``except:`` inside the loop swallows every error, disconnects included.

A bad message gets no answer and leaves no log line. When the client leaves,
``receive_text()`` raises at once on every turn: the loop spins without ever awaiting, so
the event loop freezes, every other client stalls, and SIGTERM cannot stop the process.
A bare ``except:`` also catches ``asyncio.CancelledError``: a task cannot be cancelled.
"""

from fastapi import FastAPI, WebSocket

app = FastAPI()


@app.websocket("/ws")
async def double(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        try:
            number = int(await websocket.receive_text())
            await websocket.send_text(str(2 * number))
        except:  # noqa: E722  "one bad message must not kill the connection"
            continue
