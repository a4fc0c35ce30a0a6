"""``wslab drift``: do the course's version-sensitive claims hold on the newest releases?

The first step whenever someone picks up maintenance of the course (docs/authoring.md).
It runs the tests of every claim in ``lessons.course.versions.CLAIMS`` twice: in this
environment (installed from ``constraints.txt``: the pinned set), and in a throwaway one
that uv fills with the newest release of every dependency (``--oldest``: the lowest
releases ``pyproject.toml`` allows; ``--with uvicorn==0.54.0``: the newest set with that
release forced). Each run writes what each claim saw (``WSLAB_CLAIMS_REPORT``); the command
prints one table, claim | pinned | other | holds?, and exits 1 when a claim does not hold
on the other set. Nothing here changes the project: the throwaway environment is deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from lessons import ROOT_DIR
from lessons.cli import UsageError, command
from lessons.course.versions import CLAIMS, REPORT

PACKAGES = sorted({claim.package for claim in CLAIMS.values()})
PROBE = (
    "import importlib.metadata as m, json, sys; "
    "json.dump({p: m.version(p) for p in sys.argv[1:]}, sys.stdout)"
)


def _uv() -> list[str]:
    try:
        version("uv")
    except PackageNotFoundError:
        raise UsageError("uv is not installed: install the project with its [dev] extra") from None
    return [sys.executable, "-m", "uv"]


def _run_claims(python: str, report: Path) -> dict[str, dict]:
    """Run every claim's tests with ``python``; what each claim saw, by key."""
    tests = sorted({test for claim in CLAIMS.values() for test in claim.tests})
    env = {**os.environ, REPORT: str(report)}
    command = [python, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", *tests]
    subprocess.run(command, cwd=ROOT_DIR, env=env, stdout=subprocess.DEVNULL, check=False)
    seen: dict[str, dict] = {}
    if report.exists():
        for line in report.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            # a claim observed several times (parameters, two tests): keep a failure if any
            if entry["claim"] not in seen or not entry["holds"]:
                seen[entry["claim"]] = entry
    return seen


def _versions(python: str) -> str:
    out = subprocess.run([python, "-c", PROBE, *PACKAGES], capture_output=True, text=True)
    found = json.loads(out.stdout or "{}")
    return ", ".join(f"{name} {found.get(name, '?')}" for name in PACKAGES)


def _cell(entry: dict | None) -> str:
    if entry is None:
        return "not observed (test skipped or failed early)"
    return f"{entry['seen']} [{entry['version']}]"


def table(pinned: dict[str, dict], other: dict[str, dict], label: str) -> list[str]:
    """The report as Markdown lines: claim | pinned | ``label`` | holds?"""
    lines = [f"| claim | pinned | {label} | holds? |", "|---|---|---|---|"]
    for key in CLAIMS:
        entry = other.get(key)
        holds = "yes" if entry and entry["holds"] else "NO" if entry else "?"
        lines.append(f"| {key} | {_cell(pinned.get(key))} | {_cell(entry)} | {holds} |")
    return lines


def cmd_drift(args: argparse.Namespace) -> int:
    uv = _uv()
    work = Path(tempfile.mkdtemp(prefix="wslab-drift-"))
    try:
        print("pinned (this environment):", _versions(sys.executable), flush=True)
        pinned = _run_claims(sys.executable, work / "pinned.jsonl")
        label = "oldest" if args.oldest else "newest"
        venv = work / "venv"
        subprocess.run([*uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        python = str(venv / "bin" / "python")
        install = [*uv, "pip", "install", "-q", "--python", python, "-e", ".[dev]"]
        install += ["--resolution", "lowest-direct"] if args.oldest else ["--upgrade"]
        if args.with_:
            overrides = work / "overrides.txt"
            overrides.write_text("\n".join(args.with_) + "\n", encoding="utf-8")
            install += ["--override", str(overrides)]
            label += " with " + " ".join(args.with_)
        print(f"installing {label} in a throwaway environment ...", flush=True)
        done = subprocess.run(install, cwd=ROOT_DIR, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise UsageError(f"could not install the {label} releases: {tail}")
        print(f"{label}:", _versions(python), flush=True)
        other = _run_claims(python, work / "other.jsonl")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(["", *table(pinned, other, label)]))
    return 0 if all(other.get(key, {}).get("holds") for key in CLAIMS) else 1


def add(commands: argparse._SubParsersAction) -> None:
    drift = command(
        commands,
        "drift",
        "for maintainers: do the version-sensitive claims hold on the newest releases?",
        "wslab drift\nwslab drift --with uvicorn==0.54.0",
    )
    drift.add_argument("--oldest", action="store_true", help="the lowest releases allowed instead")
    drift.add_argument(
        "--with",
        dest="with_",
        action="append",
        default=[],
        type=requirement,
        metavar="SPEC",
        help="force a release in the other set, e.g. uvicorn==0.54.0 (repeatable)",
    )
    drift.set_defaults(handler=cmd_drift)


def requirement(text: str) -> str:
    """A ``type=`` for a requirement such as ``uvicorn==0.54.0``."""
    try:
        Requirement(text)
    except InvalidRequirement:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a requirement (uvicorn==0.54.0)"
        ) from None
    return text
