"""How users describe swap devices: ``KIND[:SIZE][:OPTION...]``.

Examples: ``ghost`` and ``ghost:8x`` (8 times RAM, the seed's default),
``ghost:64GiB``, ``file:32GiB``, ``zram:1GiB:prio=10``,
``partition:16GiB:rotational:discard``. Options: ``prio=N``,
``rotational``, ``discard``, ``large`` / ``nolarge`` (allow or refuse
large entries, overriding the kind's block-device rule).
"""

from __future__ import annotations

from ghostswap.errors import ConfigError
from ghostswap.mm.swapon import DEVICE_KINDS, GHOST_DEFAULT_MULTIPLE, SwapSpec, swapon_spec
from ghostswap.units import parse_size_pages

__all__ = ["SwapSpec", "parse_swap_spec", "swapon_spec"]


def parse_swap_spec(text: str) -> SwapSpec:
    """Parse ``KIND[:SIZE][:OPTION...]``; raise ConfigError naming the problem."""
    parts = [p.strip() for p in str(text).split(":")]
    kind = parts[0]
    if kind not in DEVICE_KINDS:
        raise ConfigError(
            f"swap device {text!r}: unknown kind {kind!r} (one of {', '.join(DEVICE_KINDS)})"
        )
    size_pages: int | None = None
    multiple: int | None = None
    options = parts[1:]
    if options and options[0] and _is_size(options[0]):
        size_text = options.pop(0)
        if size_text.lower().endswith("x"):
            if kind != "ghost":
                raise ConfigError(f"swap device {text!r}: only a ghost device is sized in x RAM")
            try:
                multiple = int(size_text[:-1])
            except ValueError:
                raise ConfigError(f"swap device {text!r}: {size_text!r} is not N x RAM") from None
            if multiple < 1:
                raise ConfigError(f"swap device {text!r}: the multiple of RAM must be >= 1")
        else:
            size_pages = parse_size_pages(size_text, f"swap device {text!r}")
    elif kind != "ghost":
        raise ConfigError(f"swap device {text!r}: a {kind} device needs a size, e.g. {kind}:4GiB")
    prio = None
    rotational = discard = False
    large: bool | None = None
    seen: set[str] = set()
    for option in options:
        name, _, value = option.partition("=")
        key = "large" if name == "nolarge" else name
        if key in seen:
            raise ConfigError(f"swap device {text!r}: {option!r} repeats or contradicts an option")
        seen.add(key)
        if name == "prio":
            try:
                prio = int(value)
            except ValueError:
                raise ConfigError(f"swap device {text!r}: prio={value!r} is not a number") from None
            if not -1 <= prio <= 32767:
                raise ConfigError(f"swap device {text!r}: prio must be in -1..32767")
        elif name == "rotational" and not value:
            rotational = True
        elif name == "discard" and not value:
            discard = True
        elif name in ("large", "nolarge") and not value:
            large = name == "large"
        else:
            raise ConfigError(
                f"swap device {text!r}: unknown option {option!r} "
                "(prio=N, rotational, discard, large, nolarge)"
            )
    if kind == "ghost" and size_pages is None and multiple is None:
        multiple = GHOST_DEFAULT_MULTIPLE
    return SwapSpec(kind, size_pages, multiple, prio, rotational, discard, large, text)


def _is_size(token: str) -> bool:
    # A sign or a point starts a (bad) size too, so "-1GiB" is refused as a
    # size, not as an unknown option.
    return bool(token) and (token[0].isdigit() or token[0] in "+-.")
