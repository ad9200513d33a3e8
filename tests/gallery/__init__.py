"""The gallery: correct implementations of the contract written in different styles, as their
authors would write them (not hardened against chainrule), each with one injected bug beside it.

- ``article_numpy``: the article's formulas literally, numpy float64, no stability tricks.
- ``scalar_engine``: a micrograd-style scalar autodiff engine (``math.exp``, ``math.log``);
  ``micrograd_tanh``: the same with micrograd's own tanh, (e^2z - 1)/(e^2z + 1), which overflows.
- ``autograd_net`` / ``mygrad_net``: users of HIPS autograd and of mygrad.
- ``autograd_tanh_sigmoid``: autograd with sigmoid as ``0.5 (tanh(z/2) + 1)``, as its README writes
  it, silu and binary cross-entropy built on that.
- ``torch_functional``: torch in float64, its own functions (``F.softplus``'s default threshold,
  ``F.cross_entropy`` on the logits, ``F.binary_cross_entropy``), ``loss.backward()``.
- ``jax_nn``: ``jax.value_and_grad`` with ``jax.nn`` in float64 (x64 for the call only), its own
  leaky_relu'(0) = 1 declared; log losses from ``log_softmax`` and ``log_sigmoid``.
- ``plain.js``: Node.js over JSON lines, Math.exp and losses from the output activation.
- In low precision, each declaring it (``PRECISIONS``): ``article_float32`` (article_numpy in numpy
  float32), ``plain32.js`` (plain.js storing every array in a Float32Array), ``torch_lowp``
  (torch autograd on float32, float16 and bfloat16 tensors), ``jax_float32`` (jax.value_and_grad
  in JAX's default float32).

chainrule must accept every correct member (tests/test_gallery.py) and reject every bug with the
wrong tensor named. ``sweep.py`` runs them all on more seeds and prints a table.

Layer sources (docs/layers.md, ``LAYER_MEMBERS``; tests/test_layer_gallery.py, their bugs in
tests/broken_layers.py): ``layers_numpy`` (a course assignment's ``*_forward`` returning a cache and
``*_backward(dout, cache)``), ``layers_torch`` (torch.autograd.Functions with hand-written
backward, through ``chainrule.torch_function_layers``), ``layers_jax`` (jax.custom_vjps through
``chainrule.jax_custom_vjp_layers``), ``layers.js`` (Node.js over JSON lines).

In the thorough Hypothesis profile only (``THOROUGH_MEMBERS``): ``tf_net``, TensorFlow in float64
over JSON lines from a virtual environment of its own (.venv-tf, made by scripts/tf-venv.sh).
"""

import shlex
from pathlib import Path

PLAIN_JS = f"node {shlex.quote(str(Path(__file__).with_name('plain.js')))}"
PLAIN32_JS = f"node {shlex.quote(str(Path(__file__).with_name('plain32.js')))}"
TF_NET = f"{shlex.quote(str(Path(__file__).parents[2] / '.venv-tf' / 'bin' / 'python'))} {shlex.quote(str(Path(__file__).with_name('tf_net.py')))}"

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
    "torch_functional": ["tests.gallery.torch_functional:TorchFunctional"],
    "micrograd_tanh": ["tests.gallery.scalar_engine:ScalarEngineMicrogradTanh"],
    "jax_nn": ["tests.gallery.jax_nn:JaxNN"],
    "autograd_tanh_sigmoid": ["tests.gallery.autograd_tanh_sigmoid:AutogradTanhSigmoid"],
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
    "torch_functional": ["tests.gallery.torch_functional:TorchFunctionalWrongSoftplus"],
    "jax_nn": ["tests.gallery.jax_nn:JaxNNWrongElu"],
    "autograd_tanh_sigmoid": ["tests.gallery.autograd_tanh_sigmoid:AutogradTanhSigmoidWrongSigmoid"],
}
# The layer sources, as ``chainrule check`` is given them.
LAYER_MEMBERS = {
    "course_numpy": ["tests.gallery.layers_numpy:CourseLayers"],
    "torch_function": ["tests.gallery.layers_torch:SOURCE"],
    "jax_custom_vjp": ["tests.gallery.layers_jax:SOURCE"],
    "plain_js_layers": ["--cmd", f"node {shlex.quote(str(Path(__file__).with_name('layers.js')))}"],
}
# Members judged in the thorough Hypothesis profile only (a TensorFlow install of its own), and
# their bugs.
THOROUGH_MEMBERS = {"tf": ["--cmd", TF_NET]}
THOROUGH_BUGGED = {"tf": ["--cmd", f"{TF_NET} --bug"]}
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
