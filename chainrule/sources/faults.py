"""Every way a gradient source can break the contract, as one exception with a kind; and the one
way a layer source may decline a question without breaking it (Unsupported)."""

from __future__ import annotations

__all__ = ["FAULT_KINDS", "FATAL", "Fault", "LoadError", "Unsupported"]

# Every Fault.kind, with what it means. The fatal ones retire the implementation.
FAULT_KINDS = {
    "raised": "raised an exception (a command: answered {\"error\": ...})",
    "type": "answered with the wrong types: not a float loss (a layer: y) and float64 arrays",
    "layers": "answered with gradients for the wrong number of layers",
    "names": "a layer's grads without one of its differentiable inputs, or with a name that is not one",
    "shape": "answered a gradient (or a layer's y) with the wrong shape",
    "non-finite": "answered a NaN or infinite loss, y or gradient",
    "modified-arguments": "changed the params, X or Y it was given (a layer: its inputs, dy or config)",
    "aliased": "returned a layer's y or gradient sharing memory with another one, an input or dy",
    "stateful": "answered the same question twice, differently (state kept between calls)",
    "timeout": "did not answer within the time limit (fatal: never asked again)",
    "exited": "the command or worker process exited, with any status, or closed its stdout (fatal)",
    "crashed": "the command or worker process was killed by a signal: a segfault, an abort, SIGKILL (fatal)",
    "memory": "the worker process ran out of memory: past its limit (--memory-limit) (fatal)",
    "protocol": "the command wrote something on stdout that is not a response (fatal)",
    "stopped": "not asked: retired after an earlier fatal fault",
}
FATAL = frozenset({"timeout", "exited", "crashed", "memory", "protocol", "stopped"})


class LoadError(Exception):
    """The source cannot be loaded or started (exit code 2)."""


class Fault(Exception):
    """The source answered, but not as the contract requires: ``kind`` (one of FAULT_KINDS) and
    a one-line ``message``. A plain exception, not a frozen dataclass: Python sets
    ``__traceback__`` on whatever it raises, and contextlib assigns it too."""

    def __init__(self, kind: str, message: str):
        super().__init__(kind, message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fault) and (self.kind, self.message) == (other.kind, other.message)

    def __hash__(self) -> int:
        return hash((self.kind, self.message))

    @property
    def fatal(self) -> bool:
        """True when the source cannot be asked again (it hung, exited, crashed, ran out of memory
        or broke the protocol)."""
        return self.kind in FATAL


class Unsupported(Exception):
    """A layer source declined one question: it raised NotImplementedError (a command answered
    ``{"unsupported": "why"}``). Not a fault: the case counts as not exercised, with ``reason``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
