"""`wslab bench --proxy`: the production manager behind Caddy and nginx, with the server
processes' CPU time per delivery beside each rate."""

from __future__ import annotations

import re
from typing import Any

import pytest

from lessons.bench import bench
from lessons.cli import main as wslab


@pytest.mark.anyio
async def test_the_proxy_scenarios_deliver_everything_and_count_the_proxys_cpu(
    nginx: Any,  # skips (or fails when required) without nginx
) -> None:
    scenarios = [bench.SCENARIOS[2], *bench.PROXY_SCENARIOS]  # direct, Caddy, nginx
    results = await bench.measure(scenarios, clients=3, messages=500, size=1000, timeout=10)
    assert [r.name for r in results] == [s.name for s in scenarios]
    assert all(r.delivered == r.expected == 1500 for r in results)
    # the kernel counts CPU time in ticks (10 ms): only the total is sure to be above zero
    assert sum(r.cpu for r in results) > 0
    cpu_table = bench.table(results, width=80).split("CPU time per delivery")[1]
    assert len([row for row in cpu_table.splitlines() if row.startswith("production")]) == 3


def test_bench_offers_the_proxy_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        wslab(["bench", "--help"])
    assert re.search(r"--proxy\s", capsys.readouterr().out)


@pytest.mark.anyio
async def test_capacity_counts_one_descriptor_per_connection_direct_and_two_in_a_proxy(
    nginx: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from lessons.bench.capacity import capacity

    ways = await capacity(connections=10, round_trips=100)
    assert [way.name for way in ways] == ["direct", "through Caddy (TLS)", "through nginx"]
    assert [round(way.fds) for way in ways] == [1, 2, 2]
    assert all(way.round_trip > 0 for way in ways)
    assert "ulimit -n" in capsys.readouterr().out
