"""The built-in generators: determinism, sizes, op mixes and structure."""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np
import pytest

from ghostswap.errors import ConfigError
from ghostswap.workload.events import (
    EVENT_DTYPE,
    OP_EXIT,
    OP_FORK,
    OP_FREE,
    OP_HUGEPAGE,
    OP_MAP,
    OP_NOHUGEPAGE,
    OP_PAGEOUT,
    OP_READ,
    OP_WRITE,
)
from ghostswap.workload.gen_thp_frag import fallback_percentage, glibc_rand
from ghostswap.workload.generator import BASE_PAGE, CHUNK_EVENTS, MAIN_PID, POPULATE_RUN
from ghostswap.workload.registry import make_workload
from ghostswap.workload.spec import parse_count
from ghostswap.workload.trace_common import first_invalid_event

SPECS = [
    "seq:1MiB:3",
    "rand:2MiB:20000",
    "zipf:2MiB:20000",
    "zipf:2MiB:20000:0.6:scramble=no",
    "churn:1MiB:4",
    "churn:1MiB:2:block=8KiB",
    "thp-frag:2MiB:5",
    "thp-frag:1MiB:3:rng=glibc",
    "fork:1MiB:5",
    "fork:512KiB:3:rounds=2:pageout=no",
]


def events_of(spec: str, seed: int = 1, write_ratio: float = 0.3, fill: str = "half") -> np.ndarray:
    w = make_workload(spec, seed=seed, write_ratio=write_ratio, fill=fill)
    return np.concatenate(list(w.chunks()))


@pytest.mark.parametrize("spec", SPECS)
def test_stream_is_valid_counted_and_chunked(spec: str) -> None:
    w = make_workload(spec, seed=5, write_ratio=0.3, fill="text")
    chunks = list(w.chunks())
    assert all(c.dtype == EVENT_DTYPE and 0 < len(c) <= CHUNK_EVENTS for c in chunks)
    events = np.concatenate(chunks)
    assert len(events) == w.total_events()
    assert first_invalid_event(events) is None
    assert w.fill == "text" and w.describe()["fill"] == "text"
    assert w.describe()["seed"] == 5 and w.describe()["spec"] == spec
    # The region: one map at the start, every range inside it.
    assert events[0]["op"] == OP_MAP and events[0]["page"] == BASE_PAGE
    ranged = events[np.isin(events["op"], (OP_READ, OP_WRITE, OP_FREE, OP_PAGEOUT))]
    end = BASE_PAGE + int(events[0]["npages"])
    assert ranged["page"].min() >= BASE_PAGE
    assert int((ranged["page"] + ranged["npages"]).max()) <= end


@pytest.mark.parametrize("spec", SPECS)
def test_description_has_the_write_ratio_only_where_it_changes_the_events(spec: str) -> None:
    # thp-frag writes every chunk it frees, as the selftest does.
    described = (
        "write_ratio" in make_workload(spec, seed=1, write_ratio=0.5, fill="half").describe()
    )
    changes = events_of(spec, write_ratio=0).tobytes() != events_of(spec, write_ratio=1).tobytes()
    assert described == changes == (not spec.startswith("thp-frag"))


@pytest.mark.parametrize("spec", SPECS)
def test_same_seed_same_stream_other_seed_other_stream(spec: str) -> None:
    a = events_of(spec, seed=1)
    assert a.tobytes() == events_of(spec, seed=1).tobytes()
    w = make_workload(spec, seed=1, write_ratio=0.3, fill="half")
    assert np.concatenate(list(w.chunks())).tobytes() == a.tobytes()  # replayable
    assert a.tobytes() != events_of(spec, seed=2).tobytes()


def test_sizes_are_pages_of_the_spec() -> None:
    for spec, pages in [("seq:256MiB:0", 65536), ("rand:64KiB:1", 16), ("zipf:1GiB:1", 262144)]:
        w = make_workload(spec, seed=0, write_ratio=0.0, fill="zero")
        assert w.describe()["size_pages"] == pages
        assert next(iter(w.chunks()))[0]["npages"] == pages


def test_seq_populates_in_order_then_sweeps() -> None:
    ev = events_of("seq:1MiB:2", write_ratio=0.0)
    npages = 256
    populate = ev[1 : 1 + npages // POPULATE_RUN]
    assert (populate["op"] == OP_WRITE).all()
    assert (populate["page"] == BASE_PAGE + np.arange(0, npages, POPULATE_RUN)).all()
    assert (populate["npages"] == POPULATE_RUN).all()
    passes = ev[1 + npages // POPULATE_RUN :]
    assert len(passes) == 2 * npages
    assert (passes["op"] == OP_READ).all()
    assert (passes["page"] == np.tile(BASE_PAGE + np.arange(npages), 2)).all()


def test_populate_run_shorter_at_an_odd_end() -> None:
    ev = events_of("seq:72KiB:0")
    assert ev["npages"][1:].tolist() == [16, 2]


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.7, 1.0])
def test_write_ratio_sets_the_share_of_writes(ratio: float) -> None:
    accesses = 50_000
    ev = events_of(f"rand:4MiB:{accesses}", write_ratio=ratio)[-accesses:]
    share = float((ev["op"] == OP_WRITE).mean())
    sigma = math.sqrt(ratio * (1 - ratio) / accesses)
    assert abs(share - ratio) <= 4 * sigma
    assert set(np.unique(ev["op"]).tolist()) <= {OP_READ, OP_WRITE}


def test_rand_is_uniform_over_the_region() -> None:
    accesses = 200_000
    ev = events_of(f"rand:256KiB:{accesses}")[-accesses:]
    counts = np.bincount((ev["page"] - BASE_PAGE).astype(np.int64), minlength=64)
    expected = accesses / 64
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 120  # 63 degrees of freedom; p < 1e-5 above this


def test_zipf_unscrambled_hot_pages_come_first() -> None:
    accesses = 100_000
    ev = events_of(f"zipf:4MiB:{accesses}:scramble=no")[-accesses:]
    counts = np.bincount((ev["page"] - BASE_PAGE).astype(np.int64), minlength=1024)
    assert counts.argmax() == 0
    assert counts[0] > counts[1] > counts[10] > counts[500]


def test_zipf_scrambled_scatters_hot_pages() -> None:
    accesses = 100_000
    ev = events_of(f"zipf:4MiB:{accesses}")[-accesses:]
    counts = np.bincount((ev["page"] - BASE_PAGE).astype(np.int64), minlength=1024)
    hottest = np.argsort(counts)[::-1][:10]
    assert hottest.max() > 100  # not clustered at the start
    assert counts.max() / accesses > 0.03  # but still skewed (1/26.47 for the top)


def test_churn_frees_random_halves_and_reallocates_them() -> None:
    ev = events_of("churn:1MiB:3", write_ratio=0.0)
    block, nblocks = 16, 16
    body = ev[1 + 256 // POPULATE_RUN :]
    per_round = 2 * (nblocks // 2) + (nblocks // 2) * block
    assert len(body) == 3 * per_round
    seen = set()
    for r in range(3):
        rnd = body[r * per_round : (r + 1) * per_round]
        frees, writes = rnd[: nblocks // 2], rnd[-(nblocks // 2) :]
        touches = rnd[nblocks // 2 : -(nblocks // 2)]
        assert (frees["op"] == OP_FREE).all() and (frees["npages"] == block).all()
        freed = set((frees["page"] - BASE_PAGE).tolist())
        assert len(freed) == nblocks // 2 and all(p % block == 0 for p in freed)
        assert (writes["op"] == OP_WRITE).all()
        assert set((writes["page"] - BASE_PAGE).tolist()) == freed
        touched = (touches["page"] - BASE_PAGE).tolist()
        assert touched == sorted(touched) and len(set(touched)) == len(touched)
        assert {p // block for p in touched} == set(range(nblocks)) - {p // block for p in freed}
        seen.add(frozenset(freed))
    assert len(seen) > 1  # halves differ between rounds


def test_thp_frag_follows_the_selftest() -> None:
    w = make_workload("thp-frag", seed=3, write_ratio=0.3, fill="half")
    assert w.describe()["size_pages"] == 15360 and w.describe()["frees"] == 256
    ev = np.concatenate(list(w.chunks()))
    assert w.total_events() == len(ev) == 2 + 100 * (2 * 256 + 1)
    # mmap, then MADV_HUGEPAGE of the whole region, as the test does.
    assert [int(op) for op in ev[:2]["op"]] == [OP_MAP, OP_HUGEPAGE]
    assert (ev[:2]["npages"] == 15360).all()
    rounds = ev[2:].reshape(100, 513)
    assert (rounds[:, -1]["op"] == OP_PAGEOUT).all()
    assert (rounds[:, -1]["npages"] == 15360).all()
    body = rounds[:, :-1].reshape(-1, 2)
    assert (body[:, 0]["op"] == OP_FREE).all() and (body[:, 1]["op"] == OP_WRITE).all()
    assert (body[:, 0]["page"] == body[:, 1]["page"]).all()
    assert ((body[:, 0]["page"] - BASE_PAGE) % 16 == 0).all()
    assert (body["npages"] == 16).all()
    # Picks repeat within a round, as rand() % 960 does: ~225 distinct of 256.
    distinct = [len(np.unique(r[:-1]["page"])) for r in rounds]
    assert 200 < np.mean(distinct) < 245


def test_thp_frag_small_region_is_nohugepage_4k_pieces() -> None:
    w = make_workload("thp-frag:small=yes:rounds=2", seed=1, write_ratio=0.3, fill="half")
    ev = np.concatenate(list(w.chunks()))
    assert w.total_events() == len(ev)
    small = ev[(ev["page"] >= w.small_page) & (ev["op"] != OP_PAGEOUT)]
    assert [int(op) for op in small[:2]["op"]] == [OP_MAP, OP_NOHUGEPAGE]
    pieces = small[2:]
    assert len(pieces) == 2 * 2 * 192 and (pieces["npages"] == 1).all()
    assert (pieces["page"] < w.small_page + 256).all()
    # The small region never touches the 60 MiB one.
    assert w.small_page > BASE_PAGE + 15360


def test_thp_frag_scales_frees_with_size() -> None:
    w = make_workload("thp-frag:120MiB:1", seed=0, write_ratio=0, fill="half")
    assert w.describe()["frees"] == 512
    w = make_workload("thp-frag:60MiB:1:chunk=32KiB", seed=0, write_ratio=0, fill="half")
    assert w.describe()["frees"] == 512


def _libc_rand(seed: int, n: int) -> list[int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "gnu_get_libc_version"):
        return None
    libc.srand(ctypes.c_uint(seed))
    return [libc.rand() for _ in range(n)]


@pytest.mark.parametrize("seed", [0, 1, 42, 2**31 + 7, 2**32 - 1])
def test_glibc_rand_matches_the_c_library(seed: int) -> None:
    want = _libc_rand(seed, 3000)
    if want is None:
        pytest.skip("not glibc")
    assert glibc_rand(seed, 3000).tolist() == want


def test_thp_frag_glibc_picks_the_selftest_chunks() -> None:
    want = _libc_rand(1, 2 * 256)
    if want is None:
        pytest.skip("not glibc")
    w = make_workload("thp-frag:60MiB:2:rng=glibc", seed=1, write_ratio=0, fill="half")
    ev = np.concatenate(list(w.chunks()))
    frees = ev[ev["op"] == OP_FREE]
    assert ((frees["page"] - BASE_PAGE) // 16).tolist() == [r % 960 for r in want]


def test_fallback_percentage_is_the_selftest_formula() -> None:
    before = {"swpout": 100, "swpout_fallback": 5}
    assert fallback_percentage(before, {"swpout": 175, "swpout_fallback": 30}) == 25.0
    assert fallback_percentage(before, {"swpout": 300, "swpout_fallback": 5}) == 0.0
    assert math.isnan(fallback_percentage(before, before))


def test_fork_shares_then_touches_slices_then_exits() -> None:
    ev = events_of("fork:1MiB:5", write_ratio=0.5)
    npages = 256
    setup = 1 + npages // POPULATE_RUN
    assert ev[setup]["op"] == OP_PAGEOUT and ev[setup]["npages"] == npages
    forks = ev[setup + 1 : setup + 6]
    assert (forks["op"] == OP_FORK).all() and (forks["pid"] == MAIN_PID).all()
    children = forks["page"].tolist()
    assert children == [2, 3, 4, 5, 6]
    exits = ev[-5:]
    assert (exits["op"] == OP_EXIT).all() and exits["pid"].tolist() == children
    touches = ev[setup + 6 : -5]
    assert len(touches) == npages
    for i, pid in enumerate(children):
        mine = touches[touches["pid"] == pid]
        lo, hi = i * npages // 5, (i + 1) * npages // 5
        assert (mine["page"] - BASE_PAGE).tolist() == list(range(lo, hi))
    assert set(np.unique(touches["op"]).tolist()) == {OP_READ, OP_WRITE}


def test_fork_rounds_use_new_pids() -> None:
    ev = events_of("fork:64KiB:3:rounds=2:pageout=no")
    assert not (ev["op"] == OP_PAGEOUT).any()
    assert ev[ev["op"] == OP_FORK]["page"].tolist() == [2, 3, 4, 5, 6, 7]
    assert ev[ev["op"] == OP_EXIT]["pid"].tolist() == [2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("nosuch:1MiB", "unknown workload 'nosuch:1MiB'"),
        ("zipf:12XB:10", "unknown unit 'XB'"),
        ("zipf:1MiB", "missing ACCESSES"),
        ("zipf:8MiB:1e30", "is more than 1e+12"),  # once a run without end
        ("seq:1MiB:1:2", "too many arguments"),
        ("zipf:1MiB:10:color=red", "unknown option 'color'"),
        ("zipf:1MiB:10:1.5", "strictly between 0 and 1"),
        ("zipf:1MiB:ten", "not a count"),
        ("rand:1000:10", "not a multiple of the 4 KiB page size"),
        ("rand:0:10", "less than one page"),
        ("thp-frag:100KiB", "multiple of the chunk"),
        ("thp-frag:rng=mt", "not numpy or glibc"),
        ("churn:64KiB:3", "at least two blocks"),
        ("fork:8KiB:3", "more CHILDREN than pages"),
        ("fork:1MiB:0", "CHILDREN must be at least 1"),
        ("zipf:1MiB:10:theta=0.5:0.6", "positional '0.6' after key=value"),
        ("zipf:1MiB:10:theta=0.5:theta=0.6", "theta given twice"),
        ("fork:1MiB:2:pageout=maybe", "not yes or no"),
    ],
)
def test_bad_specs_end_in_one_line(spec: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_workload(spec, seed=0, write_ratio=0.5, fill="half")
    message = str(info.value)
    assert needle in message and "\n" not in message


def test_bad_common_options() -> None:
    with pytest.raises(ConfigError, match="fill 'purple'"):
        make_workload("seq:1MiB", seed=0, write_ratio=0.5, fill="purple")
    with pytest.raises(ConfigError, match="write ratio"):
        make_workload("seq:1MiB", seed=0, write_ratio=1.5, fill="half")
    with pytest.raises(ConfigError, match="seed"):
        make_workload("seq:1MiB", seed=-1, write_ratio=0.5, fill="half")


@pytest.mark.parametrize(
    ("text", "value"),
    [("1000", 1000), ("1_000", 1000), ("1e6", 10**6), ("10k", 10**4), ("5M", 5 * 10**6),
     ("1.5k", 1500), ("2G", 2 * 10**9)],
)  # fmt: skip
def test_counts(text: str, value: int) -> None:
    assert parse_count(text) == value


def test_big_zipf_streams_in_bounded_chunks() -> None:
    w = make_workload("zipf:16GiB:3M", seed=0, write_ratio=0.5, fill="random")
    total = 0
    for chunk in w.chunks():
        assert len(chunk) <= CHUNK_EVENTS
        total += len(chunk)
    assert total == w.total_events() == 1 + (16 << 30) // 4096 // POPULATE_RUN + 3_000_000


@pytest.mark.parametrize("spec", ["seq:16TiB", "zipf:1EiB:10", "fork:32TiB:2", "thp-frag:1PiB"])
def test_a_size_one_event_cannot_cover_is_refused(spec: str) -> None:
    # The map event's npages is a u32: these once ended in an OverflowError.
    with pytest.raises(ConfigError, match="more than one event covers"):
        list(make_workload(spec, seed=1, write_ratio=0.3, fill="half").chunks())


def test_the_largest_size_one_event_covers_is_accepted() -> None:
    spec = f"seq:{((1 << 32) - 1) * 4096}"
    first = next(make_workload(spec, seed=1, write_ratio=0.3, fill="half").chunks())
    assert int(first["npages"][0]) == (1 << 32) - 1
