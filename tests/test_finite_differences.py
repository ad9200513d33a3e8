"""The finite-difference oracle: the article's numbers, the same answer as a plain per-entry
loop, kink awareness, Richardson refinement, chunking, and finiteness far from 0."""

import copy
from fractions import Fraction

import numpy as np
import pytest

from chainrule.contract import TensorId
from chainrule.oracles.finite_differences import FiniteDifferences, step
from chainrule.oracles.registry import ORACLE_TARGETS
from chainrule.reference import LOSSES, Architecture, Reference, article, forward

FD = FiniteDifferences()
EPS = np.finfo(np.float64).eps
H = np.cbrt(EPS)  # the relative step, written out here rather than imported
SIGN_SENSITIVE = ("relu", "leaky_relu", "elu")

CASES = {  # id: (sizes, activations, loss)
    "3-tanh-4-identity-2:mse": ((3, 4, 2), ("tanh", "identity"), "mse"),
    "4-relu-5-gelu-3-softmax-3:ce": ((4, 5, 3, 3), ("relu", "gelu", "softmax"), "cross_entropy"),
    "3-elu-4-silu-4-sigmoid-2:bce": ((3, 4, 4, 2), ("elu", "silu", "sigmoid"), "binary_cross_entropy"),
    "2-softplus-3-leaky_relu-3-softmax-2:mse": ((2, 3, 3, 2), ("softplus", "leaky_relu", "softmax"), "mse"),
    "3-sigmoid-3-relu-2:mse": ((3, 3, 2), ("sigmoid", "relu"), "mse"),
}


def _case(sizes, activations, loss, seed, scale=1.0, N=5):
    rng = np.random.default_rng(seed)
    params = [(scale * rng.normal(size=(o, i)), scale * rng.normal(size=o)) for i, o in zip(sizes, sizes[1:])]
    X = rng.normal(size=(N, sizes[0]))
    if loss == "mse":
        Y = rng.normal(size=(N, sizes[-1]))
    elif loss == "cross_entropy":
        Y = rng.dirichlet(np.ones(sizes[-1]), size=N)
    else:
        Y = rng.random((N, sizes[-1]))
    return Architecture(sizes, activations, loss), params, X, Y


def _entries(params):
    return [(l, which, index) for l, pair in enumerate(params) for which, theta in enumerate(pair)
            for index in np.ndindex(theta.shape)]


def _ids(entries):
    """(l, which, index) -> (TensorId, index), the form refine takes and keys its answer by."""
    return [(TensorId(l + 1, "Wb"[which]), index) for l, which, index in entries]


def _naive(arch, params, X, Y):
    """Per entry: theta +- h in a copy of the parameters, the reference's whole forward pass rerun
    for each, and which relu/leaky_relu/elu pre-activations changed sign. Returns (grads, trusted)."""
    loss = LOSSES[arch.loss]
    base = forward(arch, params, X)

    def evaluate(ps):
        cache = forward(arch, ps, X)
        moved = any((np.sign(c.z) != np.sign(b.z)).any()
                    for c, b, name in zip(cache, base, arch.activations) if name in SIGN_SENSITIVE)
        return loss.value(cache[-1].z, cache[-1].a, Y), moved

    ps = [(W.copy(), b.copy()) for W, b in params]
    grads = [(np.empty_like(W), np.empty_like(b)) for W, b in params]
    trusted = [(np.empty(W.shape, bool), np.empty(b.shape, bool)) for W, b in params]
    for l, which, index in _entries(params):
        theta = ps[l][which]
        t = theta[index]
        h = (abs(t) + H * max(1.0, abs(t))) - abs(t)
        theta[index] = t + h
        up, moved_up = evaluate(ps)
        theta[index] = t - h
        down, moved_down = evaluate(ps)
        theta[index] = t
        grads[l][which][index] = (up - down) / (2 * h)
        trusted[l][which][index] = not (moved_up or moved_down)
    return grads, trusted


def _where(arch, params, X, Y):
    return f"[{arch}, N={len(X)}] params={[(W.tolist(), b.tolist()) for W, b in params]} X={X.tolist()} Y={Y.tolist()}"


def test_info_and_registry():
    assert FD.info.name == "finite_differences" and not FD.info.exact
    assert FD.info.kink_derivatives == {"relu": None, "leaky_relu": None}
    assert ORACLE_TARGETS["finite_differences"] == ("numpy", "chainrule.oracles.finite_differences:FiniteDifferences")


def test_article_worked_example():
    """Typed from the article: relu hidden layer, identity output, mse, one example."""
    result = FD.gradients(article.ARCH, article.PARAMS, article.X, article.Y)
    expected = [
        ([[-1.194, -2.0895, -0.253725], [-0.418, -0.7315, -0.088825]], [-0.2985, -0.1045]),
        ([[-1.787775, -0.054175], [-1.842225, -0.055825]], [-0.985, -1.015]),
    ]
    assert abs(result.loss - 0.5001125) <= 1e-12, f"loss: got {result.loss!r}, expected 0.5001125"
    for l, ((dW, db), (eW, eb)) in enumerate(zip(result.grads, expected)):
        np.testing.assert_allclose(dW, eW, rtol=0, atol=1e-8, err_msg=f"dL/dW[layer {l + 1}]")
        np.testing.assert_allclose(db, eb, rtol=0, atol=1e-8, err_msg=f"dL/db[layer {l + 1}]")
    assert all(mask.all() for pair in result.trusted for mask in pair) and result.kinks == frozenset()


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_structured_equals_naive_loop(case, seed):
    """The rank-1, batched evaluation computes the same L(theta +- h) as rerunning everything:
    central differences agree to a few ulps of L divided by 2h, and the trusted masks exactly."""
    arch, params, X, Y = _case(*case, seed)
    result = FD.gradients(arch, params, X, Y)
    grads, trusted = _naive(arch, params, X, Y)
    for l, which, index in _entries(params):
        t = params[l][which][index]
        bound = 8 * EPS * max(1.0, abs(result.loss)) / (2 * H * max(1.0, abs(t)))
        got, want = result.grads[l][which][index], grads[l][which][index]
        assert abs(got - want) <= bound, f"dL/d{'Wb'[which]}[layer {l + 1}]{index}: got {got}, naive {want} {_where(arch, params, X, Y)}"
        assert result.trusted[l][which][index] == trusted[l][which][index], f"trusted {l, which, index} {_where(arch, params, X, Y)}"


KINK = "kink"  # a pre-activation exactly at, or within a step of, 0: (3, 2, 2), N = 2
UNTRUSTED_3_2_2 = {(0, 0, (0, 0)), (0, 0, (0, 1)), (0, 1, (0,))}  # move z(1)[0, 0]; x[0, 2] = 0 leaves it


@pytest.mark.parametrize("offset", [0.0, 1e-9, -1e-9, -H], ids=["at-0", "above-0", "below-0", "onto-0"])
@pytest.mark.parametrize("name", SIGN_SENSITIVE)
def test_kink_marks_exactly_the_affected_entries(name, offset):
    """z(1)[0, 0] = 0.5*2 - 0.25*4 + 0.75*0 + offset. Perturbing W(1)[0, 0], W(1)[0, 1] or b(1)[0]
    moves it across, off or (offset -h, b + h) onto 0; W(1)[0, 2] meets x = 0 and leaves it where
    it is: still evidence."""
    arch = Architecture((3, 2, 2), (name, "identity"), "mse")
    params = [(np.array([[0.5, -0.25, 0.75], [0.3, 0.2, 0.4]]), np.array([offset, 0.1])),
              (np.array([[0.2, -0.1], [0.1, 0.2]]), np.array([0.05, 0.1]))]
    X, Y = np.array([[2.0, 4.0, 0.0], [1.0, -1.0, 2.0]]), np.array([[0.9, 0.8], [0.1, -0.2]])
    result = FD.gradients(arch, params, X, Y)
    untrusted = {e for e in _entries(params) if not result.trusted[e[0]][e[1]][e[2]]}
    assert untrusted == UNTRUSTED_3_2_2, f"untrusted: got {sorted(untrusted)}, expected {sorted(UNTRUSTED_3_2_2)} [{arch}]"
    assert result.kinks == (frozenset({name}) if offset == 0 and name != "elu" else frozenset())
    _, expected = Reference().loss_and_gradients(arch, params, X, Y)
    for l, which, index in set(_entries(params)) - untrusted:  # the evidence is right
        assert abs(result.grads[l][which][index] - expected[l][which][index]) <= 1e-9, (l, which, index)
    refined = FD.refine(arch, params, X, Y, _ids([(0, 1, (0,)), (1, 0, (0, 0))]))
    b1, W2 = (TensorId(1, "b"), (0,)), (TensorId(2, "W"), (0, 0))
    assert np.isnan(refined[b1]), f"refine across a kink: got {refined[b1]}, expected NaN"
    assert abs(refined[W2] - expected[1][0][0, 0]) <= 1e-11  # rounding of L/2h at the smallest steps


def test_kink_in_later_layers():
    """z(3)[0, 0] = 0.5*1 - 0.25*2 = 0 exactly, two layers after layer 1 and one after layer 2:
    every entry of layers 1 and 2 and row 0 of layer 3 move it; row 1 of layer 3 and the output
    layer do not, and stay evidence."""
    arch = Architecture((2, 2, 2, 2, 1), ("relu", "relu", "relu", "identity"), "mse")
    params = [(np.eye(2), np.zeros(2)), (np.eye(2), np.zeros(2)),
              (np.array([[0.5, -0.25], [0.25, 0.5]]), np.array([0.0, 0.5])), (np.array([[1.0, -1.0]]), np.array([0.1]))]
    X, Y = np.array([[1.0, 2.0]]), np.array([[0.3]])
    result = FD.gradients(arch, params, X, Y)
    none, row_1 = (np.zeros((2, 2), bool), np.zeros(2, bool)), (np.array([[False] * 2, [True] * 2]), np.array([False, True]))
    expected = [none, none, row_1, (np.ones((1, 2), bool), np.ones(1, bool))]
    for got, naive, want in zip(result.trusted, _naive(arch, params, X, Y)[1], expected):
        for g, n, w in zip(got, naive, want):
            np.testing.assert_array_equal(g, w)
            np.testing.assert_array_equal(n, w)
    assert result.kinks == frozenset({"relu"})


@pytest.mark.parametrize("theta", [0.5, -0.75, 1.0 - 2**-52, -3.999999, 1e6 + 0.1, 7e-6, -1e-3])
def test_step_makes_theta_plus_minus_h_floats(theta):
    """h = cbrt(eps) max(1, |theta|), rounded so that theta + h and theta - h are exactly floats."""
    h = float(step(np.float64(theta)))
    assert abs(h / (H * max(1.0, abs(theta))) - 1) < 1e-9
    for sign in (1, -1):
        assert Fraction(theta + sign * h) == Fraction(theta) + sign * Fraction(h), f"theta {theta!r} {sign:+d} h {h!r} is not a float"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_refine_improves_on_a_smooth_net(seed):
    """Large weights make L''' large: the plain step errs by h^2 L'''/6 ~ 1e-9, Richardson
    extrapolation over h, h/2, h/4, ... takes that error out."""
    arch, params, X, Y = _case((3, 4, 3, 2), ("tanh", "sigmoid", "softmax"), "cross_entropy", seed, scale=4.0)
    result = FD.gradients(arch, params, X, Y)
    _, expected = Reference().loss_and_gradients(arch, params, X, Y)

    def error(l, which, index, value):
        return abs(value - expected[l][which][index])

    worst = sorted(_entries(params), key=lambda e: -error(*e, result.grads[e[0]][e[1]][e[2]]))[:5]
    refined = FD.refine(arch, params, X, Y, _ids(worst))
    for e, key in zip(worst, _ids(worst)):
        plain = error(*e, result.grads[e[0]][e[1]][e[2]])
        better = error(*e, refined[key])
        assert better <= 1e-11 and better <= plain / 10, f"{e}: refined error {better:.1e}, plain {plain:.1e} {_where(arch, params, X, Y)}"


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_chunking_changes_nothing(case):
    """One perturbation per chunk gives bit-for-bit the same answer as one chunk per layer, for the
    differences and for the refined entries."""
    arch, params, X, Y = _case(*case, seed=3)
    tiny_chunks = FiniteDifferences(chunk_bytes=1)
    whole, tiny = FD.gradients(arch, params, X, Y), tiny_chunks.gradients(arch, params, X, Y)
    for (gW, gb), (tW, tb), (mW, mb), (uW, ub) in zip(whole.grads, tiny.grads, whole.trusted, tiny.trusted):
        for a, b in ((gW, tW), (gb, tb), (mW, uW), (mb, ub)):
            np.testing.assert_array_equal(a, b)
    entries = _ids(_entries(params))
    assert FD.refine(arch, params, X, Y, entries) == tiny_chunks.refine(arch, params, X, Y, entries)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_arguments_not_modified(case):
    arch, params, X, Y = _case(*case, seed=4)
    before = copy.deepcopy((params, X, Y))
    FD.gradients(arch, params, X, Y)
    FD.refine(arch, params, X, Y, _ids(_entries(params)[:3]))
    for got, want in zip(
        [a for W, b in params for a in (W, b)] + [X, Y], [a for W, b in before[0] for a in (W, b)] + list(before[1:])
    ):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "binary_cross_entropy"])
@pytest.mark.parametrize("name", ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "elu", "gelu", "silu"])
def test_finite_far_from_zero(name, loss):
    """|z| ~ 800 in every layer: no overflow, no warning (pytest turns warnings into errors)."""
    output = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}.get(loss, name)
    arch, _, _, Y = _case((2, 3, 2), (name, output), loss, seed=5, N=2)
    params = [(np.array([[400.0, -400.0], [-400.0, 400.0], [800.0, 0.0]]), np.zeros(3)),
              (np.array([[1.0, -1.0, 0.5], [-1.0, 1.0, -0.5]]), np.zeros(2))]
    X = np.array([[1.0, -1.0], [-1.0, 1.0]])
    result = FD.gradients(arch, params, X, Y)
    refined = FD.refine(arch, params, X, Y, _ids([(0, 0, (0, 0)), (1, 1, (0,))]))
    assert np.isfinite(result.loss) and all(np.isfinite(g).all() for pair in result.grads for g in pair)
    assert all(np.isfinite(v) for v in refined.values())
