"""ghostswap: the Linux swap-table swap subsystem and the dynamic ghost swap
device as an executable model that stores real pages.

Layers, each depending only on those before it: ``kernel`` (primitives),
``mm`` (the swap model and the VM around it), storage, workloads,
``measure`` (counters, accounting, reports), ``cli`` (front ends).
"""

__version__ = "0.1.0"
