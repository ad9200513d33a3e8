"""The gallery: correct implementations of the contract written in different styles, as their
authors would write them (not hardened against chainrule), each with one injected bug beside it.

- ``article_numpy``: the article's formulas literally, numpy float64, no stability tricks.
- ``scalar_engine``: a micrograd-style scalar autodiff engine (``math.exp``, ``math.log``).
- ``autograd_net`` / ``mygrad_net``: users of HIPS autograd and of mygrad.
- ``plain.js``: Node.js over JSON lines, Math.exp and losses from the output activation.
- In low precision, each declaring it (``PRECISIONS``): ``article_float32`` (article_numpy in numpy
  float32), ``plain32.js`` (plain.js storing every array in a Float32Array), ``torch_lowp``
  (torch autograd on float32, float16 and bfloat16 tensors), ``jax_float32`` (jax.value_and_grad
  in JAX's default float32).

chainrule must accept every correct member (tests/test_gallery.py) and reject every bug with the
wrong tensor named. ``sweep.py`` runs them all on more seeds and prints a table.
"""

import shlex
from pathlib import Path

PLAIN_JS = f"node {shlex.quote(str(Path(__file__).with_name('plain.js')))}"
PLAIN32_JS = f"node {shlex.quote(str(Path(__file__).with_name('plain32.js')))}"

# What ``chainrule check`` is given for each member (MODULE:ATTR from the repository root).
MEMBERS = {
    "article_numpy": ["tests.gallery.article_numpy:ArticleNumpy"],
    "scalar_engine": ["tests.gallery.scalar_engine:ScalarEngine"],
    "autograd": ["tests.gallery.autograd_net:AutogradNet"],
    "mygrad": ["tests.gallery.mygrad_net:MygradNet"],
    "plain_js": ["--cmd", PLAIN_JS],
    "article_float32": ["tests.gallery.article_float32:ArticleFloat32"],
    "plain32_js": ["--cmd", PLAIN32_JS],
    "torch_float32": ["tests.gallery.torch_lowp:TorchFloat32"],
    "torch_float16": ["tests.gallery.torch_lowp:TorchFloat16"],
    "torch_bfloat16": ["tests.gallery.torch_lowp:TorchBfloat16"],
    "jax_float32": ["tests.gallery.jax_float32:JaxFloat32"],
}
# Each member with its one injected bug.
BUGGED = {
    "article_numpy": ["tests.gallery.article_numpy:ArticleNumpyWrongTanh"],
    "scalar_engine": ["tests.gallery.scalar_engine:ScalarEngineWrongTanh"],
    "autograd": ["tests.gallery.autograd_net:AutogradNetWrongSoftplus"],
    "mygrad": ["tests.gallery.mygrad_net:MygradNetWrongGelu"],
    "plain_js": ["--cmd", f"{PLAIN_JS} --bug"],
    "article_float32": ["tests.gallery.article_float32:ArticleFloat32WrongSigmoid"],
    "plain32_js": ["--cmd", f"{PLAIN32_JS} --bug"],
    "torch_float32": ["tests.gallery.torch_lowp:TorchFloat32WrongSilu"],
}
# The precision each member declares (judged in it unless ``--precision`` says otherwise); float64
# for the others.
PRECISIONS = {
    "article_float32": "float32",
    "plain32_js": "float32",
    "torch_float32": "float32",
    "torch_float16": "float16",
    "torch_bfloat16": "bfloat16",
    "jax_float32": "float32",
}
