"""Every layer a source declares (docs/layers.md), against every available layer judge."""

import pytest
from hypothesis import settings

from chainrule.layers.search import JUDGED, check_layer
from chainrule.layers.text import format_layer_failure
from chainrule.oracles.layers import available


@pytest.mark.parametrize("layer", JUDGED)
def test_layer_agrees(implementation, layer):
    """The loaded Hypothesis profile's number of cases of the layer (seed 0), each judged by torch,
    JAX and finite differences; a failure is reduced, diagnosed and printed as code."""
    if layer not in implementation.layers:
        pytest.skip(f"{implementation.name} does not declare the layer {layer}")
    result = check_layer(implementation, layer, available(), examples=settings().max_examples, seed=0)
    assert result.failure is None, format_layer_failure(result.failure, result.diagnosis)
    assert result.agreed, f"{implementation.name}: no case of {layer} could be judged ({'; '.join(result.unsupported) or 'no evidence'})"
