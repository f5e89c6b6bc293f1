import gzip
import json
import os
import signal
import subprocess
import sys
import time
from itertools import pairwise

import pytest

from ghostswap.cli.main import main
from ghostswap.measure.report import PLOTS
from ghostswap.runconfig import load_run_config
from ghostswap.workload.registry import make_workload
from ghostswap.workload.trace_csv import write_csv

# The default machine (ghost device, zswap) scaled down. In 4 MiB the zswap
# pool (zsmalloc pages) reaches its limit, and a ghost device cannot take
# the rejected pages: the cgroup OOMs.
SMALL = ["--ram", "8MiB", "--workload", "seq:12MiB:3"]
SWAP_OK = '[[swap]]\nkind = "file"\nsize = "1GiB"\n'


def run_json(tmp_path, *extra):
    out = tmp_path / "r.json"
    rc = main(["run", *SMALL, "--quiet", "--json", str(out), *extra])
    return rc, json.loads(out.read_text())


def test_default_machine_with_a_small_workload_swaps_through_zswap(tmp_path):
    rc, result = run_json(tmp_path)
    assert rc == 0
    assert set(result) >= {"config", "vmstat", "mthp", "swaps", "overhead_bytes", "integrity",
                           "timing"}  # fmt: skip
    vm = result["vmstat"]
    assert vm["zswpout"] > 0 and vm["zswpin"] > 0
    assert vm["pswpout"] == 0  # the ghost device cannot write
    assert result["integrity"]["mismatches"] == 0
    assert result["integrity"]["verified_pages"] > 0
    (dev,) = result["swaps"]
    assert set(dev) >= {"name", "kind", "size_pages", "used_pages", "peak_used_pages"}
    assert dev["kind"] == "ghost" and dev["peak_used_pages"] >= dev["used_pages"] > 0
    oh = result["overhead_bytes"]
    assert oh["peak"]["total"] >= oh["current"]["total"] > 0
    assert oh["current"]["total"] == sum(oh["current"]["components"].values())
    expected = make_workload("seq:12MiB:3", seed=1, write_ratio=0.3, fill="text")
    assert result["timing"]["events"] == expected.total_events()
    assert result["config"]["ram_bytes"] == 8 << 20


def test_devices_mthp_and_options_reach_the_machine(tmp_path):
    rc, result = run_json(
        tmp_path, "--swap", "partition:64MiB", "--swap", "file:16MiB:prio=5", "--no-zswap",
        "--mthp", "64kB:always", "--fill", "half", "--write-ratio", "50%", "--seed", "7",
    )  # fmt: skip
    assert rc == 0
    assert [d["kind"] for d in result["swaps"]] == ["partition", "file"]
    assert result["vmstat"]["pswpout"] > 0 and result["vmstat"]["zswpout"] == 0
    assert "64kB" in result["mthp"] and result["mthp"]["64kB"]["anon_fault_alloc"] > 0
    assert result["config"]["fill"] == "half" and result["config"]["write_ratio"] == 0.5
    assert result["workload"]["seed"] == 7


def test_file_store_run_verifies_real_bytes(tmp_path):
    rc, result = run_json(tmp_path, "--swap", "file:64MiB", "--no-zswap", "--store", "file")
    assert rc == 0
    assert result["vmstat"]["pswpin"] > 0
    assert result["integrity"]["mismatches"] == 0


def test_report_writes_plots_and_one_page(tmp_path):
    rc = main(["run", *SMALL, "--quiet", "--report", str(tmp_path / "rep")])
    assert rc == 0
    for name in PLOTS:
        assert (tmp_path / "rep" / name).read_bytes()[:4] == b"\x89PNG"
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(PLOTS)
    assert "pswpout" in page and "integrity" in page
    for section in ("memory cgroup", "limit_pages", "events oom_kill", "events_skipped", "store"):
        assert section in page
    assert "&quot;passes&quot;: 3" in page and "warning:" not in page


def test_tables_are_printed(capsys):
    assert main(["run", *SMALL]) == 0
    out = capsys.readouterr().out
    for word in ("/proc/vmstat", "pswpin", "/proc/swaps", "allocator internals",
                 "kernel-equivalent metadata", "integrity"):  # fmt: skip
        assert word in out


def test_json_to_stdout(capsys):
    assert main(["run", *SMALL, "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["integrity"]["mismatches"] == 0


def test_config_file_sets_the_machine(tmp_path):
    cfg = tmp_path / "m.toml"
    cfg.write_text(
        '[machine]\nram = "4MiB"\nswappiness = 100\nmthp = ["32kB:always"]\n'
        '[[swap]]\nkind = "zram"\nsize = "32MiB"\nprio = 3\n'
        "[zswap]\nenabled = false\n"
        '[workload]\nspec = "zipf:8MiB:10k:0.8"\nfill = "zero"\n'
    )
    out = tmp_path / "r.json"
    assert main(["run", "--config", str(cfg), "--quiet", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["swaps"][0]["kind"] == "zram" and result["swaps"][0]["priority"] == 3
    assert result["config"]["swappiness"] == 100
    assert result["config"]["memcg_charge_batch"] == 64  # the kernel's default
    # Zero-filled pages never reach the device.
    assert result["vmstat"]["swpout_zero"] > 0 and result["vmstat"]["pswpout"] == 0


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[machine]\nram = "4MiB"\nswappiness = "high"\n', 3, "swappiness"),
        ('[machine]\n\nram = "lots"\n', 3, "ram"),
        ('[zswap]\nenabled = true\ncompressor = "lzo"\n', 3, "compressor"),
        ('[[swap]]\nkind = "tape"\n', 2, "unknown kind"),
        ('[machine]\nmthp = ["63kB:always"]\n', 2, "mTHP"),
        ("[machine]\nram = \n", 2, ""),  # TOML syntax error
        ('[workload]\nfill = "lorem"\n', 2, "fill"),
        ("[machine]\nbogus = 1\n", 2, "unknown field"),
        # The second [[swap]], not the first, is the one at fault.
        (f'{SWAP_OK}[[swap]]\nkind = "zram"\nsize = "1GiB"\nprio = -7\n', 7, "swap.prio"),
        (f'{SWAP_OK}[[swap]]\nkind = "zram"\nprio = "x"\n', 6, "prio"),
        (f'{SWAP_OK}[[swap]]\nsize = "1GiB"\n', 4, "needs a kind"),
        ('[machine]\nram = "4MiB"\n[machin]\n', 3, "unknown table"),
        ('[machine]\nram = "128KiB"\n', 2, "at least 64 pages"),
        ('[machine]\n\nram = "\udcff"\n', 3, "not UTF-8"),  # a lone 0xff byte
        # The workload a config file names: its errors name the file and line too.
        ('[workload]\n\nspec = "nope:1"\n', 3, "workload.spec: unknown workload 'nope:1'"),
        ('[workload]\nspec = "zipf:8MiB"\n', 2, "missing ACCESSES"),
        ('[workload]\ntrace = "/nonexistent.csv"\n', 2, "workload.trace: /nonexistent.csv"),
        ("[workload]\nseed = -1\n", 2, "workload.seed: -1 is negative"),
        ('[workload]\nspec = "seq:8MiB"\ntrace = "t.csv"\n', 3, "not both"),
        ('[machine]\n\nram = "3TiB"\n', 3, "above 2 TiB"),
        # A top-level table given as something else.
        ("# zswap\nzswap = 5\n", 2, "zswap must be one table"),
        ("zswap = [1]\n", 1, "zswap must be one table"),
        ('[[workload]]\nspec = "seq:8MiB"\n', 1, "workload must be one table"),
        ("[[zswap]]\nenabled = false\n", 1, "zswap must be one table"),
        ('workload = ["a"]\n', 1, "workload must be one table"),
        ("machine = [1, 2]\n", 1, "machine must be one table"),
        ('[machine]\nram = "64MiB"\n[machine.x]\ny = 1\n', 3, "machine.x: unknown field"),
        ("[machine]\ncpus = 99999999999999999999\n", 2, "not a number of CPUs (1..8192)"),
        # The field at fault in a [[swap]] table, not its kind.
        ('[[swap]]\nkind = "zram"\nsize = "lots"\n', 3, "swap.size"),
        ('[[swap]]\nkind = "zram"\nsize = "1GiB"\noptions = ["fast"]\n', 4, "swap.options"),
        ('[[swap]]\nkind = "tape"\nsize = "1GiB"\n', 2, "swap.kind"),
        # An inline table's key is found on its line.
        ('# m\nmachine = {swappiness = 60, ram = "x"}\n', 2, "machine.ram"),
        # ... in its own table's line, not another table's key of that name.
        ('workload = {ram = 1}\nmachine = {cpus = 2, ram = "x"}\n', 2, "machine.ram"),
        ("workload = {seed = 1}\nmachine.cpus = 0\n[zswap]\ncpus = 1\n", 2, "machine.cpus"),
        ('[machine]\nstore = "file"\nstore_dir = "/nonexistent/d"\n', 3, "not a directory"),
        # Two ways to give the swap devices in one file: neither silently wins.
        (f'[machine]\nswap = ["zram:1GiB"]\n{SWAP_OK}', 3, "both set the swap devices"),
    ],
)
def test_bad_config_fields_name_file_and_line(tmp_path, capsys, text, line, words):
    cfg = tmp_path / "bad.toml"
    cfg.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    assert main(["run", "--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{cfg}:{line}:" in err
    assert words in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--ram", "12 parsecs"], "--ram"),
        (["--swap", "tape:1GiB"], "unknown kind"),
        (["--workload", "nope:1"], "workload"),
        (["--workload", "zipf:8MiB:lots"], "not a count"),
        (["--trace", "/nonexistent.trace"], "trace"),
        (["--mthp", "64kB:sometimes"], "mode"),
        (["--write-ratio", "150%"], "write-ratio"),
        (["--config", "/nonexistent.toml"], "cannot read"),
        (["--cpus", "0"], "--cpus 0: must be in 1..8192"),
        (["--cpus", "1000000"], "--cpus 1000000: must be in 1..8192"),
        (["--ram", "0"], "--ram 0: RAM must be at least 64 pages"),
        (["--swap", "file:-1GiB"], "'-1GiB' is not a size"),
        (["--swap", "zram:1GiB", "--swap", "file:4KiB"], "swap device 'file:4KiB': swapon:"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, args, words):
    assert main(["run", "--quiet", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err


def test_cpus_reaches_the_machine(capsys):
    args = ["run", "--quiet", "--json", "-", "--ram", "4MiB", "--swap", "zram:16MiB",
            "--no-zswap", "--workload", "seq:8MiB:1", "--cpus", "3"]  # fmt: skip
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["config"]["cpus"] == 3


def test_unknown_option_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--frobnicate"])
    assert exc.value.code == 2


def test_embedded_default_is_a_zipf_larger_than_ram_on_a_ghost_device_with_zswap():
    cfg = load_run_config(None)
    assert cfg.machine.swap[0].kind == "ghost"
    assert cfg.machine.zswap
    assert cfg.workload.startswith("zipf:")
    from ghostswap.units import parse_size_pages

    assert parse_size_pages(cfg.workload.split(":")[1]) > cfg.machine.ram_pages


@pytest.mark.slow
def test_run_with_no_arguments(tmp_path):
    out = tmp_path / "r.json"
    assert main(["run", "--quiet", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["integrity"]["mismatches"] == 0
    assert result["vmstat"]["oom_kill"] == 0
    assert result["vmstat"]["zswpout"] > 0


def test_an_oom_kill_is_reported_not_hidden(tmp_path, capsys):
    assert main(["run", "--ram", "1MiB", "--workload", "seq:8MiB:1"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, however narrow the terminal
    assert "OOM-killed 1 process(es) (pid 1)" in err and "page accesses were skipped" in err
    # With the JSON on stdout the warning still reaches stderr.
    assert main(["run", "--ram", "1MiB", "--workload", "seq:8MiB:1", "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert "OOM-killed" in captured.err and json.loads(captured.out)["vmstat"]["oom_kill"] == 1
    # The report says so too, and names the victim.
    rep = tmp_path / "rep"
    argv = ["run", "--quiet", "--ram", "1MiB", "--workload", "seq:8MiB:1", "--report", str(rep)]
    assert main(argv) == 0
    page = (rep / "report.html").read_text()
    assert "OOM-killed 1 process(es) (pid 1)" in page and "<td>oom_victims</td><td>1</td>" in page


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("cpus = 0", "machine.cpus: 0 is not a number of CPUs"),
        ("swappiness = 300", "machine.swappiness: 300 is outside 0..200"),
        ("page_cluster = 40", "machine.page_cluster: 40 is outside 0..31"),
        ('percpu_policy = "mine"', "machine.percpu_policy: 'mine' is not global or per-device"),
        ("memcg_charge_batch = -1", "machine.memcg_charge_batch: -1 is outside 0..1024"),
    ],
)
def test_machine_fields_out_of_range_name_file_and_line(tmp_path, capsys, field, message):
    cfg = tmp_path / "m.toml"
    cfg.write_text(f"[machine]\n{field}\n")
    assert main(["run", "--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:2: {message}" in err and err.count("\n") == 1


def test_a_fork_of_an_existing_pid_names_the_trace_and_the_line(tmp_path, capsys):
    trace = tmp_path / "forks.csv"
    trace.write_text("pid,op,page,npages\n1,w,0,1\n1,fork,2,0\n2,r,0,1\n1,fork,2,0\n")
    assert main(["run", "--quiet", "--ram", "4MiB", "--trace", str(trace)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{trace}:5: fork: pid 1 forks a child pid 2 that already exists" in err


def test_every_vmstat_event_the_machine_counts_is_reported(tmp_path):
    # One list (mm/vmstat.VM_EVENT_ITEMS) names the events and the report's
    # keys; an event counted but missing from it would go unreported.
    from ghostswap.measure.result import OverheadTracker, build_result
    from ghostswap.mm.vmstat import VM_EVENT_ITEMS
    from tests.vmhelpers import events, make_vm, reads, run, writes

    with make_vm(ram_pages=128, swap=("zram:4MiB",), mthp=["64kB:always"], zswap=True) as vm:
        run(vm, writes(range(400)), events([(1, "fork", 2, 0)]), reads(range(400)))
        counted = {k for k, v in vm.events.items() if v} - {"pgfree"}
        assert counted <= set(VM_EVENT_ITEMS)
        result = build_result(vm, {}, {}, 0, 0.0, OverheadTracker())
        assert list(result["vmstat"]) == list(VM_EVENT_ITEMS)


@pytest.mark.parametrize(
    ("rows", "index", "words"),
    [
        # A lone access takes the vectorised path, which once lost the event.
        (["1,w,0,1", "1,r,562949953421312,1"], 1, "page 0x2000000000000 is outside"),
        (["1,w,0,1", "1,w,562949953421311,2"], 1, "page range 0x1ffffffffffff+2 is outside"),
        # The page tables' int64 keys hold pids below 2^23; larger ones overflowed.
        (["1,w,0,1", "8388608,w,0,1"], 1, "pid 8388608 is not below 8388608"),
        (["1,w,0,1", "1,fork,4294967295,0"], 1, "child pid 4294967295 is not below"),
    ],
)
def test_an_event_the_machine_cannot_hold_names_the_trace_and_the_line(
    tmp_path, capsys, rows, index, words
):
    trace = tmp_path / "far.csv"
    trace.write_text("pid,op,page,npages\n" + "\n".join(rows) + "\n")
    assert main(["run", "--quiet", "--ram", "4MiB", "--trace", str(trace)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{trace}:{index + 2}: " in err and words in err
    # The binary form of the same trace has no lines: its record number.
    binary = tmp_path / "far.gst"
    assert main(["trace", "convert", str(trace), str(binary)]) == 0
    capsys.readouterr()
    assert main(["run", "--quiet", "--ram", "4MiB", "--trace", str(binary)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{binary}: event {index}: " in err and words in err


def test_the_line_of_a_refused_event_counts_comments_blank_lines_and_added_madvises(
    tmp_path, capsys
):
    # Events before the bad one in several blocks and parts, with comment
    # and blank lines between, and a mapping that --madv-hugepage follows
    # with an added event: the error still names the bad event's own line.
    rows = ["pid,op,page,npages", "# made by hand", "1,map,0,64", ""]
    rows += [f"1,w,{i % 64},1" for i in range(140_000)] + ["", "# the bad one:", "1,fork,1,0"]
    trace = tmp_path / "bad.csv.gz"
    with gzip.open(trace, "wt") as f:
        f.write("\n".join(rows) + "\n")
    bad_line = len(rows)
    for extra in ([], ["--madv-hugepage"]):
        argv = ["run", "--quiet", "--ram", "64MiB", "--trace", str(trace), *extra]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0
        assert f"{trace}:{bad_line}: fork: pid 1 forks a child pid 1" in err, err


@pytest.mark.parametrize("blocked", ["report.html", PLOTS[0]])
def test_a_report_file_that_cannot_be_written_is_one_error(tmp_path, capsys, blocked):
    (tmp_path / "rep" / blocked).mkdir(parents=True)  # a directory where a file goes
    rc = main(["run", *SMALL, "--quiet", "--report", str(tmp_path / "rep")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert f"cannot write {tmp_path / 'rep' / blocked}: Is a directory" in err


@pytest.mark.parametrize(
    ("option", "target", "words"),
    [
        ("--json", "missing/r.json", "no directory"),
        ("--json", ".", "is a directory"),
        ("--report", "a-file/rep", "is not a directory"),
        ("--report", "a-file", "is not a directory"),
    ],
)
def test_outputs_that_cannot_be_written_are_refused_before_the_run(
    tmp_path, capsys, monkeypatch, option, target, words
):
    import ghostswap.cli.run as cli_run

    def no_run(*args, **kwargs):
        raise AssertionError("the run started")

    monkeypatch.setattr(cli_run, "run", no_run)
    (tmp_path / "a-file").write_text("")
    rc = main(["run", *SMALL, "--quiet", option, str(tmp_path / target)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert option in err and words in err


def test_a_trace_keeps_its_own_fill_unless_one_is_chosen(tmp_path):
    trace = tmp_path / "zero.gst"
    assert main(["trace", "convert", "--fill", "zero", "seq:8MiB:1", str(trace), "--quiet"]) == 0
    out = tmp_path / "r.json"
    base = ["run", "--quiet", "--ram", "4MiB", "--trace", str(trace), "--json", str(out)]
    assert main([*base, "--no-zswap", "--swap", "zram:64MiB"]) == 0
    result = json.loads(out.read_text())
    assert result["config"]["fill"] == result["workload"]["fill"] == "zero"
    assert result["vmstat"]["swpout_zero"] > 0 and result["vmstat"]["pswpout"] == 0
    assert main([*base, "--fill", "random"]) == 0
    result = json.loads(out.read_text())
    assert result["config"]["fill"] == result["workload"]["fill"] == "random"


def test_the_mthp_table_shows_the_selftest_fallback_percentage(capsys):
    # A swap file takes no large entries: every 64 KiB folio falls back.
    args = ["run", "--ram", "64MiB", "--swap", "file:64MiB", "--no-zswap", "--mthp",
            "64kB:always", "--mthp", "32kB:never", "--workload", "thp-frag:2MiB:3"]  # fmt: skip
    assert main(args) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "fallback %" in line)
    assert row.replace("│", " ").split()[-2:] == ["-", "100.0%"]  # 32kB, 64kB


def test_a_mismatch_exits_1_and_leaves_json_on_stdout_clean(capsys, monkeypatch):
    from ghostswap.storage.memory import MemoryStore

    read_page = MemoryStore.read_page
    reads = []

    def corrupt_the_first(self, offset):
        reads.append(offset)
        token = read_page(self, offset)
        return token ^ 1 if len(reads) == 1 else token

    monkeypatch.setattr(MemoryStore, "read_page", corrupt_the_first)
    args = ["run", "--ram", "1MiB", "--swap", "file:8MiB", "--no-zswap", "--workload",
            "seq:2MiB", "--json", "-"]  # fmt: skip
    assert main(args) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["integrity"]["mismatches"] == 1
    assert "1 pages came back different" in captured.err


def test_a_short_run_plots_a_few_hundred_points():
    """The timeline of a run of known length has about 300 evenly spaced
    samples, however short the run (it had one per 4,096 events: four for
    this one)."""
    from ghostswap.measure.run import run

    cfg = load_run_config(None)
    cfg.machine.ram_pages = 1024
    workload = make_workload("zipf:8MiB:10k", seed=1, write_ratio=0.3, fill="half")
    total = workload.total_events()
    result, samples = run(cfg, workload)
    points = [s["events"] for s in samples]
    assert points[0] == 0 and points[-1] == total == result["timing"]["events"]
    assert 250 <= len(points) <= 350
    assert max(b - a for a, b in pairwise(points)) <= total // 250


def test_outputs_that_are_the_runs_inputs_are_refused(tmp_path, capsys):
    trace = tmp_path / "t.csv"
    text = "pid,op,page,npages\n1,w,0,1\n"
    trace.write_text(text)
    assert (
        main(["run", "--quiet", "--ram", "4MiB", "--trace", str(trace), "--json", str(trace)]) == 2
    )
    assert "that is an input of this run" in capsys.readouterr().err
    page = tmp_path / "rep" / "report.html"
    page.parent.mkdir()
    page.write_text(text)
    argv = ["run", "--quiet", "--ram", "4MiB", "--trace", str(page), "--report", str(page.parent)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "would overwrite the input" in err
    assert trace.read_text() == text and page.read_text() == text
    # One output must not overwrite the other either.
    for name in ("report.html", "swap_used.png"):
        argv = ["run", "--quiet", "--ram", "4MiB", "--trace", str(trace)]
        argv += ["--report", str(page.parent), "--json", str(page.parent / name)]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "writes that file" in err


def test_workload_options_a_trace_ignores_are_named(tmp_path, capsys):
    trace = tmp_path / "t.csv"
    trace.write_text("pid,op,page,npages\n1,w,0,1\n")
    argv = ["run", "--ram", "4MiB", "--trace", str(trace), "--json", "-"]
    assert main([*argv, "--seed", "5", "--write-ratio", "0.9"]) == 0
    err = capsys.readouterr().err
    assert "--seed and --write-ratio do not apply to a trace" in err
    assert main([*argv, "--fill", "zero"]) == 0
    assert "warning" not in capsys.readouterr().err
    argv = ["run", "--ram", "16MiB", "--workload", "thp-frag:4MiB:1", "--json", "-"]
    assert main([*argv, "--write-ratio", "0"]) == 0
    captured = capsys.readouterr()
    assert "--write-ratio does not apply to thp-frag" in captured.err
    # ... nor does the JSON give it one, as for a trace.
    assert json.loads(captured.out)["config"]["write_ratio"] is None
    assert main(["run", "--ram", "16MiB", "--workload", "seq:4MiB:1", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["write_ratio"] == 0.3
    # The config file's fields are named with their place.
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[workload]\ntrace = "{trace}"\nwrite_ratio = 0.9\n')
    assert main(["run", "--ram", "4MiB", "--config", str(cfg), "--json", "-"]) == 0
    assert f"workload.write_ratio ({cfg}:3) does not apply to a trace" in capsys.readouterr().err


def test_each_overhead_component_keeps_its_own_peak(monkeypatch):
    # Components peak at different times: a snapshot at the total's peak
    # would show a component's peak below its current value.
    from ghostswap.measure import result as result_mod

    points = iter([{"total": 10, "a": 8, "b": 2}, {"total": 9, "a": 3, "b": 6}])
    monkeypatch.setattr(result_mod, "overhead_now", lambda vm: next(points))
    tracker = result_mod.OverheadTracker()
    tracker.update(None)
    now = tracker.update(None)
    assert tracker.peak == {"total": 10, "a": 8, "b": 6}
    assert all(tracker.peak[k] >= v for k, v in now.items())


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


@pytest.mark.parametrize(("sig", "code", "words"), [("SIGTERM", 143, "terminated by SIGTERM"),
                                                    ("SIGHUP", 129, "terminated by SIGHUP"),
                                                    ("SIGINT", 130, "interrupted")])  # fmt: skip
def test_a_signalled_run_removes_its_store_files(tmp_path, sig, code, words):
    # The file store's directory is the run's own; a termination signal
    # must unwind through its clean-up as Ctrl-C does, not end the process.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    argv = [sys.executable, "-m", "ghostswap", "run", "--quiet", "--store", "file",
            "--swap", "file:256MiB", "--ram", "16MiB", "--workload", "zipf:64MiB:5M"]  # fmt: skip
    # Default dispositions, whatever this test inherited: a background job
    # starts with SIGINT ignored, nohup with SIGHUP ignored.
    proc = subprocess.Popen(
        argv, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals
    )
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("ghostswap-store-*/*")):
            if proc.poll() is not None:
                pytest.fail(f"the run ended first (rc {proc.returncode}): {proc.stderr.read()}")
            assert time.monotonic() < deadline, "no store file appeared in 60 s"
            time.sleep(0.05)
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code
    assert err.strip() == f"ghostswap run: {words}"
    assert list(tmp_path.iterdir()) == []


def test_an_oom_kill_keeps_the_metadata_peak_and_the_child_it_prevented(tmp_path):
    # pid 1 fills the swap device and is OOM-killed inside one range event;
    # its fork never happens, so pid 2 never exists.
    trace = tmp_path / "orphan.csv"
    trace.write_text(
        "pid,op,page,npages\n1,w,0,100\n1,w,1048576,100000\n1,fork,2,0\n2,r,0,100\n2,w,0,1\n"
    )
    out = tmp_path / "r.json"
    argv = ["run", "--quiet", "--trace", str(trace), "--ram", "16MiB", "--no-zswap"]
    assert main([*argv, "--swap", "partition:8MiB", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["memcg"]["oom_victims"] == [1]
    assert result["memcg"]["pagetables_pages"] == 0  # no process left
    swap = result["swaps"][0]
    assert swap["used_pages"] == 0 and swap["peak_used_pages"] == swap["size_pages"]
    # One 4 KiB swap table per cluster (512 slots) that held an entry.
    tables = -(-swap["peak_used_pages"] // 512) * 4096
    assert result["overhead_bytes"]["peak"]["components"]["swap_tables"] >= tables


def test_a_trace_named_as_a_workload_runs_as_a_trace(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = make_workload("zipf:4MiB:5k", seed=1, write_ratio=0.3, fill="zero")
    write_csv(source.chunks(), "z.csv", source.describe())
    results = []
    for how in (["--trace", "z.csv"], ["--trace", "trace:z.csv"], ["--workload", "z.csv"],
                ["--workload", "trace:z.csv"]):  # fmt: skip
        assert main(["run", "--ram", "4MiB", "--json", "r.json", "--quiet", *how]) == 0
        results.append(json.loads((tmp_path / "r.json").read_text()))
    for result in results:
        # The trace's own fill (zero), not the generators' default.
        assert result["config"]["trace"] == "z.csv"
        assert result["config"]["workload"] is None and result["config"]["fill"] == "zero"
        assert result["vmstat"] == results[0]["vmstat"]
    # And it is an input: --json may not overwrite it.
    assert main(["run", "--workload", "z.csv", "--json", "z.csv", "--quiet"]) == 2
    assert "that is an input of this run" in capsys.readouterr().err


def test_a_ghost_device_nothing_can_store_to_is_warned_of(capsys):
    argv = ["run", "--ram", "4MiB", "--workload", "seq:8MiB:1", "--swap", "ghost", "--json", "-"]
    assert main([*argv, "--no-zswap"]) == 0
    captured = capsys.readouterr()
    assert "a ghost device without zswap stores nothing" in captured.err
    assert json.loads(captured.out)["vm"]["ghost_write_fail"] > 0
    assert main([*argv, "--zswap"]) == 0
    assert "ghost device" not in capsys.readouterr().err


def test_a_one_cluster_ghost_device_is_warned_of(capsys):
    # Cluster 0 holds the header and is on no list, so a one-cluster ghost
    # device swaps nothing out; two clusters hold one cluster's worth.
    argv = ["run", "--ram", "4MiB", "--workload", "seq:6MiB:1", "--zswap", "--json", "-"]
    for size, usable in (("1pages", 0), ("2MiB", 0), ("513pages", 512)):
        assert main([*argv, "--swap", f"ghost:{size}"]) == 0
        captured = capsys.readouterr()
        warned = "it can store nothing" in captured.err
        assert warned == (not usable), size
        peak = json.loads(captured.out)["swaps"][0]["peak_used_pages"]
        assert (peak == 0) if not usable else 0 < peak <= usable, (size, peak)
