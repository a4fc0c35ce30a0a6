"""``wslab open``: the learner's own copy of the course, opened in JupyterLab.

The package's notebooks stay as they ship: JupyterLab saves a notebook every two minutes,
with its outputs and whatever the learner typed, and that belongs in the learner's copy,
not in the checkout. ``wslab open 01`` makes the copy (or reuses it: a file already there
is never overwritten) and starts JupyterLab on it with this interpreter, so the kernel is
the project's environment. JupyterLab's settings, workspace, kernel spec and log for the
copy live in its ``.wslab/`` folder; the "Jupyter news" pop-up is off. Ctrl-C, SIGTERM and
SIGHUP stop JupyterLab cleanly: it shuts its kernels down, and each kernel stops every
server the notebook started.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

from lessons import WORKBOOK_DIR
from lessons.cli import command, notebook_named, output_dir, port
from lessons.cli.classroom import add_report_options, kernel_options, report_from_notebooks
from lessons.course.versions import unpinned
from lessons.kit.cleanup import SHUTDOWN_SECONDS, end_process, stop_signals_interrupt
from lessons.kit.timing import scaled

WORK_DIR = "wslab-work"
STATE_DIR = ".wslab"
START = WORKBOOK_DIR / "00_start_here.ipynb"
# JupyterLab's own settings: never ask about, nor fetch, news and updates.
SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}
}
URL = re.compile(r"http://127\.0\.0\.1:\d+/lab\?token=\w+")
PR_SET_PDEATHSIG = 1  # Linux prctl(2): the signal a process gets when its parent ends


def lab_environment(state: Path) -> dict[str, str]:
    """The environment JupyterLab runs in: this interpreter's kernel as ``python3``, and
    settings, workspaces and kernel spec in ``state`` (created here)."""
    for name, values in SETTINGS.items():
        path = state / "settings" / f"{name}.jupyterlab-settings"
        if not path.exists():  # the learner may change them later in Settings
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    kernel = state / "jupyter" / "kernels" / "python3" / "kernel.json"
    kernel.parent.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            *kernel_options(),
        ],
        "display_name": "Python 3 (wslab)",
        "language": "python",
    }
    kernel.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    jupyter_path = [str(state / "jupyter"), *filter(None, [os.environ.get("JUPYTER_PATH")])]
    return {
        **os.environ,
        "JUPYTER_PATH": os.pathsep.join(jupyter_path),
        "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
        "PYTHONUNBUFFERED": "1",
    }


# `jupyter lab`, after `import lessons`: that spares JupyterLab 2 s of start (lessons/__init__.py
# says why).
LAB_MAIN = "import sys, lessons, jupyterlab.labapp as lab; sys.exit(lab.main())"


class JupyterLab:
    """``jupyter lab`` on ``root``, its output in a log file, stopped cleanly."""

    def __init__(self, root: Path, port: int | None) -> None:
        self.root = root
        self.state = root / STATE_DIR
        self.state.mkdir(exist_ok=True)
        self.log_path = self.state / "jupyterlab.log"
        self.command = [
            sys.executable, "-c", LAB_MAIN,
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.root_dir={root}",
            # Time for a kernel that restarts or shuts down to stop the notebook's servers.
            f"--KernelManager.shutdown_wait_time={SHUTDOWN_SECONDS}",
        ] + ([f"--ServerApp.port={port}"] if port is not None else [])  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers often run as root
            self.command.append("--ServerApp.allow_root=True")
        self.url: str | None = None
        self._found = threading.Event()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        env = lab_environment(self.state)
        log = self.log_path.open("w", encoding="utf-8")
        # Its own session: a Ctrl-C in the terminal reaches only wslab, which stops
        # JupyterLab with SIGTERM (its clean shutdown) instead of interrupting it.
        self._process = subprocess.Popen(
            self.command,
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_terminated_with_parent(),  # no other thread runs yet
        )
        self._reader = threading.Thread(target=self._read, args=(log,), daemon=True)
        self._reader.start()

    def _read(self, log: IO[str]) -> None:
        assert self._process is not None and self._process.stdout is not None
        with log:
            for line in self._process.stdout:
                log.write(line)
                log.flush()
                found = URL.search(line)
                if found and self.url is None:
                    self.url = found[0]
                    self._found.set()
        self._found.set()

    def wait_for_url(self, timeout: float) -> str | None:
        """The URL with its token, once JupyterLab accepts connections; None if it ended or
        did not get there within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        self._found.wait(timeout)
        if self.url is None:
            return None
        # JupyterLab prints its URL just before its event loop binds the port: nothing
        # tells when that is done, so try to connect until it answers.
        address = urlsplit(self.url)
        while not _accepts(address.hostname or "", address.port or 0):
            if self._process is None or self._process.poll() is not None:
                return None
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        return self.url

    def page(self, notebook: Path) -> str:
        """The URL that opens ``notebook`` (a path inside the copy) in this JupyterLab."""
        assert self.url is not None
        parts = urlsplit(self.url)
        path = quote(notebook.relative_to(self.root).as_posix())
        return f"{parts.scheme}://{parts.netloc}/lab/tree/{path}?{parts.query}"

    def wait(self) -> int:
        assert self._process is not None
        return self._process.wait()

    def stop(self, timeout: float) -> int | None:
        """SIGTERM: JupyterLab shuts every kernel down, then exits. SIGKILL after ``timeout``."""
        if self._process is None:
            return None
        status = end_process(self._process, timeout=timeout)
        if self._reader is not None:  # its output ends with it (and with its kernels)
            self._reader.join(scaled(timeout))
        return status

    def tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join("  " + line for line in text[-lines:])


def _terminated_with_parent() -> Callable[[], None] | None:
    """On Linux, a function for the child to run before it starts: it gets SIGTERM when
    wslab ends, even by SIGKILL, so that JupyterLab never outlives it."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def arrange() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # wslab ended before that took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return arrange


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _say(text: str) -> None:
    """Print, even when the terminal has gone away (SIGHUP)."""
    try:
        print(text, flush=True)
    except OSError:
        pass


def cmd_open(args: argparse.Namespace) -> int:
    from lessons.course.exercises import learner_path, working_copy

    root = Path(args.dir).resolve()
    notebook = learner_path(root, notebook_named(args.lesson) if args.lesson else START)
    report_from_notebooks(args, root)
    written = working_copy(root)
    if written:
        print(f"wslab: wrote {len(written)} notebooks (without outputs) to {root}")
    print(f"wslab: your working copy is {root}: files already there are never overwritten")
    print(f"  {notebook.relative_to(root)}")
    differ = unpinned()
    if differ:  # the lessons' outputs were written on the pinned releases
        print(f"wslab: not the releases the course pins: {', '.join(differ)}")
        print('  to see what the lessons show: pip install -c constraints.txt -e ".[dev]"')
    if args.no_lab:
        return 0
    lab = JupyterLab(root, args.port)
    with stop_signals_interrupt():  # Ctrl-C, SIGTERM or SIGHUP: KeyboardInterrupt, once
        try:
            lab.start()
            url = lab.wait_for_url(scaled(90))
            if url is None:
                _say(f"wslab: JupyterLab did not start; the end of {lab.log_path}:\n{lab.tail()}")
                lab.stop(10)
                return 1
            page = lab.page(notebook)
            _say(f"wslab: JupyterLab is serving your copy (its log: {lab.log_path})")
            _say(f"  open {page}")
            _say("  press Ctrl-C to stop JupyterLab and every server the notebooks started")
            if args.browser:
                webbrowser.open(page)
            status = lab.wait()
            _say(f"wslab: JupyterLab stopped (exit status {status})")
            return 0 if status == 0 else 1
        except KeyboardInterrupt as stop:
            _say(f"wslab: {stop}: stopping JupyterLab; its kernels stop their servers first…")
            lab.stop(30)
            _say("wslab: stopped")
            return 0


def add(commands: Any) -> None:
    opener = command(
        commands,
        "open",
        "copy the course for you to work in, and open a lesson in JupyterLab",
        "wslab open 01 --browser",
    )
    opener.add_argument(
        "lesson",
        nargs="?",
        help="01, echo, 01_echo, capstone, capstone2 or testing (default: the start-here notebook)",
    )
    opener.add_argument("--dir", type=output_dir, default=WORK_DIR, help="your working copy")
    opener.add_argument(
        "--port", type=port, help="JupyterLab's port (default: 8888 or the next free port)"
    )
    opener.add_argument("--browser", action="store_true", help="also open it in your web browser")
    opener.add_argument("--no-lab", action="store_true", help="only make the copy")
    add_report_options(opener)
    opener.set_defaults(handler=cmd_open)
