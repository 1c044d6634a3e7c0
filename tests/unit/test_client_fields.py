"""One declaration of a client's fields (idp.oidc.fields) drives every surface:
each field is a column, a registration metadata name (where a client may set
it), an admin API property, an admin form input and an `idp clients` option."""

from __future__ import annotations

import click
from sqlalchemy import inspect

from idp.admin import schemas
from idp.cli.clients import clients_add, clients_update
from idp.oidc.fields import DCR_FIELDS, FIELDS
from idp.oidc.metadata import MODEL
from idp.oidc.models import Client


def options(command: click.Command) -> set[str]:
    return {
        name
        for param in command.params
        for name in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
    }


def test_every_field_is_a_column() -> None:
    columns = {column.key for column in inspect(Client).columns}
    assert {field.attr for field in FIELDS} <= columns
    assert len({field.attr for field in FIELDS}) == len(FIELDS)
    assert len({field.key for field in FIELDS}) == len(FIELDS)


def test_registration_metadata_is_the_dcr_fields() -> None:
    assert {field.key for field in DCR_FIELDS} <= set(MODEL.model_fields)
    admin_only = {field.key for field in FIELDS} - {field.key for field in DCR_FIELDS}
    # RFC 7591 §2: what only an administrator sets is not client metadata.
    assert admin_only.isdisjoint(MODEL.model_fields)
    assert {"first_party", "require_mfa", "access_token_lifetime"} <= admin_only


def test_admin_api_models_have_every_field() -> None:
    keys = {field.key for field in FIELDS}
    assert keys <= set(schemas.Client.model_fields)
    assert keys | {"client_id"} == set(schemas.NewClient.model_fields)
    assert keys == set(schemas.ClientChanges.model_fields)
    for field in FIELDS:
        assert schemas.ClientChanges.model_fields[field.key].default is None


def test_cli_has_an_option_for_every_field() -> None:
    for command in (clients_add, clients_update):
        assert {f"--{field.cli_option}" for field in FIELDS} <= options(command)
    assert "--clear-jwks" in options(clients_update)
    assert "--no-first-party" in options(clients_update)
