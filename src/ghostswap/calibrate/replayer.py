"""The C program that performs a workload on the real kernel.

``replay.c`` (shipped with the package) is compiled once per source version
into the user's cache directory. :func:`write_replay_file` turns a
workload's event chunks into the file it reads.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import numpy as np

from ghostswap.calibrate.host import HostError
from ghostswap.mm.content import text_pool
from ghostswap.workload.events import EVENT_DTYPE, OP_FORK

__all__ = ["FILLS", "build_replayer", "write_replay_file"]

FILLS = {"zero": 0, "random": 1, "half": 2, "text": 3}
MAGIC = b"GSREPLAY"
VERSION = 2  # 2: the model's text pool follows the header


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ghostswap"


def build_replayer() -> Path:
    """The compiled replayer, built on first use (needs a C compiler)."""
    source = resources.files("ghostswap.calibrate").joinpath("replay.c").read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    binary = cache_dir() / f"ghostswap-replay-{digest}"
    if binary.exists():
        return binary
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise HostError("calibrate needs a C compiler (cc or gcc) to build its replayer")
    binary.parent.mkdir(parents=True, exist_ok=True)
    src = binary.with_suffix(".c")
    src.write_bytes(source)
    tmp = binary.with_name(binary.name + f".{os.getpid()}.tmp")
    result = subprocess.run(
        [compiler, "-O2", "-Wall", "-o", str(tmp), str(src)], capture_output=True, text=True
    )
    if result.returncode:
        tmp.unlink(missing_ok=True)
        raise HostError(f"building the replayer failed: {result.stderr.strip()[:500]}")
    tmp.replace(binary)
    return binary


def write_replay_file(path: Path, chunks: Iterable[np.ndarray], fill: str) -> int:
    """Write the events for the replayer; returns how many were written.

    The replayer is one process: a workload that forks cannot be replayed.
    """
    if fill not in FILLS:
        raise HostError(f"unknown fill {fill!r}")
    count = 0
    pid: int | None = None
    flags = 0
    text = text_pool() if fill == "text" else b""
    with open(path, "wb") as out:
        out.write(struct.pack("<8sIIIIQ", MAGIC, VERSION, FILLS[fill], flags, len(text), 0))
        out.write(text)
        for chunk in chunks:
            if chunk.dtype != EVENT_DTYPE:
                chunk = chunk.astype(EVENT_DTYPE)
            if len(chunk):
                pid = int(chunk["pid"][0]) if pid is None else pid
                if np.any(chunk["op"] == OP_FORK) or np.any(chunk["pid"] != pid):
                    raise HostError(
                        "calibrate replays one process: workloads that fork are not supported"
                    )
            out.write(chunk.tobytes())
            count += len(chunk)
        out.seek(0)
        out.write(struct.pack("<8sIIIIQ", MAGIC, VERSION, FILLS[fill], flags, len(text), count))
    return count
