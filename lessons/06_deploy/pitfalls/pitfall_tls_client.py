"""P43, broken: a Python client for a wss:// URL behind a proxy with its own CA."""

import asyncio
import ssl
import sys

import websockets


def tls(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def main(url: str, ca_file: str) -> None:
    async with websockets.connect(url, ssl=tls(ca_file)) as websocket:
        print(await websocket.recv())


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
