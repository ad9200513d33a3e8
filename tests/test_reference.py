"""The reference on its own: architectures, activations, numerics."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chainrule.reference import ACTIVATION_NAMES, ACTIVATIONS, Architecture, Reference
from chainrule.strategies import architectures


@given(architectures())
def test_architecture_string_round_trips(arch):
    assert Architecture.parse(str(arch)) == arch


def test_article_architecture_string():
    assert str(Architecture((3, 2, 2), ("relu", "identity"), "mse")) == "3-relu-2-identity-2:mse"


@pytest.mark.parametrize(
    "sizes, activations, loss, field, bad",
    [
        ((3,), (), "mse", "sizes", "(3,)"),
        ((3, 0, 2), ("relu", "identity"), "mse", "sizes", "0"),
        ((3, 2, 2), ("relu",), "mse", "activations", "1"),
        ((3, 2, 2), ("relu", "swish"), "mse", "activations", "'swish'"),
        ((3, 2, 2), ("softmax", "identity"), "mse", "activations", "softmax"),
        ((3, 2, 2), ("relu", "identity"), "hinge", "loss", "'hinge'"),
        ((3, 2, 2), ("relu", "identity"), "cross_entropy", "loss", "'cross_entropy'"),
        ((3, 2, 2), ("relu", "softmax"), "binary_cross_entropy", "loss", "'binary_cross_entropy'"),
    ],
    ids=["one-width", "zero-width", "too-few-activations", "unknown-activation", "hidden-softmax", "unknown-loss", "ce-without-softmax", "bce-without-sigmoid"],
)
def test_invalid_architecture_names_field_and_value(sizes, activations, loss, field, bad):
    with pytest.raises(ValueError) as error:
        Architecture(sizes, activations, loss)
    message = str(error.value)
    assert message.startswith(f"{field}:") and bad in message, message


@pytest.mark.parametrize("text", ["3-relu-2", "3-relu:mse", "a-relu-2:mse", "3-relu-2-identity-2"])
def test_parse_rejects_malformed_strings(text):
    with pytest.raises(ValueError):
        Architecture.parse(text)


@pytest.mark.parametrize("name", [n for n in ACTIVATION_NAMES if n != "softmax"])
def test_activation_derivative_matches_difference_quotient(name):
    """sigma'(z) against a central difference away from the kink."""
    z = np.linspace(-6, 6, 241)
    z = z[np.abs(z) > 1e-3]
    h = 1e-6
    activation = ACTIVATIONS[name]
    numeric = (activation.sigma(z + h) - activation.sigma(z - h)) / (2 * h)
    np.testing.assert_allclose(activation.sigma_prime(z), numeric, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name, expected", [("relu", 0.0), ("leaky_relu", 0.01), ("elu", 1.0)])
def test_kink_convention(name, expected):
    assert ACTIVATIONS[name].sigma_prime(np.array([0.0]))[0] == expected


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
@pytest.mark.parametrize("z", [-50.0, 50.0, -800.0, 800.0])
def test_activations_finite_without_warnings_far_out(name, z):
    """pytest turns warnings into errors: overflow in exp would fail here."""
    activation = ACTIVATIONS[name]
    Z = np.array([[z, -z]])
    A = activation.sigma(Z)
    dZ = activation.backward(Z, A, np.ones_like(Z))
    assert np.isfinite(A).all() and np.isfinite(dZ).all()


@pytest.mark.parametrize("loss, output", [("mse", "tanh"), ("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid")])
@given(scale=st.sampled_from([1.0, 10.0, 50.0]))
def test_saturated_outputs_stay_finite(loss, output, scale):
    arch = Architecture((2, 3), (output,), loss)
    params = [(np.array([[scale, -scale], [-scale, scale], [scale, scale]]), np.zeros(3))]
    X = np.array([[1.0, -1.0], [-1.0, 1.0]])
    Y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    value, grads = Reference().loss_and_gradients(arch, params, X, Y)
    assert np.isfinite(value) and all(np.isfinite(g).all() for pair in grads for g in pair)


def test_returns_dX():
    """dL/dX = dZ(1) W(1): checked against a difference quotient on the input."""
    from chainrule.reference import article

    result = Reference().gradients(article.ARCH, article.PARAMS, article.X, article.Y)
    h = 1e-6
    for i in range(3):
        step = np.zeros_like(article.X)
        step[0, i] = h
        up = Reference().loss_and_gradients(article.ARCH, article.PARAMS, article.X + step, article.Y)[0]
        down = Reference().loss_and_gradients(article.ARCH, article.PARAMS, article.X - step, article.Y)[0]
        assert abs(result.dX[0, i] - (up - down) / (2 * h)) < 1e-8
