"""Two import-linter contract types for `make lint` (configured in pyproject.toml).

``floors``: the code is built in floors (docs/architecture.md) and every import
points down or stays on its floor. A floor is a list of module patterns (``*``
stands for one name); a module belongs to the floor of its most specific
matching pattern (a pattern matches a module and everything inside it, except a
root package, which stands for its own ``__init__`` only). Every module must be
on a floor, so a new module is placed deliberately. On a floor written with
``|`` the parts are independent: ``idp.*.views`` means one blueprint's views
may not import another's.

``acyclic``: no import cycle between modules, counting imports inside
functions (import-linter's own ``acyclic_siblings`` compares packages, not
modules).

Imports under ``if TYPE_CHECKING:`` are left out (the ``exclude_type_checking_imports``
setting): they exist for the type checker only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


@dataclass(frozen=True)
class Pattern:
    text: str
    floor: int
    independent: bool
    root: bool

    @property
    def parts(self) -> list[str]:
        return self.text.split(".")

    @property
    def specificity(self) -> tuple[int, int]:
        return (len(self.parts), sum(part != "*" for part in self.parts))

    def unit(self, module: str) -> str | None:
        """The part of ``module`` this pattern names (its wildcards filled in),
        or None if the pattern does not match ``module``."""
        names = module.split(".")
        if len(names) < len(self.parts) or (self.root and len(names) != len(self.parts)):
            return None
        head = names[: len(self.parts)]
        if all(p in ("*", n) for p, n in zip(self.parts, head, strict=True)):
            return ".".join(head)
        return None


def parse_floors(floors: list[str], roots: set[str]) -> list[Pattern]:
    patterns = []
    for index, floor in enumerate(floors):
        independent = "|" in floor
        for text in re.split(r"[|:]", floor):
            text = text.strip()
            patterns.append(Pattern(text, index, independent, text in roots))
    return patterns


@dataclass(frozen=True)
class Placed:
    floor: int
    unit: str
    independent: bool


def place(module: str, patterns: list[Pattern]) -> Placed | None:
    best: tuple[tuple[int, int], Placed] | None = None
    for pattern in patterns:
        unit = pattern.unit(module)
        if unit is not None and (best is None or pattern.specificity > best[0]):
            best = (pattern.specificity, Placed(pattern.floor, unit, pattern.independent))
    return best[1] if best else None


def _same_package(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


class FloorsContract(Contract):
    type_name = "floors"

    floors = fields.ListField(subfield=fields.StringField())
    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        roots = set(cast(list[str], self.packages))
        floors = cast(list[str], self.floors)
        patterns = parse_floors(floors, roots)
        modules = sorted(m for m in graph.modules if m.split(".")[0] in roots)
        placed = {m: place(m, patterns) for m in modules}
        unplaced = [m for m, p in placed.items() if p is None]
        wrong = []
        for importer in modules:
            here = placed[importer]
            if here is None:
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                there = placed.get(imported)
                if there is None:
                    continue
                upwards = there.floor < here.floor
                sideways = (
                    here.independent
                    and there.floor == here.floor
                    and not _same_package(here.unit, there.unit)
                )
                if upwards or sideways:
                    lines = [
                        d["line_number"]
                        for d in graph.get_import_details(importer=importer, imported=imported)
                    ]
                    why = (
                        f"up from floor {here.floor + 1} to {there.floor + 1}"
                        if upwards
                        else f"across floor {here.floor + 1} ({here.unit} to {there.unit})"
                    )
                    wrong.append((importer, imported, lines, why))
        return ContractCheck(
            kept=not unplaced and not wrong,
            metadata={"unplaced": unplaced, "wrong": wrong, "floors": floors},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        metadata: dict[str, Any] = check.metadata
        for module in metadata["unplaced"]:
            output.print_error(f"{module} is on no floor: add it to a floor's patterns.")
        for importer, imported, lines, why in metadata["wrong"]:
            at = ", ".join(f"l.{n}" for n in lines)
            output.print_error(f"{importer} imports {imported} ({at}): {why}.")
        output.new_line()
        output.print("Floors, top to bottom:")
        for index, floor in enumerate(metadata["floors"], 1):
            output.print(f"  {index}. {floor}")


def cycles(graph: grimp.ImportGraph, modules: set[str]) -> Iterator[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0
    for start in sorted(modules):
        if start in index:
            continue
        # Iterative depth-first search: (module, its remaining successors).
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start) & modules)))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    nexts = sorted(graph.find_modules_directly_imported_by(succ) & modules)
                    work.append((succ, iter(nexts)))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    yield sorted(component)


class AcyclicContract(Contract):
    type_name = "acyclic"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        roots = set(cast(list[str], self.packages))
        modules = {m for m in graph.modules if m.split(".")[0] in roots}
        found = list(cycles(graph, modules))
        return ContractCheck(kept=not found, metadata={"cycles": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for component in check.metadata["cycles"]:
            output.print_error(f"An import cycle of {len(component)} modules:")
            for module in component:
                output.print(f"  {module}")
            output.new_line()
