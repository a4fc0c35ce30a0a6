"""Bad input to every `wslab` command, as an instructor or a learner really types it.

One row per mistake: the command line, and what its one-line answer must say. Each runs as a
process of its own and must answer on stderr in at most three lines (one, today), with exit
status 2, no traceback, and nothing left running: no process that inherited this case's mark
in its environment (Redis, an instance, a proxy, a warm parent) is alive afterwards. Most fail
in argument checks before anything starts; a few meet a real busy port.

A new Python process spends about 0.3 s of CPU importing what `wslab` imports; so the cases
are forked from one process that has imported it once (``DRIVER``), each with its own
standard output and error, exit status and deadline, as `wslab ARGS` in a terminal.

To add a case, add a row. Placeholders in the command line and the pattern:
``{busy}`` is a port taken by this test (``{free}`` the one below it, free: a two-instance
cluster from there meets the busy one second), ``{file}`` an existing file, ``{tmp}`` an
empty folder.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lessons.cli import parser
from lessons.kit import scaled

MARK = "WSLAB_BAD_INPUT_CASE"
COMMANDS = next(
    action.choices
    for action in parser()._actions  # every subcommand, those added later too
    if isinstance(action, argparse._SubParsersAction)
)
LESSONS = r"the lessons are: 01_echo, 02_lifecycle, .*, 06_deploy"


@dataclass(frozen=True)
class Case:
    command: str  # after `wslab`, with the placeholders above
    says: str  # a regular expression the answer matches
    env: tuple[tuple[str, str], ...] = ()  # set in the command's environment


CASES = [
    # serve: names, ports, hosts, log levels
    Case("serve nope", rf"unknown lesson 'nope'; {LESSONS}$"),
    Case("serve", r"the following arguments are required: lesson"),
    Case("serve capstone", r"capstone is a notebook, not a lesson: wslab open capstone$"),
    Case(
        "serve 01 --port 99999", r"argument --port: 99999 is not a port: ports go from 0 .* 65535"
    ),
    Case("serve 01 --port 65536", r"argument --port: 65536 is not a port"),
    Case("serve 01 --port -1", r"argument --port: -1 is not a port"),
    Case("serve 01 --port eighty", r"argument --port: 'eighty' is not a port number"),
    Case(
        "serve 01 --log-level loud",
        r"unknown log level 'loud': uvicorn's are critical, error, warning, info, debug, trace",
    ),
    Case("serve 01 --host no-such-host.invalid", r"cannot resolve host 'no-such-host\.invalid'"),
    Case("serve 01 --host 192.0.2.1", r"cannot listen on 192\.0\.2\.1:8000: "),
    Case("serve 01 --port {busy}", r"cannot listen on 127\.0\.0\.1:{busy}: Address already in use"),
    Case("serve 03 --app nosuch", r"lesson 03_manager has no app nosuch\.py; its apps: app, board"),
    # serve: several processes, proxies
    Case(
        "serve 01 --instances 2", r"--instances 2: lesson 01_echo's app\.py has no rooms to share"
    ),
    Case("serve 02 --proxy caddy", r"--proxy caddy: lesson 02_lifecycle's app\.py has no rooms"),
    Case("serve 06 --app pitfall_idle_timeout", r"served behind caddy: .* has no rooms"),
    Case("serve 05 --instances 0", r"argument --instances: must be between 1 and 16, not 0"),
    Case("serve 05 --instances 99", r"argument --instances: must be between 1 and 16, not 99"),
    Case("serve 05 --instances two", r"argument --instances: 'two' is not a whole number"),
    Case("serve 05 --instances 2 --port 65535", r"need ports up to 65536, past the last port"),
    Case(
        "serve 05 --instances 2 --port {free}",
        r"cannot listen on 127\.0\.0\.1:{busy}: Address already in use",
    ),
    Case("serve 06 --port {busy}", r"cannot listen on 127\.0\.0\.1:{busy}: Address already in use"),
    Case("serve 06 --proxy apache", r"argument --proxy: invalid choice: 'apache'"),
    # serve: what started is stopped when the rest cannot start
    Case(
        "serve 05 --instances 2 --port 0",
        r"no Redis answers at REDIS_URL=redis://127\.0\.0\.1:1/0",
        env=(("REDIS_URL", "redis://127.0.0.1:1/0"),),
    ),
    Case(
        "serve 05 --instances 2 --port 0",  # Redis and the other instance are stopped
        r"app\.py did not start .*: ValueError: could not convert string to float: 'fast'",
        env=(("RATE", "fast"),),
    ),
    Case(
        "serve 05 --port 0",
        r"app\.py cannot be loaded: ValueError: could not convert string to float: 'fast'",
        env=(("RATE", "fast"),),
    ),
    Case("serve 01 --prot 8001", r"unrecognized arguments: --prot 8001"),
    # notebooks: run, open, check, student, book
    Case(
        "run nope",
        rf"unknown lesson or notebook 'nope'; {LESSONS}; the notebooks: start, capstone, "
        "capstone2, testing",
    ),
    Case("run missing.ipynb", r"no notebook file 'missing\.ipynb'"),
    Case("run 01 --cell-timeout 0", r"must be a positive number of seconds, not 0"),
    Case("open nope", r"unknown lesson or notebook 'nope'"),
    Case("open 01 --dir {file}", r"argument --dir: .*file\.txt is a file, not a folder"),
    Case("open 01 --port 70000", r"argument --port: 70000 is not a port"),
    Case("check nope", r"unknown lesson or notebook 'nope'"),
    Case("check 01 --dir {file}", r"--dir .*file\.txt: a file, not the folder of a learner copy"),
    Case("check capstone --dir {tmp}", r"no learner notebook at .*capstone_1_board\.ipynb"),
    Case("student {file}", r"argument dir: .*file\.txt is a file, not a folder"),
    Case("student {file}/inside", r"argument dir: .*file\.txt is a file, not a folder"),
    Case("student {tmp} --lesson nope", r"unknown lesson or notebook 'nope'"),
    Case("book {file}", r"argument dir: .*file\.txt is a file, not a folder"),
    Case("book {tmp} --cell-timeout -5", r"must be a positive number of seconds, not -5"),
    # bench
    Case("bench --clients 100000", r"clients must be between 1 and 500, not 100000"),
    Case("bench --clients many", r"argument --clients: invalid int value: 'many'"),
    Case("bench --size 0", r"size must be between 1 and 1000000, not 0"),
    Case("bench --timeout 600", r"timeout must be in \(0, 60\.0\] seconds, not 600"),
    Case("bench --plot {tmp}/bench.txt", r"the file name must end with \.png or \.svg or \.pdf"),
    Case("bench --plot {file}/bench.png", r"file\.txt is a file, not a folder"),
    Case("bench --capacity --implementations", r"not allowed with argument --capacity"),
    Case("bench --capacity --plot {tmp}/b.png", r"--plot is for the fan-out benchmark"),
    # classroom, hand, drift
    Case("classroom --port 70000", r"argument --port: 70000 is not a port"),
    Case("classroom --log-level chatty", r"unknown log level 'chatty'"),
    Case("classroom --quiet 0", r"argument --quiet: must be a positive number"),
    Case(
        "classroom --port {busy} --data {tmp}/room.sqlite3", r"port {busy} is in use|cannot listen"
    ),
    Case("hand stuck", r"--report, --code and --name say which classroom"),
    Case("hand maybe", r"argument kind: invalid choice: 'maybe'"),
    Case("hand done --report ftp://x --code C --name ada", r"--report takes the classroom's http"),
    Case(
        "check 01 --report http://127.0.0.1:9 --code C", r"--report, --code and --name go together"
    ),
    Case("drift --with 'uvicorn=>0.54'", r"is not a requirement"),
    # the command itself
    Case("serv 01", r"argument COMMAND: invalid choice: 'serv'"),
    Case("", r"the following arguments are required: COMMAND"),
    Case("list everything", r"unrecognized arguments: everything"),
]


def free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def busy() -> Iterator[int]:
    """A loopback port this test listens on, whose port below is free."""
    for _ in range(50):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        if free(taken.getsockname()[1] - 1):
            break
        taken.close()
    else:
        pytest.fail("no busy port with a free one below it")
    with taken:
        taken.listen()
        yield taken.getsockname()[1]


def marked(mark: str) -> list[int]:
    """Processes whose environment carries ``MARK=mark``: started for that case."""
    wanted = f"{MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environment = (entry / "environ").read_bytes().split(b"\0")
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if wanted in environment:
                found.append(int(entry.name))
    return found


def left_running(mark: str, timeout: float = 2.0) -> list[int]:
    """The case's processes still alive after ``timeout`` s (none should be left at all)."""
    deadline = time.monotonic() + scaled(timeout)
    while (found := marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.05)  # processes of another session: nothing to wait on
    return found


# Reads one case a line (JSON: argv, environment, output files, seconds), forks a process that runs
# `wslab ARGV` with its stdout and stderr in those files, and answers its exit status (or
# "timeout", after killing it).
DRIVER = """
import atexit, json, os, signal, sys, time, traceback
from lessons.cli import main, parser
import lessons.bench.bench, lessons.course.book, lessons.course.exercises  # the commands import
parser()  # and every command's module
for line in sys.stdin:
    case = json.loads(line)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        for fd, name in ((1, "out"), (2, "err")):
            os.dup2(os.open(case[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        os.environ.update(case["env"])
        try:
            status = main(case["argv"])
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else 1
        except BaseException:
            traceback.print_exc()
            status = 1
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    deadline = time.monotonic() + case["seconds"]
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print(json.dumps("timeout"), flush=True)
    else:
        print(json.dumps(os.waitstatus_to_exitcode(done[1])), flush=True)
"""


@dataclass
class Answer:
    status: int | str
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def wslab() -> Iterator[Callable[[list[str], dict[str, str], Path], Answer]]:
    """``wslab(argv, env, folder)``: `wslab ARGV` as a process of its own, forked from the
    driver, with ``env`` added to its environment; its output kept in ``folder``."""
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert driver.stdin is not None and driver.stdout is not None

    def run(argv: list[str], env: dict[str, str], folder: Path) -> Answer:
        assert driver.stdin is not None and driver.stdout is not None
        out, err = folder / "stdout", folder / "stderr"
        case = {"argv": argv, "env": env, "seconds": scaled(30)}
        driver.stdin.write(json.dumps({**case, "out": str(out), "err": str(err)}) + "\n")
        driver.stdin.flush()
        status = json.loads(driver.stdout.readline())
        return Answer(status, out.read_text(), err.read_text())

    try:
        yield run
    finally:
        driver.stdin.close()
        driver.wait(scaled(10))
        driver.stdout.close()


@pytest.mark.parametrize(
    "case",
    CASES,
    ids=lambda case: " ".join([*(f"{k}={v}" for k, v in case.env), case.command]) or "(nothing)",
)
def test_bad_input_is_answered_in_one_line_with_status_2_and_nothing_left(
    case: Case,
    busy: int,
    tmp_path: Path,
    wslab: Callable[[list[str], dict[str, str], Path], Answer],
) -> None:
    (tmp_path / "file.txt").write_text("not a folder\n")
    (tmp_path / "empty").mkdir()
    values = {
        "{busy}": str(busy),
        "{free}": str(busy - 1),
        "{file}": str(tmp_path / "file.txt"),
        "{tmp}": str(tmp_path / "empty"),
    }

    def filled(text: str) -> str:
        for name, value in values.items():
            text = text.replace(name, value)
        return text

    mark = f"{os.getpid()}-{tmp_path.name}"
    started = time.monotonic()
    result = wslab(shlex.split(filled(case.command)), {**dict(case.env), MARK: mark}, tmp_path)
    answer = result.stdout + result.stderr
    assert result.status == 2, answer
    assert "Traceback" not in answer, answer
    assert result.stdout == "" and 1 <= len(result.stderr.splitlines()) <= 3, answer
    assert re.search(filled(case.says), result.stderr), answer
    command = case.command.split()[0] if case.command else ""
    prefix = f"wslab {command}: error: " if command in COMMANDS else "wslab: error: "
    assert result.stderr.startswith(prefix), answer
    assert not left_running(mark), f"left running after `wslab {case.command}`"
    assert time.monotonic() - started < scaled(20), "it started something before refusing"


def test_the_table_covers_every_command() -> None:
    covered = {case.command.split()[0] for case in CASES if case.command}
    assert set(COMMANDS) <= covered and len(CASES) >= 25
