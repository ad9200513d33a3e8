"""chainrule's report and walkthrough: records -> results.json -> index.html, and ``explain``.

    sources.py   who is judged: the reference, --impl, --cmd, installed entry points
    sweep.py     the cases (Hypothesis, seeded) and one record per implementation x oracle x case
    failures.py  each failing implementation's shrunk counterexample
    layers.py    each declared layer of each source that answers layers searched (chainrule.layers.search)
    article.py   the article's printed numbers beside every source's
    explain.py   every gradient of a small network as its chain-rule sum over paths
    records.py   the plain records; results.py writes and reads them as JSON
    views.py     what the page shows, from the records; plots.py the colour scale and histograms
    html.py      results.json -> index.html through templates/report.html (autoescaped Jinja2)
    atomic.py    every file is replaced whole or not at all
    run.py       ``chainrule report`` end to end
"""
