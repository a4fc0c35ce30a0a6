"""Classroom mode as the room uses it: ``wslab classroom`` in its own process (its three
lines, its stop signals, its file), three learners' ``wslab check --report`` seen on the
instructor's page in Chromium, and 40 learners reporting at once across a restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from lessons.classroom import app as classroom_app
from lessons.classroom.app import DATA_ENV
from lessons.classroom.client import Learner
from lessons.classroom.store import Store
from lessons.cli import main
from lessons.kit import scaled
from lessons.kit.forkserver import ENABLE as ENABLE_FORK_SERVER
from lessons.kit.leaks import listening_anywhere

WSLAB = [sys.executable, "-m", "lessons"]
CROWD = 40
APP = classroom_app.__file__


def spawn(*args: str) -> subprocess.Popen[str]:
    """``wslab ARGS`` in its own process, as a user starts it."""
    return subprocess.Popen(
        [*WSLAB, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, ENABLE_FORK_SERVER: "0"},
    )


@contextmanager
def classroom(data: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """``wslab classroom --port 0 --data DATA``, once it printed its three lines (returned as
    a dict); killed on the way out if it is still running."""
    with spawn("classroom", "--port", "0", "--data", str(data)) as process:  # then waited
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline().rstrip("\n") for _ in range(3)]
            yield process, dict(line.split(": ", 1) for line in lines)
        finally:
            if process.poll() is None:
                process.kill()


def test_the_command_prints_three_lines_stops_on_every_signal_and_keeps_its_file(
    tmp_path: Path,
) -> None:
    data, seen = tmp_path / "room.sqlite3", []
    for sig in [signal.SIGTERM, signal.SIGHUP]:  # Ctrl-C (SIGINT): below, after three checks
        with classroom(data) as (process, printed):
            assert list(printed) == ["join code", "learners", "instructor"]
            learners, instructor = printed["learners"], printed["instructor"]
            assert instructor.startswith(learners + "instructor#"), printed
            port = int(learners.rsplit(":", 1)[1].strip("/"))
            assert httpx.get(learners, timeout=scaled(5)).json()["classroom"] == "wslab"
            seen.append((printed["join code"], instructor.split("#")[1]))
            process.send_signal(sig)
            output, _ = process.communicate(timeout=scaled(10))
        assert (process.returncode, output) == (0, "wslab: stopped\n"), sig
        assert not listening_anywhere(port)
    assert len(set(seen)) == 1, "a classroom on the same file has the same code and secret"


def learner_copy(root: Path, answers: list[bool]) -> Path:
    """A working copy whose lesson 01 has three exercises, passing as ``answers`` say: a
    notebook of four tiny cells, so that ``wslab check`` runs it in a second."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(f"answers = {answers!r}")] + [
        nbformat.v4.new_code_cell(
            f"assert answers[{n}], 'exercise {n + 1} differs'",
            metadata={"tags": ["check"], "wslab": {"hint": f"hint {n + 1}"}},
        )
        for n in range(3)
    ]
    path = root / "lessons" / "01_echo" / "lesson.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(notebook, path)
    return root


def test_a_wrong_code_still_prints_the_local_result_then_one_line_and_status_2(
    tmp_path: Path, serve: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with contextlib.closing(Store(tmp_path / "room.sqlite3")) as store:
        url = serve(classroom_app.create_app(store)).http_url
        copy = learner_copy(tmp_path / "eve", [True, False, True])
        args = ["--dir", str(copy), "--report", url, "--code", "WRONG", "--name", "eve"]
        assert main(["check", "01", *args]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "2 passed, 1 failed"  # the local result, as without --report
    assert err == "wslab: classroom: the classroom refused: wrong join code\n"


# The browser tests come last: while Playwright's sync API is open, no asyncio.run can run
# on this thread (the learners below run in a thread of their own).


@pytest.mark.browser
def test_three_learners_check_and_the_page_shows_three_rows(
    tmp_path: Path, new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    rooms = {"ada": [True, True, False], "alan": [True, False, False], "grace": [True] * 3}
    with classroom(tmp_path / "room.sqlite3") as (process, printed):
        page = new_page()
        page.goto(printed["instructor"])
        expect(page.locator("#status")).to_contain_text("connected")
        report = ["--report", printed["learners"], "--code", printed["join code"]]
        checks = {
            name: spawn("check", "01", "--dir", str(learner_copy(tmp_path / name, answers)),
                        *report, "--name", name)
            for name, answers in rooms.items()
        }  # fmt: skip
        outputs = {name: check.communicate(timeout=scaled(60)) for name, check in checks.items()}
        expect(page.locator("#grid tbody tr")).to_have_count(3)
        for name, answers in rooms.items():
            assert checks[name].returncode == (0 if all(answers) else 1), outputs[name]
            assert outputs[name][0].endswith(f"reported to the classroom as {name}\n")
            cells = page.locator(f'tr[data-learner="{name}"] td')
            expect(cells).to_have_count(4)
            for n, passed in enumerate(answers, start=1):
                expect(cells.nth(n)).to_have_class("pass" if passed else "fail")
        expect(page.locator("#grid tfoot td")).to_have_text(["passed", "3/3", "2/3", "1/3"])
        expect(cells.nth(1)).not_to_have_attribute("title", "hint 1")  # hints on failures only
        expect(page.locator('tr[data-learner="ada"] td').nth(3)).to_have_attribute(
            "title", "hint 3"
        )
        process.send_signal(signal.SIGINT)
        assert process.communicate(timeout=scaled(10))[0] == "wslab: stopped\n"
        assert process.returncode == 0


def crowd(
    url: str, code: str, home: Path, messages: Callable[[int], list[Any]]
) -> dict[int, float]:
    """CROWD learners report at once, learner i sending ``messages(i)`` on one connection;
    returns, for each stored event id, when (unix time) its learner started reporting."""

    async def learner(i: int) -> dict[int, float]:
        started = time.time()
        ids = await Learner(url, code, f"learner {i:02}", home / str(i)).send(messages(i))
        return dict.fromkeys(ids, started)

    async def everyone() -> list[dict[int, float]]:
        return await asyncio.gather(*(learner(i) for i in range(CROWD)))

    with ThreadPoolExecutor(1) as pool:
        started = pool.submit(asyncio.run, everyone()).result(scaled(30))
    return {event: when for one in started for event, when in one.items()}


def result(exercise: int, passed: bool) -> dict[str, Any]:
    return {"type": "result", "lesson": "01_echo", "exercise": exercise, "passed": passed,
            "hint": f"hint {exercise}"}  # fmt: skip


PASSES = {1: lambda i: i % 3 != 0, 2: lambda i: i % 2 == 0, 3: lambda i: i % 5 != 0}


@pytest.mark.browser
def test_forty_learners_at_once_across_a_restart_each_shown_once(
    tmp_path: Path, new_page: Callable[[], Any], capsys: pytest.CaptureFixture[str], serve_file
) -> None:
    from playwright.sync_api import expect

    data = tmp_path / "room.sqlite3"
    with contextlib.closing(Store(data)) as store:  # zed reported an hour ago, nothing since
        store.claim("zed", Learner("", store.code, "zed", tmp_path).secret(), most=1)
        old = store.add("result", "zed", lesson="01_echo", exercise=1, passed=False, hint="")
        store.db.execute("UPDATE events SET body = json_set(body, '$.at', ?) WHERE id = ?",
                         (time.time() - 3600, old["id"]))  # fmt: skip
    # The classroom in its own process, as in a room: the learners' side is this one.
    server = serve_file(
        f"{APP}:from_environment", env={DATA_ENV: str(data)}, factory=True, log_level="warning"
    )
    store = Store(data)  # a reader beside the server, as a second process may be (SQLite WAL)
    try:
        wrong = new_page()
        wrong.goto(f"{server.http_url}/instructor#not-the-secret")
        expect(wrong.locator("#status")).to_contain_text("refused")
        page = new_page()
        page.goto(f"{server.http_url}/instructor#{store.instructor_secret}")
        expect(page.locator("#quiet li")).to_have_text(["zed: nothing for 60 min"])

        def first(i: int) -> list[Any]:
            hands = [{"type": "hand", "kind": "stuck"}] if i < CROWD // 2 else []
            return [result(1, PASSES[1](i)), result(2, PASSES[2](i)), *hands]

        started = crowd(server.http_url, store.code, tmp_path, first)
        expect(page.locator("#hands li")).to_have_count(CROWD // 2)
        expect(page.locator("#grid tbody tr")).to_have_count(CROWD + 1)
        arrivals = page.evaluate("Object.fromEntries(window.classroom.arrivals)")
        stored = {event["id"]: event["at"] for event in store.after(0)}
        latencies = {  # per event: from its learner starting to report, from its storing
            "report": sorted(arrivals[str(event)] / 1000 - when for event, when in started.items()),
            "stored": sorted(arrivals[str(event)] / 1000 - stored[event] for event in started),
        }

        server.stop()  # a restart in the middle: the page reconnects and resumes
        server.start()

        def second(i: int) -> list[Any]:
            hands = [{"type": "hand", "kind": "stuck" if i < CROWD // 4 else "done"}]
            return [result(3, PASSES[3](i)), *(hands if i < CROWD // 4 or i >= CROWD // 2 else [])]

        crowd(server.http_url, store.code, tmp_path, second)
        expect(page.locator("#hands li")).to_have_count(CROWD)  # the stuck ones raised once
        expect(page.locator("#grid tfoot td")).to_have_text(
            ["passed"] + [f"{sum(map(PASSES[n], range(CROWD)))}/{CROWD + 1}" for n in PASSES]
        )
        for i in range(CROWD):
            cells = page.locator(f'tr[data-learner="learner {i:02}"] td')
            classes = ["pass" if PASSES[n](i) else "fail" for n in PASSES]
            assert [cells.nth(n).get_attribute("class") for n in PASSES] == classes, i
        hands = [int(h) for h in page.locator("#hands li").evaluate_all(
            "items => items.map((item) => item.dataset.hand)")]  # fmt: skip
        assert hands == sorted(set(hands)), "each hand once, oldest first"
        page.locator("#hands li button").first.click()
        expect(page.locator("#hands li")).to_have_count(CROWD - 1)
        assert not store.hand_is_open(hands[0])
        shown = page.evaluate("[...window.classroom.arrivals.keys()]")
        assert shown == [event["id"] for event in store.after(0)], "every event once, in order"
    finally:
        store.close()
    with capsys.disabled():
        for start, times in latencies.items():
            median, worst = statistics.median(times) * 1000, times[-1] * 1000
            print(f"\nclassroom: {start} -> page: {median:.0f} ms median, {worst:.0f} ms worst")
    assert latencies["stored"][-1] < scaled(1.0), "an event reaches the page within a second"
