"""What a process has left running: threads, child processes, listening sockets.

Tests take a snapshot before and after; anything new afterwards is a leak. Linux's
/proc gives the exact answer for this process and its children; elsewhere only
threads are compared.

Why not psutil: its equivalent of ``snapshot()`` (``children(recursive=True)`` and
``net_connections("tcp")``, which reads every process's descriptors) took 83 ms against
0.2 ms here (medians of 20, 117 processes on the machine, load 14), and the suite takes
two or more per test; nor does it report a socket's unsent bytes, which ``connections``
reads from the kernel (sock_diag, as ``ss`` does).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

from lessons.kit.forkserver import helper
from lessons.kit.timing import scaled

PROC = Path("/proc")


@dataclass(frozen=True)
class Snapshot:
    threads: frozenset[threading.Thread]
    children: dict[int, int]  # descendant pid -> its parent's pid
    listening: dict[int, int]  # listening port -> the pid that holds it

    def leaks_since(self, before: Snapshot) -> list[str]:
        """Readable descriptions of what is here now and was not ``before``.

        A new process under a process that was already running (a browser's helper
        processes, or JupyterLab's kernel, started lazily) belongs to that older process,
        not to the test; so do the sockets they listen on, as do those an older process
        opens itself (a kernel that binds its ports after the snapshot).
        """
        found = [f"thread {t.name!r}" for t in self.threads - before.threads]
        # multiprocessing's forkserver and resource tracker live as long as this process;
        # what the forkserver forks does not
        warm = {pid for pid, ppid in self.children.items() if ppid == os.getpid() and helper(pid)}
        new = self.children.keys() - before.children.keys() - warm
        theirs = {pid for pid in new if self._descends_from(pid, before.children.keys() - warm)}
        found += [f"child process {pid}: {_command(pid)}" for pid in new - theirs]
        mine = {os.getpid(), *(new - theirs)}
        found += [
            f"listening socket on port {port}"
            for port, pid in self.listening.items()
            if port not in before.listening and pid in mine
        ]
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
        return Snapshot(threads, {}, {})
    children = _children(os.getpid())
    owners = {inode: pid for pid in (os.getpid(), *children) for inode in _socket_inodes(pid)}
    return Snapshot(threads, children, _listening_ports(owners))


def settle(before: Snapshot, timeout: float = 3.0) -> list[str]:
    """The leaks since ``before``, after giving new threads ``timeout`` to finish."""
    now = snapshot()
    if not now.threads - before.threads:
        return now.leaks_since(before)
    for thread in now.threads - before.threads:
        thread.join(scaled(timeout))
    return snapshot().leaks_since(before)


def _children(root: int) -> dict[int, int]:
    """Every live descendant of ``root``, mapped to its parent.

    Read down the tree from ``root`` (each thread's ``children`` file), in proportion to the
    descendants rather than to every process on the machine: a test suite takes two
    snapshots per test. Without those files (a kernel built without them), every
    process's parent is read instead.
    """
    children_of: Callable[[int], list[int]] = _direct_children
    if not (PROC / str(root) / "task" / str(root) / "children").exists():
        children_of = functools.partial(_children_in, _live_parents())
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for child in children_of(parent):
            if child not in found:
                found[child] = parent
                frontier.append(child)
    return found


def _direct_children(pid: int) -> list[int]:
    children: list[int] = []
    with contextlib.suppress(OSError):  # it ended meanwhile: no children to read
        for task in (PROC / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError):
                children += map(int, (task / "children").read_text().split())
    return [child for child in children if alive(child)]


def _children_in(parents: dict[int, int], parent: int) -> list[int]:
    return [pid for pid, ppid in parents.items() if ppid == parent]


def _live_parents() -> dict[int, int]:
    """Every live process on this machine, mapped to its parent."""
    parents = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> set[int]:
    """Every live process started by ``pid``, by its children, and so on."""
    return set(_children(pid))


def alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def listening_anywhere(port: int) -> bool:
    """True if any process on this host listens on TCP ``port``."""
    return any(socket_.local_port == port for socket_, _ in _tcp_sockets(_LISTEN))


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


@dataclass(frozen=True)
class Connection:
    """One TCP socket a process holds: its ports, its state, the bytes it has not sent."""

    local_port: int
    remote_port: int
    state: str  # "ESTABLISHED", "LISTEN", "CLOSE_WAIT", ...
    unsent: int


# TCP states by their number in the kernel (include/net/tcp_states.h), as /proc shows them.
_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}  # fmt: skip
_LISTEN = 1 << 10  # state masks, as sock_diag takes them
_HELD = sum(1 << state for state in _STATES) & ~(1 << 6)  # every state but TIME_WAIT
_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY, _DUMP, _DONE, _ERROR = 4, 20, 0x301, 3, 2


def _tcp_sockets(states: int) -> list[tuple[Connection, str]]:
    """This host's TCP sockets (IPv4 and IPv6) in ``states`` (a mask of state numbers), each
    with its inode.

    Asked of the kernel over netlink (sock_diag, as ``ss`` does), which filters by state:
    reading /proc/net/tcp costs in proportion to every socket the suite has closed and
    the kernel still remembers (thousands in TIME_WAIT), for every snapshot."""
    try:
        return [*_diag(socket.AF_INET, states), *_diag(socket.AF_INET6, states)]
    except (OSError, AttributeError):  # no netlink here (a sandbox, not Linux): /proc
        return list(_proc_rows(states))


def _diag(family: int, states: int) -> Iterator[tuple[Connection, str]]:
    # struct inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed sockid.
    request = struct.pack("=BBBxI", family, socket.IPPROTO_TCP, 0, states) + bytes(48)
    header = struct.pack("=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, _DUMP, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as nl:
        nl.sendall(header + request)
        while True:
            data, offset = nl.recv(1 << 16), 0
            while offset < len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == _DONE:
                    return
                if kind == _ERROR:
                    raise OSError("sock_diag refused the request")
                # struct inet_diag_msg: family, state, timer, retrans, sockid (sport and
                # dport big-endian, addresses, interface, cookie), expires, rqueue, wqueue,
                # uid, inode.
                state = _STATES[data[offset + 17]]
                sport, dport = struct.unpack_from(">HH", data, offset + 20)
                _, _, unsent, _, inode = struct.unpack_from("=5I", data, offset + 68)
                if state == "LISTEN":  # its wqueue is its backlog: /proc shows 0 unsent
                    unsent = 0
                yield Connection(sport, dport, state, unsent), str(inode)
                offset += (length + 3) & ~3


def _proc_rows(states: int) -> Iterator[tuple[Connection, str]]:
    for table in ("tcp", "tcp6"):
        try:
            rows = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            state = int(fields[3], 16)
            if states & (1 << state):
                unsent = int(fields[4].split(":")[0], 16)
                connection = Connection(_port(fields[1]), _port(fields[2]), _STATES[state], unsent)
                yield connection, fields[9]


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def _listening_ports(owners: dict[str, int]) -> dict[int, int]:
    """The TCP ports listened on by sockets of ``owners`` (inode -> pid), with their pid."""
    return {
        socket_.local_port: owners[inode]
        for socket_, inode in _tcp_sockets(_LISTEN)
        if inode in owners
    }


def connections(pid: int) -> list[Connection]:
    """Every TCP socket process ``pid`` holds open, as ``ss -tp`` would list it (Linux)."""
    inodes = _socket_inodes(pid)
    return [socket_ for socket_, inode in _tcp_sockets(_HELD) if inode in inodes]


def holds_peer(pid: int, remote_port: int) -> bool:
    """True while process ``pid`` holds a socket connected to ``remote_port``."""
    return any(c.remote_port == remote_port for c in connections(pid))


def rss(pid: int) -> int:
    """The resident memory of process ``pid`` in bytes (0 if it is gone)."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match[1]) * 1024 if match else 0
