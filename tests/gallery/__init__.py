"""The gallery: correct implementations of the contract written in different styles, as their
authors would write them (not hardened against chainrule), each with one injected bug beside it.

- ``article_numpy``: the article's formulas literally, numpy float64, no stability tricks.
- ``scalar_engine``: a micrograd-style scalar autodiff engine (``math.exp``, ``math.log``).
- ``autograd_net`` / ``mygrad_net``: users of HIPS autograd and of mygrad.
- ``plain.js``: Node.js over JSON lines, Math.exp and losses from the output activation.

chainrule must accept every correct member (tests/test_gallery.py) and reject every bug with the
wrong tensor named. ``sweep.py`` runs them all on more seeds and prints a table.
"""

import shlex
from pathlib import Path

PLAIN_JS = f"node {shlex.quote(str(Path(__file__).with_name('plain.js')))}"

# What ``chainrule check`` is given for each member (MODULE:ATTR from the repository root).
MEMBERS = {
    "article_numpy": ["tests.gallery.article_numpy:ArticleNumpy"],
    "scalar_engine": ["tests.gallery.scalar_engine:ScalarEngine"],
    "autograd": ["tests.gallery.autograd_net:AutogradNet"],
    "mygrad": ["tests.gallery.mygrad_net:MygradNet"],
    "plain_js": ["--cmd", PLAIN_JS],
}
# Each member with its one injected bug.
BUGGED = {
    "article_numpy": ["tests.gallery.article_numpy:ArticleNumpyWrongTanh"],
    "scalar_engine": ["tests.gallery.scalar_engine:ScalarEngineWrongTanh"],
    "autograd": ["tests.gallery.autograd_net:AutogradNetWrongSoftplus"],
    "mygrad": ["tests.gallery.mygrad_net:MygradNetWrongGelu"],
    "plain_js": ["--cmd", f"{PLAIN_JS} --bug"],
}
