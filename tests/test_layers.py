"""The layers, read statically from the import graph of the source folders.

corrlab installs one import name; pyproject's ``package-dir`` maps each folder to a package
(``analysis/`` -> ``corrlab.analysis``, ...). Every ``.py`` file under a mapped folder is read
with :mod:`ast` (nothing is imported), named by that mapping, and every import in it is an
edge: top-level, inside functions (lazy) and under ``if TYPE_CHECKING:`` alike, relative
imports resolved, ``importlib.import_module("...")`` with a literal name included.

Layers (see the README's Layout section)::

    core = corrlab itself, corrlab.{errors,config,hashing,plan}, corrlab.dataset.*,
           corrlab.theory.* (anything in the corrlab/ folder)
    instruments  <-  protocols  <-  daq          analysis reads datasets through core
    (analysis never imports corrlab.theory: blind to the simulated worlds' ground truth)
    (only the daq CLI, corrlab.daq.cli[.*], may import corrlab.analysis)

Every rule is checked by a function that returns the offending edges, so a failure lists
all of them at once; ``test_the_checker_finds_*`` run those functions over a small
synthetic tree, so the rules cannot pass by finding nothing.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("analysis", "daq", "instruments", "protocols")  # corrlab.<layer>; the folders keep these names
BARE = frozenset(LAYERS)  # importable only as corrlab.<layer>


# ============================================================================ the graph


@dataclass(frozen=True)
class Edge:
    src: str  # importing module
    target: str  # the module imported, as written, made absolute (may not exist)
    resolved: str | None  # the longest known module that ``target`` names (None: outside the tree)
    path: Path
    line: int

    def __str__(self) -> str:
        shown = self.target if self.resolved in (None, self.target) else f"{self.target} [{self.resolved}]"
        return f"{self.src} -> {shown}  ({self.path}:{self.line})"


@dataclass
class Graph:
    root: Path
    files: dict[str, Path] = field(default_factory=dict)  # module -> file
    packages: set[str] = field(default_factory=set)  # modules that are a package's __init__
    edges: list[Edge] = field(default_factory=list)
    unparsable: list[str] = field(default_factory=list)

    def folder(self, module: str) -> str:
        """The package whose folder holds the module's file (a package's __init__: itself)."""
        return module if module in self.packages else module.rpartition(".")[0]

    def known(self, name: str) -> str | None:
        """The longest prefix of a dotted name that is a module in the tree."""
        parts = name.split(".")
        for n in range(len(parts), 0, -1):
            prefix = ".".join(parts[:n])
            if prefix in self.files:
                return prefix
        return None


def package_dir(root: Path) -> dict[str, str]:
    """pyproject's [tool.setuptools] package-dir: package -> folder (relative to root)."""
    with open(root / "pyproject.toml", "rb") as fh:
        setuptools = tomllib.load(fh)["tool"]["setuptools"]
    mapping = dict(setuptools.get("package-dir", {}))
    mapping.pop("", None)  # a src-layout root would map every top-level name; not used here
    return mapping


def module_files(root: Path, mapping: dict[str, str]) -> dict[Path, str]:
    """Every .py file under a mapped folder -> its dotted module name (the deepest mapping wins)."""
    out: dict[Path, str] = {}
    for pkg, folder in sorted(mapping.items(), key=lambda kv: len(Path(kv[1]).parts)):
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if not all(p.isidentifier() for p in parts):
                continue  # not importable (e.g. a script with a dash in its name)
            out[path] = ".".join([pkg, *parts])
    return out


def _import_calls(node: ast.AST) -> str | None:
    """The literal module name of importlib.import_module("x") / __import__("x") / find_spec("x")."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    arg = node.args[0]
    if name in ("import_module", "__import__", "find_spec") and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    return None


def raw_imports(tree: ast.AST, module: str, is_package: bool):
    """(absolute target, line) for every import in a module; relative imports resolved.

    ``from pkg import name`` yields ``pkg.name`` (the caller keeps it if that is a module,
    else falls back to ``pkg``) and, for the fallback, ``pkg`` itself is what is named.
    """
    here = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = here.split(".") if here else []
                up = node.level - 1
                if up > len(base_parts):
                    yield "." * node.level + (node.module or ""), None, node.lineno  # beyond the top: unresolvable
                    continue
                base = ".".join(base_parts[: len(base_parts) - up] if up else base_parts)
                pkg = ".".join(p for p in (base, node.module) if p)
            else:
                pkg = node.module or ""
            for alias in node.names:
                yield pkg, (None if alias.name == "*" else alias.name), node.lineno
        else:
            name = _import_calls(node)
            if name is not None and not name.startswith("."):
                yield name, None, node.lineno


def build_graph(root: Path, mapping: dict[str, str] | None = None) -> Graph:
    mapping = package_dir(root) if mapping is None else mapping
    graph = Graph(root=root)
    files = module_files(root, mapping)
    for path, module in files.items():
        graph.files[module] = path
        if path.name == "__init__.py":
            graph.packages.add(module)
    for path, module in files.items():
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as exc:
            graph.unparsable.append(f"{path}: {exc}")
            continue
        rel = path.relative_to(root)
        seen = set()
        for pkg, name, line in raw_imports(tree, module, path.name == "__init__.py"):
            target = pkg
            if name is not None and f"{pkg}.{name}" in graph.files:
                target = f"{pkg}.{name}"  # `from pkg import submodule`
            if (target, line) not in seen:  # `from m import a, b`: one edge
                seen.add((target, line))
                graph.edges.append(Edge(module, target, graph.known(target), rel, line))
    return graph


# ============================================================================ the rules


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_of(name: str) -> str | None:
    """'analysis', 'daq', 'instruments', 'protocols', 'core' (the rest of corrlab), or None (not corrlab)."""
    if not _under(name, "corrlab"):
        return None
    for layer in LAYERS:
        if _under(name, f"corrlab.{layer}"):
            return layer
    return "core"


def forbidden_edges(graph: Graph, src_layer: str, banned: tuple[str, ...], *, exempt=lambda module: False) -> list[Edge]:
    return sorted(
        (e for e in graph.edges
         if layer_of(e.src) == src_layer and not exempt(e.src) and layer_of(e.target) in banned),
        key=lambda e: (e.src, e.target, e.line),
    )


def is_daq_cli(module: str) -> bool:
    return _under(module, "corrlab.daq.cli")


RULES = {
    # rule name -> (importing layer, banned layers, exempt modules)
    "core": ("core", LAYERS, lambda m: False),
    "analysis": ("analysis", ("daq", "instruments", "protocols"), lambda m: False),
    "instruments": ("instruments", ("protocols", "daq", "analysis"), lambda m: False),
    "protocols": ("protocols", ("daq", "analysis"), lambda m: False),
    "daq": ("daq", ("analysis",), is_daq_cli),
}


def rule_violations(graph: Graph, rule: str) -> list[Edge]:
    src, banned, exempt = RULES[rule]
    return forbidden_edges(graph, src, banned, exempt=exempt)


def theory_violations(graph: Graph) -> list[Edge]:
    """corrlab.theory.* imports nothing of corrlab but core."""
    return sorted((e for e in graph.edges
                   if _under(e.src, "corrlab.theory") and layer_of(e.target) not in (None, "core")),
                  key=lambda e: (e.src, e.target, e.line))


def analysis_theory_violations(graph: Graph) -> list[Edge]:
    """corrlab.analysis imports nothing of corrlab.theory: it stays blind to the worlds' ground truth."""
    return sorted((e for e in graph.edges
                   if _under(e.src, "corrlab.analysis") and e.resolved and _under(e.resolved, "corrlab.theory")),
                  key=lambda e: (e.src, e.target, e.line))


def strongly_connected(nodes, succ) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(succ.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(succ.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        comp.append(member)
                        if member == node:
                            break
                    out.append(sorted(comp))
    return out


def _cycles(edges: list[tuple[str, str, Edge]]) -> list[tuple[list[str], list[Edge]]]:
    """Components with more than one node, or a self-loop: (nodes, the edges inside)."""
    succ: dict[str, set[str]] = {}
    nodes: set[str] = set()
    for a, b, _ in edges:
        succ.setdefault(a, set()).add(b)
        nodes.update((a, b))
    found = []
    for comp in strongly_connected(nodes, succ):
        members = set(comp)
        if len(comp) > 1 or comp[0] in succ.get(comp[0], ()):
            inside = sorted({e for a, b, e in edges if a in members and b in members},
                            key=lambda e: (e.src, e.target, e.line))
            found.append((comp, inside))
    return sorted(found)


def module_cycles(graph: Graph):
    return _cycles([(e.src, e.resolved, e) for e in graph.edges if e.resolved is not None])


def folder_cycles(graph: Graph):
    edges = []
    for e in graph.edges:
        if e.resolved is None:
            continue
        a, b = graph.folder(e.src), graph.folder(e.resolved)
        if a != b:
            edges.append((a, b, e))
    return _cycles(edges)


def bare_imports(root: Path, folders) -> list[str]:
    """Imports of analysis/daq/instruments/protocols by their bare names, in any .py under the folders."""
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except SyntaxError:
                continue
            rel = path.relative_to(root)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    name = _import_calls(node)
                    names = [name] if name else []
                for name in names:
                    if name.split(".")[0] in BARE:
                        found.append(f"{rel}:{node.lineno}: {name}")
    return found


_SPEC = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?::[A-Za-z_][\w.]*)?$")


def bare_module_strings(graph: Graph, py_folders, toml_folders) -> list[str]:
    """String literals naming a module of the tree by its bare name.

    In .py files: "daq.runner", "analysis.pipeline:analyze_dataset", "-m daq.cli"-style
    arguments, patch targets, ... when the bare name with ``corrlab.`` in front is a module
    of the tree or an attribute of a (non-package) module, so file names like "analysis.json"
    are not taken. In .toml files (under ``toml_folders``): any dotted "module" or
    "module:attr" value whose first part is a bare layer name.
    """
    root = graph.root

    def names_our_module(module: str) -> bool:
        full = "corrlab." + module
        parent = full.rpartition(".")[0]
        return full in graph.files or (parent in graph.files and parent not in graph.packages)

    found = []
    for folder in py_folders:
        for path in sorted((root / folder).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    m = _SPEC.match(node.value.strip())
                    if (m and m["module"].split(".")[0] in BARE and ("." in m["module"] or ":" in node.value)
                            and names_our_module(m["module"])):
                        found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value!r}")

    def strings(obj, where):
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from strings(v, f"{where}.{k}")
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                yield from strings(v, f"{where}[{i}]")
        elif isinstance(obj, str):
            yield where, obj

    for folder in toml_folders:
        for path in sorted((root / folder).rglob("*.toml")):
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
            for where, value in strings(data, ""):
                m = _SPEC.match(value.strip())
                if m and m["module"].split(".")[0] in BARE and ("." in m["module"] or ":" in value):
                    found.append(f"{path.relative_to(root)} {where.lstrip('.')}: {value!r}")
    return found


def _listing(items) -> str:
    return "\n  ".join(str(i) for i in items)


def _cycle_listing(cycles) -> str:
    return "\n".join(f"  cycle {' <-> '.join(nodes)}:\n    " + "\n    ".join(map(str, edges)) for nodes, edges in cycles)


# ============================================================================ the tree


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build_graph(ROOT)


def test_the_graph_is_the_whole_tree(graph):
    assert not graph.unparsable, _listing(graph.unparsable)
    mapping = package_dir(ROOT)
    assert set(mapping) >= {"corrlab", *(f"corrlab.{layer}" for layer in LAYERS)}, mapping
    assert len(graph.files) > 50, sorted(graph.files)
    assert {"corrlab", "corrlab.errors", "corrlab.dataset", "corrlab.analysis.pipeline", "corrlab.daq.runner",
            "corrlab.instruments.benchfile", "corrlab.protocols.config"} <= set(graph.files)
    resolved = {(e.src, e.resolved) for e in graph.edges}
    assert any(src == "corrlab.analysis.pipeline" and dst is not None and _under(dst, "corrlab.dataset")
               for src, dst in resolved), "analysis.pipeline reads datasets through corrlab.dataset"
    assert any(src == "corrlab.daq.runner" and dst is not None and _under(dst, "corrlab.dataset")
               for src, dst in resolved), "daq.runner writes datasets through corrlab.dataset"
    assert ("corrlab.daq.runner", "corrlab.protocols.config") in resolved
    # lazy imports count: runner imports the instruments inside a function
    assert any(e.src == "corrlab.daq.runner" and _under(e.target, "corrlab.instruments") for e in graph.edges)
    assert len({e for e in graph.edges if e.resolved is not None}) > 100


def test_core_imports_no_layer(graph):
    bad = rule_violations(graph, "core")
    assert not bad, "core (corrlab, errors, config, hashing, plan, dataset, theory) imports a layer:\n  " + _listing(bad)


def test_analysis_imports_no_theory(graph):
    bad = analysis_theory_violations(graph)
    assert not bad, "corrlab.analysis imports the theory the simulated worlds use (DESIGN: it stays blind):\n  " + _listing(bad)


def test_theory_imports_only_core(graph):
    bad = theory_violations(graph)
    assert not bad, "corrlab.theory imports beyond core:\n  " + _listing(bad)


def test_analysis_imports_no_daq_instruments_or_protocols(graph):
    bad = rule_violations(graph, "analysis")
    assert not bad, "corrlab.analysis imports daq/instruments/protocols:\n  " + _listing(bad)


def test_instruments_import_no_protocols_daq_or_analysis(graph):
    bad = rule_violations(graph, "instruments")
    assert not bad, "corrlab.instruments imports protocols/daq/analysis:\n  " + _listing(bad)


def test_protocols_import_no_daq_or_analysis(graph):
    bad = rule_violations(graph, "protocols")
    assert not bad, "corrlab.protocols imports daq/analysis:\n  " + _listing(bad)


def test_only_the_daq_cli_imports_analysis(graph):
    bad = rule_violations(graph, "daq")
    assert not bad, "corrlab.daq modules outside corrlab.daq.cli import corrlab.analysis:\n  " + _listing(bad)


def test_no_import_cycles_between_modules(graph):
    cycles = module_cycles(graph)
    assert not cycles, "import cycles between modules:\n" + _cycle_listing(cycles)


def test_no_import_cycles_between_folders(graph):
    cycles = folder_cycles(graph)
    assert not cycles, "import cycles between packages (folders):\n" + _cycle_listing(cycles)


def test_corrlab_imports_name_modules_that_exist(graph):
    """An import of corrlab.x.y names a module of the tree (or an attribute of one): a moved
    module leaves no import (lazy ones included) pointing at its old place."""
    bad = []
    for e in graph.edges:
        if not _under(e.target, "corrlab") or e.target in graph.files:
            continue
        # `import a.b.c` / `import_module("a.b.c")` must name a module; `from a.b import c` names
        # a module a.b (c may be an attribute), which is what e.target is then
        if e.resolved != e.target:
            bad.append(e)
    assert not bad, "imports of corrlab modules that are not in the tree:\n  " + _listing(sorted(bad, key=str))


SCAN = ("corrlab", *LAYERS, "tests", "benchmarks")


def test_no_bare_layer_imports_anywhere():
    found = bare_imports(ROOT, [f for f in SCAN if (ROOT / f).is_dir()])
    assert not found, "imports by the bare folder name (the package is corrlab.<layer>):\n  " + _listing(found)


def test_no_bare_module_names_in_strings_or_specs(graph):
    found = bare_module_strings(graph, [f for f in SCAN if (ROOT / f).is_dir()], ["protocols", "instruments"])
    assert not found, "module names without corrlab. in strings / specs:\n  " + _listing(found)


@pytest.mark.parametrize("layer", LAYERS)
def test_bare_layer_names_do_not_import_from_the_checkout(layer):
    """From the checkout's root the folders are on sys.path: the __init__ guard refuses them."""
    res = subprocess.run([sys.executable, "-c", f"import {layer}"], cwd=ROOT, check=False,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0, f"`import {layer}` from the checkout's root succeeded: use corrlab.{layer}"
    assert "ImportError" in res.stderr or "ModuleNotFoundError" in res.stderr, res.stderr


# ============================================================================ the checker itself


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def synthetic(tmp_path) -> Graph:
    _write(tmp_path, {
        "pyproject.toml": '[tool.setuptools]\npackage-dir = { "corrlab" = "corrlab", "corrlab.analysis" = "analysis", '
                          '"corrlab.daq" = "daq", "corrlab.instruments" = "instruments", '
                          '"corrlab.protocols" = "protocols" }\n',
        "corrlab/__init__.py": "",
        "corrlab/errors.py": "",
        "corrlab/plan.py": "def f():\n    from corrlab.protocols import steps\n",  # core -> layer, lazily
        "corrlab/a.py": "from . import b\n",  # a <-> b: a module cycle
        "corrlab/b.py": "from corrlab import a\n",
        "corrlab/p.py": "import corrlab.sub.q\n",  # corrlab <-> corrlab.sub: a folder cycle only
        "corrlab/s.py": "",
        "corrlab/sub/__init__.py": "",
        "corrlab/sub/q.py": "",
        "corrlab/sub/r.py": "from .. import s\n",
        "corrlab/theory/__init__.py": "",
        "corrlab/theory/t.py": "from corrlab.instruments.sim import world\n",
        "analysis/__init__.py": "",
        "analysis/bad.py": "import numpy\n\ndef g():\n    import corrlab.daq.runner\n",
        "analysis/rel.py": "from ..daq.runner import run\nfrom ..dataset import x\n",  # relative, beyond the folder
        "analysis/ok.py": "from corrlab.errors import E\nfrom corrlab import plan\n",
        "analysis/peek.py": "def f():\n    from corrlab.theory import t\n",  # analysis -> theory, lazily
        "daq/__init__.py": "",
        "daq/runner.py": "from corrlab.analysis import ok\n",  # not the CLI
        "daq/cli/__init__.py": "from corrlab.daq.cli.main import cli\n",
        "daq/cli/main.py": "def f():\n    from corrlab.analysis.ok import E\n",  # the CLI may
        "instruments/__init__.py": "",
        "instruments/sim/__init__.py": "",
        "instruments/sim/world.py": "import importlib\nimportlib.import_module('corrlab.protocols.steps')\n",
        "protocols/__init__.py": "",
        "protocols/config.py": "",
        "protocols/steps.py": "from corrlab.daq import runner\n",
        "protocols/x.toml": 'target = "daq.runner:run"\nok = "corrlab.daq.runner:run"\nkey = "control:break_L"\n',
        "tests/test_x.py": "import analysis.ok\nfrom daq import runner\nP = 'instruments.sim.world.time'\nF = 'analysis.json'\n",
    })
    return build_graph(tmp_path)


def _pairs(edges):
    return {(e.src, e.target) for e in edges}


def test_the_checker_names_modules_and_resolves_imports(synthetic):
    assert synthetic.files["corrlab.analysis.bad"].name == "bad.py"
    assert {"corrlab", "corrlab.sub", "corrlab.analysis", "corrlab.daq.cli"} <= synthetic.packages
    pairs = {(e.src, e.resolved) for e in synthetic.edges}
    assert ("corrlab.a", "corrlab.b") in pairs and ("corrlab.b", "corrlab.a") in pairs  # `from pkg import submodule`
    assert ("corrlab.analysis.rel", "corrlab.daq.runner") in pairs  # relative, across the package-dir mapping
    # not in the tree: the edge keeps the name, the graph its nearest existing package
    assert any(e.src == "corrlab.analysis.rel" and e.target == "corrlab.dataset" and e.resolved == "corrlab"
               for e in synthetic.edges)
    assert ("corrlab.analysis.ok", "corrlab.errors") in pairs  # `from pkg import attribute` -> pkg.module
    assert ("corrlab.analysis.ok", "corrlab.plan") in pairs
    assert ("corrlab.analysis.bad", None) in pairs  # numpy: outside the tree
    assert ("corrlab.sub.r", "corrlab.s") in pairs
    assert ("corrlab.daq.cli", "corrlab.daq.cli.main") in pairs
    assert synthetic.folder("corrlab.daq.cli") == "corrlab.daq.cli" and synthetic.folder("corrlab.daq.cli.main") == "corrlab.daq.cli"


def test_the_checker_finds_layer_violations(synthetic):
    assert _pairs(rule_violations(synthetic, "analysis")) == {("corrlab.analysis.bad", "corrlab.daq.runner"),
                                                              ("corrlab.analysis.rel", "corrlab.daq.runner")}
    assert _pairs(rule_violations(synthetic, "core")) == {("corrlab.plan", "corrlab.protocols.steps"),
                                                          ("corrlab.theory.t", "corrlab.instruments.sim.world")}
    assert _pairs(theory_violations(synthetic)) == {("corrlab.theory.t", "corrlab.instruments.sim.world")}
    assert _pairs(analysis_theory_violations(synthetic)) == {("corrlab.analysis.peek", "corrlab.theory.t")}
    assert _pairs(rule_violations(synthetic, "daq")) == {("corrlab.daq.runner", "corrlab.analysis.ok")}  # not the CLI's
    assert _pairs(rule_violations(synthetic, "instruments")) == {("corrlab.instruments.sim.world", "corrlab.protocols.steps")}
    assert _pairs(rule_violations(synthetic, "protocols")) == {("corrlab.protocols.steps", "corrlab.daq.runner")}
    msg = _listing(rule_violations(synthetic, "analysis"))
    assert "corrlab.analysis.bad -> corrlab.daq.runner  (analysis/bad.py:4)" in msg


def test_the_checker_finds_cycles(synthetic):
    cycles = module_cycles(synthetic)
    nodes = [c for c, _ in cycles]
    assert ["corrlab.a", "corrlab.b"] in nodes
    # daq.runner -> analysis.ok -> plan -(lazy)-> protocols.steps -> daq.runner
    assert ["corrlab.analysis.ok", "corrlab.daq.runner", "corrlab.plan", "corrlab.protocols.steps"] in nodes
    assert not any("corrlab.sub.q" in c or "corrlab.sub.r" in c for c in nodes)  # no module cycle there...
    folders = [c for c, _ in folder_cycles(synthetic)]
    assert any({"corrlab", "corrlab.sub"} <= set(c) for c in folders)  # ...but a folder cycle
    assert "corrlab.a -> corrlab.b" in _cycle_listing(cycles)
    # a self-loop is a cycle; a package importing its own submodule is not
    loop = Edge("m", "m", "m", Path("m.py"), 1)
    assert _cycles([("m", "m", loop)]) == [(["m"], [loop])]
    assert ["corrlab.daq.cli", "corrlab.daq.cli.main"] not in nodes


def test_tarjan_on_a_long_chain_and_a_ring():
    n = 5000  # deeper than the recursion limit
    succ = {f"m{i}": {f"m{i + 1}"} for i in range(n)}
    assert all(len(c) == 1 for c in strongly_connected(succ.keys() | {f"m{n}"}, succ))
    succ[f"m{n}"] = {"m0"}
    comps = strongly_connected(succ.keys(), succ)
    assert len(comps) == 1 and len(comps[0]) == n + 1


def test_the_checker_finds_bare_names(synthetic):
    root = synthetic.root
    found = bare_imports(root, ["corrlab", *LAYERS, "tests"])
    assert found == ["tests/test_x.py:1: analysis.ok", "tests/test_x.py:2: daq"]
    strings = bare_module_strings(synthetic, ["tests"], ["protocols"])
    assert strings == ["tests/test_x.py:3: 'instruments.sim.world.time'", "protocols/x.toml target: 'daq.runner:run'"]
