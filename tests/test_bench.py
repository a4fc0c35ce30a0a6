"""`wslab bench`: every scenario side by side, bounded arguments, and its library parts."""

from __future__ import annotations

import re

import pytest

from lessons.cli import main as wslab
from lessons.kit.bench import LIMITS, check_limits, default_timeout


def test_bench_prints_every_scenario_with_ratios_to_the_baseline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--clients", "3", "--messages", "20", "--size", "1000", "--timeout", "2"]
    assert wslab(["bench", *args]) == 0
    captured = capsys.readouterr()
    rows = [line for line in captured.out.splitlines() if re.search(r"\d+/\d+", line)]
    assert len(rows) == 7
    assert rows[0].startswith("websockets broadcast() (baseline)") and " 1.00 " in rows[0]
    assert all("60/60" in row for row in rows)  # tiny volumes: even the stalled runs finish
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"clients": 100_000}, "clients must be between 1 and 500"),
        ({"size": 0}, "size must be between 1 and 1000000"),
        ({"timeout": 600.0}, r"timeout must be in \(0, 60.0\] seconds"),
    ],
)
def test_bench_refuses_unbounded_arguments(arguments: dict[str, float], message: str) -> None:
    limits = {"clients": 20, "messages": 300, "size": 16384, "timeout": 5.0, **arguments}
    with pytest.raises(ValueError, match=message):
        check_limits(**limits)  # type: ignore[arg-type]


def test_bench_options_say_their_units(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        wslab(["bench", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for words in ["bytes per message", "seconds at most per scenario", "connected clients"]:
        assert words in help_text


def test_the_default_timeout_grows_with_the_load_within_its_limit() -> None:
    assert default_timeout(20, 300) == 5.0  # the default run: 6,000 deliveries
    assert default_timeout(500, 300) == 15.0  # 150,000 deliveries would be cut at 5 s
    assert default_timeout(500, 5000) == LIMITS["timeout"]
