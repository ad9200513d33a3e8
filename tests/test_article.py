"""The article's worked example, pinned: every number typed from the article, to 1e-12."""

import numpy as np
import pytest

from chainrule.oracles.registry import ORACLE_TARGETS, get
from chainrule.reference import Reference, article, backward, forward, update

TOL = 1e-12
LOSS = 0.5001125
GRADS = [  # (dL/dW, dL/db) per layer, from the article's backward pass
    ([[-1.194, -2.0895, -0.253725], [-0.418, -0.7315, -0.088825]], [-0.2985, -0.1045]),
    ([[-1.787775, -0.054175], [-1.842225, -0.055825]], [-0.985, -1.015]),
]
GRAD_TOL = {"finite_differences": 1e-8}  # central differences: see oracles/tolerances.py


def _source(name):
    if name == "reference":
        return Reference()
    registered = get(name)
    if not registered.info.available:
        pytest.skip(registered.info.reason)
    return registered.oracle


@pytest.fixture(params=["reference", *ORACLE_TARGETS], scope="module")
def source(request):
    return request.param, _source(request.param)


def test_forward_pass_matches_article():
    z1, z2 = (layer.z for layer in forward(article.ARCH, article.PARAMS, article.X))
    np.testing.assert_allclose(z1, [[1.815, 0.055]], rtol=0, atol=TOL)
    np.testing.assert_allclose(z2, [[0.4075, 0.2925]], rtol=0, atol=TOL)


def test_output_gradient_matches_article():
    """dL/dz(2) = (2/N)(z(2) - y) = (-0.985, -1.015): the output layer's db when N = 1."""
    cache = forward(article.ARCH, article.PARAMS, article.X)
    result = backward(article.ARCH, article.PARAMS, article.X, article.Y, cache)
    np.testing.assert_allclose(result.grads[1][1], [-0.985, -1.015], rtol=0, atol=TOL)


def test_loss_and_all_fourteen_gradients(source):
    name, gradient_source = source
    loss, grads = gradient_source.loss_and_gradients(article.ARCH, article.PARAMS, article.X, article.Y)
    assert abs(loss - LOSS) <= TOL, f"loss: got {loss!r}, expected {LOSS} ({name})"
    tol = GRAD_TOL.get(name, TOL)
    for l, ((dW, db), (want_W, want_b)) in enumerate(zip(grads, GRADS), start=1):
        np.testing.assert_allclose(dW, want_W, rtol=0, atol=tol, err_msg=f"dL/dW[layer {l}] ({name})")
        np.testing.assert_allclose(db, want_b, rtol=0, atol=tol, err_msg=f"dL/db[layer {l}] ({name})")


def test_one_update_step_lowers_the_loss(source):
    """theta <- theta - 0.01 dL/dtheta gives w11(2) = 0.21787775 and a loss below 0.5001125."""
    name, gradient_source = source
    _, grads = gradient_source.loss_and_gradients(article.ARCH, article.PARAMS, article.X, article.Y)
    stepped = update(article.PARAMS, grads, article.ALPHA)
    assert abs(stepped[1][0][0, 0] - 0.21787775) <= GRAD_TOL.get(name, TOL)
    loss_after, _ = gradient_source.loss_and_gradients(article.ARCH, stepped, article.X, article.Y)
    assert loss_after < LOSS, f"loss after one step: got {loss_after}, expected below {LOSS} ({name})"


def test_update_returns_new_arrays():
    before = [(W.copy(), b.copy()) for W, b in article.PARAMS]
    update(article.PARAMS, [(np.ones_like(W), np.ones_like(b)) for W, b in article.PARAMS], 0.5)
    for (W, b), (W0, b0) in zip(article.PARAMS, before):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
