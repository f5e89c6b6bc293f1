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

import contextlib
import fcntl
import os
import select
import shlex
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ghostswap.errors import ConfigError, TraceError
from ghostswap.workload.trace_binary import BinaryWriter
from ghostswap.workload.trace_common import TraceOptions
from ghostswap.workload.trace_lackey import parse_lackey

__all__ = ["RecordResult", "record_lackey"]

POLL_MS = 200
PIPE_BYTES = 1 << 20
BATCH_BYTES = 256 << 10
BATCH_WAIT_S = 0.01
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
    the process `proc` has exited (even if it never opened the FIFO).

    Valgrind writes its log in small pieces; reading each as it comes would
    wake this process for every one. Instead reads wait (briefly) until a
    batch of :data:`BATCH_BYTES` has piled up in the enlarged pipe.
    """

    def __init__(self, path: str, proc: subprocess.Popen[bytes]) -> None:
        # Non-blocking open: a blocking one would hang if valgrind dies
        # before opening its log file.
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self._proc = proc
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN | select.POLLHUP)
        self.connected = False

    def read(self, size: int = -1) -> bytes:
        size = size if size > 0 else BATCH_BYTES
        out = bytearray()
        while len(out) < size:
            try:
                data = os.read(self._fd, size - len(out))
            except BlockingIOError:
                # A writer holds the FIFO, with nothing for us right now.
                self.connected = True
                if len(out) >= min(size, BATCH_BYTES) or self._proc.poll() is not None:
                    break
                if out:
                    time.sleep(BATCH_WAIT_S)
                else:
                    self._poll.poll(POLL_MS)
                continue
            if data:
                self.connected = True
                out += data
                continue
            # 0 bytes: no writer. The end, once one came and went or the
            # process is gone; before that, wait for valgrind to open it.
            if self.connected or self._proc.poll() is not None:
                break
            self._poll.poll(POLL_MS)
        return bytes(out)

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
