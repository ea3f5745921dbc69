"""The package's layout: its modules import one another without a cycle, even inside a function
body, and the README's layout table names every module."""

import ast
import html
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p.stem for p in (ROOT / "helpers").glob("*.py") if p.stem != "__init__")


def imported_helpers(module: str) -> set[str]:
    """The helpers modules ``module`` imports anywhere in its source (``from . import x``,
    ``from .x import y``, ``import helpers.x``), at module level or inside a function."""
    tree = ast.parse((ROOT / "helpers" / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("helpers"):
            found |= {node.module.split(".")[1]} if "." in node.module else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("helpers.")}
    return found & set(MODULES)


def test_helpers_modules_import_one_another_without_a_cycle():
    graph = {module: imported_helpers(module) for module in MODULES}
    assert graph["sweep"] >= {"data", "pruning", "retraining"}, "the graph is read"  # a reader that sees nothing passes nothing
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        raise AssertionError(f"import cycle: {' -> '.join(err.args[1])}") from None
    assert sorted(order) == MODULES


def test_the_readme_layout_table_names_every_module():
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `helpers/`"))
    assert set(re.findall(r"`([a-z_]+)`(?= \(|,)", row)) == set(MODULES)



def test_each_datasets_pages_quote_their_own_references_and_no_slow_down_reads_faster():
    """The committed pages: a Fashion-MNIST page quotes no figure of the original (MNIST) study,
    and no measured ratio below 1 is written "faster"."""
    pages = {p: html.unescape(re.sub(r"<[^>]+>", " ", p.read_text())) for p in sorted(ROOT.glob("reports/**/*.html"))}
    assert pages, "the committed report has pages"
    mnist_only = ("98.61", "original study reported", "original study saw it flat")
    for page, text in pages.items():
        if "fashion_mnist" in page.parts:
            assert not [q for q in mnist_only if q in text], page
        slow = re.findall(r"\b0\.\d+\s*×\s*\**\s*faster", text)
        assert not slow, (page, slow)
