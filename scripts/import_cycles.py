"""Print every import cycle between the project's modules (module-level and function-level imports).

`make check` runs it after `lint-imports`: the layer contracts forbid cycles between layers, this
catches the ones inside a layer (``oracles.hashing`` ↔ ``oracles.merkle`` was one). A package's
``__init__`` re-exporting its own submodules is not a cycle of two modules and is not counted.
Exit status 1 if there is any cycle.
"""

from __future__ import annotations

import sys

import grimp
import networkx as nx

PACKAGES = ("qeaims", "api", "controller", "oracles", "sectors", "vaults", "intel", "bus", "gateway", "chain", "links", "keys",
            "core")


def main() -> int:
    graph = grimp.build_graph(*PACKAGES)
    edges = nx.DiGraph()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            # a package importing its own submodule (re-export) and a submodule importing its parent
            # package are how Python packages work, not cycles between modules with separate jobs
            if imported.startswith(module + ".") or module.startswith(imported + "."):
                continue
            edges.add_edge(module, imported)
    cycles = [c for c in nx.strongly_connected_components(edges) if len(c) > 1]
    for cycle in cycles:
        print("import cycle: " + " <-> ".join(sorted(cycle)))
    print(f"{len(cycles)} import cycles among {len(graph.modules)} modules")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
