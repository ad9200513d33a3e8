"""The worker process of a Python implementation: ``python -m chainrule.sources.serve KIND SPEC
[--memory-limit BYTES] [--path JSON]``, started by chainrule.sources.worker and asked over
JSON lines on its stdin and stdout.

It loads the implementation (KIND "impl" MODULE:ATTR, "entry" an entry point's name, "pickle"
a file holding a pickled object), then answers ``{"describe": true}`` and every request (a
network's, or a layer's: ``"layer"``) by calling it here and checking the answer against the
contract where the original objects are (chainrule.sources.ask and ask_layer: types, float32
against float64, shapes, finiteness, arguments modified in place, arrays aliased). The stateful
check (the same question twice) stays with the caller.

The protocol keeps its own copies of stdin and stdout: the implementation's stdin is /dev/null,
and whatever it prints, from Python or from C, goes to stderr. Its memory is limited with
RLIMIT_DATA (the heap and every private writable mapping, not the address space, which
frameworks reserve by the gigabyte without using it); a MemoryError is a "memory" Fault.
faulthandler is on: a crash, or SIGUSR1 from a caller about to kill a hung call, writes the
Python stack to stderr.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import pickle
import signal
import sys
import warnings

__all__ = ["main"]

FAULT = '{"fault": '  # how a reply that is a fault begins
UNSUPPORTED = '{"unsupported": '  # how a reply to a layer question the source declines begins


def _claim_stdio():
    """The protocol's own stdin and stdout; fd 0 becomes /dev/null and fd 1 the stderr, for the
    implementation (prints from Python and from C land on stderr, never in the protocol)."""
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdout = sys.stderr  # sys.stdin reads fd 0: /dev/null now
    return requests, replies


def _limit_memory(limit: int | None) -> None:
    if not limit:
        return
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        resource.setrlimit(resource.RLIMIT_DATA, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    except (ImportError, ValueError, OSError) as error:
        print(f"chainrule worker: cannot limit memory to {limit} bytes: {error}", file=sys.stderr)


def _load(kind: str, spec: str):
    """The Implementation, run here without a time limit (the caller enforces it)."""
    import dataclasses

    from chainrule.sources.faults import LoadError
    from chainrule.sources.implementation import declarations
    from chainrule.sources.load import load_object

    if kind == "pickle":
        try:
            with open(spec, "rb") as file:
                source = pickle.load(file)
        except Exception as error:
            raise LoadError(f"cannot be unpickled in a worker process: {type(error).__name__}: {error}") from None
        label = None
    else:
        source, label = load_object(kind, spec)
    return dataclasses.replace(declarations(source, label), timeout=None)


def _declared(source) -> dict:
    """Its other declarations (chainrule.sources.worker.DECLARED) as attributes say them, where JSON can carry them."""
    from chainrule.sources.worker import DECLARED

    found = {}
    for attribute in DECLARED:
        value = getattr(source, attribute, None)
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            continue
        if value is not None:
            found[attribute] = value
    return found


def _memory_message(fault, limit: int | None) -> str:
    if not limit:
        return fault.message
    return fault.message.replace("ran out of memory", f"ran out of memory: its worker process may use {limit} bytes ({limit / 2**30:.3g} GiB, --memory-limit)", 1)


def _reply(replies, line: str) -> None:
    replies.write(line.encode())
    replies.flush()


def _answer(call, limit: int | None) -> str:
    """The reply line to one call, ``call()`` (the checked answer, encoded), or the fault, or
    that the source declines the question."""
    from chainrule.sources.faults import Fault, Unsupported

    try:
        with warnings.catch_warnings():  # warnings are never faults (as in chainrule.sources.ask.answer)
            warnings.simplefilter("ignore")
            return call()
    except Unsupported as unsupported:
        return UNSUPPORTED + json.dumps(unsupported.reason) + "}\n"
    except MemoryError as error:  # outside the call itself: decoding or encoding
        fault = Fault("memory", f"ran out of memory; {type(error).__name__}: {error}")
    except Fault as caught:
        fault = caught
    if fault.kind == "memory":
        fault = Fault("memory", _memory_message(fault, limit))
    return FAULT + json.dumps({"kind": fault.kind, "message": fault.message}) + "}\n"


def _calls(implementation, request: dict) -> tuple:
    """The first and the second call (the stateful check) for ``request``, each to be answered by _answer:
    a layer's second call declining a question its first answered is state (ask_layer._again)."""
    from functools import partial

    from chainrule.sources import ask, ask_layer
    from chainrule.sources.worker import decode_layer_request, decode_request, encode_answer, encode_layer_answer

    if "layer" in request:
        asked = partial(ask_layer._ask, implementation, *decode_layer_request(request))
        return (lambda: encode_layer_answer(*asked())), (lambda: encode_layer_answer(*ask_layer._again(asked)))
    asked = partial(ask._ask, implementation, *decode_request(request))
    return ((lambda: encode_answer(*asked())),) * 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chainrule.sources.serve")
    parser.add_argument("kind", choices=("impl", "entry", "pickle"))
    parser.add_argument("spec")
    parser.add_argument("--memory-limit", type=int, default=None, metavar="BYTES")
    parser.add_argument("--path", default=None, metavar="JSON", help="the caller's sys.path, to import what it could")
    args = parser.parse_args(argv)
    requests, replies = _claim_stdio()
    faulthandler.enable()
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    if args.path is not None:
        path = json.loads(args.path)
        sys.path[:] = path + [entry for entry in sys.path if entry not in path]
    _limit_memory(args.memory_limit)

    from chainrule.sources.faults import LoadError
    from chainrule.sources.implementation import with_precision

    try:
        implementation = _load(args.kind, args.spec)
    except LoadError as error:
        describe = {"load_error": str(error)}
    else:
        source = implementation.source
        describe = {
            "name": implementation.name, "activations": list(implementation.activations), "losses": list(implementation.losses),
            "module": type(source).__module__, "networks": implementation.networks,
        }
        describe |= _declared(source)
        if implementation.layers:
            describe |= {"layers": list(implementation.layers), "layer_configs": implementation.layer_configs}
    for line in requests:
        request = json.loads(line)
        if request.get("describe"):
            _reply(replies, json.dumps(describe) + "\n")
            if "load_error" in describe:
                return 0
            continue
        judged = with_precision(implementation, request.get("precision", "float64"))  # its answers may come back in that precision
        first, second = _calls(judged, request)
        reply = _answer(first, args.memory_limit)
        _reply(replies, reply)
        if request.get("twice") and not reply.startswith((FAULT, UNSUPPORTED)):  # the second call, only after a first that answered
            _reply(replies, _answer(second, args.memory_limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
