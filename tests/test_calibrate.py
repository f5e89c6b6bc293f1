"""`ghostswap calibrate`: the model held against this host's kernel.

The root tests run real workloads on the host (a swap file or zram device
and a memory cgroup) and assert the fidelity targets: pswpout and pswpin
within 15% for seq, rand and zipf at 3x over the limit (128 MiB: with a
64 MiB limit this host's kernel itself OOM-kills random access on zram now
and then, reclaim finding nothing in 16 retries), and the
thp_swap_allocator_test fallback percentage within 5 points, and, last
(marker ``zswap``), zswpout within 20% with zswap in front of a swap file.
Each checks that nothing it set up is left behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ghostswap.calibrate import hostrun
from ghostswap.calibrate.host import HostError, active_swaps, read_knob
from ghostswap.calibrate.session import Calibration, model_config, run_calibration
from ghostswap.cli.main import main
from ghostswap.mm.machine import Machine
from ghostswap.mm.zswap import COMPRESSORS
from ghostswap.storage.base import store_factory

ROOT = os.geteuid() == 0
THP = Path("/sys/kernel/mm/transparent_hugepage")
ZSWAP_KNOBS = ("enabled", "compressor", "max_pool_percent")


def host_state() -> dict[str, object]:
    """What calibration may touch, to compare before and after."""
    knobs = {p: read_knob(p) for p in sorted(THP.glob("hugepages-*/enabled"))}
    knobs |= {
        name: read_knob(hostrun.ZSWAP_PARAMS / name)
        for name in ZSWAP_KNOBS
        if (hostrun.ZSWAP_PARAMS / name).is_file()
    }
    cgroups = sorted(str(p) for p in Path("/sys/fs/cgroup/memory").rglob("ghostswap-calibrate-*"))
    zram = sorted(p.name for p in Path("/sys/block").glob("zram*"))
    return {"swaps": active_swaps(), "knobs": knobs, "cgroups": cgroups, "zram": zram}


def test_model_only_needs_no_root(tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    rc = main(["calibrate", "--workload", "seq:24MiB:1", "--ram", "8MiB", "--swap",
               "file:64MiB", "--model-only", "--json", str(out), "--quiet"])  # fmt: skip
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["host"] is None
    assert data["model"]["vmstat"]["pswpout"] > 0
    assert data["compare"]["pswpout"]["host"] == 0
    assert data["config"]["swap"].startswith("file:67108864")


def test_model_zswap_pool_is_a_share_of_the_hosts_ram(tmp_path: Path) -> None:
    # The cgroup limit is 8 MiB, but the kernel sizes zswap's pool from all
    # of the host's RAM, and so does the model calibrate runs.
    cal = Calibration("seq:24MiB:1", 8 << 20, "file", 64 << 20, zswap="lz4",
                      zswap_max_pool_percent=1)  # fmt: skip
    cfg = model_config(cal, rotational=False)
    host_pages = os.sysconf("SC_PHYS_PAGES")
    assert abs(cfg.machine.totalram_pages - host_pages) <= host_pages // 100
    with Machine(cfg.machine, store_factory("memory", None)) as vm:
        assert vm.zswap is not None
        assert vm.zswap.max_pages == cfg.machine.totalram_pages // 100 > cfg.machine.ram_pages
    out = tmp_path / "z.json"
    rc = main(["calibrate", "--workload", "seq:24MiB:1", "--ram", "8MiB", "--swap",
               "file:64MiB", "--zswap", "--zswap-max-pool-percent", "1", "--model-only",
               "--json", str(out), "--quiet"])  # fmt: skip
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["config"]["zswap_max_pool_percent"] == 1
    assert data["model"]["vmstat"]["zswpout"] > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--swap", "partition:1GiB"], "file:SIZE or zram:SIZE"),
        (["--ram", "lots"], "is not a size"),
        (["--write-ratio", "2"], "outside 0..100%"),
        (["--workload", "nope:1"], "nope"),
        (["--zswap-max-pool-percent", "5"], "needs --zswap"),
        (["--zswap", "--zswap-max-pool-percent", "0"], "must be in 1..100"),
    ],
)
def test_bad_arguments_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["calibrate", "--workload", "seq:8MiB:1", "--model-only", "--quiet"]
    assert main([*base, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_crypto_may_have(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostrun, "crypto_algorithms", lambda: {"deflate", "lzo"})
    assert hostrun.crypto_may_have("deflate")
    monkeypatch.setattr(hostrun.os, "uname", lambda: os.uname_result(("", "", "no-such-1", "", "")))
    assert not hostrun.crypto_may_have("lz4")


def test_refuses_without_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["calibrate", "--workload", "seq:8MiB:1", "--quiet"]) == 2
    assert "needs root" in capsys.readouterr().err


@pytest.mark.root
@pytest.mark.skipif(not ROOT, reason="needs root")
def test_a_compressor_the_kernel_lacks_is_refused_before_zswap_is_enabled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = [c for c in COMPRESSORS if not hostrun.crypto_may_have(c)]
    if not missing:
        pytest.skip("this kernel may have every compressor the model has")
    before = host_state()
    argv = ["calibrate", "--workload", "seq:8MiB:1", "--swap", "file:64MiB", "--zswap",
            "--zswap-compressor", missing[0], "--quiet"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"no {missing[0]} for zswap" in err and err.count("\n") == 1
    assert host_state() == before


def test_a_host_oom_names_what_the_cgroup_still_held() -> None:
    held = hostrun._describe_oom(
        {"swapcached": 118 << 20, "active_anon": 120 << 20, "inactive_anon": 0, "rss": 0}
    )
    assert held == "; after the kill it still held swapcached 118 MiB, active_anon 120 MiB"
    assert hostrun._describe_oom({"swapcached": 4096, "writeback": 0}) == ""


@pytest.mark.root
@pytest.mark.skipif(not ROOT, reason="needs root")
def test_a_host_oom_is_one_error_line_and_cleans_up(capsys: pytest.CaptureFixture[str]) -> None:
    before = host_state()
    argv = ["calibrate", "--workload", "seq:32MiB:1", "--ram", "8MiB", "--swap", "file:64KiB",
            "--quiet"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "OOM-killed in its memory cgroup" in err and err.count("\n") == 1
    assert host_state() == before


def calibration(workload: str, swap: str, ram_mib: int = 128, **kw: object) -> Calibration:
    kind, _, size = swap.partition(":")
    return Calibration(
        workload=workload,
        ram_bytes=ram_mib << 20,
        swap_kind=kind,
        swap_bytes=int(size.removesuffix("MiB")) << 20,
        **kw,  # type: ignore[arg-type]
    )


def calibrate(workload: str, swap: str, **kw: object) -> dict[str, dict[str, object]]:
    """Run one calibration; check it cleaned up and kept every page intact."""
    before = host_state()
    result = run_calibration(calibration(workload, swap, **kw))  # type: ignore[arg-type]
    assert host_state() == before, "calibration left something behind"
    assert result.host is not None and result.host.replayer["mismatches"] == 0
    assert result.model["integrity"]["mismatches"] == 0
    return {row.name: row.as_dict() for row in result.rows}


@pytest.mark.root
@pytest.mark.skipif(not ROOT, reason="needs root")
@pytest.mark.parametrize("workload", ["seq:384MiB:2", "rand:384MiB:200k", "zipf:384MiB:200k"])
@pytest.mark.parametrize("swap", ["file:1024MiB", "zram:1024MiB"])
def test_swap_traffic_matches_the_kernel(workload: str, swap: str) -> None:
    rows = calibrate(workload, swap)
    for counter in ("pswpout", "pswpin"):
        error = rows[counter]["rel_error"]
        assert error is not None and abs(error) <= 0.15, (counter, rows[counter])  # type: ignore[arg-type]


@pytest.mark.root
@pytest.mark.skipif(not ROOT, reason="needs root")
def test_madv_hugepage_mthp_swap_matches() -> None:
    """64 KiB mTHP on zram in MADV_HUGEPAGE mappings: large folios swap out
    and back in whole, and charges at the limit reclaim instead of falling
    back (defrag=madvise). Once zswap has been enabled since boot this
    kernel swaps in order 0 only, and calibrate sets the model up alike:
    the swap traffic must still match, and no 64 KiB folio swaps in."""
    rows = calibrate("seq:384MiB:2", "zram:1024MiB", mthp={"64kB": "always"}, madv_hugepage=True)
    counters = ["pswpout", "pswpin", "64kB swpout", "64kB anon_fault_alloc"]
    if hostrun.zswap_ever_enabled():
        assert "64kB swpin" not in rows, rows["64kB swpin"]  # a row: one side moved it
    else:
        counters.append("64kB swpin")
    for counter in counters:
        error = rows[counter]["rel_error"]
        assert error is not None and abs(error) <= 0.15, (counter, rows[counter])  # type: ignore[arg-type]


@pytest.mark.root
@pytest.mark.skipif(not ROOT, reason="needs root")
def test_thp_swap_allocator_selftest_fallback_matches() -> None:
    rows = calibrate(
        "thp-frag",
        "zram:64MiB",
        ram_mib=512,
        mthp={"64kB": "always"},
        zram_algorithm="lzo",
    )
    fallback = rows["64kB swpout_fallback %"]
    assert fallback["error_points"] is not None and abs(fallback["error_points"]) <= 5
    assert rows["64kB swpout"]["host"] > 0


@pytest.mark.root
@pytest.mark.skipif(not ROOT, reason="needs root")
def test_interrupt_mid_run_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object) -> dict[str, float]:
        raise KeyboardInterrupt

    monkeypatch.setattr(hostrun, "_run_replayer", interrupted)
    before = host_state()
    for swap in ("file:64MiB", "zram:64MiB"):
        with pytest.raises(KeyboardInterrupt):
            run_calibration(calibration("seq:16MiB:1", swap, mthp={"64kB": "always"}))
        assert host_state() == before


@pytest.mark.root
@pytest.mark.zswap
@pytest.mark.skipif(not ROOT, reason="needs root")
def test_zswap_store_and_writeback_match() -> None:
    """zswap (deflate) in front of a swap file, its pool limited to 1% of the
    host's RAM so that the limit is hit: stores are rejected to the swap file
    and the full-pool worker runs. Enabling zswap stops this kernel's
    large-folio swap-in until reboot, so `make test-root` runs this last.

    zswpout and the rejected stores (pswpout) are held to 20%. zswpwb is
    next to nothing on both sides: a v6.18 worker walks one entry per try,
    gives up after 16 referenced ones, and the pressure shrinker sees no
    zswap memory in a v1 cgroup. So both must stay below 0.1% of zswpout
    (a relative error of counts near zero means nothing). A host OOM kill
    skips the case, naming what the cgroup held."""
    try:
        rows = calibrate("seq:1GiB:2", "file:3072MiB", ram_mib=128, zswap="deflate",
                         zswap_max_pool_percent=1)  # fmt: skip
    except HostError as err:
        if "OOM-killed" not in str(err):
            raise
        # Seen twice in some twenty runs: the host's v1 cgroup full of active
        # swap-cache folios (readahead folios zswap loaded and nobody mapped,
        # which pageout() will not write), reclaim finding nothing in 16
        # tries. Nothing to compare then.
        pytest.skip(f"the host kernel OOM-killed the workload: {err}")
    for counter in ("zswpout", "pswpout"):
        error = rows[counter]["rel_error"]
        assert error is not None and abs(error) <= 0.20, (counter, rows[counter])  # type: ignore[arg-type]
    assert rows["zswap pool_limit_hit"]["host"] > 0  # the case exercises the limit
    zswpout = rows["zswpout"]["host"]
    writeback = rows.get("zswpwb", {"host": 0, "model": 0})
    assert writeback["host"] < zswpout / 1000 and writeback["model"] < zswpout / 1000  # type: ignore[operator]
