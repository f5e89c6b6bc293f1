"""``ghostswap trace``: info, convert and the errors users see."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ghostswap.cli.main import main
from ghostswap.workload.registry import make_workload, open_trace

SAMPLE = Path(__file__).parent / "data" / "touch_pages.lackey"


def events(path: Path) -> np.ndarray:
    return np.concatenate(list(open_trace(str(path)).chunks()))


def test_info_prints_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "info", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "touch_pages.lackey" in out and "lackey" in out
    assert "distinct pages" in out and "footprint" in out and "write share" in out


def test_info_json_matches_the_events(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "info", "--json", "-", "--no-coalesce", str(SAMPLE)]) == 0
    data = json.loads(capsys.readouterr().out)
    raw = np.concatenate(
        list(make_workload(f"trace:{SAMPLE}", seed=0, write_ratio=0, fill="half").chunks())
    )
    assert data["workload"]["coalesce"] is False
    assert data["events"] > len(raw)  # uncoalesced
    assert data["ops"]["r"] + data["ops"]["w"] == data["events"]
    assert data["pids"] == [1]


def test_info_of_a_generator_spec(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["trace", "info", "--json", "-", "--seed", "4", "--write-ratio", "25%"]
    assert main([*argv, "fork:1MiB:3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["workload"]["seed"] == 4 and data["workload"]["write_ratio"] == 0.25
    assert data["ops"]["fork"] == 3 and data["ops"]["exit"] == 3
    assert data["pids"] == [1, 2, 3, 4]
    # The children share the parent's 256 pages; only those they write are
    # their own (copies), and the parent wrote all 256.
    assert 256 < data["distinct_pages"] == data["write_pages"] < 256 * 2


def test_convert_round_trip(tmp_path: Path) -> None:
    gst, csv, again = tmp_path / "a.gst", tmp_path / "b.csv", tmp_path / "c.out"
    assert main(["trace", "convert", "--quiet", str(SAMPLE), str(gst)]) == 0
    assert main(["trace", "convert", "--quiet", str(gst), str(csv)]) == 0
    assert main(["trace", "convert", "--quiet", "--to", "binary", str(csv), str(again)]) == 0
    assert events(gst).tobytes() == events(csv).tobytes() == events(again).tobytes()
    meta = open_trace(str(gst)).describe()["source"]
    assert meta["format"] == "lackey" and meta["coalesce"] is True


def test_convert_to_a_gz_name_writes_gzip(tmp_path: Path) -> None:
    import gzip

    gst, csv = tmp_path / "a.gst.gz", tmp_path / "b.csv.gz"
    assert main(["trace", "convert", "--quiet", str(SAMPLE), str(gst)]) == 0
    assert main(["trace", "convert", "--quiet", str(gst), str(csv)]) == 0
    for path in (gst, csv):
        with gzip.open(path) as stream:
            assert stream.read(1)  # a gzip stream, not the raw bytes
    assert events(gst).tobytes() == events(csv).tobytes() == events_of_sample()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gst.gz", "b.csv.gz"]  # no temp files


def events_of_sample() -> bytes:
    return np.concatenate(list(open_trace(str(SAMPLE)).chunks())).tobytes()


@pytest.mark.parametrize("ext", [".gst", ".csv", ".csv.gz"])
def test_a_converted_generator_replays_as_run_workload_does(tmp_path: Path, capsys, ext) -> None:
    # Same defaults (seed, write ratio, fill) on both commands, and the fill
    # travels in the trace (binary metadata, or the CSV's comment line).
    spec = "zipf:8MiB:20k"
    trace = tmp_path / f"z{ext}"
    assert main(["trace", "convert", "--quiet", spec, str(trace)]) == 0
    results = []
    for source in (["--workload", spec], ["--trace", str(trace)]):
        out = tmp_path / "r.json"
        assert main(["run", "--quiet", "--ram", "4MiB", *source, "--json", str(out)]) == 0
        results.append(json.loads(out.read_text()))
    generated, replayed = results
    assert replayed["config"]["fill"] == "text"
    assert generated["config"]["seed"] == 1 and generated["config"]["write_ratio"] == 0.3
    assert replayed["config"]["seed"] is None and replayed["config"]["write_ratio"] is None
    assert replayed["vmstat"] == generated["vmstat"]
    assert replayed["integrity"] == generated["integrity"]


def test_convert_a_generator_keeps_its_fill(tmp_path: Path) -> None:
    out = tmp_path / "z.gst"
    argv = ["trace", "convert", "--quiet", "--fill", "text", "--seed", "2", "zipf:1MiB:1000"]
    assert main([*argv, str(out)]) == 0
    trace = open_trace(str(out))
    assert trace.fill == "text"
    want = make_workload("zipf:1MiB:1000", seed=2, write_ratio=0.3, fill="text")
    assert events(out).tobytes() == np.concatenate(list(want.chunks())).tobytes()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["trace", "info", "nosuch:1"], "unknown workload 'nosuch:1'"),
        (["trace", "info", "missing.csv"], "unknown workload 'missing.csv'"),
        (["trace", "info", "zipf:1MiB:10:2.0"], "strictly between 0 and 1"),
        (["trace", "info", "--write-ratio", "2", "zipf:1MiB:10"], "outside 0..100%"),
        (["trace", "convert", "seq:1MiB", "out.lackey"], "cannot write lackey traces"),
        (["trace", "convert", "seq:1MiB", "out.txt"], "cannot tell the output format"),
        (["trace", "record", "--out", "x.gst"], "nothing to record"),
        (["trace", "record", "--out", "x.csv", "--", "true"], "record writes the binary format"),
        (["trace", "record", "--out", "x.gst", "--", "no-such-cmd-zz"], "command not found"),
        (["trace"], "the following arguments are required"),
        (["trace", "info", "--format", "csv", "missing.csv"], "missing.csv: No such file"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    needle: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse's own errors
        status = int(stop.code or 0)
    err = capsys.readouterr().err
    assert status == 2
    assert needle in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_malformed_trace_names_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("pid,op,page,npages\n1,r,5,1\n1,q,5,1\n")
    assert main(["trace", "info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == f"ghostswap trace: error: {bad}:3: unknown op 'q' (one of r, w, f, fork, " \
        "exit, map, unmap, pageout, huge, nohuge)\n"  # fmt: skip


def test_info_convert_and_run_accept_a_csv_with_a_byte_order_mark(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bom = tmp_path / "export.csv"
    bom.write_bytes(b"\xef\xbb\xbfpid,op,page,npages\r\n1,w,16,20\r\n1,r,20,1\r\n")
    assert main(["trace", "info", "--json", "-", str(bom)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["events"] == 2
    assert data["ops"]["w"] == 1 and data["ops"]["r"] == 1
    out = tmp_path / "export.gst"
    assert main(["trace", "convert", "--quiet", str(bom), str(out)]) == 0
    assert events(out).tobytes() == events(bom).tobytes() and len(events(out)) == 2
    assert main(["run", "--quiet", "--ram", "4MiB", "--trace", str(bom), "--json", "-"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["vmstat"]["pgfault"] == 20 and result["integrity"]["mismatches"] == 0


def test_help_lists_the_workloads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["trace", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for usage in ("seq:SIZE[:PASSES]", "zipf:SIZE:ACCESSES", "thp-frag", "fork:SIZE:CHILDREN"):
        assert usage in out
    assert "lackey" in out and "binary" in out
