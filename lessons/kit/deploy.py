"""A TLS context for clients of a server behind a proxy with its own CA (Caddy's): lesson
06's experiments and tests and the capacity benchmark use it."""

from __future__ import annotations

import ssl
from pathlib import Path


def tls(ca_file: str | Path | None) -> ssl.SSLContext | None:
    """A TLS context trusting ``ca_file`` (None: no TLS options, for ws:// URLs)."""
    return None if ca_file is None else ssl.create_default_context(cafile=str(ca_file))
