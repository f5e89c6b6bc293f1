from __future__ import annotations

import pytest

from ghostswap.errors import ConfigError
from ghostswap.units import format_bytes, parse_fraction, parse_size, parse_size_pages


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4096", 4096),
        ("4GiB", 4 << 30),
        ("64kB", 64 << 10),
        ("64KiB", 64 << 10),
        ("1.5G", 3 << 29),
        ("100pages", 409600),
        ("2TiB", 2 << 40),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "4XB", "-1G", "1.00001B", "G4"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_size(text)


def test_parse_size_pages_requires_page_multiple() -> None:
    assert parse_size_pages("8KiB") == 2
    with pytest.raises(ConfigError, match="multiple of the 4 KiB page"):
        parse_size_pages("6KiB")


def test_parse_fraction() -> None:
    assert parse_fraction("25%") == 0.25
    assert parse_fraction("0.5") == 0.5
    for bad in ("150%", "-0.1", "half"):
        with pytest.raises(ConfigError):
            parse_fraction(bad)


def test_format_bytes() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 << 30) == "3.0 GiB"
