"""Layer sources (docs/layers.md) through every way in: this process (a worker thread with a time
limit), a worker process, a JSON-lines command; and the two framework wrappers.

Every fault a layer source can commit has its kind and its message on both Python paths, the same
(the worker checks where the original arrays are); a question it declines is Unsupported, never a
fault. The fakes are written to a temporary module; the command is a tiny Python script.
"""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from chainrule.sources.ask_layer import answer_layer
from chainrule.sources.faults import Fault, LoadError, Unsupported
from chainrule.sources.implementation import with_timeout, wrap
from chainrule.sources.jsonlines import command, encode_layer_request
from chainrule.sources.load import load, open_source

HANG = 0.5  # seconds: the time limit of the fake that never answers

FAKES = '''
import threading

import numpy as np

RELEASE = threading.Event()  # the module's tests let the hung call go at the end


def linear(inputs, dy):
    x, weight, bias = inputs["x"], inputs["weight"], inputs["bias"]
    return x @ weight.T + bias, {"x": dy @ weight, "weight": dy.T @ x, "bias": dy.sum(axis=0)}


class Linear:
    name = "numpy-linear"
    layers = ("linear",)

    def vjp(self, layer, config, inputs, dy):
        return linear(inputs, dy)


class Raises(Linear):
    def vjp(self, layer, config, inputs, dy):
        raise ValueError("weight too small")


class Declines(Linear):
    def vjp(self, layer, config, inputs, dy):
        raise NotImplementedError("no linear without a GPU")


class DeclinesSecond(Linear):
    calls = 0

    def vjp(self, layer, config, inputs, dy):
        self.calls += 1
        if self.calls > 1:
            raise NotImplementedError("tired")
        return linear(inputs, dy)


class Exits(Linear):
    def vjp(self, layer, config, inputs, dy):
        import os
        os._exit(3)


class Hangs(Linear):
    def vjp(self, layer, config, inputs, dy):
        RELEASE.wait(60)


class ModifiesX(Linear):
    def vjp(self, layer, config, inputs, dy):
        answer = linear(inputs, dy)
        inputs["x"] *= 2
        return answer


class ModifiesDy(Linear):
    def vjp(self, layer, config, inputs, dy):
        answer = linear(inputs, dy)
        dy[0] = 0.0
        return answer


class AliasesDy(Linear):
    def vjp(self, layer, config, inputs, dy):
        y, grads = linear(inputs, dy)
        return y, grads | {"bias": dy[0]}  # (out,): the right shape, dy's memory


class AliasesY(Linear):
    def vjp(self, layer, config, inputs, dy):
        y, grads = linear(inputs, dy)
        return y, grads | {"bias": y[0]}


class WrongShape(Linear):
    def vjp(self, layer, config, inputs, dy):
        y, grads = linear(inputs, dy)
        return y, grads | {"weight": grads["weight"].T.copy()}


class WrongY(Linear):
    def vjp(self, layer, config, inputs, dy):
        y, grads = linear(inputs, dy)
        return y.ravel(), grads


class Float32(Linear):
    def vjp(self, layer, config, inputs, dy):
        y, grads = linear(inputs, dy)
        return y, grads | {"x": grads["x"].astype(np.float32)}


class Text(Linear):
    def vjp(self, layer, config, inputs, dy):
        y, grads = linear(inputs, dy)
        return "y", grads


class NaN(Linear):
    def vjp(self, layer, config, inputs, dy):
        y, grads = linear(inputs, dy)
        return y, grads | {"bias": np.full_like(grads["bias"], np.nan)}


class Names(Linear):
    def vjp(self, layer, config, inputs, dy):
        y, grads = linear(inputs, dy)
        return y, {"x": grads["x"], "weight": grads["weight"], "b": grads["bias"]}


class Stateful(Linear):
    calls = 0

    def vjp(self, layer, config, inputs, dy):
        self.calls += 1
        y, grads = linear(inputs, dy)
        return y * self.calls, grads


class Several:
    """embedding (int64 indices), dropout (a bool mask), mse_loss (0-d y and dy)."""
    layers = ("embedding", "dropout", "mse_loss")
    layer_configs = {"dropout": {"p": [0.25, 0.5]}}
    kink_derivatives = {"relu": 0.5, "max_pool2d": "last"}

    def vjp(self, layer, config, inputs, dy):
        if layer == "embedding":
            assert inputs["indices"].dtype == np.int64, inputs["indices"].dtype
            weight = np.zeros_like(inputs["weight"])
            np.add.at(weight, inputs["indices"], dy)
            return inputs["weight"][inputs["indices"]], {"weight": weight}
        if layer == "dropout":
            assert inputs["mask"].dtype == bool, inputs["mask"].dtype
            scale = inputs["mask"] / (1 - config["p"])
            return inputs["x"] * scale, {"x": dy * scale}
        difference = inputs["input"] - inputs["target"]
        gradient = 2 * dy * difference / difference.size
        return np.mean(difference ** 2), {"input": gradient, "target": -gradient}


class Both(Linear):
    activations = ("identity",)
    losses = ("mse",)

    def loss_and_gradients(self, arch, params, X, Y):
        raise NotImplementedError


class Neither:
    pass


class UnknownLayer(Linear):
    layers = ("linear", "conv7d")


class UnknownConfigKey(Linear):
    layers = ("linear", "softmax")
    layer_configs = {"softmax": {"dim": [1]}}


class UnknownTieRule(Linear):
    kink_derivatives = {"max_pool2d": "middle"}
'''

COMMAND = '''
import json
import sys

import numpy as np

mode = sys.argv[1]
for line in sys.stdin:
    request = json.loads(line)
    if request.get("describe"):
        reply = {"name": "command-linear", "layers": ["linear"]}
    elif mode == "error":
        reply = {"error": "weight too small"}
    elif mode == "unsupported":
        reply = {"unsupported": "no linear without a GPU"}
    else:
        x, weight, bias = (np.array(request["inputs"][name]) for name in ("x", "weight", "bias"))
        dy = np.array(request["dy"])
        grads = {"x": (dy @ weight).tolist(), "weight": (dy.T @ x).tolist(), "bias": dy.sum(axis=0).tolist()}
        if mode == "null":
            grads["bias"][1] = None
        reply = {"y": (x @ weight.T + bias).tolist(), "grads": grads}
    print(json.dumps(reply), flush=True)
'''

# fake -> (fault kind, what its message says), the same in this process and in a worker process
FAULTS = {
    "Raises": ("raised", "raised ValueError: weight too small (at layer_fakes.py:"),
    "Hangs": ("timeout", f"did not answer within {HANG:g} s"),
    "ModifiesX": ("modified-arguments", "modified its arguments in place: inputs['x']"),
    "ModifiesDy": ("modified-arguments", "modified its arguments in place: dy"),
    "AliasesDy": ("aliased", "returned grads['bias'] sharing memory with dy"),
    "AliasesY": ("aliased", "returned y sharing memory with grads['bias']"),
    "WrongShape": ("shape", "grads['weight'] has shape (3, 4), expected (4, 3)"),
    "WrongY": ("shape", "y has shape (8,), expected (2, 4)"),
    "Float32": ("type", "grads['x'] is float32, expected float64"),
    "Text": ("type", "y is str of dtype <U1, expected float64 numbers"),
    "NaN": ("non-finite", "grads['bias'] contains NaN or Inf"),
    "Names": ("names", "grads names: missing 'bias'; extra 'b' (linear's differentiable inputs: x, weight, bias)"),
    "Stateful": ("stateful", "returned a different y for the same input on a second call"),
    "DeclinesSecond": ("stateful", "answered, then declined the same question on a second call (tired)"),
}


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    """The fakes' directory, on sys.path for this module's tests (a worker process inherits it)."""
    root = tmp_path_factory.mktemp("layer_fakes")
    (root / "layer_fakes.py").write_text(FAKES)
    (root / "layer_command.py").write_text(COMMAND)
    sys.path.insert(0, str(root))
    yield root
    module = sys.modules.pop("layer_fakes", None)
    if module is not None:
        module.RELEASE.set()
    sys.path.remove(str(root))


def _case(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(2, 3)), "weight": rng.normal(size=(4, 3)), "bias": rng.normal(size=4)}, rng.normal(size=(2, 4))


def _expected(inputs, dy):
    x, weight, bias = inputs["x"], inputs["weight"], inputs["bias"]
    return x @ weight.T + bias, {"x": dy @ weight, "weight": dy.T @ x, "bias": dy.sum(axis=0)}


def _source(fake: str, where: str):
    spec = f"layer_fakes:{fake}"
    if where == "worker":
        return open_source("impl", spec, timeout=HANG)
    return with_timeout(load(spec), HANG)


@pytest.mark.parametrize("where", ["in-process", "worker"])
@pytest.mark.parametrize("fake", list(FAULTS))
def test_each_fault_is_caught_with_its_message(fakes, fake, where):
    kind, message = FAULTS[fake]
    inputs, dy = _case()
    kept = {name: array.copy() for name, array in inputs.items()}, dy.copy()
    implementation = _source(fake, where)
    try:
        with pytest.raises(Fault) as caught:
            answer_layer(implementation, "linear", {}, inputs, dy)
        assert (caught.value.kind, message in caught.value.message) == (kind, True), caught.value.message
        if kind == "raised":
            assert caught.value.message.endswith(" in vjp)"), caught.value.message
        if kind == "timeout":
            assert where == "in-process" or "in vjp" in caught.value.message, "a hung worker says where it hung"
            retired = "not asked: retired after it failed on linear {} x (2, 3), weight (4, 3), bias (4,)"
            with pytest.raises(Fault, match=re.escape(retired)):
                answer_layer(implementation, "linear", {}, inputs, dy)
    finally:
        implementation.close()
    unchanged = all(np.array_equal(inputs[name], kept[0][name]) for name in inputs) and np.array_equal(dy, kept[1])
    assert unchanged, "the engine's arrays changed"


def test_a_worker_that_exits_during_a_layer_call_is_retired(fakes):
    implementation = open_source("impl", "layer_fakes:Exits")
    try:
        with pytest.raises(Fault, match=re.escape("its worker process exited with status 3 during call 1")) as caught:
            answer_layer(implementation, "linear", {}, *_case())
        assert caught.value.kind == "exited" and implementation.retired == caught.value
    finally:
        implementation.close()


@pytest.mark.parametrize("where", ["in-process", "worker"])
def test_a_right_source_and_one_that_declines(fakes, where):
    inputs, dy = _case(1)
    right = _source("Linear", where)
    declines = _source("Declines", where)
    try:
        y, grads = answer_layer(right, "linear", {}, inputs, dy)
        expected_y, expected = _expected(inputs, dy)
        np.testing.assert_array_equal(y, expected_y)
        assert grads.keys() == expected.keys() and all(np.array_equal(grads[n], expected[n]) for n in grads)
        with pytest.raises(Unsupported, match="no linear without a GPU"):
            answer_layer(declines, "linear", {}, inputs, dy)
        assert declines.retired is None, "declining is not a fault"
    finally:
        right.close()
        declines.close()


def test_index_arrays_masks_and_0d_arrays_reach_a_worker_as_they_are(fakes):
    rng = np.random.default_rng(2)
    questions = {
        "embedding": ({}, {"indices": np.array([[0, 2], [2, 1]]), "weight": rng.normal(size=(3, 2))}, rng.normal(size=(2, 2, 2))),
        "dropout": ({"p": 0.25}, {"x": rng.normal(size=(2, 3)), "mask": rng.random((2, 3)) < 0.5}, rng.normal(size=(2, 3))),
        "mse_loss": ({}, {"input": rng.normal(size=(2, 3)), "target": rng.normal(size=(2, 3))}, np.array(0.75)),
    }
    here, there = load("layer_fakes:Several"), open_source("impl", "layer_fakes:Several")
    try:
        for layer, (config, inputs, dy) in questions.items():
            (y, grads), (y2, grads2) = answer_layer(here, layer, config, inputs, dy), answer_layer(there, layer, config, inputs, dy)
            assert y.shape == dy.shape and np.array_equal(y, y2), layer
            assert grads.keys() == grads2.keys() and all(np.array_equal(grads[n], grads2[n]) for n in grads), layer
        assert np.array_equal(grads["target"], -grads["input"])
        for loaded in (here, there):
            declared = (loaded.networks, loaded.layers, loaded.layer_configs)
            assert declared == (False, ("embedding", "dropout", "mse_loss"), {"dropout": {"p": [0.25, 0.5]}})
            assert (loaded.kink_derivatives, loaded.tie_rules) == ({"relu": 0.5}, {"max_pool2d": "last"})
    finally:
        there.close()


def test_layer_requests_in_json_travel_as_the_contract_says():
    request = json.loads(encode_layer_request(
        "dropout", {"p": 0.5}, {"x": np.array([[0.1, -2.0]]), "mask": np.array([[True, False]])}, np.array([[1.0, 3.0]])))
    assert request == {"layer": "dropout", "config": {"p": 0.5}, "inputs": {"x": [[0.1, -2.0]], "mask": [[True, False]]},
                       "dy": [[1.0, 3.0]]}
    request = json.loads(encode_layer_request("cross_entropy", {}, {"input": np.zeros((1, 2)), "target": np.array([1])}, np.array(0.5)))
    assert request["inputs"]["target"] == [1] and isinstance(request["inputs"]["target"][0], int) and request["dy"] == 0.5


@pytest.mark.parametrize("mode, raised, message", [
    ("right", None, ""),
    ("error", Fault, "answered with an error: weight too small"),
    ("null", Fault, "grads['bias'] contains null (JSON has no NaN or Infinity"),
    ("unsupported", Unsupported, "no linear without a GPU"),
])
def test_a_json_lines_command_answers_layers(fakes, mode, raised, message):
    implementation = command(f"{sys.executable} {fakes / 'layer_command.py'} {mode}")
    inputs, dy = _case(3)
    try:
        assert (implementation.networks, implementation.layers, implementation.name) == (False, ("linear",), "command-linear")
        if raised is None:
            y, grads = answer_layer(implementation, "linear", {}, inputs, dy)
            expected_y, expected = _expected(inputs, dy)
            np.testing.assert_allclose(y, expected_y, rtol=1e-15)
            assert all(np.allclose(grads[n], expected[n], rtol=1e-15, atol=0) for n in expected)
        else:
            with pytest.raises(raised, match=re.escape(message)):
                answer_layer(implementation, "linear", {}, inputs, dy)
    finally:
        implementation.close()


@pytest.mark.parametrize("fake, message", [
    ("Neither", "has no loss_and_gradients method (networks) and no vjp method (layers)"),
    ("UnknownLayer", "declares unknown layers ['conv7d']"),
    ("UnknownConfigKey", "layer_configs['softmax'] names 'dim', not a config key of softmax (its keys: axis)"),
    ("UnknownTieRule", "kink_derivatives['max_pool2d'] must be one of 'first', 'last', 'split', got 'middle'"),
])
def test_declarations_that_make_no_sense_do_not_load(fakes, fake, message):
    with pytest.raises(LoadError, match=re.escape(message)):
        load(f"layer_fakes:{fake}")


def test_a_source_of_networks_and_layers_keeps_both(fakes):
    both = load("layer_fakes:Both")
    assert (both.networks, both.activations, both.losses, both.layers) == (True, ("identity",), ("mse",), ("linear",))
    assert wrap(load("layer_fakes:Linear").source).activations == (), "a layer source is asked no network"


# The wrappers: the same linear layer as a torch.autograd.Function and a jax.custom_vjp function.

def test_torch_function_wrapper_agrees_with_numpy():
    torch = pytest.importorskip("torch")
    import chainrule

    class Linear(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight, bias):
            ctx.save_for_backward(x, weight)
            return x @ weight.T + bias

        @staticmethod
        def backward(ctx, dy):
            x, weight = ctx.saved_tensors
            return dy @ weight, dy.T @ x, dy.sum(0)

    def layer_norm(x, weight, bias, normalized_shape, eps):  # a plain callable, config keys among its parameters
        return torch.nn.functional.layer_norm(x, normalized_shape, weight, bias, eps)

    source = chainrule.torch_function_layers({"linear": Linear, "layer_norm": layer_norm}, name="torch-linear")
    assert (source.name, source.layers, source.precision) == ("torch-linear", ("linear", "layer_norm"), "float64")
    _agrees(source)
    rng = np.random.default_rng(5)
    x, dy = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    inputs = {"x": x, "weight": np.ones(3), "bias": np.zeros(3)}
    y, grads = answer_layer(wrap(source), "layer_norm", {"normalized_shape": [3], "eps": 1e-5}, inputs, dy)
    np.testing.assert_allclose(y, (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(grads["bias"], dy.sum(0), rtol=1e-12)
    with pytest.raises(ValueError, match=re.escape("takes 'w', neither an input of linear (x, weight, bias) nor a config key (none)")):
        chainrule.torch_function_layers({"linear": lambda x, w, bias: x}, name="bad")


def test_jax_custom_vjp_wrapper_agrees_with_numpy():
    jax = pytest.importorskip("jax")
    from functools import partial

    import chainrule

    @jax.custom_vjp
    def linear(x, weight, bias):
        return x @ weight.T + bias

    def forward(x, weight, bias):
        return linear(x, weight, bias), (x, weight)

    def backward(saved, dy):
        x, weight = saved
        return dy @ weight, dy.T @ x, dy.sum(0)

    linear.defvjp(forward, backward)

    @partial(jax.custom_vjp, nondiff_argnums=(1,))
    def softmax(x, axis):
        return jax.nn.softmax(x, axis=axis)

    def softmax_backward(axis, y, dy):
        return (y * (dy - (dy * y).sum(axis, keepdims=True)),)

    softmax.defvjp(lambda x, axis: (softmax(x, axis), softmax(x, axis)), softmax_backward)
    source = chainrule.jax_custom_vjp_layers({"linear": linear, "softmax": softmax}, name="jax-linear")
    before = jax.config.jax_enable_x64  # another test in this process may have left it on: it must come back as it was
    _agrees(source)
    x = np.random.default_rng(6).normal(size=(2, 3))
    y, _ = answer_layer(wrap(source), "softmax", {"axis": 0}, {"x": x}, np.ones((2, 3)))
    np.testing.assert_allclose(y, np.exp(x) / np.exp(x).sum(0), rtol=1e-13)
    assert jax.config.jax_enable_x64 == before, "x64 is on only inside the call"


def _agrees(source):
    """The wrapped linear's answer, checked as any source's, equals the numpy one on a random case."""
    inputs, dy = _case(4)
    y, grads = answer_layer(wrap(source), "linear", {}, inputs, dy)
    expected_y, expected = _expected(inputs, dy)
    np.testing.assert_allclose(y, expected_y, rtol=1e-13)
    for name in expected:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-13, err_msg=name)


def test_import_chainrule_stays_light():
    code = ("import sys, chainrule; names = chainrule.torch_function_layers, chainrule.jax_custom_vjp_layers; "
            "print(' '.join(sorted(n for n in ('torch', 'jax') if n in sys.modules)))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "", run.stdout + run.stderr
