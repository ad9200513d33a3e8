"""chainrule's judges: independent gradient sources that every answer is compared with.

    torch_autograd.py      PyTorch autograd, the network built from torch primitives (float64)
    jax_grad.py            JAX grad, every small network as one padded compiled function
    finite_differences.py  structural central differences, kink-aware, Richardson refinement
    registry.py            which oracles exist here, each loaded lazily (a missing framework
                           makes its oracle unavailable, never an error)
    base.py                what an oracle answers (OracleGradients) and says of itself (OracleInfo)

No judge imports the reference or the engine: a judge that shares the defendant's code shares
its bugs. Importing this package imports nothing.
"""
