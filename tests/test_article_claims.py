"""The article's claims about gradients, as properties of the reference.

- the directional derivative along a unit vector u is u . grad L;
- it is largest along grad L / |grad L| (steepest ascent);
- a small step against the gradient lowers the loss by about alpha |grad L|^2;
- repeated steps drive the worked example's loss toward 0, step for step as torch's SGD does.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from chainrule.reference import Reference, article, update
from chainrule.strategies import architectures, cases

SMOOTH = ("identity", "sigmoid", "tanh", "softplus", "gelu", "silu", "softmax")  # difference quotients need no kinks
reference = Reference()


def _flat(grads):
    return np.concatenate([g.ravel() for pair in grads for g in pair])


def _unflat(vector, like):
    out, start = [], 0
    for W, b in like:
        parts = []
        for g in (W, b):
            parts.append(vector[start : start + g.size].reshape(g.shape))
            start += g.size
        out.append(tuple(parts))
    return out


def _loss_along(case, direction, t):
    moved = [(W + t * dW, b + t * db) for (W, b), (dW, db) in zip(case.params, _unflat(direction, case.params))]
    return reference.loss_and_gradients(case.arch, moved, case.X, case.Y)[0]


def _derivative_along(case, direction, h=1e-5):
    """d/dt L(theta + t u) at t = 0, measured: the central difference D(h) errs by h^2 L'''/6, large
    behind saturated units; Richardson's (4 D(h/2) - D(h)) / 3 errs by O(h^4)."""
    D = lambda step: (_loss_along(case, direction, step) - _loss_along(case, direction, -step)) / (2 * step)  # noqa: E731
    return (4 * D(h / 2) - D(h)) / 3


smooth_cases = cases(architectures(activations=SMOOTH, max_depth=3, max_width=4))


@given(case=smooth_cases, data=st.data())
def test_directional_derivative_is_u_dot_gradient(case, data):
    _, grads = reference.loss_and_gradients(case.arch, case.params, case.X, case.Y)
    g = _flat(grads)
    u = data.draw(arrays(np.float64, g.shape, elements=st.floats(-1, 1)), label="u")
    assume(np.linalg.norm(u) > 0.1)
    u = u / np.linalg.norm(u)
    quotient = _derivative_along(case, u)
    assert abs(quotient - u @ g) <= 1e-6 * max(1.0, np.linalg.norm(g)), f"D_u L: {quotient} vs u.grad {u @ g} [{case.describe()}]"


@given(case=smooth_cases, data=st.data())
def test_gradient_direction_is_steepest_ascent(case, data):
    _, grads = reference.loss_and_gradients(case.arch, case.params, case.X, case.Y)
    g = _flat(grads)
    norm = np.linalg.norm(g)
    assume(norm > 1e-3)
    u = data.draw(arrays(np.float64, g.shape, elements=st.floats(-1, 1)), label="u")
    assume(np.linalg.norm(u) > 0.1)
    u = u / np.linalg.norm(u)
    steepest = _derivative_along(case, g / norm)
    assert abs(steepest - norm) <= 1e-6 * max(1.0, norm)
    assert _derivative_along(case, u) <= steepest + 1e-6 * max(1.0, norm)


@given(case=smooth_cases)
def test_small_step_lowers_loss_by_alpha_grad_squared(case):
    loss, grads = reference.loss_and_gradients(case.arch, case.params, case.X, case.Y)
    squared = float(_flat(grads) @ _flat(grads))
    assume(squared > 1e-6)
    alpha = 1e-4 / max(1.0, squared)
    after, _ = reference.loss_and_gradients(case.arch, update(case.params, grads, alpha), case.X, case.Y)
    drop = loss - after
    assert drop > 0
    assert abs(drop - alpha * squared) <= 0.05 * alpha * squared, f"drop {drop} vs alpha|g|^2 {alpha * squared}"


def test_training_drives_article_loss_to_zero_like_torch_sgd():
    torch = pytest.importorskip("torch")
    params = article.PARAMS
    tensors = [torch.tensor(a, requires_grad=True) for W, b in params for a in (W, b)]
    optimizer = torch.optim.SGD(tensors, lr=article.ALPHA)
    X, Y = torch.tensor(article.X), torch.tensor(article.Y)
    losses = []
    for step in range(100):
        loss, grads = reference.loss_and_gradients(article.ARCH, params, article.X, article.Y)
        losses.append(loss)
        optimizer.zero_grad()
        hidden = torch.relu(X @ tensors[0].T + tensors[1])
        torch_loss = ((hidden @ tensors[2].T + tensors[3] - Y) ** 2).sum() / len(X)
        torch_loss.backward()
        optimizer.step()
        params = update(params, grads, article.ALPHA)
        for got, want in zip([a for pair in params for a in pair], tensors):
            np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=f"step {step}")
    assert losses[-1] < 1e-3 * losses[0], f"loss after 100 steps: {losses[-1]} (from {losses[0]})"
    assert all(b <= a for a, b in zip(losses, losses[1:])), "loss rose during training"
