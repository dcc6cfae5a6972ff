"""The error taxonomy, two-sided as in h11.

- LocalError: our own programming error or misuse of an API by our own code.
  (Plain `assert` is used for invariants; LocalError for checks that must survive -O.)
- RemoteError: a peer, a frame or a transaction from outside violated the
  protocol. It carries a machine-readable `reason`; it is logged, counted and
  dropped, never allowed to crash a node.
- UserError: bad configuration or command-line input. The CLI prints its
  message as one line and exits non-zero.
"""

from __future__ import annotations


class ConsortiumError(Exception):
    """Base of every error this package raises on purpose."""


class LocalError(ConsortiumError):
    """A bug on our side."""


class RemoteError(ConsortiumError):
    """Something from outside broke the rules; `reason` is a stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class DecodeError(RemoteError):
    """Untrusted bytes could not be accepted as a frame. See codec.Reason."""


class UserError(ConsortiumError):
    """Bad user input or configuration: print one line, exit non-zero."""
