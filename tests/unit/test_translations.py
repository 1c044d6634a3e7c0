"""The German catalog: complete, not fuzzy, placeholders intact, and in sync with
the strings in the code and templates (so a new, untranslated string fails here)."""

from __future__ import annotations

import re
from configparser import RawConfigParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
BABEL_CFG = ROOT / "babel.cfg"
TRANSLATIONS = ROOT / "idp" / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
LOCALES = ("de",)
# The extra keywords given to pybabel extract (-k): idp/errors.py's lazy strings.
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}

# %(name)s, %s, %d ... and a literal %%.
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[a-zA-Z%]")


def method_map() -> tuple[list[tuple[str, str]], dict[str, dict[str, str]]]:
    """babel.cfg as babel's own frontend reads it (sections in file order)."""
    parser = RawConfigParser()
    parser.read(BABEL_CFG, encoding="utf-8")
    methods: list[tuple[str, str]] = []
    options: dict[str, dict[str, str]] = {}
    for section in parser.sections():
        method, pattern = (part.strip() for part in section.split(":", 1))
        methods.append((pattern, method))
        options[pattern] = dict(parser.items(section))
    return methods, options


def extracted() -> dict[str, list[str]]:
    """msgid -> locations, extracted from the sources right now."""
    methods, options = method_map()
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), methods, options, keywords=KEYWORDS
    ):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def catalog(locale: str | None) -> Catalog:
    """A locale's .po, or the .pot template for None."""
    path = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po" if locale else TEMPLATE
    with open(path, "rb") as f:
        return read_po(f, locale=locale)


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def as_list(value: str | tuple[str, ...]) -> list[str]:
    """A message's id or string; a tuple for plural forms."""
    return list(value) if isinstance(value, tuple) else [value]


def test_babel_cfg_covers_python_and_templates() -> None:
    methods, _ = method_map()
    assert ("idp/**.py", "python") in methods
    assert ("templates/**.html", "jinja2") in methods


def test_extraction_finds_the_ui_strings() -> None:
    found = extracted()
    # One from a template, one gettext and one lazy_gettext from Python.
    assert "Sign in" in found
    assert "The sign-in details are not correct." in found
    assert "The application sent an invalid sign-in request." in found


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated_and_not_fuzzy(locale: str) -> None:
    cat = catalog(locale)
    assert not cat.fuzzy, "the catalog header is marked fuzzy"
    assert str(cat.locale) == locale
    problems = []
    for message in cat:
        if not message.id:
            continue
        if message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        if not all(s.strip() for s in as_list(message.string)):
            problems.append(f"untranslated: {message.id!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("locale", LOCALES)
def test_placeholders_match(locale: str) -> None:
    problems = []
    for message in catalog(locale):
        if not message.id:
            continue
        expected = placeholders(as_list(message.id)[-1])
        # Named placeholders only: positional ones cannot be reordered.
        if any(not p.startswith("%(") and p != "%%" for p in expected):
            problems.append(f"positional placeholder in {message.id!r}; use %(name)s")
        for translated in as_list(message.string):
            if placeholders(translated) != expected:
                problems.append(f"{message.id!r}: {translated!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("locale", [None, *LOCALES], ids=["messages.pot", *LOCALES])
def test_catalog_is_in_sync_with_the_sources(locale: str | None) -> None:
    cat = catalog(locale)
    known = {i for message in cat if message.id for i in as_list(message.id)}
    found = extracted()
    missing = {msgid: where for msgid, where in found.items() if msgid not in known}
    assert not missing, (
        "strings not in the catalog; run pybabel extract and update (see babel.cfg), "
        "then translate them:\n"
        + "\n".join(f"  {msgid!r} ({', '.join(where)})" for msgid, where in missing.items())
    )
    # Obsolete entries are harmless at run time but mislead translators.
    stale = sorted(i for i in known if i not in found)
    assert not stale, f"entries no longer in the sources: {stale}"
