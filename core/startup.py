"""Why the server cannot start, said in one line."""

from __future__ import annotations


class StartupFailure(Exception):
    """The server, or ``qatysu migrate``, cannot start: the port is taken, the database does
    not answer. The command line prints the message as one line and exits 1, without a
    traceback: the operator has a setting or a neighbour to fix, not a bug to report."""
