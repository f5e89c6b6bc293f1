import os

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from ghostswap.errors import ConfigError
from ghostswap.mm.content import (
    BAD_TOKEN,
    FILL_KINDS,
    PAGE_SIZE,
    ZERO_TOKEN,
    expand,
    make_token,
    token_of,
)
from ghostswap.storage.base import make_store


@given(st.sampled_from([1, 2, 3]), st.integers(min_value=0, max_value=(1 << 60) - 1))
def test_tokens_round_trip_through_their_bytes(kind, serial):
    token = make_token(kind, serial)
    data = expand(token)
    assert len(data) == PAGE_SIZE
    assert token_of(data) == token
    assert expand(token) == data  # deterministic


def test_zero_token_is_the_zero_page_and_zero_kind_is_always_zero():
    assert expand(ZERO_TOKEN) == bytes(PAGE_SIZE)
    assert make_token(FILL_KINDS["zero"], 1234) == ZERO_TOKEN
    assert token_of(bytes(PAGE_SIZE)) == ZERO_TOKEN


def test_corrupted_bytes_are_detected():
    data = bytearray(expand(make_token(3, 99)))
    data[2000] ^= 1
    assert token_of(bytes(data)) == BAD_TOKEN
    assert token_of(b"short") == BAD_TOKEN


def test_fill_kinds_have_the_promised_compressibility():
    c = zstandard.ZstdCompressor(level=1)

    def ratio(kind):
        sizes = [len(c.compress(expand(make_token(kind, i)))) for i in range(1, 50)]
        return PAGE_SIZE * len(sizes) / sum(sizes)

    assert ratio(1) < 1.05  # random
    assert 1.7 < ratio(2) < 2.3  # half
    assert ratio(3) > 2.3  # text


def test_pages_with_different_serials_differ():
    assert expand(make_token(3, 1)) != expand(make_token(3, 2))


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_store_keeps_each_slot(kind, tmp_path):
    store = make_store(kind, "dev0", 4096, str(tmp_path))
    try:
        tokens = {off: make_token(3, off * 7 + 1) for off in (1, 2, 511, 512, 4000)}
        for off, tok in tokens.items():
            store.write_page(off, tok)
        assert store.stored_pages() == len(tokens)
        for off, tok in tokens.items():
            assert store.read_page(off) == tok
        assert store.read_page(3) == BAD_TOKEN  # never written
        store.discard(511, 2)
        assert store.read_page(511) == BAD_TOKEN
        assert store.stored_pages() == len(tokens) - 2
    finally:
        store.close()


def test_file_store_writes_real_bytes_at_the_slot_offset(tmp_path):
    store = make_store("file", "swapfile", 64, str(tmp_path))
    token = make_token(1, 42)
    store.write_page(5, token)
    with open(store.path, "rb") as f:
        f.seek(5 * PAGE_SIZE)
        assert f.read(PAGE_SIZE) == expand(token)
    # Damage the file: the read no longer verifies.
    fd = os.open(store.path, os.O_RDWR)
    os.pwrite(fd, b"\xff", 5 * PAGE_SIZE + 100)
    os.close(fd)
    assert store.read_page(5) == BAD_TOKEN
    path = store.path
    store.close()
    assert not os.path.exists(path)


def test_unknown_store_kind():
    with pytest.raises(ConfigError, match="unknown store"):
        make_store("tape", "x", 10)
