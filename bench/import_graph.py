"""The import graph of the e2e package: parts, arrows between them, and arrows that point up.

    python bench/import_graph.py            # summary
    python bench/import_graph.py --edges    # every arrow between parts

A *part* is a top-level module or package of `e2e` (`e2e.engine`, `e2e.api`, ...), except
that each application package under `e2e.tasks` is a part of its own. Every import counts,
at module level or inside a function (a lazy import is still a dependency). LAYERS orders
the parts from the bottom up; an arrow from a part to one in a higher layer points back up.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
# Lowest first. A part may import parts of its own layer or below.
LAYERS = [
    {"e2e.errors", "e2e.extras", "e2e.atomic"},  # atomic: crash-safe file writes
    {"e2e.config", "e2e.data", "e2e.plots", "e2e.recipes"},  # recipes: YAML files + lookup
    {"e2e.engine"},
    {"e2e.tasks"},  # the registry and the contract (tasks/__init__, tasks/base)
    {"e2e.tasks.vision", "e2e.tasks.speech", "e2e.tasks.text", "e2e.tasks.driving",
     "e2e.speech", "e2e.text", "e2e.driving"},  # the last three: where apps lived before
    {"e2e.api", "e2e.export"},
    {"e2e.stepwise", "e2e.serve"},
    {"e2e.compare"},
    {"e2e.cli"},
    {"e2e", "e2e.__main__"},
]


def part_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) >= 3 and parts[1] == "tasks" and parts[2] not in ("base",):
        return ".".join(parts[:3])
    if len(parts) >= 2 and parts[1] not in ("__init__",):
        return ".".join(parts[:2])
    return "e2e"


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    names = list(rel.parts)
    if names[-1] == "__init__":
        names = names[:-1]
    return ".".join(names)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The e2e modules that `path` imports."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module in modules:
            for a in node.names:  # `from e2e import api` imports e2e.api, not the package
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in modules else node.module)
    return found


def layer(part: str) -> int:
    for i, group in enumerate(LAYERS):
        if part in group:
            return i
    return len(LAYERS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edges", action="store_true")
    args = ap.parse_args()
    files = sorted((SRC / "e2e").rglob("*.py"))
    modules = {module_name(f) for f in files}
    parts = {part_of(m) for m in modules}
    edges = set()
    for f in files:
        src = part_of(module_name(f))
        for target in imports(f, modules):
            dst = part_of(target)
            if dst != src:
                edges.add((src, dst))
    up = sorted((a, b) for a, b in edges if layer(b) > layer(a))
    print(f"modules: {len(modules)}  parts: {len(parts)}  arrows between parts: {len(edges)}  "
          f"arrows pointing up: {len(up)}")
    for a, b in up:
        print(f"  up: {a} -> {b}")
    unknown = sorted(p for p in parts if layer(p) == len(LAYERS))
    if unknown:
        print(f"  parts in no layer: {', '.join(unknown)}")
    if args.edges:
        for a, b in sorted(edges):
            print(f"  {a} -> {b}")


if __name__ == "__main__":
    main()
