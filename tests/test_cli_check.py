"""``ghostswap check`` end to end: exit statuses, reproduce lines, replay."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ghostswap.cli.main import main


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--list"]) == 0
    out = capsys.readouterr().out
    assert "reclaim-range-vs-free" in out and "no-relookup-after-reclaim" in out
    assert "findings" in out


def test_clean_scenario_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--scenario", "swapin-vs-free", "--iterations", "20"]) == 0
    assert capsys.readouterr().out.startswith("ok   swapin-vs-free")


def test_failure_prints_the_replay_command_and_replays(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["check", "--scenario", "cache-lookup-vs-free", "--inject", "no-rcu-lookup"]
    out_json = tmp_path / "r.json"
    assert main([*args, "--iterations", "1000", "--json", str(out_json)]) == 1
    out = capsys.readouterr().out
    match = re.search(r"reproduce: (ghostswap check .* --replay (\S+))", out)
    assert match is not None
    assert "use-after-free" in out
    data = json.loads(out_json.read_text())
    assert data[0]["failure"]["replay"] == match.group(2)
    assert main(match.group(1).split()[1:]) == 1
    replayed = capsys.readouterr().out
    assert "== lookup A" in replayed and "FAIL cache-lookup-vs-free" in replayed
    assert match.group(1) in replayed


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--scenario", "nope"],
        ["check", "--scenario", "swapin-vs-free", "--inject", "nope"],
        ["check", "--scenario", "swapin-vs-free", "--replay", "1@@"],
        ["check", "--replay", "1AA"],
        ["check"],
        ["check", "--scenario", "swapin-vs-free", "--iterations", "0"],
        ["check", "--scenario", "swapin-vs-free", "--strategy", "pct", "--depth", "0"],
        ["check", "--scenario", "swapin-vs-free", "--seed", "-3"],  # as run --seed -1
    ],
)
def test_user_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1


def test_a_diverging_replay_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    # A schedule of another scenario: its decisions do not fit this one.
    assert main(["check", "--scenario", "ghost-swapoff-leak", "--replay", "1AQEBAQ"]) == 2
    assert "diverged" in capsys.readouterr().err
