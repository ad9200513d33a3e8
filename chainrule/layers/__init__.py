"""Layers one at a time (docs/layers.md): a layer source's vector-Jacobian product judged.

chainrule.layers.contract holds the contract's names; the rest of this package is the engine
for layers: cases, their floors, the judges' verdicts, the search, reduction and diagnosis.
"""
