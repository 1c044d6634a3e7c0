"""The admin pages of client registrations and of the initial access tokens
of dynamic client registration (RFC 7591 §3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import (
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ...oidc import registration
from ...oidc.clients import ClientError
from ...oidc.models import Client
from ...state import idp
from .. import client_form, service
from .common import (
    HOUR,
    actor,
    bp,
    no_store,
    paging,
    search_text,
)


@bp.get("/clients")
def clients() -> ResponseReturnValue:
    q = search_text()
    offset, limit = paging()
    page = service.search_clients(q, offset=offset, limit=limit)
    return render_template("admin/clients.html", page=page, q=q, args={"q": q, "limit": limit})


def _client_form(
    *,
    client: Client | None,
    values: Mapping[str, Any],
    errors: Mapping[str, str] | None = None,
) -> str:
    return render_template(
        "admin/client_form.html",
        client=client,
        values=values,
        errors=errors or {},
        sections=client_form.sections(),
    )


def _secret_page(client: Client, secret: str, *, created: bool) -> Response:
    return no_store(
        render_template("admin/client_secret.html", client=client, secret=secret, created=created)
    )


@bp.route("/clients/new", methods=["GET", "POST"])
def new_client() -> ResponseReturnValue:
    if request.method == "GET":
        return _client_form(client=None, values=client_form.current(None))
    values = client_form.submitted(request.form)
    fields, errors = client_form.read(values)
    client_id = values["client_id"].strip()
    if client_id:
        fields["client_id"] = client_id
    if errors:
        return _client_form(client=None, values=values, errors=errors), 400
    try:
        client, secret = service.create_client(actor(), **fields)
    except ClientError as exc:
        return _client_form(client=None, values=values, errors=client_form.field_error(exc)), 400
    if secret is not None:
        return _secret_page(client, secret, created=True)
    flash(_("The client was registered."), "success")
    return redirect(url_for("admin.client", client_id=client.client_id))


@bp.get("/clients/<path:client_id>")
def client(client_id: str) -> ResponseReturnValue:
    found = service.get_client(client_id)
    return render_template(
        "admin/client.html", client=found, details=service.describe_client(found)
    )


@bp.route("/clients/<path:client_id>/edit", methods=["GET", "POST"])
def edit_client(client_id: str) -> ResponseReturnValue:
    found = service.get_client(client_id)
    if request.method == "GET":
        return _client_form(client=found, values=client_form.current(found))
    values = client_form.submitted(request.form)
    values["client_id"] = found.client_id
    fields, errors = client_form.read(values)
    if errors:
        return _client_form(client=found, values=values, errors=errors), 400
    try:
        secret = service.update_client(actor(), found, **fields)
    except ClientError as exc:
        # The service rolled back: the registration is as it was.
        found = service.get_client(client_id)
        return _client_form(client=found, values=values, errors=client_form.field_error(exc)), 400
    if secret is not None:
        return _secret_page(found, secret, created=False)
    flash(_("The changes were saved."), "success")
    return redirect(url_for("admin.client", client_id=found.client_id))


@bp.post("/clients/<path:client_id>/disable")
def disable_client(client_id: str) -> ResponseReturnValue:
    found = service.get_client(client_id)
    service.set_client_disabled(actor(), found, disabled=True)
    flash(_("The client is disabled: no sign-ins or tokens through it."), "success")
    return redirect(url_for("admin.client", client_id=found.client_id))


@bp.post("/clients/<path:client_id>/enable")
def enable_client(client_id: str) -> ResponseReturnValue:
    found = service.get_client(client_id)
    service.set_client_disabled(actor(), found, disabled=False)
    flash(_("The client is enabled again."), "success")
    return redirect(url_for("admin.client", client_id=found.client_id))


@bp.route("/clients/<path:client_id>/delete", methods=["GET", "POST"])
def delete_client(client_id: str) -> ResponseReturnValue:
    found = service.get_client(client_id)
    if request.method == "GET":
        return render_template("admin/client_delete.html", client=found)
    name = found.name
    service.delete_client(actor(), found)
    flash(_("The client %(name)s was deleted.", name=name), "success")
    return redirect(url_for("admin.clients"))


@bp.route("/clients/<path:client_id>/secret", methods=["GET", "POST"])
def rotate_secret(client_id: str) -> ResponseReturnValue:
    found = service.get_client(client_id)
    if request.method == "GET":
        return render_template("admin/client_rotate.html", client=found)
    try:
        new = service.rotate_client_secret(actor(), found)
    except ClientError:
        flash(_("This client signs in without a secret: there is none to replace."), "error")
        return redirect(url_for("admin.client", client_id=found.client_id))
    return _secret_page(found, new.secret, created=False)


# --- initial access tokens (RFC 7591 §3) ----------------------------------------------


def _token_page(
    values: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None
) -> str:
    return render_template(
        "admin/registration_tokens.html",
        tokens=registration.initial_tokens(),
        values=values or {"uses": "1", "hours": "24"},
        errors=errors or {},
        open_registration=idp().settings.client_registration_open,
        max_hours=registration.MAX_INITIAL_TOKEN_LIFETIME // HOUR,
        max_uses=registration.MAX_INITIAL_TOKEN_USES,
    )


@bp.route("/registration-tokens", methods=["GET", "POST"])
def registration_tokens() -> ResponseReturnValue:
    if request.method == "GET":
        return _token_page()
    values = {name: request.form.get(name, "").strip()[:20] for name in ("uses", "hours")}
    errors: dict[str, str] = {}
    max_hours = registration.MAX_INITIAL_TOKEN_LIFETIME // HOUR
    max_uses = registration.MAX_INITIAL_TOKEN_USES
    uses = _int_in(values["uses"], 1, max_uses)
    hours = _int_in(values["hours"], 1, max_hours)
    if uses is None:
        errors["uses"] = _("Please enter a number from 1 to %(max)s.", max=max_uses)
    if hours is None:
        errors["hours"] = _("Please enter a number from 1 to %(max)s.", max=max_hours)
    if uses is None or hours is None:
        return _token_page(values, errors), 400
    try:
        issued = registration.issue_initial_token(
            actor=actor().label, expires_in=hours * HOUR, uses=uses
        )
    except registration.InitialTokenError as exc:
        return _token_page(values, {"hours": str(exc)}), 400
    register_url = idp().settings.issuer + url_for("oidc_api.register")
    return no_store(
        render_template("admin/registration_token.html", issued=issued, register_url=register_url)
    )


def _int_in(raw: str, low: int, high: int) -> int | None:
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if low <= value <= high else None


@bp.post("/registration-tokens/<int:token_id>/revoke")
def revoke_registration_token(token_id: int) -> ResponseReturnValue:
    if registration.revoke_initial_token(actor=actor().label, token_id=token_id):
        flash(_("The initial access token was revoked."), "success")
    else:
        flash(_("There is no such token (any more)."), "error")
    return redirect(url_for("admin.registration_tokens"))
