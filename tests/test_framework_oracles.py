"""The PyTorch and JAX oracles: the article's numbers, the reference, kinks, extremes, info."""

import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.special import ndtr

from chainrule.contract import REQUIRED_OUTPUT
from chainrule.oracles.registry import get
from chainrule.reference import ACTIVATION_NAMES, KINKED, LOSS_NAMES, Architecture, Reference, article

ROOT = Path(__file__).resolve().parents[1]
ORACLES = ("torch", "jax")
MODULES = {"torch": "chainrule.oracles.torch_autograd", "jax": "chainrule.oracles.jax_grad"}
# d sigma / dz at z = 0 as each framework's network computes it: torch follows the contract,
# jax.nn.leaky_relu takes the z >= 0 branch (a convention, reported as such).
EXPECTED_KINK_DERIVATIVES = {"torch": {"relu": 0.0, "leaky_relu": 0.01}, "jax": {"relu": 0.0, "leaky_relu": 1.0}}
COMBINATIONS = [(activation, loss) for activation in ACTIVATION_NAMES for loss in LOSS_NAMES]


@pytest.fixture(params=ORACLES, scope="module")
def oracle(request):
    registered = get(request.param)
    if not registered.info.available:
        pytest.skip(f"{request.param}: {registered.info.reason}")
    return registered.oracle


def _architecture(activation: str, loss: str, sizes=(3, 4, 5, 3)) -> Architecture:
    """``activation`` in every layer it may take: hidden layers (not softmax) and, for mse, the output."""
    hidden = activation if activation != "softmax" else "tanh"
    output = REQUIRED_OUTPUT.get(loss, activation)
    return Architecture(sizes, (hidden,) * (len(sizes) - 2) + (output,), loss)


def _targets(loss: str, n: int, width: int, rng) -> np.ndarray:
    Y = rng.uniform(0.0, 1.0, (n, width))
    return Y / Y.sum(axis=1, keepdims=True) if loss == "cross_entropy" else Y


def _random_case(arch: Architecture, n: int, seed: int):
    rng = np.random.default_rng(seed)
    params = [(rng.normal(0.0, 1.5, (m, k)), rng.normal(0.0, 0.5, m)) for k, m in zip(arch.sizes, arch.sizes[1:])]
    return params, rng.normal(0.0, 1.5, (n, arch.sizes[0])), _targets(arch.loss, n, arch.sizes[-1], rng)


def _assert_close(name, where, got, expected, *, rtol=0.0, atol=0.0):
    """Loss and each gradient array within atol + rtol * max|expected| of that array."""
    (got_loss, got_grads), (expected_loss, expected_grads) = got, expected
    pairs = [("L", got_loss, expected_loss)] + [
        (f"dL/d{p}({l + 1})", g, e)
        for l, (got_layer, expected_layer) in enumerate(zip(got_grads, expected_grads, strict=True))
        for p, g, e in zip("Wb", got_layer, expected_layer)
    ]
    for what, g, e in pairs:
        g, e = np.asarray(g), np.asarray(e)
        assert g.shape == e.shape and g.dtype == np.float64, (
            f"{what}: got {g.dtype} {g.shape}, expected float64 {e.shape} ({name}) [{where}]"
        )
        error = np.abs(g - e)
        at = np.unravel_index(np.argmax(error), error.shape)
        assert error[at] <= atol + rtol * np.abs(e).max(), (
            f"{what}{list(at)}: got {g[at]!r}, expected {e[at]!r} ({name}) [{where}]"
        )


def test_article_worked_example(oracle):
    expected = (
        0.5001125,
        [
            (np.array([[-1.194, -2.0895, -0.253725], [-0.418, -0.7315, -0.088825]]), np.array([-0.2985, -0.1045])),
            (np.array([[-1.787775, -0.054175], [-1.842225, -0.055825]]), np.array([-0.985, -1.015])),
        ],
    )
    got = oracle.loss_and_gradients(article.ARCH, article.PARAMS, article.X, article.Y)
    _assert_close(oracle.name, f"{article.ARCH}, N=1", got, expected, atol=1e-12)


@pytest.mark.parametrize("activation, loss", COMBINATIONS, ids=[f"{a}-{l}" for a, l in COMBINATIONS])
def test_matches_reference(oracle, activation, loss):
    arch = _architecture(activation, loss)
    params, X, Y = _random_case(arch, n=5, seed=ACTIVATION_NAMES.index(activation) * 3 + LOSS_NAMES.index(loss))
    got = oracle.loss_and_gradients(arch, params, X, Y)
    _assert_close(oracle.name, f"{arch}, N=5", got, Reference().loss_and_gradients(arch, params, X, Y), rtol=1e-12)


def test_gelu_is_the_exact_erf_form(oracle):
    """At z = +-3 the tanh approximation is 4e-4 off: the loss would differ by > 1e-4."""
    arch = Architecture((1, 1), ("gelu",), "mse")
    X, Y = np.array([[3.0], [-3.0]]), np.zeros((2, 1))
    exact = np.mean((X * ndtr(X)) ** 2)
    tanh_form = np.mean((0.5 * X * (1 + np.tanh(np.sqrt(2 / np.pi) * (X + 0.044715 * X**3)))) ** 2)
    assert abs(tanh_form - exact) > 1e-4
    got = oracle.loss_and_gradients(arch, [(np.ones((1, 1)), np.zeros(1))], X, Y)
    assert abs(got[0] - exact) <= 1e-12 * exact, f"L: got {got[0]!r}, expected {exact!r} ({oracle.name}) [{arch}]"


@pytest.mark.parametrize("activation", [name for name in ACTIVATION_NAMES if name != "softmax"])
def test_kinks_and_their_derivatives(oracle, activation):
    """1-1 network with z = W x + b = 0 and y = -1; for a kinked sigma, sigma(0) = 0: L = 1, dL/db = 2 sigma'(0)."""
    arch = Architecture((1, 1), (activation,), "mse")
    params, Y = [(np.ones((1, 1)), np.zeros(1))], np.array([[-1.0]])
    result = oracle.gradients(arch, params, np.zeros((1, 1)), Y)
    expected_kinks = frozenset({activation} & set(KINKED))
    assert result.kinks == expected_kinks, (
        f"kinks at z = 0: got {set(result.kinks)}, expected {set(expected_kinks)} ({oracle.name}) [{arch}, N=1]"
    )
    if activation in KINKED:
        assert result.loss == 1.0, f"L: got {result.loss!r}, expected 1.0 ({oracle.name}) [{arch}, N=1]"
        derivative = result.grads[0][1][0] / 2.0
        declared = oracle.info.kink_derivatives[activation]
        assert derivative == declared, f"{activation}'(0): got {derivative!r}, declared {declared!r} ({oracle.name})"
        expected = EXPECTED_KINK_DERIVATIVES[oracle.name][activation]
        assert declared == expected, f"{activation}'(0) declared: got {declared!r}, expected {expected!r} ({oracle.name})"
    # z = 0.5, -0.25 from inputs that hold zeros: nothing is reported, whatever zeros lie elsewhere.
    arch = Architecture((2, 1), (activation,), "mse")
    X = np.array([[0.0, 0.5], [-0.25, 0.0]])
    away = oracle.gradients(arch, [(np.ones((1, 2)), np.zeros(1))], X, -np.ones((2, 1)))
    assert away.kinks == frozenset(), (
        f"kinks at z = 0.5, -0.25: got {set(away.kinks)}, expected none ({oracle.name}) [{arch}, N=2]"
    )


@pytest.mark.parametrize("scale", [25.0, 800.0])
@pytest.mark.parametrize("activation, loss", COMBINATIONS, ids=[f"{a}-{l}" for a, l in COMBINATIONS])
def test_large_preactivations_arguments_and_state(oracle, activation, loss, scale):
    """z = +-scale in both layers: finite, warning-free and right; arguments untouched; answers independent.

    25 is past F.softplus's linear threshold (20) yet sigmoid(25) < 1; 800 overflows exp.
    """
    arch = _architecture(activation, loss, sizes=(2, 2, 2))
    params = [
        (np.array([[scale, 0.0], [0.0, -scale]]), np.zeros(2)),  # z(1) = (s, -s)
        (np.array([[1e-3, 2e-3], [-2e-3, 1e-3]]), np.array([scale, -scale])),  # z(2) = (s, -s) + at most 3e-3 s
    ]
    X, Y = np.array([[1.0, 1.0]]), np.array([[0.25, 0.75]])  # one example: no cancellation between examples
    arguments = [X, Y, *[p for layer in params for p in layer]]
    copies = [np.copy(v) for v in arguments]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = oracle.loss_and_gradients(arch, params, X, Y)
        _assert_close(oracle.name, f"{arch}, N=1", first, Reference().loss_and_gradients(arch, params, X, Y), rtol=1e-12)
        for dW, db in first[1]:  # the caller owns the answer: scribbling on it changes nothing later
            dW.fill(np.nan), db.fill(np.nan)
        second = oracle.loss_and_gradients(arch, params, X, Y)
    for before, after in zip(copies, arguments):
        assert np.array_equal(before, after), f"argument modified ({oracle.name}) [{arch}, N=1]"
    _assert_close(oracle.name, f"{arch}, N=1", second, oracle.loss_and_gradients(arch, params, X, Y))


def test_info(oracle):
    info = oracle.info
    framework = importlib.import_module(info.framework)
    assert (info.name, info.framework) == (oracle.name, oracle.name), f"got {info.name}/{info.framework} ({oracle.name})"
    assert info.version == framework.__version__, f"version: got {info.version!r}, expected {framework.__version__!r}"
    assert info.available and info.exact, f"got available={info.available}, exact={info.exact} ({oracle.name})"


@pytest.mark.parametrize("name", ORACLES)
def test_imports_without_the_other_framework_or_the_reference(name):
    """A judge must not share the defendant's code, and must load where the other framework is missing."""
    other = {"torch": "jax", "jax": "torch"}[name]
    code = f"import sys; sys.modules.update({{{other!r}: None, 'chainrule.reference': None}}); import {MODULES[name]}"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, f"importing {MODULES[name]} without {other} and reference failed:\n{run.stderr}"


def test_jax_float64_only_inside_the_oracle():
    """A user's JAX code in the same process keeps float32 defaults after the oracle has judged."""
    code = (
        "import numpy as np, jax, jax.numpy as jnp\n"
        "from chainrule.oracles.jax_grad import JaxGrad\n"
        "from chainrule.reference import Architecture\n"
        "answer = JaxGrad().gradients(Architecture.parse('2-tanh-2:mse'), [(np.ones((2, 2)) / 3, np.zeros(2))], np.ones((1, 2)), np.zeros((1, 2)))\n"
        "assert answer.grads[0][0].dtype == np.float64 and answer.grads[0][0][0, 0] != np.float32(answer.grads[0][0][0, 0])\n"
        "print(jnp.zeros(1).dtype, jax.config.jax_enable_x64)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["float32", "False"], f"after the oracle: {run.stdout.strip()}"
