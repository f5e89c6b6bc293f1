"""Storage: where swapped-out page contents go (layer 4).

Page contents are content tokens (:mod:`.content`) that expand to real
bytes; stores (:mod:`.base`) keep them per slot: in memory or in a file.
"""
