"""The host kernel side of calibration: swap devices, a memory cgroup and
sysfs knobs, each set up as a context manager that undoes exactly what it
did — on success, on error and on Ctrl-C.

Everything here needs root. Nothing is installed: swap headers are written
by :func:`swap_header` and swapon/swapoff are called through libc, so the
host needs no util-linux.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path

from ghostswap.errors import GhostswapError

__all__ = [
    "HostError",
    "Knobs",
    "MemCgroup",
    "active_swaps",
    "require_root",
    "swap_file",
    "swap_header",
    "zram_swap",
]

PAGE_SIZE = 4096
SWAP_FLAG_PREFER = 0x8000
SWAP_FLAG_PRIO_MASK = 0x7FFF
ZRAM_CONTROL = Path("/sys/class/zram-control")


class HostError(GhostswapError):
    """The host cannot do what calibration needs (not root, no cgroup, ...)."""


def require_root() -> None:
    if os.geteuid() != 0:
        raise HostError(
            "calibrate needs root: it creates a swap device and a memory cgroup "
            "(run it as root, e.g. with sudo)"
        )


# -- sysfs and procfs knobs ------------------------------------------------------------
def read_knob(path: str | Path) -> str:
    """A knob's value; for a ``[selected]`` list, the selected word."""
    text = Path(path).read_text().strip()
    match = re.search(r"\[([^\]]+)\]", text)
    return match.group(1) if match else text


def write_knob(path: str | Path, value: str) -> None:
    try:
        Path(path).write_text(f"{value}\n")
    except OSError as err:
        raise HostError(f"cannot write {value!r} to {path}: {err.strerror}") from None


class Knobs(contextlib.AbstractContextManager["Knobs"]):
    """Sets knobs, remembering each original value; restores them all on exit."""

    def __init__(self) -> None:
        self.saved: dict[str, str] = {}

    def set(self, path: str | Path, value: str) -> None:
        key = str(path)
        if key not in self.saved:
            self.saved[key] = read_knob(key)
        if read_knob(key) != value:
            write_knob(key, value)

    def __exit__(self, *exc: object) -> None:
        errors = []
        for path, value in reversed(list(self.saved.items())):
            try:
                if read_knob(path) != value:
                    write_knob(path, value)
            except (OSError, HostError) as err:
                errors.append(f"{path}: {err}")
        self.saved.clear()
        if errors:
            raise HostError("could not restore " + "; ".join(errors))


# -- swap devices -------------------------------------------------------------------------
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _swapon(path: str, prio: int | None) -> None:
    flags = 0 if prio is None else SWAP_FLAG_PREFER | (prio & SWAP_FLAG_PRIO_MASK)
    if _libc.swapon(path.encode(), flags) != 0:
        err = ctypes.get_errno()
        raise HostError(f"swapon {path}: {os.strerror(err)}")


def _swapoff(path: str) -> None:
    if _libc.swapoff(path.encode()) != 0:
        err = ctypes.get_errno()
        raise HostError(f"swapoff {path}: {os.strerror(err)}")


def swap_header(size_bytes: int, label: str = "ghostswap") -> bytes:
    """A version-1 swap header page (what mkswap writes) for a device of
    `size_bytes`."""
    pages = size_bytes // PAGE_SIZE
    if pages < 10:
        raise HostError("a swap device needs at least 10 pages")
    header = bytearray(PAGE_SIZE)
    # union swap_header.info: bootbits[1024], version, last_page, nr_badpages,
    # sws_uuid[16], sws_volume[16]
    struct.pack_into("<III", header, 1024, 1, pages - 1, 0)
    header[1024 + 12 + 16 : 1024 + 12 + 16 + len(label)] = label.encode()[:16]
    header[PAGE_SIZE - 10 :] = b"SWAPSPACE2"
    return bytes(header)


def active_swaps() -> list[str]:
    """The devices /proc/swaps lists."""
    lines = Path("/proc/swaps").read_text().splitlines()[1:]
    return [line.split()[0] for line in lines if line.strip()]


def swap_used_kib() -> int:
    """Total KiB in use on all swap devices (/proc/swaps)."""
    total = 0
    for line in Path("/proc/swaps").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 4:
            total += int(fields[3])
    return total


@contextlib.contextmanager
def swap_file(directory: str | Path, size_bytes: int, prio: int | None = None) -> Iterator[str]:
    """A swap file in `directory`, swapped on; swapped off and deleted after."""
    directory = Path(directory)
    fd, name = _mkstemp(directory)
    swapped = False
    try:
        try:
            os.posix_fallocate(fd, 0, size_bytes)
        except OSError as err:
            raise HostError(
                f"cannot allocate a {size_bytes}-byte swap file in {directory}: {err.strerror}"
            ) from None
        os.pwrite(fd, swap_header(size_bytes), 0)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        _swapon(name, prio)
        swapped = True
        yield name
    finally:
        if fd >= 0:
            os.close(fd)
        try:
            if swapped:
                _swapoff(name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)


def _mkstemp(directory: Path) -> tuple[int, str]:
    if not directory.is_dir():
        raise HostError(f"swap file directory {directory} does not exist")
    name = str(directory / f"ghostswap-calibrate-{os.getpid()}.swap")
    try:
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as err:
        raise HostError(f"cannot create {name}: {err.strerror}") from None
    return fd, name


@contextlib.contextmanager
def zram_swap(size_bytes: int, algorithm: str, prio: int | None = None) -> Iterator[str]:
    """A hot-added zram device used as swap; swapped off, reset and removed after."""
    if not ZRAM_CONTROL.is_dir():
        raise HostError("this kernel has no zram (no /sys/class/zram-control)")
    index = int((ZRAM_CONTROL / "hot_add").read_text())
    block = Path(f"/sys/block/zram{index}")
    device = f"/dev/zram{index}"
    swapped = False
    try:
        available = (block / "comp_algorithm").read_text().replace("[", "").replace("]", "")
        if algorithm not in available.split():
            raise HostError(f"zram has no {algorithm!r} compressor (it has: {available.strip()})")
        write_knob(block / "comp_algorithm", algorithm)
        write_knob(block / "disksize", str(size_bytes))
        _wait_for(device)
        with open(device, "r+b", buffering=0) as dev:
            dev.write(swap_header(size_bytes))
            os.fsync(dev.fileno())
        _swapon(device, prio)
        swapped = True
        yield device
    finally:
        try:
            if swapped:
                _swapoff(device)
        finally:
            write_knob(block / "reset", "1")
            write_knob(ZRAM_CONTROL / "hot_remove", str(index))


def _wait_for(path: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise HostError(f"{path} did not appear")
        time.sleep(0.05)


# -- the memory cgroup --------------------------------------------------------------------
def _memory_cgroup_root() -> tuple[Path, str]:
    """(mount point of the v1 memory controller, this process's cgroup in it)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        fstype, options = fields[sep + 1], fields[sep + 3]
        if fstype == "cgroup" and "memory" in options.split(","):
            mount = Path(fields[4])
            for entry in Path("/proc/self/cgroup").read_text().splitlines():
                _, controllers, path = entry.split(":", 2)
                if "memory" in controllers.split(","):
                    return mount, path.lstrip("/")
            return mount, ""
    raise HostError(
        "no cgroup v1 memory controller is mounted (calibrate drives memory.limit_in_bytes)"
    )


class MemCgroup(contextlib.AbstractContextManager["MemCgroup"]):
    """A child memory cgroup (v1) with a limit; removed on exit."""

    def __init__(self, limit_bytes: int, name: str | None = None) -> None:
        mount, own = _memory_cgroup_root()
        self.path = mount / own / (name or f"ghostswap-calibrate-{os.getpid()}")
        self.limit_bytes = limit_bytes

    def __enter__(self) -> MemCgroup:
        try:
            self.path.mkdir()
        except OSError as err:
            raise HostError(f"cannot create memory cgroup {self.path}: {err.strerror}") from None
        write_knob(self.path / "memory.limit_in_bytes", str(self.limit_bytes))
        return self

    def add(self, pid: int) -> None:
        write_knob(self.path / "cgroup.procs", str(pid))

    def stat(self) -> dict[str, int]:
        out = {}
        for line in (self.path / "memory.stat").read_text().splitlines():
            key, value = line.split()
            out[key] = int(value)
        return out

    def read_int(self, name: str) -> int:
        return int((self.path / name).read_text())

    def __exit__(self, *exc: object) -> None:
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)  # the last task is still being torn down
        raise HostError(f"could not remove memory cgroup {self.path}")
