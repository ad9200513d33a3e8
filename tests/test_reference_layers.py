"""The reference's layers (chainrule.reference.layers) on their own.

Every layer's VJP against central differences of <forward(x), dy>, a few values worked by hand,
an ndarray subclass carried through every arithmetic step (as Monte Carlo arithmetic needs), and
the contract's rules on returned arrays (fresh, the right names and shapes, inputs untouched).
"""

import numpy as np
import pytest

from chainrule.layers.contract import LAYERS, full_config
from chainrule.reference.layers import PAIRS, forward, vjp

CASES = [  # (layer, config, input shapes); every layer of the contract at least once
    ("linear", {}, {"x": (3, 4), "weight": (2, 4), "bias": (2,)}),
    *((name, {}, {"x": (2, 3)}) for name in ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "elu", "gelu", "silu")),
    ("softmax", {}, {"x": (5,)}),
    ("softmax", {"axis": 1}, {"x": (2, 3, 4)}),
    ("log_softmax", {"axis": 0}, {"x": (3, 2)}),
    ("log_softmax", {"axis": -2}, {"x": (2, 3, 4)}),
    ("layer_norm", {"normalized_shape": [3, 4]}, {"x": (2, 3, 4), "weight": (3, 4), "bias": (3, 4)}),
    ("layer_norm", {"normalized_shape": 5, "eps": 0.1}, {"x": (5,), "weight": (5,), "bias": (5,)}),
    ("batch_norm", {}, {"x": (4, 3), "weight": (3,), "bias": (3,)}),
    ("batch_norm", {"eps": 0.01}, {"x": (2, 3, 4), "weight": (3,), "bias": (3,)}),
    ("batch_norm", {}, {"x": (2, 2, 3, 2), "weight": (2,), "bias": (2,)}),
    ("group_norm", {"num_groups": 2}, {"x": (3, 4), "weight": (4,), "bias": (4,)}),
    ("group_norm", {"num_groups": 3}, {"x": (2, 6, 3), "weight": (6,), "bias": (6,)}),
    ("group_norm", {"num_groups": 1}, {"x": (2, 2, 2, 3), "weight": (2,), "bias": (2,)}),
    ("embedding", {}, {"indices": (2, 4), "weight": (3, 2)}),
    ("embedding", {}, {"indices": (), "weight": (4, 3)}),
    ("dropout", {"p": 0.25}, {"x": (3, 4), "mask": (3, 4)}),
    ("mse_loss", {}, {"input": (2, 3), "target": (2, 3)}),
    ("cross_entropy", {}, {"input": (4, 3), "target": (4,)}),
]
IDS = [f"{layer}-{'x'.join(map(str, shapes[next(iter(shapes))])) or '0d'}" for layer, _, shapes in CASES]
INDEX_BOUND = {"embedding": ("weight", 0), "cross_entropy": ("input", 1)}  # the input and axis an index array points into


def _inputs(layer, shapes, seed=0):
    """Float entries of magnitude 0.2 to 1.5 with random signs (far from every kink), an index array
    in range, a mask about 70 % true."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for spec in LAYERS[layer].inputs:
        shape = shapes[spec.name]
        if spec.kind == "float":
            inputs[spec.name] = rng.uniform(0.2, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
        elif spec.kind == "index":
            source, axis = INDEX_BOUND[layer]
            inputs[spec.name] = rng.integers(0, shapes[source][axis], shape, dtype=np.int64)
        else:
            inputs[spec.name] = rng.random(shape) < 0.7
    return inputs


def _case(layer, config, shapes, seed=0):
    """(complete config, inputs, dy) with dy of y's shape."""
    config = full_config(layer, config)
    inputs = _inputs(layer, shapes, seed)
    y = forward(layer, config, inputs)
    dy = np.random.default_rng(seed + 1).standard_normal(np.shape(y))
    return config, inputs, dy


def _central_differences(layer, config, inputs, dy, name, h=1e-5):
    """d<forward(inputs), dy>/d inputs[name], one entry at a time."""
    grad = np.zeros_like(inputs[name])
    for i in np.ndindex(grad.shape):
        values = []
        for step in (h, -h):
            moved = {n: a.copy() for n, a in inputs.items()}
            moved[name][i] += step
            values.append((forward(layer, config, moved) * dy).sum())
        grad[i] = (values[0] - values[1]) / (2 * h)
    return grad


def test_every_contract_layer_has_a_pair_and_a_case():
    assert set(PAIRS) == set(LAYERS)
    # conv, pooling and attention have cases of their own, against torch: tests/test_reference_windows.py
    assert {layer for layer, _, _ in CASES} == set(LAYERS) - {"conv1d", "conv2d", "max_pool2d", "avg_pool2d", "attention"}


@pytest.mark.parametrize("layer, config, shapes", CASES, ids=IDS)
def test_vjp_matches_central_differences(layer, config, shapes):
    config, inputs, dy = _case(layer, config, shapes)
    y, grads = vjp(layer, config, inputs, dy)
    assert sorted(grads) == sorted(LAYERS[layer].differentiable)
    for name, got in grads.items():
        expected = _central_differences(layer, config, inputs, dy, name)
        assert got.shape == inputs[name].shape and got.dtype == np.float64, f"d{name}: {got.shape} {got.dtype}"
        error = np.abs(got - expected).max()
        assert error <= 1e-6 * np.abs(expected).max(), (
            f"{layer} {config} d{name}: got\n{got}\nexpected (central differences)\n{expected}\nmax error {error:.3g}")


@pytest.mark.parametrize("layer, config, shapes", CASES, ids=IDS)
def test_returned_arrays_are_fresh_and_inputs_untouched(layer, config, shapes):
    config, inputs, dy = _case(layer, config, shapes)
    before = {name: a.copy() for name, a in inputs.items()}, dy.copy()
    y, grads = vjp(layer, config, inputs, dy)
    returned = {"y": y, **{f"d{name}": g for name, g in grads.items()}}
    given = {**inputs, "dy": dy}
    for out, array in returned.items():
        others = {**given, **{name: a for name, a in returned.items() if name != out}}
        shared = [name for name, other in others.items() if np.shares_memory(array, other)]
        assert not shared, f"{layer}: {out} shares memory with {shared}"
    assert all(np.array_equal(inputs[name], a) for name, a in before[0].items()) and np.array_equal(dy, before[1])


class Counted(np.ndarray):
    """An ndarray that counts the ufunc calls it takes part in and stays a Counted through them."""

    calls = 0

    def __array_ufunc__(self, ufunc, method, *args, **kwargs):
        Counted.calls += 1
        args = tuple(a.view(np.ndarray) if isinstance(a, Counted) else a for a in args)
        if "out" in kwargs:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, Counted) else o for o in kwargs["out"])
        result = getattr(ufunc, method)(*args, **kwargs)
        return result.view(Counted) if isinstance(result, np.ndarray) else result


@pytest.mark.parametrize("layer, config, shapes", CASES, ids=IDS)
def test_an_array_subclass_passes_through_every_gradient(layer, config, shapes):
    """Float inputs and dy as a Counted: the grads come out Counted, with the plain arrays' values."""
    config, inputs, dy = _case(layer, config, shapes)
    _, plain = vjp(layer, config, inputs, dy)
    counted = {name: a.view(Counted) if a.dtype == np.float64 else a for name, a in inputs.items()}
    Counted.calls = 0
    _, grads = vjp(layer, config, counted, dy.view(Counted))
    assert Counted.calls > 0 or layer == "identity"  # identity only copies
    for name, grad in grads.items():
        assert type(grad) is Counted, f"{layer} d{name}: {type(grad).__name__}"
        np.testing.assert_array_equal(grad.view(np.ndarray), plain[name], err_msg=f"{layer} d{name}")


def test_embedding_repeated_indices_accumulate():
    weight = np.arange(6.0).reshape(3, 2)
    y, grads = vjp("embedding", {}, {"indices": np.array([[0, 2], [0, 0]]), "weight": weight}, np.ones((2, 2, 2)))
    np.testing.assert_array_equal(y, [[[0, 1], [4, 5]], [[0, 1], [0, 1]]])
    np.testing.assert_array_equal(grads["weight"], [[3, 3], [0, 0], [1, 1]])


def test_dropout_scales_kept_entries_by_one_over_one_minus_p():
    inputs = {"x": np.array([1.0, 2.0, 3.0]), "mask": np.array([True, False, True])}
    y, grads = vjp("dropout", {"p": 0.75}, inputs, np.array([1.0, 1.0, -0.5]))
    np.testing.assert_array_equal(y, [4.0, 0.0, 12.0])
    np.testing.assert_array_equal(grads["x"], [4.0, 0.0, -2.0])


def test_layer_norm_over_one_element_has_exactly_zero_dx():
    config = full_config("layer_norm", {"normalized_shape": [1]})
    inputs = {"x": np.array([[0.3], [-7.0], [1e6]]), "weight": np.array([2.5]), "bias": np.array([0.5])}
    y, grads = vjp("layer_norm", config, inputs, np.array([[1.0], [-2.0], [3.0]]))
    np.testing.assert_array_equal(y, [[0.5], [0.5], [0.5]])
    assert np.all(grads["x"] == 0.0) and grads["weight"][0] == 0.0 and grads["bias"][0] == 2.0, grads


def test_batch_norm_output_is_standardized_per_channel():
    config, inputs, _ = _case("batch_norm", {"eps": 0.0}, {"x": (3, 2, 4), "weight": (2,), "bias": (2,)})
    inputs["weight"], inputs["bias"] = np.ones(2), np.zeros(2)
    y = forward("batch_norm", config, inputs)
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0.0, atol=1e-15)
    np.testing.assert_allclose(y.var(axis=(0, 2)), 1.0, rtol=1e-14)


def test_losses_by_hand():
    y, grads = vjp("mse_loss", {}, {"input": np.array([1.0, 2.0]), "target": np.array([0.0, -1.0])}, np.array(2.0))
    assert y == 5.0  # (1 + 9) / 2
    np.testing.assert_array_equal(grads["input"], [2.0, 6.0])  # 2 (input - target) dy / 2
    np.testing.assert_array_equal(grads["target"], [-2.0, -6.0])
    y, grads = vjp("cross_entropy", {}, {"input": np.zeros((2, 4)), "target": np.array([1, 3])}, np.array(1.0))
    assert y == pytest.approx(np.log(4), rel=1e-15)
    np.testing.assert_allclose(grads["input"], [[0.125, -0.375, 0.125, 0.125], [0.125, 0.125, 0.125, -0.375]], rtol=1e-15)


def test_a_layer_outside_the_reference_is_not_implemented():
    with pytest.raises(NotImplementedError, match="conv3d"):
        vjp("conv3d", {}, {}, np.zeros(1))
