"""chainrule's property suite: proves a gradient implementation right, from any project.

Every test takes the ``implementation`` fixture of chainrule's pytest plugin, so it runs once
per gradient source: the reference, each ``--chainrule-impl MODULE:ATTR`` and
``--chainrule-cmd "COMMAND"``, and every implementation installed under the entry-point group
``chainrule.implementations``. On networks, parameters and batches drawn by Hypothesis (only
the activations and losses a source declares):

- ``test_agreement``: its loss and gradients agree with every available oracle (PyTorch, JAX,
  finite differences), the failing tensor and entry named, with a reproduction;
- ``test_metamorphic``: oracle-free properties every correct gradient has (batch mean,
  permutations of the batch and of hidden neurons, scaling of the loss);
- ``test_layers``: each layer a layer source declares (docs/layers.md), judged by torch, JAX and
  finite differences, a failure reduced to its smallest shapes and diagnosed.

A source without networks skips the first two; one without layers, the third.

Run it from any directory with only chainrule installed::

    pytest --pyargs chainrule.suite --chainrule-impl mypackage.backprop:Backprop
    pytest --pyargs chainrule.suite --chainrule-cmd "node backprop.js" --chainrule-examples 200

It draws as many examples as the loaded Hypothesis profile says (the host project's, or
``--chainrule-examples N``), and its verdicts do not depend on the host's configuration: warnings
raised inside a source's calls are never errors, whatever the host's filters (``-W error``,
``filterwarnings = error``), and ``host_proof`` keeps the host profile's deadline and speed
health checks off these tests.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

__all__ = ["host_proof", "networks_only", "oracle_or_skip"]

# Health checks that would fail a correct source for reasons of the run, not of the source:
# drawing and judging a case is slow by Hypothesis's measure (torch, jax, a command over a pipe),
# and assume() filters out the rounding-ambiguous cases.
_RUN_NOT_SOURCE = {HealthCheck.too_slow, HealthCheck.filter_too_much}


def host_proof(test):
    """``@settings`` for a suite test: the loaded profile (examples, seed, database, phases), with no
    deadline (a first call to an oracle compiles for seconds) and _RUN_NOT_SOURCE suppressed
    beside the profile's own suppressions (iterating HealthCheck leaves out deprecated ones, which
    would warn)."""
    suppressed = [check for check in HealthCheck if check in _RUN_NOT_SOURCE or check in settings.default.suppress_health_check]
    return settings(deadline=None, suppress_health_check=suppressed)(test)


def oracle_or_skip(name: str):
    """The registered oracle of that name; the test is skipped when its framework is not installed."""
    from chainrule.oracles.registry import get

    registered = get(name)
    if not registered.info.available:
        pytest.skip(f"{name}: {registered.info.reason}")
    return registered


@pytest.fixture
def networks_only(implementation):
    """Skips a network test for a source that answers layers only (no loss_and_gradients)."""
    if not implementation.networks:
        pytest.skip(f"{implementation.name} answers layers only")
