"""What a process has left running: threads, child processes, listening sockets.

Tests take a snapshot before and after; anything new afterwards is a leak. Linux's
/proc gives the exact answer for this process and its children; elsewhere only
threads are compared.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

from lessons.kit.timing import scaled

PROC = Path("/proc")


@dataclass(frozen=True)
class Snapshot:
    threads: frozenset[threading.Thread]
    children: dict[int, int]  # descendant pid -> its parent's pid
    listening: frozenset[int]

    def leaks_since(self, before: Snapshot) -> list[str]:
        """Readable descriptions of what is here now and was not ``before``.

        A new process under a process that was already running (a browser's helper
        processes, started lazily) belongs to that older process, not to the test.
        """
        found = [f"thread {t.name!r}" for t in self.threads - before.threads]
        found += [
            f"child process {pid}: {_command(pid)}"
            for pid in self.children.keys() - before.children.keys()
            if not self._descends_from(pid, before.children.keys())
        ]
        found += [f"listening socket on port {port}" for port in self.listening - before.listening]
        return sorted(found)

    def _descends_from(self, pid: int, elders: AbstractSet[int]) -> bool:
        parent = self.children.get(pid)
        while parent in self.children:
            if parent in elders:
                return True
            parent = self.children.get(parent)
        return False


def snapshot() -> Snapshot:
    threads = frozenset(t for t in threading.enumerate() if t.is_alive())
    if not PROC.is_dir():
        return Snapshot(threads, {}, frozenset())
    children = _children(os.getpid())
    inodes = set()
    for pid in (os.getpid(), *children):
        inodes |= _socket_inodes(pid)
    return Snapshot(threads, children, frozenset(_listening_ports(inodes)))


def settle(before: Snapshot, timeout: float = 3.0) -> list[str]:
    """The leaks since ``before``, after giving new threads ``timeout`` to finish."""
    for thread in snapshot().threads - before.threads:
        thread.join(scaled(timeout))
    return snapshot().leaks_since(before)


def _children(root: int) -> dict[int, int]:
    """Every live descendant of ``root``, mapped to its parent."""
    parents = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                found[pid] = ppid
                frontier.append(pid)
    return found


def _command(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return "?"


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        fds = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            match = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
        except OSError:
            continue
        if match:
            inodes.add(match[1])
    return inodes


def _listening_ports(inodes: set[str]) -> set[int]:
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def descendants(pid: int) -> set[int]:
    """Every live process under ``pid`` (children, their children, ...) right now."""
    return set(_children(pid)) if PROC.is_dir() else set()


def alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie, dead but not yet reaped, is not alive)."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
