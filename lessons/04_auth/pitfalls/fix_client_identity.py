"""P21, fixed: a chat that says who sent each message."""

from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect

app = FastAPI()
TOKENS = {"alice-token": "alice", "bob-token": "bob"}  # stands in for real verification
members: set[WebSocket] = set()


@app.websocket("/ws")
async def chat(websocket: WebSocket, token: str = "") -> None:
    user = TOKENS.get(token)
    if user is None:
        raise HTTPException(401, "invalid token")
    await websocket.accept()
    members.add(websocket)
    try:
        while True:
            message = await websocket.receive_json()
            event = {"user": user, "text": message.get("text", "")}
            for member in list(members):
                await member.send_json(event)
    except WebSocketDisconnect:
        pass
    finally:
        members.discard(websocket)
