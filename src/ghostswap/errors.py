"""Errors a user can cause: they end a command with one line and exit 2."""

from __future__ import annotations

__all__ = ["ConfigError", "GhostswapError", "TraceError"]


class GhostswapError(Exception):
    """Base of every user-facing error; its message is the whole report."""


class ConfigError(GhostswapError):
    """A size, option or configuration field that does not make sense."""


class TraceError(GhostswapError):
    """A malformed trace; the message names the file and line."""
