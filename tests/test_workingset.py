from hypothesis import given
from hypothesis import strategies as st

from ghostswap.mm.swap_table import SWP_TB_FLAGS_MASK
from ghostswap.mm.workingset import EVICTION_MASK_ANON, pack_shadow, unpack_shadow
from tests.vmhelpers import make_vm, reads, run, writes


@given(st.integers(0, 0xFFFF), st.integers(0, 1023), st.integers(0, EVICTION_MASK_ANON),
       st.booleans())  # fmt: skip
def test_shadow_round_trip_and_leaves_the_table_flag_bits_free(memcg, nid, eviction, ws):
    shadow = pack_shadow(memcg, nid, eviction, ws)
    assert shadow & 1
    assert not shadow & SWP_TB_FLAGS_MASK
    assert unpack_shadow(shadow) == (memcg, nid, eviction, ws)


def test_refaults_are_counted_and_recent_ones_activated():
    with make_vm(ram_pages=256) as vm:
        # A hot set that gets activated gives the workingset a size.
        run(vm, writes(range(50)))
        for start in range(50, 1000, 10):
            run(vm, reads(range(50)), writes(range(start, start + 10)), check=False)
        assert vm.frames.lru_pages[1] > 0
        before = dict(vm.events)
        # The pages evicted last come back first: short refault distances.
        run(vm, reads(range(820, 600, -1)))
        delta = {k: vm.events[k] - before[k] for k in vm.events}
        assert delta["workingset_refault_anon"] == delta["pswpin"] > 0
        assert 0 < delta["workingset_activate_anon"] < delta["workingset_refault_anon"]
