"""kzalloc/kfree with poisoning (mm/slub.c, include/linux/slab.h).

``kfree`` turns an object into a poisoned twin of its class: any attribute
read or write, item access or iteration raises :class:`UseAfterFree` naming
the function that freed it. The twin shares the class layout (it only adds
methods), so the swap costs one ``__class__`` assignment.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from ghostswap.kernel import runtime as _rt
from ghostswap.kernel.bug import UseAfterFree
from ghostswap.kernel.gfp import might_alloc, should_fail_alloc

__all__ = ["is_poisoned", "kfree", "kzalloc", "site_of"]

T = TypeVar("T")

_poisoned: dict[type, type] = {}
# Checked mode only: who freed each poisoned object still alive.
_free_sites: dict[int, str] = {}


def site_of(depth: int = 2) -> str:
    """The calling kernel function's name, recorded in checked mode only."""
    if _rt.checked is None:
        return ""
    return sys._getframe(depth).f_code.co_name


def _trap(obj: object, what: str) -> UseAfterFree:
    cls = type(obj).__mro__[1].__name__
    site = _free_sites.get(id(obj), "")
    where = f", freed in {site}()" if site else ""
    return UseAfterFree(f"{what} of a freed {cls}{where}")


def _poisoned_class(cls: type) -> type:
    twin = _poisoned.get(cls)
    if twin is not None:
        return twin

    def getattribute(self: object, name: str) -> object:
        if name == "__class__":
            return object.__getattribute__(self, name)
        raise _trap(self, f"read of .{name}")

    def setattr_(self: object, name: str, value: object) -> None:
        raise _trap(self, f"write of .{name}")

    def getitem(self: object, key: object) -> object:
        raise _trap(self, f"read of [{key}]")

    def setitem(self: object, key: object, value: object) -> None:
        raise _trap(self, f"write of [{key}]")

    def iter_(self: object) -> object:
        raise _trap(self, "iteration")

    def len_(self: object) -> int:
        raise _trap(self, "len()")

    namespace: dict[str, object] = {
        "__slots__": (),
        "__getattribute__": getattribute,
        "__setattr__": setattr_,
        "__getitem__": getitem,
        "__setitem__": setitem,
        "__iter__": iter_,
        "__len__": len_,
        "__repr__": lambda self: f"<freed {cls.__name__}>",
    }
    twin = type(f"Freed{cls.__name__}", (cls,), namespace)
    _poisoned[cls] = twin
    return twin


def kzalloc(factory: Callable[[], T], gfp: int, site: str) -> T | None:
    """Allocate with `factory`, or return None when injection fails `site`."""
    might_alloc(gfp, site)
    if should_fail_alloc(site, gfp):
        return None
    return factory()


def kfree(obj: object, site: str | None = None) -> None:
    """Free `obj`: from now on every access to it raises UseAfterFree."""
    if obj is None:
        return
    cls = type(obj)
    if cls in _poisoned.values():
        raise _trap(obj, "double free")
    if _rt.checked is not None:
        _free_sites[id(obj)] = site if site is not None else site_of()
    obj.__class__ = _poisoned_class(cls)


def is_poisoned(obj: object) -> bool:
    return type(obj) in _poisoned.values()
