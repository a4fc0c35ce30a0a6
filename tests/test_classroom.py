"""Classroom mode without a browser: what a learner's report becomes, across a restart; every
attack refused; and ``wslab classroom`` as a user runs it (its three lines, its signals, its
file). The instructor's page in Chromium: ``test_classroom_page.py``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import nbformat
import pytest
from fastapi import HTTPException

from lessons.classroom.app import Settings, Tickets, create_app
from lessons.classroom.client import ClassroomError, Learner
from lessons.classroom.store import Store
from lessons.cli.classroom import report_checks
from lessons.cli.open import lab_environment
from lessons.course.exercises import CheckResult
from lessons.kit import LiveClient, LiveServer, handshake_status, scaled
from lessons.kit.notebooks import execute

Serve = Callable[..., LiveServer]
QUICK = Settings(heartbeat=0.3, silence=0.3, rate=5, burst=8, max_bytes=512, learners=2)


def ticket(server: LiveServer, body: dict[str, str], path: str = "/ticket") -> httpx.Response:
    return httpx.post(server.http_url + path, json=body, timeout=scaled(5))


def learner_ticket(server: LiveServer, store: Store, name: str = "bob") -> str:
    body = {"code": store.code, "name": name, "secret": f"{name}-secret-of-16-chars"}
    return str(ticket(server, body).json()["ticket"])


async def instructor(server: LiveServer, store: Store, last: int = 0) -> LiveClient:
    """The instructor's socket, as the page opens it: a ticket, its own Origin, ``last``."""
    held = ticket(server, {"secret": store.instructor_secret}, "/instructor/ticket").json()
    url = server.ws_url(f"/ws/instructor?ticket={held['ticket']}&last={last}")
    client = await LiveClient(url, name="instructor", origin=server.http_url).connect()
    assert (await client.receive_json())["type"] == "welcome"
    return client


@pytest.mark.anyio
async def test_reports_reach_the_instructor_once_and_a_restart_loses_nothing(
    serve: Serve, tmp_path: Path
) -> None:
    data = tmp_path / "classroom.sqlite3"
    store = Store(data)
    first = serve(create_app(store))
    ada = Learner(first.http_url, store.code.lower(), "ada", tmp_path / "ada")  # any case
    page = await instructor(first, store)
    assert await ada.send([{"type": "result", "lesson": "01_echo", "exercise": 1,
                            "passed": False, "hint": "send JSON"}]) == [1]  # fmt: skip
    hand = (await ada.send([{"type": "hand", "kind": "stuck"}]))[0]
    assert (await ada.send([{"type": "hand", "kind": "stuck"}]))[0] == hand  # raised once
    seen = [await page.receive_json() for _ in range(2)]
    assert [(e["id"], e["type"], e["name"]) for e in seen] == [
        (1, "result", "ada"),
        (2, "hand", "ada"),
    ]
    assert seen[0]["hint"] == "send JSON" and seen[1]["kind"] == "stuck"
    await page.send_json({"type": "clear", "hand": hand})
    assert (await page.receive_json())["type"] == "cleared"
    first.stop()
    assert await page.wait_closed() == (1012, "")
    store.close()

    again = Store(data)  # a second classroom on the same file carries on
    assert (again.code, again.instructor_secret) == (store.code, store.instructor_secret)
    second = serve(create_app(again), port=first.port)
    page = await instructor(second, again, last=2)  # the page resumes after what it saw
    assert (await page.receive_json())["type"] == "cleared"
    ada = Learner(second.http_url, again.code, "ada", tmp_path / "ada")  # the same secret
    assert await ada.send([{"type": "hand", "kind": "stuck"}]) == [4]  # a new hand
    assert (await page.receive_json())["id"] == 4
    await page.receive_nothing(within=0.1)
    await page.close()
    again.close()


@pytest.mark.anyio
async def test_every_attack_is_refused(serve: Serve, tmp_path: Path) -> None:
    store = Store(tmp_path / "classroom.sqlite3")
    server = serve(create_app(store, QUICK), log_level="critical")
    url = server.http_url
    refused = {  # a wrong code, somebody else's name, a name a page could misread
        "wrong join code": Learner(url, "WRONG", "ada", tmp_path / "mallory"),
        "'ada' is taken": Learner(url, store.code, "ada", tmp_path / "mallory"),
        "a name is 1 to 40": Learner(url, store.code, "<script>", tmp_path / "mallory"),
        "cannot reach": Learner(f"http://127.0.0.1:{server.port + 1}", "X", "ada", tmp_path),
    }
    assert await Learner(url, store.code, "ada", tmp_path / "ada").send([]) == []  # ada's now
    for reason, learner in refused.items():
        with pytest.raises(ClassroomError, match=reason):
            await learner.send([{"type": "hand", "kind": "stuck"}])
    wrong_secret = ticket(server, {"secret": "guess"}, "/instructor/ticket")
    assert (wrong_secret.status_code, wrong_secret.json()) == (
        403,
        {"detail": "wrong instructor secret"},
    )

    # the sockets: no ticket, a used ticket, a learner's ticket for the instructor's socket,
    # another site's page (Origin)
    learners, instructors = server.ws_url("/ws/learner"), server.ws_url("/ws/instructor")
    used = learner_ticket(server, store)
    assert await handshake_status(f"{learners}?ticket={used}") == 101
    for attempt in [
        learners,
        f"{learners}?ticket={used}",
        f"{instructors}?ticket={learner_ticket(server, store)}",
    ]:
        assert await handshake_status(attempt) == 403, attempt
    own = ticket(server, {"secret": store.instructor_secret}, "/instructor/ticket").json()["ticket"]
    assert (
        await handshake_status(f"{instructors}?ticket={own}", origin="http://evil.example") == 403
    )
    assert (
        await handshake_status(
            f"{learners}?ticket={learner_ticket(server, store)}", origin="http://evil.example"
        )
        == 403
    )
    with pytest.raises(HTTPException, match="expired"):
        expired = Tickets(seconds=0)
        expired.redeem(expired.issue("learner", "ada"), "learner")

    # what a learner sends: only its own results and hands, within the limits
    errors = [
        {"type": "clear", "hand": 1},  # only the instructor clears hands
        {"type": "result", "lesson": "99_nowhere", "exercise": 1, "passed": True},
        {"type": "result", "lesson": "01_echo", "exercise": 9, "passed": True},
        {"type": "hand", "kind": "bored"},
    ]
    async with LiveClient(f"{learners}?ticket={learner_ticket(server, store)}") as client:
        for message in [*errors, "not json"]:
            await client.send(message if isinstance(message, str) else json.dumps(message))
            assert (await client.receive_json())["type"] == "error", message
    for message, close in [("x" * 600, 1009), (b"\x00", 1003)]:
        async with LiveClient(f"{learners}?ticket={learner_ticket(server, store)}") as client:
            await client.send(message)
            assert (await client.wait_closed())[0] == close
    async with LiveClient(f"{learners}?ticket={learner_ticket(server, store)}") as flood:
        for _ in range(QUICK.burst + 1):
            await flood.send('{"type": "pong"}')
        assert await flood.wait_closed() == (1008, "rate limit: 5 messages/s")
    async with LiveClient(f"{learners}?ticket={learner_ticket(server, store)}") as silent:
        assert await silent.receive_json() == {"type": "ping"}  # never answered
        assert await silent.wait_closed(timeout=2) == (1006, "")  # no close frame: P37
    with pytest.raises(ClassroomError, match=r"the classroom is full \(2\)"):
        await Learner(url, store.code, "carol", tmp_path / "carol").send([])  # ada, bob: 2
    assert store.after(0) == []  # nothing of it was stored
    store.close()


def test_check_without_a_classroom_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = Learner("http://127.0.0.1:9", "CODE", "ada", tmp_path)
    results = [CheckResult(1, True), CheckResult(2, False, "AssertionError", "hint")]
    assert report_checks(nowhere, "01_echo", results, 1) == 2
    assert capsys.readouterr().err.splitlines() == [
        "wslab: classroom: cannot reach the classroom at http://127.0.0.1:9:"
        " [Errno 111] Connection refused"
    ]
    assert report_checks(None, "01_echo", results, 1) == 1


def test_a_notebooks_check_cells_report_as_they_run(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``wslab open --report`` arranges: the kernel loads the extension (here by
    ``%load_ext``, as its ``--ext`` option does), with the learner in its environment."""
    store = Store(tmp_path / "classroom.sqlite3")
    server = serve(create_app(store))
    ada = Learner(server.http_url, store.code, "ada", tmp_path)
    for key, value in ada.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    lab_environment(tmp_path / "state")  # the kernel spec `wslab open` writes
    spec = json.loads((tmp_path / "state/jupyter/kernels/python3/kernel.json").read_text())
    assert spec["argv"][-1] == "--ext=lessons.classroom.notebook"
    checks = [
        nbformat.v4.new_code_cell(f"assert {passed}", metadata={"tags": ["check"]})
        for passed in [True, False]
    ]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext lessons.classroom.notebook"),
        checks[0],
        nbformat.v4.new_code_cell("from lessons.classroom import hand\nhand('stuck')"),
        checks[1],
    ]
    folder = tmp_path / "lessons" / "02_lifecycle"
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / "lesson.ipynb")
    execute(notebook, folder, cell_timeout=30, allow_errors=True)
    printed = ["".join(o.get("text", "") for o in cell.outputs) for cell in notebook.cells[1:]]
    assert printed == [
        "classroom: reported exercise 1 passed\n",
        "classroom: your hand is up (stuck)\n",
        "classroom: reported exercise 2 failed\n",
    ]
    seen = [(e["type"], e.get("exercise"), e.get("passed")) for e in store.after(0)]
    assert seen == [("result", 1, True), ("hand", None, None), ("result", 2, False)]
    store.close()


def test_a_broken_secrets_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / ".wslab").mkdir()
    (tmp_path / ".wslab" / "classroom.json").write_text("{not json")
    with pytest.raises(ClassroomError, match=r"cannot keep your name's secret in .*classroom.json"):
        Learner("http://127.0.0.1:9", "CODE", "ada", tmp_path).hand("stuck")
