"""Which build this is (rewritten by ghostswap.native)."""

NATIVE = False
