"""The reference's conv1d, conv2d, max_pool2d, avg_pool2d and attention (chainrule.reference.layers).

Each against torch.nn.functional's autograd in float64 on many configs drawn from fixed seeds
(strides below and above the kernel, padding up to half the kernel, dilation, groups up to
depthwise, per-axis pairs, sizes 2^k - 1, 2^k, 2^k + 1, integer-valued max-pool inputs full of
ties, masked and causal attention with Lq != Lk); max_pool2d's tie rules worked by hand; and the
reference evaluated under Monte Carlo arithmetic (chainrule.layers.floors): finite, small floors,
exactly 0 where no arithmetic happens (a max-pool's y, a key nobody attends to).
"""

import numpy as np
import pytest

from chainrule.layers.case import LayerCase
from chainrule.layers.contract import full_config
from chainrule.layers.floors import floors
from chainrule.reference.layers import vjp
from chainrule.reference.layers.pooling import max_pool2d_dx

torch = pytest.importorskip("torch")
F = torch.nn.functional

SIZES = (7, 8, 9, 17, 33)  # 2^k - 1, 2^k, 2^k + 1
RELATIVE = 1e-12  # of the largest entry of torch's answer: float64 rounding with room to spare


def _per_axis_or_int(rng, values):
    """A config value as the contract allows: a list with one int per axis, or one int when they agree."""
    values = [int(v) for v in values]
    return values[0] if len(set(values)) == 1 and rng.random() < 0.5 else values


def _conv_case(rank, seed):
    """(layer, config, shapes) of a conv1d / conv2d drawn from ``seed``; every output size >= 1."""
    rng = np.random.default_rng(seed)
    kernel = rng.integers(1, 5, rank)
    stride, dilation = rng.integers(1, 5, rank), rng.integers(1, 3, rank)
    padding = [rng.integers(0, k // 2 + 1) for k in kernel]
    sizes = [max(int(rng.choice(SIZES[: 6 - rank])), d * (k - 1) + 1) for k, d in zip(kernel, dilation)]
    groups = int(rng.choice([1, 2, 3]))
    depthwise = rng.random() < 0.3
    c_in = groups * (1 if depthwise else int(rng.integers(1, 3)))
    c_out = groups * int(rng.integers(1, 3))
    config = {"stride": _per_axis_or_int(rng, stride), "padding": _per_axis_or_int(rng, padding),
              "dilation": _per_axis_or_int(rng, dilation), "groups": groups}
    shapes = {"x": (int(rng.integers(1, 3)), c_in, *sizes), "weight": (c_out, c_in // groups, *map(int, kernel)), "bias": (c_out,)}
    return f"conv{rank}d", config, shapes


def _pool_case(layer, seed):
    """(layer, config, shapes) of a max_pool2d / avg_pool2d drawn from ``seed``: windows overlapping, disjoint or apart."""
    rng = np.random.default_rng(seed)
    kernel = rng.integers(1, 5, 2)
    stride = None if rng.random() < 0.3 else _per_axis_or_int(rng, rng.integers(1, 6, 2))
    config = {"kernel_size": _per_axis_or_int(rng, kernel), "stride": stride,
              "padding": _per_axis_or_int(rng, [rng.integers(0, k // 2 + 1) for k in kernel])}
    if layer == "avg_pool2d":
        config["count_include_pad"] = bool(rng.random() < 0.5)
    return layer, config, {"x": (int(rng.integers(1, 3)), int(rng.integers(1, 4)), *map(int, rng.choice(SIZES[:4], 2)))}


def _attention_case(seed):
    """(layer, config, shapes) of an attention drawn from ``seed``: Lq != Lk, Ev != E, masks, causal, explicit scales."""
    rng = np.random.default_rng(seed)
    n, h, lq, lk, e, ev = (int(rng.choice(c)) for c in ((1, 2), (1, 3), (1,) + SIZES[:4], (1,) + SIZES[:4], (1, 4, 8), (2, 5)))
    shapes = {"q": (n, h, lq, e), "k": (n, h, lk, e), "v": (n, h, lk, ev)}
    if rng.random() < 0.6:
        shapes["mask"] = (lq, lk)
    config = {"causal": bool(rng.random() < 0.5), "scale": None if rng.random() < 0.5 else float(rng.uniform(0.1, 2.0))}
    return "attention", config, shapes


WRITTEN = [  # depthwise with C_out = 2 C_in; a 1-tap kernel under more padding than it reaches (dx crops the spread dy);
    # overlapping padded pools
    ("conv2d", {"stride": [1, 2], "padding": [1, 0], "dilation": [2, 1], "groups": 4},
     {"x": (2, 4, 9, 8), "weight": (8, 1, 3, 3), "bias": (8,)}),
    ("conv1d", {"stride": [3], "padding": [2], "dilation": [1], "groups": 1}, {"x": (1, 2, 17), "weight": (3, 2, 1), "bias": (3,)}),
    ("max_pool2d", {"kernel_size": 3, "stride": [1, 2], "padding": 1}, {"x": (2, 2, 8, 9)}),
    ("avg_pool2d", {"kernel_size": [2, 3], "stride": 1, "padding": [1, 1], "count_include_pad": False}, {"x": (1, 2, 7, 8)}),
]
CASES = [
    *WRITTEN,
    *(_conv_case(2, seed) for seed in range(40)),
    *(_conv_case(1, seed) for seed in range(100, 125)),
    *(_pool_case("max_pool2d", seed) for seed in range(25)),
    *(_pool_case("avg_pool2d", seed) for seed in range(25)),
    *(_attention_case(seed) for seed in range(30)),
]
IDS = [f"{layer}-{i}" for i, (layer, _, _) in enumerate(CASES)]


def _inputs(layer, shapes, seed):
    """Standard normal floats (integers in [-3, 3] for max_pool2d, so windows tie); a mask whose first
    key is always attended (every query sees one), about 60 % true elsewhere."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for name, shape in shapes.items():
        if name == "mask":
            inputs[name] = (rng.random(shape) < 0.6) | (np.arange(shape[1]) == 0)
        elif layer == "max_pool2d":
            inputs[name] = rng.integers(-3, 4, shape).astype(np.float64)
        else:
            inputs[name] = rng.standard_normal(shape)
    return inputs


def _torch(layer, config, inputs):
    """torch.nn.functional's y for ``inputs`` (float tensors requiring grad)."""
    if layer in ("conv1d", "conv2d"):
        return getattr(F, layer)(inputs["x"], inputs["weight"], inputs["bias"], config["stride"], config["padding"],
                                 config["dilation"], config["groups"])
    if layer == "max_pool2d":
        return F.max_pool2d(inputs["x"], config["kernel_size"], config["stride"], config["padding"])
    if layer == "avg_pool2d":
        return F.avg_pool2d(inputs["x"], config["kernel_size"], config["stride"], config["padding"],
                            count_include_pad=config["count_include_pad"])
    q, k, mask = inputs["q"], inputs["k"], inputs.get("mask")
    if mask is not None and config["causal"]:  # torch takes one or the other: the AND built here (tril is top-left)
        mask = mask & torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
    return F.scaled_dot_product_attention(q, k, inputs["v"], attn_mask=mask, is_causal=config["causal"] and mask is None,
                                          scale=config["scale"])


def _torch_vjp(layer, config, inputs, dy):
    tensors = {n: torch.tensor(a, requires_grad=a.dtype == np.float64) for n, a in inputs.items()}
    y = _torch(layer, config, tensors)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), {n: t.grad.numpy() for n, t in tensors.items() if t.requires_grad}


def _case(layer, config, shapes, seed=0):
    config = full_config(layer, config)
    inputs = _inputs(layer, shapes, seed)
    tensors = {n: torch.tensor(a) for n, a in inputs.items()}
    dy = np.random.default_rng(seed + 1).standard_normal(tuple(_torch(layer, config, tensors).shape))
    return LayerCase(layer, config, inputs, dy)


def _assert_close(got, expected, what, case):
    assert got.shape == expected.shape and got.dtype == np.float64, f"{what}: got {got.shape} {got.dtype}, expected {expected.shape}"
    error = np.abs(got - expected)
    worst = np.unravel_index(np.argmax(error), error.shape) if error.size else ()
    assert not error.size or error[worst] <= RELATIVE * np.abs(expected).max(), (
        f"{what}{list(worst)}: got {got[worst]!r}, expected {expected[worst]!r} (torch) [{case.describe()}]")


@pytest.mark.parametrize("layer, config, shapes", CASES, ids=IDS)
def test_vjp_matches_torch(layer, config, shapes):
    case = _case(layer, config, shapes)
    y, grads = vjp(layer, case.config, case.inputs, case.dy)
    expected_y, expected = _torch_vjp(layer, case.config, case.inputs, case.dy)
    _assert_close(y, expected_y, "y", case)
    assert sorted(grads) == sorted(expected), f"{layer}: grads {sorted(grads)}, expected {sorted(expected)}"
    for name in expected:
        _assert_close(grads[name], expected[name], f"d{name}", case)


def test_the_cases_reach_what_they_claim():
    """Strides below and above the kernel, padding, dilation, depthwise groups, ties, causal masks and explicit scales."""
    first = lambda value: value if isinstance(value, int) else value[0]  # noqa: E731
    convs = [(c, s) for layer, c, s in CASES if layer.startswith("conv")]
    assert any(first(c["stride"]) > s["weight"][2] for c, s in convs) and any(first(c["stride"]) < s["weight"][2] for c, s in convs)
    assert any(first(c["dilation"]) > 1 and first(c["padding"]) > 0 for c, s in convs)
    depthwise = [s for c, s in convs if s["weight"][1] == 1 and c["groups"] == s["x"][1] > 1]
    assert any(s["weight"][0] > s["x"][1] for s in depthwise)  # C_out = m C_in, m > 1
    assert any(isinstance(c["stride"], list) and len(set(c["stride"])) == 2 for c, s in convs)
    assert any(layer == "conv1d" and isinstance(c["stride"], list) for layer, c, s in CASES)
    assert {n for c, s in convs for n in s["x"][2:]} >= set(SIZES)
    pools = [c for layer, c, s in CASES if layer.endswith("pool2d")]
    assert any(c["stride"] is not None and first(c["stride"]) < first(c["kernel_size"]) for c in pools)
    assert {c.get("count_include_pad") for c in pools} == {None, True, False}
    attention = [(c, s) for layer, c, s in CASES if layer == "attention"]
    assert any(c["causal"] and "mask" in s and s["q"][2] != s["k"][2] for c, s in attention)
    assert any(c["scale"] is not None and s["q"][3] != s["v"][3] for c, s in attention)


def test_max_pool_inputs_tie():
    """The integer-valued max-pool cases do put equal maxima in one window."""
    tied = 0
    for layer, config, shapes in CASES:
        if layer == "max_pool2d":
            case = _case(layer, config, shapes)
            tied += not np.array_equal(max_pool2d_dx(case.config, case.inputs["x"], case.dy, "first"),
                                       max_pool2d_dx(case.config, case.inputs["x"], case.dy, "last"))
    assert tied >= 10, tied


TIE_CONFIG = full_config("max_pool2d", {"kernel_size": 2, "stride": 1})
TIE_X = np.array([[[[2.0, 2.0, 2.0], [0.0, 2.0, 1.0]]]])  # windows [[2, 2], [0, 2]] and [[2, 2], [2, 1]]
TIE_DY = np.array([[[[1.0, 10.0]]]])


@pytest.mark.parametrize("rule, expected", [
    ("first", [[1.0, 10.0, 0.0], [0.0, 0.0, 0.0]]),                   # each window's top-left 2
    ("last", [[0.0, 0.0, 0.0], [0.0, 11.0, 0.0]]),                    # both windows' last 2 is x[1, 1]
    ("split", [[1 / 3, 11 / 3, 10 / 3], [0.0, 11 / 3, 0.0]]),         # a third of dy to each of three 2s
], ids=["first", "last", "split"])
def test_max_pool2d_dx_tie_rules_by_hand(rule, expected):
    np.testing.assert_allclose(max_pool2d_dx(TIE_CONFIG, TIE_X, TIE_DY, rule), [[expected]], rtol=1e-15, err_msg=rule)


@pytest.mark.parametrize("seed", range(5))
def test_max_pool2d_dx_first_is_the_vjp(seed):
    layer, config, shapes = _pool_case("max_pool2d", seed)
    case = _case(layer, config, shapes, seed)
    _, grads = vjp(layer, case.config, case.inputs, case.dy)
    np.testing.assert_array_equal(max_pool2d_dx(case.config, case.inputs["x"], case.dy, "first"), grads["x"])
    split = max_pool2d_dx(case.config, case.inputs["x"], case.dy, "split")
    np.testing.assert_allclose(split.sum(), case.dy.sum(), rtol=1e-12)  # every window's dy shared out in full


class Dispatched(np.ndarray):
    """An ndarray that stays a Dispatched through ufuncs and other numpy functions, as floors' _Perturbed does."""

    def __array_ufunc__(self, ufunc, method, *args, **kwargs):
        plain = lambda a: a.view(np.ndarray) if isinstance(a, Dispatched) else a  # noqa: E731
        if "out" in kwargs:
            kwargs["out"] = tuple(map(plain, kwargs["out"]))
        result = getattr(ufunc, method)(*map(plain, args), **kwargs)
        return result.view(Dispatched) if isinstance(result, np.ndarray) and result.dtype.kind == "f" else result

    def __array_function__(self, func, types, args, kwargs):
        plain = lambda a: a.view(np.ndarray) if isinstance(a, Dispatched) else a  # noqa: E731
        result = func(*(type(a)(map(plain, a)) if isinstance(a, (list, tuple)) else plain(a) for a in args),
                      **{k: plain(v) for k, v in kwargs.items()})
        return result.view(Dispatched) if isinstance(result, np.ndarray) and result.dtype.kind == "f" else result


FEW = WRITTEN + [next(c for c in CASES[len(WRITTEN):] if c[0] == layer) for layer in ("conv1d", "conv2d", "max_pool2d", "avg_pool2d")] + [
    c for c in CASES if c[0] == "attention"][:3]  # a few of each layer


@pytest.mark.parametrize("layer, config, shapes", FEW, ids=[f"{c[0]}-{i}" for i, c in enumerate(FEW)])
def test_returned_arrays_are_fresh_of_the_inputs_type_and_inputs_untouched(layer, config, shapes):
    case = _case(layer, config, shapes)
    before = {n: a.copy() for n, a in case.inputs.items()}, case.dy.copy()
    y, grads = vjp(layer, case.config, case.inputs, case.dy)
    returned = {"y": y, **{f"d{n}": g for n, g in grads.items()}}
    for out, array in returned.items():
        others = {**case.inputs, "dy": case.dy, **{n: a for n, a in returned.items() if n != out}}
        shared = [n for n, other in others.items() if np.shares_memory(array, other)]
        assert not shared, f"{layer}: {out} shares memory with {shared}"
    assert all(np.array_equal(case.inputs[n], a) for n, a in before[0].items()) and np.array_equal(case.dy, before[1])
    wrapped = {n: a.view(Dispatched) if a.dtype.kind == "f" else a for n, a in case.inputs.items()}
    y_wrapped, grads_wrapped = vjp(layer, case.config, wrapped, case.dy.view(Dispatched))
    for out, array in {"y": y_wrapped, **{f"d{n}": g for n, g in grads_wrapped.items()}}.items():
        assert type(array) is Dispatched, f"{layer} {out}: {type(array).__name__}"
        np.testing.assert_array_equal(array.view(np.ndarray), returned[out], err_msg=f"{layer} {out}")


@pytest.mark.parametrize("layer, config, shapes", FEW, ids=[f"{c[0]}-{i}" for i, c in enumerate(FEW)])
def test_floors_are_finite_and_small(layer, config, shapes):
    """Under Monte Carlo arithmetic every entry moves by no more than a float64 rounding of its terms;
    a max-pool's y is a gather, untouched by the perturbed arithmetic."""
    case = _case(layer, config, shapes)
    reference = floors(case)
    for what, value, floor in [("y", reference.y, reference.y_floor),
                               *((f"d{n}", reference.grads[n], reference.floors[n]) for n in reference.grads)]:
        assert np.isfinite(floor).all(), f"{what}: floors not finite [{case.describe()}]"
        scale = np.abs(value).max()
        assert floor.max() <= 1e-13 * scale, f"{what}: floor {floor.max():.3g} of entries up to {scale:.3g} [{case.describe()}]"
        arithmetic = not (layer == "max_pool2d" and what == "y")
        assert (floor.max() > 0) == arithmetic, f"{what}: largest floor {floor.max()!r} [{case.describe()}]"


def test_a_key_nobody_attends_gets_exactly_zero_gradient_even_perturbed():
    """exp(-inf) stays 0 under the perturbed arithmetic: a masked key's dk and dv are exactly 0, no NaN."""
    layer, config, shapes = "attention", {"causal": True}, {"q": (2, 2, 5, 3), "k": (2, 2, 6, 3), "v": (2, 2, 6, 4), "mask": (5, 6)}
    case = _case(layer, config, shapes)
    case.inputs["mask"][:, 2] = False  # nobody attends to key 2; keys 5 is hidden by causality (Lq = 5)
    reference = floors(case)
    for name in ("k", "v"):
        hidden = reference.grads[name][:, :, [2, 5]], reference.floors[name][:, :, [2, 5]]
        assert not hidden[0].any() and not hidden[1].any(), f"d{name} of hidden keys: {hidden}"
        assert np.isfinite(reference.grads[name]).all() and reference.floors[name].max() > 0


def test_attention_with_scores_far_beyond_exp_s_range():
    """Scores of thousands: the row max subtracted before exp keeps the softmax finite, as torch's."""
    case = _case("attention", {"causal": True}, {"q": (1, 2, 6, 4), "k": (1, 2, 9, 4), "v": (1, 2, 9, 3)})
    case.inputs["q"] *= 60.0
    case.inputs["k"] *= 60.0
    y, grads = vjp("attention", case.config, case.inputs, case.dy)
    expected_y, expected = _torch_vjp("attention", case.config, case.inputs, case.dy)
    _assert_close(y, expected_y, "y", case)
    for name in expected:
        _assert_close(grads[name], expected[name], f"d{name}", case)
