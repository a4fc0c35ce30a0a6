"""The capstone's task board, as the notebooks' exercises and the tests drive it: the
client side of the experiment, read top to bottom (the notebooks load it with
``load_module("capstone/board.py")``).

- ``AppParts``: the learner's parts of the app. A notebook cell that starts with
  ``%%add_to_app NAME`` makes its code the part called NAME (one per exercise; running the
  cell again replaces it), as if pasted at the end of the skeleton's ``app.py``: a later
  definition of a name replaces the skeleton's. ``board()`` writes that app to a temporary
  folder and serves it as a ``Board``.
- ``Board``: app servers over one Redis, under a board name of their own (so a check
  never sees another board's tasks or users), started side by side: processes, or servers
  in this process (quick to start), each on a fresh copy of the app's module, so that they
  share no variable of the app, only Redis.
- ``BoardClient``: a subscriber that authenticates with its first message and remembers the
  id of the last event it saw; ``log_in`` and ``call`` for the HTTP side.
"""

from __future__ import annotations

import ast
import secrets
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

import httpx

from lessons import load_with
from lessons.kit.client import LiveClient
from lessons.kit.server import LiveServer, SubprocessServer, start_together

Server = SubprocessServer | LiveServer

PASSWORDS = {"ada": "lovelace", "alan": "turing"}  # the skeleton's demo users
MAGIC = "add_to_app"


def _defined(tree: ast.Module) -> list[str]:
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [target.id for target in targets if isinstance(target, ast.Name)]
    return names


class AppParts:
    """The learner's code, appended to ``skeleton`` (an app file) in the order it was added."""

    def __init__(self, skeleton: str | Path) -> None:
        self.skeleton = Path(skeleton).resolve()
        self.parts: dict[str, str] = {}

    def add(self, part: str, source: str) -> list[str]:
        """Make ``source`` the part called ``part``, last in the app; the names it defines."""
        names = _defined(ast.parse(source))
        self.parts.pop(part, None)
        self.parts[part] = source.strip() + "\n"
        return names

    def source(self) -> str:
        """The whole app: the skeleton, then every part."""
        parts = "\n\n".join(source for source in self.parts.values() if source.strip())
        text = self.skeleton.read_text(encoding="utf-8")
        return f"{text}\n\n# Your parts (from the notebook) ---\n\n{parts}" if parts else text

    def save(self, path: str | Path) -> Path:
        """Write the whole app to ``path``, beside the skeleton's pages and the modules it
        imports (``accounts.py``)."""
        path = Path(path).resolve()
        for file in self.skeleton.parent.glob("*.*"):
            beside = file.suffix in {".html", ".js", ".py"} and file != self.skeleton
            beside &= file.resolve() != Path(__file__).resolve()  # the client, not the app
            if beside and file.parent != path.parent:
                shutil.copy(file, path.parent / file.name)
        path.write_text(self.source(), encoding="utf-8")
        return path

    def board(
        self, redis_url: str, processes: int = 2, *, in_process: bool = False, **env: str
    ) -> Board:
        """This app as ``processes`` servers on a new board (started on ``with``)."""
        folder = Path(tempfile.mkdtemp(prefix="wslab-board-"))
        app = self.save(folder / "app.py")
        return Board(app, redis_url, processes, env, folder, in_process=in_process)

    def cell_magic(self, line: str, cell: str) -> None:
        """``%%add_to_app NAME``: the cell's code becomes part NAME; say what it replaces."""
        if not line.strip():
            raise ValueError("name the part: %%add_to_app exercise1")
        skeleton = set(_defined(ast.parse(self.skeleton.read_text(encoding="utf-8"))))
        names = self.add(line.strip(), cell)
        if not names:
            print(f"{line.strip()}: nothing in it yet: write your function here, then run it")
        for name in names:
            print(f"{name}: {'replaces the skeleton’s' if name in skeleton else 'added'}")

    def register(self) -> Self:
        """Make ``%%add_to_app`` available in this IPython kernel."""
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            raise RuntimeError("%%add_to_app works in a notebook (an IPython kernel)")
        shell.register_magic_function(self.cell_magic, "cell", MAGIC)
        return self


def _in_process(app: str | Path, settings: dict[str, str]) -> LiveServer:
    """A server in this process for a fresh copy of the module at ``app``, loaded with
    ``settings`` as its environment."""
    return LiveServer(load_with(app, **settings).app)


class Board:
    """App servers sharing one Redis and one signing secret, under a fresh board name:
    processes, or with ``in_process`` servers in this process, each on its own module."""

    def __init__(
        self,
        app: str | Path,
        redis_url: str,
        processes: int = 2,
        env: dict[str, str] | None = None,
        folder: Path | None = None,
        *,
        in_process: bool = False,
    ) -> None:
        self.name = f"board-{secrets.token_hex(4)}"
        settings = {
            "REDIS_URL": redis_url,
            "WSLAB_JWT_SECRET": secrets.token_urlsafe(32),
            "WSLAB_BOARD": self.name,
            **(env or {}),
        }
        self.servers: list[Server] = [
            _in_process(app, settings) if in_process else SubprocessServer(app, env=settings)
            for _ in range(processes)
        ]
        self.folder = folder

    def start(self) -> Self:
        """Start every process side by side; return once all accept connections."""
        try:
            start_together(self.servers)
        except Exception as exc:
            self.stop()  # its folder too
            raise RuntimeError(f"the board did not start: {exc}") from exc
        return self

    def stop(self) -> None:
        """Stop every process side by side (each shuts down gracefully: 1012 for its clients)."""
        with ThreadPoolExecutor(len(self.servers)) as pool:
            list(pool.map(lambda server: server.stop(), self.servers))
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> list[Server]:
        self.start()
        return self.servers

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


async def call(
    method: str, server: Server, path: str, token: str | None = None, body: Any = None
) -> httpx.Response:
    """One HTTP request to ``server``, with the bearer token if given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.http_url, timeout=5) as http:
        return await http.request(method, path, json=body, headers=headers)


async def log_in(server: Server, user: str, password: str | None = None) -> str:
    """Log in as a demo user over HTTP; the token."""
    credentials = {"username": user, "password": password or PASSWORDS[user]}
    reply = await call("POST", server, "/login", body=credentials)
    reply.raise_for_status()
    return str(reply.json()["token"])


class BoardClient(LiveClient):
    """A subscriber of ``/ws/tasks``: first-message auth, then events, each with its id."""

    def __init__(self, server: Server, *, name: str = "client", echo: bool = False):
        super().__init__(server.ws_url("/ws/tasks"), name=name, echo=echo)
        self.hello: dict[str, Any] = {}
        self.last_id: str | None = None

    async def follow(self, token: str, since: str | None = None) -> Self:
        """Connect, send ``{"token": ..., "since": ...}`` and wait for the hello."""
        await self.connect()
        await self.send_json({"token": token, "since": since})
        self.hello = await self.receive_json()
        if self.hello.get("type") != "hello":
            raise AssertionError(f"{self.name}: expected a hello, got {self.hello}")
        self.last_id = since
        return self

    async def next_event(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next event of type ``kind``, passing over events of other types."""
        while True:
            event = await self.receive_json(timeout)
            self.last_id = event.get("id", self.last_id)
            if event.get("type") == kind:
                return event


async def follow(
    server: Server, token: str, *, since: str | None = None, name: str = "client"
) -> BoardClient:
    """A ``BoardClient`` of ``server``, authenticated and past its hello."""
    return await BoardClient(server, name=name).follow(token, since)
