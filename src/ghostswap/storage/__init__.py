"""Storage: where swapped-out page contents go (layer 4).

Page contents are content tokens (:mod:`ghostswap.mm.content`) that expand
to real bytes; stores (:mod:`.base`) keep them per slot: in memory or in a
file. The VM never imports this package: front ends pass a machine
:func:`.base.store_factory`.
"""
