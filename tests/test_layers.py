"""The house rules a newcomer can rely on: one direction of imports, no cycles, light imports.

    contract, status  <-  reference  <-  oracles  <-  engine  <-  reports  <-  command line

A module imports only chainrule modules of its own layer or below (imports inside functions
count too), and no chain of imports leads back to where it started.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"chainrule": ROOT / "chainrule", "chainrule.reference": ROOT / "reference", "chainrule.oracles": ROOT / "oracles",
           "chainrule.reports": ROOT / "reports", "chainrule.suite": ROOT / "tests" / "suite"}
LAYERS = [  # (layer, module prefixes), the lowest first; a module takes the layer of its longest matching prefix
    ("contract", ("chainrule.contract", "chainrule.status", "chainrule.layers.contract")),
    ("reference", ("chainrule.reference",)),
    ("oracles", ("chainrule.oracles",)),
    ("engine", ("chainrule",)),
    ("reports", ("chainrule.reports",)),
    ("command line", ("chainrule.cli", "chainrule.pytest_plugin", "chainrule.bench", "chainrule.__main__", "chainrule.suite")),
]


def _modules() -> dict[str, Path]:
    """Every module of the package, by its installed name."""
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            if package == "chainrule" and path.parent != folder and path.parent.name not in ("sources", "layers"):
                continue
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            found[name] = path
    return found


MODULES = _modules()


def _rank(module: str) -> int:
    best = max(((len(prefix), rank) for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
                if module == prefix or module.startswith(prefix + ".")), default=(0, -1))
    return best[1]


def _imports(path: Path, module: str) -> set[str]:
    """The chainrule modules ``path`` imports anywhere in its body (relative imports resolved)."""
    imported = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        imported |= {name for name in names if name in MODULES and name != module}
    return imported


GRAPH = {module: _imports(path, module) for module, path in MODULES.items() if module != "chainrule"}


def test_every_module_has_a_layer():
    assert len(MODULES) > 40 and all(_rank(m) >= 0 for m in MODULES), sorted(m for m in MODULES if _rank(m) < 0)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down(module):
    upward = sorted(name for name in GRAPH[module] if _rank(name) > _rank(module))
    assert not upward, f"{module} ({LAYERS[_rank(module)][0]}) imports from above: " + ", ".join(
        f"{name} ({LAYERS[_rank(name)][0]})" for name in upward)


def test_no_import_cycles():
    """Depth-first search over every import; a cycle is reported as the chain that closes it."""
    state: dict[str, str] = {}

    def visit(module: str, chain: list[str]) -> None:
        state[module] = "open"
        for name in sorted(GRAPH.get(module, ())):
            if state.get(name) == "open":
                pytest.fail("import cycle: " + " -> ".join(chain[chain.index(name):] + [module, name]) if name in chain else f"{module} -> {name}")
            if name not in state:
                visit(name, chain + [module])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [])


LIGHT = {  # importing the first loads none of the second
    "chainrule": ("chainrule.", "hypothesis", "numpy", "torch", "jax"),
    "chainrule.reports.html": ("chainrule.oracles", "chainrule.search", "chainrule.judge", "chainrule.compare", "hypothesis", "torch", "jax", "scipy"),
    "chainrule.oracles.finite_differences": ("chainrule.reference", "chainrule.search", "chainrule.judge", "hypothesis", "torch", "jax"),
    "chainrule.oracles.torch_autograd": ("chainrule.reference", "chainrule.search", "chainrule.judge", "hypothesis", "jax"),
    "chainrule.oracles.jax_grad": ("chainrule.reference", "chainrule.search", "chainrule.judge", "hypothesis", "torch"),
}


@pytest.mark.parametrize("module", LIGHT)
def test_imports_stay_light(module):
    code = f"import sys; import {module}; print('\\n'.join(sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    loaded = [name for name in run.stdout.split() if name != module and name.startswith(LIGHT[module])
              and not (module == "chainrule" and name in ("chainrule",))]
    assert not loaded, f"import {module} also loaded: {', '.join(sorted(loaded)[:12])}"
