"""``ghostswap check``: explore interleavings of concurrent swap operations.

Scenarios (:mod:`.scenarios`) run a few modelled CPUs over a small swap
subsystem in the checked runtime; a strategy (:mod:`.random`, :mod:`.pct`,
:mod:`.dfs`, :mod:`.replay`) picks the CPU that runs at each scheduling
point; the driver (:mod:`.driver`) turns every detection into one short
replay string (:mod:`.schedule`).
"""
