"""The article's worked example: the numbers the article prints, beside every source's.

``PUBLISHED`` is the one place where the article's results are typed in, copied from the
article's text, so that the report can hold each source against what a reader of the article
saw. Everything else is computed: the reference, each oracle and each plug-in answer the
article's question (reference/article.py) and their values are listed as they came.
"""

from __future__ import annotations

import itertools

from chainrule.case import Case
from chainrule.oracles.registry import Registered
from chainrule.reference import article
from chainrule.reports.records import Article, ArticleSource
from chainrule.sources.ask import answer
from chainrule.sources.faults import Fault
from chainrule.sources.implementation import Implementation

__all__ = ["PUBLISHED", "article_case", "article_values", "labels"]

# As printed in the article (loss, then layer 2 and layer 1, W before b).
PUBLISHED = {
    "loss": 0.5001125,
    "dW(2)": [[-1.787775, -0.054175], [-1.842225, -0.055825]],
    "db(2)": [-0.985, -1.015],
    "dW(1)": [[-1.194, -2.0895, -0.253725], [-0.418, -0.7315, -0.088825]],
    "db(1)": [-0.2985, -0.1045],
}
_ORDER = (2, 1)  # the article's order: the output layer first


def article_case() -> Case:
    """The worked example as a case of the sweep."""
    return Case(article.ARCH, article.PARAMS, article.X, article.Y)


def labels() -> tuple[str, ...]:
    """``L``, then ``dL/dw11(2)`` ... ``dL/db2(1)``: the article's names, w_ji(l)."""
    names = ["L"]
    for l in _ORDER:
        rows = PUBLISHED[f"dW({l})"]
        names += [f"dL/dw{j + 1}{i + 1}({l})" for j, i in itertools.product(range(len(rows)), range(len(rows[0])))]
        names += [f"dL/db{j + 1}({l})" for j in range(len(rows))]
    return tuple(names)


def _flatten(loss: float, grads) -> tuple[float, ...]:
    values = [float(loss)]
    for l in _ORDER:
        dW, db = grads[l - 1]
        values += [float(v) for v in dW.ravel()] + [float(v) for v in db.ravel()]
    return tuple(values)


def _published() -> tuple[float, ...]:
    values = [PUBLISHED["loss"]]
    for l in _ORDER:
        values += [v for row in PUBLISHED[f"dW({l})"] for v in row] + list(PUBLISHED[f"db({l})"])
    return tuple(values)


def article_values(implementations: list[Implementation], judges: list[Registered]) -> Article:
    """Every implementation's and every oracle's answer on the article's example."""
    sources = []
    for implementation in implementations:
        if not implementation.supports(article.ARCH):
            sources.append(ArticleSource(implementation.name, (), "does not support the article's network"))
            continue
        try:
            sources.append(ArticleSource(implementation.name, _flatten(*answer(implementation, article.ARCH, article.PARAMS, article.X, article.Y))))
        except Fault as fault:
            sources.append(ArticleSource(implementation.name, (), f"{fault.kind}: {fault.message}"))
    for registered in judges:
        if not registered.info.supports(article.ARCH):  # a plugged-in oracle judges only what it declares
            sources.append(ArticleSource(registered.info.name, (), "does not judge the article's network (outside what it declares)"))
            continue
        try:
            result = registered.oracle.gradients(article.ARCH, article.PARAMS, article.X, article.Y)
        except Exception as error:  # a plugged-in oracle that faults (chainrule.plugged.Disqualified)
            sources.append(ArticleSource(registered.info.name, (), str(error).split("\n")[0]))
            continue
        sources.append(ArticleSource(registered.info.name, _flatten(result.loss, result.grads)))
    return Article(article_case().describe(), labels(), _published(), tuple(sources))
