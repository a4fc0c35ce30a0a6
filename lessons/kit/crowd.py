"""A few clients in one room, each scene a few lines: what lesson 03's managers get wrong.

Each function serves an app on a real uvicorn, plays one scene with real clients, and
prints what the clients heard and what the server logged (its errors only). The notebook
explains each scene in prose; these keep its cells to one line.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from lessons.kit.client import LiveClient
from lessons.kit.listen import heard
from lessons.kit.observe import server_log
from lessons.kit.server import LiveServer
from lessons.kit.timing import eventually


async def ann_leaves(app: Any) -> None:
    """Bob is connected; ann joins and leaves at once. What bob hears, what the server logs."""
    with server_log() as log, LiveServer(app) as live:
        async with LiveClient(live.ws_url("/ws?user=bob"), name="bob") as bob:
            async with LiveClient(live.ws_url("/ws?user=ann")):
                pass
            await heard(bob)
    log.print("ERROR")


async def bye_then_hi(app: Any, path: str = "/ws?user=") -> None:
    """Ann, bob and cat; bob says ``bye`` (the server closes him, and forgets to unregister
    him); then ann says ``hi``. Who hears it, how ann's connection ends, what is logged."""
    with server_log() as log, LiveServer(app) as live:
        url = live.ws_url(path)
        async with (
            LiveClient(url + "ann", name="ann") as ann,
            LiveClient(url + "bob", name="bob") as bob,
            LiveClient(url + "cat", name="cat") as cat,
        ):
            await bob.send("bye")
            await bob.wait_closed()
            await ann.send("hi")
            await heard(ann, cat)
            print("ann's connection:", "open" if ann.close_code is None else ann.close_code)
    log.print("ERROR")


async def two_tabs(app: Any) -> None:
    """Alice has two tabs; bob speaks; alice closes her first tab; bob speaks again."""
    with server_log() as log, LiveServer(app) as live:
        url = live.ws_url("/ws?user=")
        async with (
            LiveClient(url + "alice", name="tab1") as tab1,
            LiveClient(url + "alice", name="tab2") as tab2,
            LiveClient(url + "bob", name="bob") as bob,
        ):
            await bob.send("hi")
            await heard(tab1, tab2)
            await tab1.close()
            print("tab1 closed")
            await bob.send("still there?")
            await heard(tab2)
    log.print("ERROR")


async def vanish(module: ModuleType, clients: int = 20) -> None:
    """``clients`` clients connect, say hello and die without a close frame; then how many
    sockets the app still lists (its ``connections``, once its ``handlers`` are done)."""
    with server_log() as log, LiveServer(module.app) as live:
        for _ in range(clients):
            async with LiveClient(live.ws_url("/ws")) as client:
                await client.send("hi")
                await client.receive()
                client.connection.transport.abort()  # no close frame: the client just died
        await eventually(lambda: module.handlers == 0)  # nothing to await: polled
    print(f"{clients} clients came and went; the server still lists {len(module.connections)}")
    log.print("ERROR")
