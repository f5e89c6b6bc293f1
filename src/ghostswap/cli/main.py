"""``ghostswap``: the entry point and the registry of subcommands.

Each subcommand is a module with ``NAME``, ``HELP``, ``set_argparser(parser)``
and ``main(args) -> int``; adding one is one module and one line in
``COMMANDS``. A :class:`~ghostswap.errors.GhostswapError` ends the command
with one line on stderr and exit status 2; Ctrl-C ends it with 130, SIGTERM
with 143 and SIGHUP with 129, each after the command's own clean-up has run.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import ModuleType

from ghostswap.cli import calibrate, check, overhead, run, trace
from ghostswap.errors import GhostswapError
from ghostswap.interrupt import Terminated, interrupt_as_keyboard

__all__ = ["main"]

COMMANDS: list[ModuleType] = [run, overhead, check, calibrate, trace]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, exit 2: the same contract as every other user error.
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ghostswap",
        description="The Linux swap-table swap subsystem and the ghost swap device, as a model.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        sub_parser = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.set_argparser(sub_parser)
        sub_parser.set_defaults(_main=command.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_main", None):
        parser.print_help()
        return 2
    try:
        with interrupt_as_keyboard():
            return int(args._main(args) or 0)
    except GhostswapError as err:
        print(f"ghostswap {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Terminated as stop:
        name = signal.Signals(stop.signum).name
        print(f"ghostswap {args.command}: terminated by {name}", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print(f"ghostswap {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`ghostswap ... | head`): stop quietly, and
        # keep Python from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
