"""An expected failure is shown in two lines, in every editor: ``shows_error``.

A cell that demonstrates an exception prints what was raised and the line of the lesson's
file it came from, instead of a traceback hundreds of frames long, and does not fail, so
"Run All" goes on in JupyterLab, VS Code and the headless runner alike.
"""

from __future__ import annotations

import asyncio

import pytest
from starlette.testclient import TestClient

from lessons import find
from lessons.kit import shows_error


def test_an_app_error_is_two_lines_naming_the_lessons_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lesson = find("01")
    with shows_error(KeyError) as shown, TestClient(lesson.app("pitfall_missing_field")) as client:
        with client.websocket_connect("/ws") as ws:
            ws.send_text('{"txt": "typo"}')
            ws.receive_text()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "raised: KeyError: 'text'"
    assert printed[1].startswith("  raised at pitfall_missing_field.py, line ")
    assert 'message["text"]' in printed[1]
    assert len(printed) == 2
    assert isinstance(shown.error, KeyError)


def test_an_error_from_a_task_group_is_unwrapped(capsys: pytest.CaptureFixture[str]) -> None:
    async def broadcast() -> None:
        connections = {"a", "b"}
        for connection in connections:
            connections.discard(connection)

    async def demo() -> None:
        async with shows_error(RuntimeError), asyncio.TaskGroup() as group:
            group.create_task(broadcast())

    asyncio.run(demo())
    [first, where] = capsys.readouterr().out.splitlines()
    assert first == "raised: RuntimeError: Set changed size during iteration"
    assert "test_shows_error.py" in where


def test_an_unexpected_error_goes_through_and_no_error_is_a_failure() -> None:
    with pytest.raises(ValueError), shows_error(KeyError):
        raise ValueError("not the lesson's error")
    with pytest.raises(AssertionError, match="nothing was raised"), shows_error():
        pass
