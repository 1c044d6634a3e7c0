"""The admin pages' client form, read and filled generically from the
declaration of a client's fields (``idp.oidc.fields``).

The form's inputs are named after the ``Client`` columns (``name``,
``allowed_scopes``); a ``ClientError`` names a field by its metadata name
(``client_name``, ``scope``) and is shown next to the input it is about.
What cannot be read at all (a lifetime that is not a number, JSON that is not
JSON) is refused here; everything else is checked by ``idp.oidc.clients``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from ..oidc.clients import ClientError
from ..oidc.fields import BY_KEY, FIELDS, SECTIONS, ClientField
from ..oidc.models import Client

MAX_FIELD = 4000


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def submitted(form: MultiDict[str, str]) -> dict[str, Any]:
    """What the administrator typed, to show it again after an error."""
    values: dict[str, Any] = {"client_id": form.get("client_id", "")[:MAX_FIELD]}
    for field in FIELDS:
        if field.kind == "flag":
            values[field.attr] = form.get(field.attr) == "yes"
        elif field.kind == "choices":
            values[field.attr] = form.getlist(field.attr)
        else:
            values[field.attr] = form.get(field.attr, "")[:MAX_FIELD]
    return values


def _shown(field: ClientField, value: Any) -> Any:
    """A column's value as the form's input shows it."""
    if field.kind in ("flag", "choices"):
        return list(value) if field.kind == "choices" else bool(value)
    if field.kind in ("uris", "list"):
        return "\n".join(value or [])
    if field.kind == "json":
        return json.dumps(value, indent=2) if value else ""
    if value is None:
        return ""
    return str(value)


def current(client: Client | None) -> dict[str, Any]:
    """The form's values for an existing client, or a new one's defaults."""
    if client is None:
        return {
            "client_id": "",
            **{field.attr: _shown(field, field.new_default()) for field in FIELDS},
        }
    return {
        "client_id": client.client_id,
        **{field.attr: _shown(field, getattr(client, field.attr)) for field in FIELDS},
    }


def _read(field: ClientField, value: Any) -> Any:
    """One input's value as the column's; ValueError (a message for people)
    when it cannot be read."""
    if field.kind == "text":
        text = " ".join(value.split())
        if not text:
            raise ValueError(_("Please fill in this field."))
        return text
    if field.kind == "uri":
        return value.strip() or None
    if field.kind in ("uris", "list"):
        return _lines(value)
    if field.kind == "choices":
        return [choice for choice in field.choices if choice in value]
    if field.kind == "option":
        if value and value not in field.choices:
            raise ValueError(_("Please choose one of the listed values."))
        return value or None
    if field.kind == "seconds":
        if not value.strip():
            return None
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(
                _("Please enter a number of seconds, or nothing for the default.")
            ) from None
    if field.kind == "json":
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(_("This is not valid JSON.")) from None
    return value  # flag, choice


def read(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The service's fields from the form's values, and the errors of the
    fields that could not be read at all (the service checks the rest)."""
    fields: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in FIELDS:
        try:
            fields[field.attr] = _read(field, values[field.attr])
        except ValueError as exc:
            errors[field.attr] = str(exc)
    return fields, errors


def field_error(exc: ClientError) -> dict[str, str]:
    """A service's refusal, next to the input it is about."""
    field = BY_KEY.get(exc.field)
    return {field.attr if field else exc.field: exc.message}


def sections() -> list[tuple[str, Any, list[ClientField]]]:
    """The form's fieldsets: name, legend and fields, in the declaration's order."""
    return [
        (name, legend, [field for field in FIELDS if field.section == name])
        for name, legend in SECTIONS
    ]
