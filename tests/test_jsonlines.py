"""The JSON-lines protocol itself: float64 round trips bit for bit, the describe request, pipes
that never block, and a process that is always stopped."""

import gc
import json
import math
import shutil
import sys
import textwrap

import numpy as np
import pytest

from chainrule.reference import ACTIVATION_NAMES, LOSS_NAMES, Architecture
from chainrule.sources.ask import answer
from chainrule.sources.faults import LoadError
from chainrule.sources.jsonlines import Command, command, encode_request

# Values whose shortest round-trip form is long, tiny, huge, negative zero, subnormal.
TRICKY = [0.1, 1 / 3, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 9007199254740992.0, math.pi, math.nextafter(1.0, 2.0), -1e-300]

# Echoes the params back as gradients (and X[0][0] as the loss), writing each response in two
# pieces and 200 kB to stderr per request: a reader that waited for whole writes, or left
# stderr undrained, would hang here.
ECHO = """
import json, sys, time
for line in sys.stdin:
    request = json.loads(line)
    if request.get("describe"):
        print(json.dumps({"error": "describe? never heard of it"}), flush=True)
        continue
    sys.stderr.write("x" * 200_000 + "\\n")
    sys.stderr.flush()
    text = json.dumps({"loss": request["X"][0][0], "grads": request["params"]})
    sys.stdout.write(text[: len(text) // 2])
    sys.stdout.flush()
    time.sleep(0.02)
    sys.stdout.write(text[len(text) // 2 :] + "\\n")
    sys.stdout.flush()
"""

NODE_ECHO = """
const readline = require("readline");
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const request = JSON.parse(line);
  if (request.describe) return console.log(JSON.stringify({ name: "node-echo", losses: ["mse"] }));
  console.log(JSON.stringify({ loss: request.X[0][0], grads: request.params }));
});
"""


def _case():
    arch = Architecture.parse("5-identity-2:mse")
    W = np.array(TRICKY).reshape(2, 5)
    b = np.array([TRICKY[0], TRICKY[2]])
    X = np.array([TRICKY[1:6], TRICKY[5:10]])
    return arch, [(W, b)], X, np.zeros((2, 2))


def _bits(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=np.float64).tobytes()


def test_request_encodes_every_float_in_a_form_that_parses_back_exactly():
    arch, params, X, Y = _case()
    request = json.loads(encode_request(arch, params, X, Y))
    assert request["sizes"] == [5, 2] and request["activations"] == ["identity"] and request["loss"] == "mse"
    assert _bits(np.array(request["params"][0]["W"])) == _bits(params[0][0])
    assert _bits(np.array(request["X"])) == _bits(X)
    assert "NaN" not in encode_request(arch, params, X, Y)


@pytest.mark.parametrize("language", ["python", pytest.param("node", marks=pytest.mark.skipif(shutil.which("node") is None, reason="no Node.js"))])
def test_floats_survive_the_round_trip_bit_for_bit(tmp_path, language):
    if language == "python":
        (tmp_path / "echo.py").write_text(textwrap.dedent(ECHO))
        spec = f"{sys.executable} {tmp_path / 'echo.py'}"
    else:
        (tmp_path / "echo.js").write_text(NODE_ECHO)
        spec = f"node {tmp_path / 'echo.js'}"
    arch, params, X, Y = _case()
    implementation = command(spec)
    try:
        loss, grads = answer(implementation, arch, params, X, Y)
    finally:
        implementation.close()
    sent = [params[0][0], params[0][1]]
    if language == "node":  # JSON.stringify writes -0 as 0: equal as numbers, the only bit that may change
        sent = [array + 0.0 for array in sent]
    assert _bits(grads[0][0]) == _bits(sent[0]) and _bits(grads[0][1]) == _bits(sent[1])
    assert loss == X[0, 0]
    if language == "python":  # describe answered {"error": ...}: no name, everything supported
        assert implementation.name == spec and implementation.activations == ACTIVATION_NAMES and implementation.losses == LOSS_NAMES
    else:
        assert implementation.name == "node-echo" and implementation.losses == ("mse",)


@pytest.mark.parametrize(
    "reply, message",
    [
        ('{"name": 3}', '"name" in the describe reply is 3, expected a string'),
        ('{"activations": "relu"}', '"activations" in the describe reply is \'relu\', expected a list of names'),
        ('{"losses": ["mse", 1]}', '"losses" in the describe reply'),
        ("[1, 2]", "answered the first request, {\"describe\": true} with '[1, 2]': expected an object"),
        ('{"activations": []}', "nothing it declares can be checked"),
        ('{"activations": ["softmax"], "losses": ["binary_cross_entropy"]}', "nothing it declares can be checked"),
    ],
    ids=["name", "activations", "losses", "not-an-object", "no-activations", "nothing-checkable"],
)
def test_a_describe_reply_that_makes_no_sense_cannot_load(tmp_path, reply, message):
    (tmp_path / "describe.py").write_text(f"import sys\nsys.stdin.readline()\nprint({reply!r}, flush=True)\nsys.stdin.read()\n")
    with pytest.raises(LoadError) as caught:
        command(f"{sys.executable} {tmp_path / 'describe.py'}")
    assert message in str(caught.value)


def test_close_stops_the_process_and_a_forgotten_command_is_stopped_when_collected(tmp_path):
    (tmp_path / "echo.py").write_text(textwrap.dedent(ECHO))
    spec = f"{sys.executable} {tmp_path / 'echo.py'}"
    closed = command(spec)
    process = closed.source._process
    closed.close()
    assert process.returncode == 0, "closing stdin ends the conversation; a well-behaved command exits"
    closed.close()  # twice is harmless
    forgotten = command(spec)
    process = forgotten.source._process
    del forgotten
    gc.collect()
    assert process.poll() is not None


def test_stderr_tail_names_the_error_line():
    source = Command.__new__(Command)
    source._stderr = [
        b"/app/backprop.js:10\n", b"    foo();\n", b"    ^\n", b"\n", b"ReferenceError: foo is not defined\n",
        b"    at Object.<anonymous> (/app/backprop.js:10:5)\n", b"\n", b"Node.js v20.20.2\n",
    ]
    assert source.stderr_tail() == "ReferenceError: foo is not defined"
    source._stderr = [b"just a log line\n"]
    assert source.stderr_tail() == "just a log line"
