"""Random mixes of every event kind, several processes and device kinds:
the VM and swap model invariants hold after every chunk, contents always
verify, and once every process has exited nothing is left behind."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghostswap.kernel import quiescent
from ghostswap.mm.vm_invariants import check_machine
from tests.vmhelpers import events, make_vm, run

CONFIGS = [
    ("partition:16MiB", (), False, "text"),
    ("file:16MiB:rotational", ("64kB:always",), False, "text"),
    ("zram:16MiB", ("64kB:always", "16kB:always"), False, "half"),
    ("ghost", (), True, "text"),
    ("ghost:8x:large", ("64kB:always",), True, "zero"),
    ("partition:16MiB", ("2048kB:always", "64kB:always"), True, "random"),
]

event = st.tuples(
    st.sampled_from(["w", "w", "w", "r", "r", "f", "pageout", "fork", "exit", "unmap", "map"]),
    st.integers(0, 1500),
    st.integers(1, 64),
)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c[0]}-{'+'.join(c[1])}-{c[3]}")
@settings(max_examples=6, deadline=None)
@given(
    ram=st.sampled_from([128, 256]),
    batches=st.lists(st.lists(event, min_size=1, max_size=30), min_size=1, max_size=25),
)
def test_random_event_mixes_keep_every_invariant(config, ram, batches):
    swap, mthp, zswap, fill = config
    with make_vm(ram_pages=ram, swap=(swap,), mthp=mthp, zswap=zswap,
                 zswap_max_pool_percent=50, fill=fill) as vm:  # fmt: skip
        pids = [1]
        next_pid = 2
        for batch in batches:
            rows = []
            for i, (op, page, n) in enumerate(batch):
                pid = pids[i % len(pids)]
                if op == "fork":
                    if len(pids) >= 4:
                        continue
                    rows.append((pid, "fork", next_pid, 0))
                    pids.append(next_pid)
                    next_pid += 1
                elif op == "exit":
                    if len(pids) == 1:
                        continue
                    rows.append((pid, "exit", 0, 0))
                    pids.remove(pid)
                else:
                    rows.append((pid, op, page, n if op not in ("r", "w") or n < 8 else 1))
            if rows:
                run(vm, events(rows))
        assert vm.mismatches == 0
        assert vm.verify_resident() == 0
        for pid in list(vm.mms):
            vm.exit(pid)
        quiescent()
        check_machine(vm)
        assert vm.memcg.folio_pages() == 0 and vm.memcg.zswap_bytes == 0
        assert vm.subsys.nr_swap_pages == vm.subsys.total_swap_pages
        assert vm.frames.lru_pages == [0, 0]
