"""The import contracts of `make lint` (tests/support/import_floors.py) catch
what they are meant to catch."""

from __future__ import annotations

import grimp

from tests.support.import_floors import FloorsContract, cycles, parse_floors, place

FLOORS = [
    "app",
    "app.cli | app.*.views",
    "app.orders : app.users",
    "app.config : app.*.models",
]


def graph(*imports: tuple[str, str]) -> grimp.ImportGraph:
    built = grimp.ImportGraph()
    for importer, imported in imports:
        built.add_import(importer=importer, imported=imported, line_number=1, line_contents="")
    return built


def check(built: grimp.ImportGraph) -> dict[str, object]:
    contract = FloorsContract(
        name="floors",
        session_options={"root_packages": ["app"]},
        contract_options={"floors": FLOORS, "packages": ["app"]},
    )
    result = contract.check(built, verbose=False)
    return {"kept": result.kept, **result.metadata}


def test_the_most_specific_pattern_places_a_module() -> None:
    patterns = parse_floors(FLOORS, {"app"})
    assert place("app", patterns).floor == 0  # type: ignore[union-attr]
    assert place("app.orders.views", patterns).floor == 1  # type: ignore[union-attr]
    assert place("app.orders.service", patterns).floor == 2  # type: ignore[union-attr]
    assert place("app.orders.models", patterns).floor == 3  # type: ignore[union-attr]
    # A root package stands for its own __init__ only.
    assert place("app.reports", patterns) is None


def test_imports_down_and_within_a_package_are_kept() -> None:
    result = check(graph(
        ("app", "app.cli"),
        ("app.cli", "app.orders.service"),
        ("app.orders.views", "app.orders.service"),
        ("app.orders.service", "app.users.service"),
        ("app.orders.service", "app.orders.models"),
        ("app.orders.models", "app.users.models"),
    ))  # fmt: skip
    assert result["kept"], result


def test_an_import_up_a_floor_breaks_it() -> None:
    result = check(graph(("app.orders.service", "app.orders.views")))
    assert not result["kept"]
    assert [w[:2] for w in result["wrong"]] == [("app.orders.service", "app.orders.views")]  # type: ignore[attr-defined]


def test_one_blueprints_views_may_not_import_anothers() -> None:
    result = check(graph(("app.orders.views", "app.users.views")))
    assert not result["kept"]


def test_a_module_on_no_floor_breaks_it() -> None:
    result = check(graph(("app.reports", "app.config")))
    assert result["unplaced"] == ["app.reports"]


def test_cycles_are_found_however_long() -> None:
    built = graph(
        ("a.one", "a.two"), ("a.two", "a.three"), ("a.three", "a.one"),
        ("a.four", "a.five"), ("a.five", "a.four"),
        ("a.six", "a.one"),
    )  # fmt: skip
    modules = set(built.modules)
    assert sorted(cycles(built, modules)) == [["a.five", "a.four"], ["a.one", "a.three", "a.two"]]
    assert list(cycles(graph(("a.one", "a.two")), {"a.one", "a.two"})) == []
