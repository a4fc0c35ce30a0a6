"""What the course says a library does, by version: the claims a release can change.

Each ``Claim`` names one behaviour of one package (uvicorn, websockets, Starlette, redis-py,
...), what each known range of its versions does, the versions that behaviour was seen on,
and the test that proves it. docs/versions.md is the catalogue a maintainer reads; a test
keeps it equal to ``CLAIMS``.

- A test observes the behaviour on the installed version and calls ``claim.expect(seen)``:
  it passes when ``seen`` is what that version's range does, and fails, naming the claim to
  re-check, when the installed version is in no known range (a release newer than any the
  course was checked on) or behaves otherwise.
- A notebook cell prints ``claim.verdict(seen)``: which of the known behaviours the
  learner's own install shows, so the prose around it can teach every range.
- With ``WSLAB_CLAIMS_REPORT=FILE`` set, every ``expect`` also appends what it saw to FILE
  (one JSON line), which ``wslab drift`` reads to compare two installs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from lessons.kit.probes import DENIAL_LOGS, DENIAL_QUIET

REPORT = "WSLAB_CLAIMS_REPORT"
PINS = Path(__file__).resolve().parents[2] / "constraints.txt"


def installed(package: str) -> str:
    """The installed version of ``package`` ("not installed" when it is missing)."""
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def unpinned(pins: Path = PINS) -> list[str]:
    """Each installed package whose release differs from ``constraints.txt``, as
    "uvicorn 0.56.0 (the course pins 0.55.0)"; nothing when the file is missing."""
    if not pins.exists():
        return []
    differ = []
    for line in pins.read_text(encoding="utf-8").splitlines():
        spec = line.split("#", 1)[0].strip()
        if "==" not in spec:
            continue
        requirement = Requirement(spec)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        pinned = next(iter(requirement.specifier)).version
        found = installed(requirement.name)
        if found != "not installed" and Version(found) != Version(pinned):
            differ.append(f"{requirement.name} {found} (the course pins {pinned})")
    return differ


@dataclass(frozen=True)
class Era:
    """One behaviour, from release ``since`` to release ``until`` (both included; ``until`` is
    the newest release it was checked on), seen on the releases in ``seen``."""

    since: str
    until: str
    behaviour: str
    seen: tuple[str, ...]

    def covers(self, release: str) -> bool:
        return Version(self.since) <= Version(release) <= Version(self.until)

    @property
    def span(self) -> str:
        return self.since if self.since == self.until else f"{self.since} to {self.until}"


class UnknownVersion(AssertionError):
    """The installed release is newer or older than every release a claim was checked on."""


@dataclass(frozen=True)
class Claim:
    key: str
    package: str
    statement: str
    eras: tuple[Era, ...]
    tests: tuple[str, ...]  # the tests that prove it, as pytest node ids without parameters

    def era(self, release: str | None = None) -> Era | None:
        """The known range that ``release`` (default: the installed one) falls in."""
        release = release or installed(self.package)
        return next((era for era in self.eras if era.covers(release)), None)

    def checked(self) -> str:
        """Every release the claim was checked on, oldest first."""
        return ", ".join(sorted({v for era in self.eras for v in era.seen}, key=Version))

    def expect(self, seen: str) -> None:
        """Assert that the installed release does what its range does (used by tests)."""
        release = installed(self.package)
        _report(self, release, seen)
        era = self.era(release)
        if era is None:
            raise UnknownVersion(
                f"claim {self.key!r} ({self.statement}) was checked on {self.package} "
                f"{self.checked()}, not on the installed {release}; it saw {seen!r}. Re-check "
                f"the claim, then add {release} to it in lessons/course/versions.py and "
                "docs/versions.md."
            )
        assert seen == era.behaviour, (
            f"claim {self.key!r}: {self.package} {release} should {era.behaviour!r} "
            f"(seen on {', '.join(era.seen)}), but it did {seen!r}. Re-check the claim, the "
            "lessons that teach it and docs/versions.md."
        )

    def verdict(self, seen: str) -> str:
        """One line for a notebook: what the learner's install did, and which range that is."""
        release = installed(self.package)
        era = self.era(release)
        if era is not None and seen == era.behaviour:
            return f"{self.package} {release}: {seen} (as {self.package} {era.span} does)"
        known = "; ".join(f"{era.span}: {era.behaviour}" for era in self.eras)
        return f"{self.package} {release}: {seen} (the course checked {known})"


def _report(claim: Claim, release: str, seen: str) -> None:
    path = os.environ.get(REPORT)
    if path:
        line = {"claim": claim.key, "package": claim.package, "version": release, "seen": seen}
        era = claim.era(release)
        line["holds"] = era is not None and era.behaviour == seen
        with Path(path).open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


_SANSIO_SILENT = "leaves it unanswered and holds the socket"
_SANSIO_ANSWERS = "answers 414 (query) or 431 (header) and frees the socket"
_HEAD_HELD = "answers nothing and holds the socket while the client stays"

CLAIMS: dict[str, Claim] = {
    claim.key: claim
    for claim in (
        Claim(
            "oversized-handshake",
            "uvicorn",
            "websockets-sansio, uvicorn's default, and a request line or header over 8 KiB "
            "(with websockets 17; with websockets 16, uvicorn 0.55 answers 400)",
            (
                Era("0.54.0", "0.54.0", _SANSIO_SILENT, ("0.54.0",)),
                Era("0.55.0", "0.55.0", _SANSIO_ANSWERS, ("0.55.0",)),
            ),
            (
                "lessons/05_scaling/tests/test_scaling_pitfalls.py::"
                "test_an_oversized_handshake_is_answered_by_the_version_that_fixed_it",
                "tests/test_implementations.py::test_what_uvicorn_bounds_and_what_it_holds",
            ),
        ),
        Claim(
            "unfinished-head",
            "uvicorn",
            "a connection whose first request head never completes (half a handshake, then "
            "silence); its keep-alive timeout starts only after a first response",
            (Era("0.54.0", "0.55.0", _HEAD_HELD, ("0.54.0", "0.55.0")),),
            (
                "tests/test_implementations.py::test_what_uvicorn_bounds_and_what_it_holds",
                "tests/test_hostile.py::test_a_handshake_that_never_finishes_is_held_until_the_client_goes",
            ),
        ),
        Claim(
            "denial-response-log",
            "uvicorn",
            "what websockets-sansio logs after a complete denial response (an HTTP answer "
            "sent before accept)",
            (
                Era("0.54.0", "0.54.0", DENIAL_LOGS, ("0.54.0",)),
                Era("0.55.0", "0.55.0", DENIAL_QUIET, ("0.55.0",)),
            ),
            (
                "lessons/02_lifecycle/tests/test_lifecycle_pitfalls.py::"
                "test_p09_what_uvicorn_logs_after_the_denial_depends_on_its_version",
                "lessons/04_auth/tests/test_auth.py::test_refusal_is_a_401_denial_response_and_its_log",
            ),
        ),
        Claim(
            "crash-close",
            "uvicorn",
            "what a client sees when the handler raises after accept (websockets-sansio)",
            (Era("0.54.0", "0.55.0", "no close frame: 1006", ("0.54.0", "0.55.0")),),
            (
                "lessons/01_echo/tests/test_echo.py::"
                "test_pitfall_drops_the_connection_without_a_close_frame",
            ),
        ),
        Claim(
            "close-before-accept-on-the-wire",
            "uvicorn",
            "what a real client gets when the handler closes before accept()",
            (Era("0.54.0", "0.55.0", "HTTP 403, an empty body", ("0.54.0", "0.55.0")),),
            (
                "lessons/02_lifecycle/tests/test_lifecycle_pitfalls.py::"
                "test_p09_closing_before_accept_by_version",
            ),
        ),
        Claim(
            "close-before-accept-in-process",
            "starlette",
            "what TestClient reports when the handler closes before accept()",
            (Era("1.8.0", "1.10.0", "a close with the app's code (1008)", ("1.8.0", "1.10.0")),),
            (
                "lessons/02_lifecycle/tests/test_lifecycle_pitfalls.py::"
                "test_p09_closing_before_accept_by_version",
            ),
        ),
        Claim(
            "close-timeout",
            "uvicorn",
            "how long websockets-sansio waits for the peer's close frame after sending its own",
            (Era("0.54.0", "0.55.0", "10 s, no setting changes it", ("0.54.0", "0.55.0")),),
            ("tests/test_versions.py::test_uvicorns_close_timeout",),
        ),
        Claim(
            "shutdown-close-code",
            "uvicorn",
            "the close code a client reads when the server stops gracefully",
            (Era("0.54.0", "0.55.0", "1012 (service restart)", ("0.54.0", "0.55.0")),),
            (
                "lessons/02_lifecycle/tests/test_lifecycle.py::"
                "test_graceful_stop_closes_with_1012_and_the_server_records_it",
            ),
        ),
        Claim(
            "server-defaults",
            "uvicorn",
            "uvicorn's defaults for message size, protocol pings and graceful shutdown",
            (
                Era(
                    "0.54.0",
                    "0.55.0",
                    "ws_max_size 16 MiB, pings every 20 s with a 20 s timeout, no graceful "
                    "shutdown timeout",
                    ("0.54.0", "0.55.0"),
                ),
            ),
            ("tests/test_versions.py::test_uvicorns_defaults",),
        ),
        Claim(
            "send-after-close",
            "starlette",
            "what send() or close() raise once a send failed because the client left",
            (
                Era(
                    "1.8.0",
                    "1.10.0",
                    "WebSocketDisconnected, a RuntimeError",
                    ("1.8.0", "1.10.0"),
                ),
            ),
            (
                "lessons/02_lifecycle/tests/test_lifecycle_pitfalls.py::"
                "test_p06_broken_close_after_a_failed_send_raises",
            ),
        ),
        Claim(
            "redis-pool-size",
            "redis",
            "how many connections redis-py's asyncio pool holds by default",
            (Era("8.0.0", "8.2.0", "100", ("8.0.0", "8.2.0")),),
            ("tests/test_versions.py::test_redis_pys_pool_size",),
        ),
        Claim(
            "short-hmac-key",
            "pyjwt",
            "what PyJWT does when it signs with an HMAC key shorter than 32 bytes",
            (Era("2.11.0", "2.15.1", "warns InsecureKeyLengthWarning", ("2.11.0", "2.15.1")),),
            (
                "lessons/04_auth/tests/test_auth_pitfalls.py::"
                "test_p23_whoever_reads_the_source_can_sign_tokens",
            ),
        ),
        Claim(
            "client-defaults",
            "websockets",
            "the asyncio client's defaults: messages it buffers unread, and its close timeout",
            (Era("17.0", "17.4", "max_queue 16, close_timeout 10 s", ("17.0", "17.4")),),
            ("tests/test_versions.py::test_the_websockets_clients_defaults",),
        ),
    )
}


def catalogue_rows() -> list[str]:
    """docs/versions.md's table rows, one per claim (``python -m lessons.course.versions``)."""
    rows = []
    for claim in CLAIMS.values():
        eras = "; ".join(
            f"{era.span}: {era.behaviour} (seen on {', '.join(era.seen)})" for era in claim.eras
        )
        tests = ", ".join(f"`{test.split('::')[-1]}`" for test in claim.tests)
        rows.append(f"| `{claim.key}` | {claim.package} | {claim.statement} | {eras} | {tests} |")
    return rows


if __name__ == "__main__":
    print("\n".join(catalogue_rows()))
