"""Record a real program's memory accesses as a binary trace, with lackey.

Runs ``valgrind --tool=lackey --trace-mem=yes --log-file=FIFO -- CMD``
where FIFO is a named pipe in a private temporary directory, and streams
what valgrind writes through the lackey reader into a
:class:`~ghostswap.workload.trace_binary.BinaryWriter`: the lackey text,
often gigabytes, never touches the disk. The program keeps its own stdin,
stdout and stderr.

Clean-up is unconditional: on any error or Ctrl-C the valgrind process
this started (and only it) is terminated, the temporary directory and the
half-written output removed. The trace ends when the started process
exits; output of forked children that outlive it is lost, and all
processes' accesses carry one pid (lackey does not say whose they are).
"""

from __future__ import annotations

import os
import select
import shlex
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ghostswap.errors import ConfigError, TraceError
from ghostswap.workload.trace_binary import BinaryWriter
from ghostswap.workload.trace_common import TraceOptions
from ghostswap.workload.trace_lackey import parse_lackey

__all__ = ["RecordResult", "record_lackey"]

POLL_MS = 200
TERMINATE_WAIT_S = 5.0


@dataclass(frozen=True)
class RecordResult:
    events: int
    exit_status: int
    valgrind_messages: list[str]


def _valgrind() -> str:
    path = shutil.which("valgrind")
    if path is None:
        raise ConfigError(
            "valgrind is not installed (ghostswap trace record runs valgrind --tool=lackey; "
            "install it, e.g. apt-get install valgrind)"
        )
    return path


class _FifoReader:
    """File-like reads from a FIFO that end when the writer closes it or
    the process `proc` has exited (even if it never opened the FIFO)."""

    def __init__(self, path: str, proc: subprocess.Popen[bytes]) -> None:
        # Non-blocking open: a blocking one would hang if valgrind dies
        # before opening its log file.
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._proc = proc
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN | select.POLLHUP)
        self.connected = False

    def read(self, size: int = -1) -> bytes:
        size = size if size > 0 else 1 << 20
        while True:
            events = self._poll.poll(POLL_MS)
            exited = self._proc.poll() is not None
            if events or exited:
                try:
                    data = os.read(self._fd, size)
                except BlockingIOError:
                    # A writer holds the FIFO but has nothing for us yet.
                    self.connected = True
                    if exited:
                        return b""
                    continue
                if data:
                    self.connected = True
                    return data
                # 0 bytes: no writer. EOF once one came and went, or the
                # process is gone; before that, a FIFO reports nothing.
                hung_up = any(mask & select.POLLHUP for _, mask in events)
                if hung_up or exited:
                    return b""

    def close(self) -> None:
        os.close(self._fd)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the process we started, if it still runs; kill if it lingers."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(TERMINATE_WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def record_lackey(
    command: list[str],
    out: str,
    options: TraceOptions | None = None,
    progress: Callable[[int], object] | None = None,
) -> RecordResult:
    """Run `command` under lackey and write its accesses to `out` (binary)."""
    options = options or TraceOptions()
    if not command:
        raise ConfigError("nothing to record: give the command after --")
    valgrind = _valgrind()
    if "/" not in command[0] and shutil.which(command[0]) is None:
        raise ConfigError(f"{command[0]}: command not found")
    messages: deque[str] = deque(maxlen=40)
    meta = {
        "workload": "trace",
        "format": "lackey",
        "command": command,
        "include_instructions": options.include_instructions,
        "coalesce": options.coalesce,
        "pid": options.pid,
    }
    tmpdir = tempfile.mkdtemp(prefix="ghostswap-record-")
    proc: subprocess.Popen[bytes] | None = None
    try:
        fifo = os.path.join(tmpdir, "lackey.fifo")
        os.mkfifo(fifo, 0o600)
        argv = [valgrind, "--tool=lackey", "--trace-mem=yes", f"--log-file={fifo}", "--", *command]
        try:
            proc = subprocess.Popen(argv)
        except OSError as err:
            raise ConfigError(f"cannot run valgrind: {err.strerror or err}") from None
        reader = _FifoReader(fifo, proc)
        try:
            with BinaryWriter(out, meta) as writer:
                for events in parse_lackey(reader, f"valgrind output of {shlex.join(command)}",
                                           options, messages):  # fmt: skip
                    writer.write(events)
                    if progress is not None:
                        progress(writer.count)
                status = proc.wait()
                if not reader.connected:
                    raise TraceError(
                        f"valgrind exited with status {status} before writing a trace "
                        f"(command: {shlex.join(command)})"
                    )
        finally:
            reader.close()
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(tmpdir, ignore_errors=True)
    return RecordResult(writer.count, status, list(messages))
