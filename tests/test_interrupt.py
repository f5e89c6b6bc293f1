import os
import signal

import pytest

from ghostswap.interrupt import SIGNALS, Terminated, interrupt_as_keyboard


@pytest.fixture(autouse=True)
def default_dispositions():
    """The signals at their default action, whatever the test runner
    inherited (under nohup or as a background job some start ignored)."""
    old = {sig: signal.signal(sig, signal.SIG_DFL) for sig in SIGNALS}
    yield
    for sig, handler in old.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_unwinds_and_the_old_handlers_come_back(sig):
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    cleaned = False
    with pytest.raises(Terminated) as caught, interrupt_as_keyboard():
        try:
            os.kill(os.getpid(), sig)
        finally:
            cleaned = True
    assert caught.value.signum == sig and cleaned
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_second_signal_does_not_cut_the_clean_up_short():
    steps = []
    with pytest.raises(Terminated), interrupt_as_keyboard():
        try:
            os.kill(os.getpid(), signal.SIGHUP)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # ignored until the block ends
            steps.append("after the second signal")
    assert steps == ["after the second signal"]


def test_an_ignored_signal_stays_ignored():
    # nohup starts the command with SIGHUP ignored.
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with interrupt_as_keyboard():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, old)
