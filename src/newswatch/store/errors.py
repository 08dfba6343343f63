"""What can go wrong with the state database, in words a user can act on.

Every error here is one line that names the database (password masked) and
says what to do; the command line prints it without a traceback and exits
with ``exit_code`` (documented in the README).
"""

from __future__ import annotations

# sysexits.h EX_TEMPFAIL: "a temporary failure; the user is invited to retry".
# systemd's Restart=on-failure and shell loops treat it like any failure.
EXIT_BUSY = 75
# A database this newswatch cannot use as it is (missing, old or newer schema).
EXIT_STATE = 1


class StateError(Exception):
    """The state database cannot be used right now, for a reason to show as is."""

    exit_code = EXIT_STATE


class StateBusyError(StateError):
    """Another process held the write lock for longer than we wait."""

    exit_code = EXIT_BUSY


class StateMissingError(StateError):
    """A read-only command found no state database (nothing was stored yet)."""


class StateReadOnlyError(StateError):
    """A write was attempted on a store opened read-only (a bug in the caller)."""
