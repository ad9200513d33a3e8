"""The outcome of a check, and which outcome wins when several are combined."""

from __future__ import annotations

from enum import Enum, IntEnum

__all__ = ["Exit", "Status", "strongest"]


class Status(Enum):
    """Outcome of one comparison; every record starts PENDING until a check decides it."""

    PENDING = "pending"
    AGREE = "agree"
    DISAGREE = "disagree"
    CONVENTION = "convention"  # differs only at a kink where the oracle's convention is not the contract's
    NO_EVIDENCE = "no evidence"  # the oracle vouches for no entry (finite differences across kinks)
    SKIPPED = "skipped"  # outside what the implementation declares it supports
    ERROR = "error"  # the implementation failed to answer properly

    @property
    def failed(self) -> bool:
        return self in (Status.ERROR, Status.DISAGREE)


# Strongest first: one failing case fails the whole, a wrong gradient outranks a fault (it is what
# a user came to find), any agreement outranks no evidence.
PRECEDENCE = (
    Status.DISAGREE, Status.ERROR, Status.AGREE, Status.CONVENTION,
    Status.NO_EVIDENCE, Status.SKIPPED, Status.PENDING,
)


def strongest(statuses) -> Status:
    """The first of DISAGREE, ERROR, AGREE, CONVENTION, NO_EVIDENCE, SKIPPED present; PENDING
    when there is nothing (nothing was decided)."""
    present = set(statuses)
    return next((status for status in PRECEDENCE if status in present), Status.PENDING)


class Exit(IntEnum):
    """The command line's exit codes (docs/contract.md)."""

    AGREE = 0  # the chain rule agrees with every available oracle
    DISAGREE = 1  # a disagreement or a fault, printed as the smallest counterexample
    USAGE = 2  # a usage error, or a plug-in that cannot be loaded or started
