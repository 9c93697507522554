"""Errors any part of Parley may raise for the person running it, adapters included."""

from __future__ import annotations


class UserFacingError(Exception):
    """A problem the operator can fix (a refused token, an unreachable platform), said in one line.

    The CLI prints it as that one line and exits non-zero, never with a traceback.
    """
