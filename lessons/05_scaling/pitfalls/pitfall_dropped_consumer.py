"""P36, broken: a slow consumer dropped while its send buffer is full."""

import asyncio
import os

from starlette.types import Receive, Scope, Send

GIVE_UP = float(os.environ.get("GIVE_UP", "0.5"))  # seconds a send may wait: then, a slow consumer


async def app(scope: Scope, receive: Receive, send: Send) -> None:  # plain ASGI, no framework
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    try:
        while True:  # a busy room: 64 KiB messages, as fast as the client takes them
            async with asyncio.timeout(GIVE_UP):
                await send({"type": "websocket.send", "text": "x" * 65536})
    except TimeoutError:  # (catch it before OSError: it is one)
        print("slow consumer: dropped", flush=True)
    except OSError:
        return  # the client left
    try:
        async with asyncio.timeout(GIVE_UP):  # a bounded close...
            await send({"type": "websocket.close", "code": 1013, "reason": "slow consumer"})
    except TimeoutError:
        pass  # ...that cannot get through: the frame waits behind all that is unread
    print("handler done", flush=True)
