"""ghostswap: the Linux swap-table swap subsystem and the dynamic ghost swap
device as an executable model that stores real pages.

Layers, each depending only on those before it: ``kernel`` (primitives),
``mm`` (the swap model and the VM around it), storage, workloads,
``measure`` (counters, accounting, reports), ``cli`` (front ends).
"""

__version__ = "0.1.0"

import os as _os

if _os.environ.get("GHOSTSWAP_NATIVE"):
    # Import every subpackage from the compiled copy (ghostswap/native.py).
    import sys as _sys

    from ghostswap.native import NativeBuildError as _NativeBuildError
    from ghostswap.native import activate as _activate

    try:
        __path__ = _activate(_os.environ["GHOSTSWAP_NATIVE"])
    except _NativeBuildError as _err:
        _sys.stderr.write(f"ghostswap: GHOSTSWAP_NATIVE: {_err}\n")
        raise SystemExit(2) from None
