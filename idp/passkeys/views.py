"""Passkey endpoints: sign in with a passkey, confirm a sign-in with one, and
add or remove passkeys on the account page.

The ceremonies run in the browser (static/passkeys.js): it fetches options
with a POST (CSRF token in the ``X-CSRFToken`` header), calls
``navigator.credentials``, and posts the response back as
``{"credential": ...}``. Answers are JSON: ``{"redirect": url}`` to follow,
or ``{"error": code, "error_description": text}`` to show (idp.errors).
"""

from __future__ import annotations

from typing import Annotated

from flask import (
    Blueprint,
    Response,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from .. import audit
from ..approvals import service as approvals
from ..auth import transactions
from ..auth.amr import ACR_MFA, acr_for, amr_for
from ..auth.models import LoginSession
from ..auth.sessions import current_login_session, end_login_session, start_login_session
from ..devices.service import active_devices
from ..errors import IdpError, LoginTransactionExpired
from ..extensions import utcnow
from ..oidc.client_auth import query_client
from ..openapi import parse_body
from . import registration, service
from .binding import browser_binding

bp = Blueprint("passkeys", __name__)


class LoginRequired(IdpError):
    error = "login_required"
    status = 401
    message = _l("Please sign in first.")


class CeremonyResponse(BaseModel):
    """``{"credential": ...}``: what navigator.credentials returned (toJSON());
    checked by the service (a missing or unreadable one is refused there, and
    counted as a failed sign-in)."""

    model_config = ConfigDict(extra="ignore")

    credential: dict[str, JsonValue] | None = None


class NewPasskey(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, Field(max_length=registration.MAX_NAME)] | None = None


def _credential() -> dict[str, JsonValue] | None:
    parsed = parse_body(CeremonyResponse, required=True)
    assert isinstance(parsed, CeremonyResponse)
    return parsed.credential


def _options(options_json: str) -> Response:
    response = Response(options_json, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def _ip() -> str:
    return request.remote_addr or "unknown"


def _follow(url: str) -> Response:
    response = jsonify(redirect=url)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- sign in with a passkey (discoverable credential, no user name typed) --------------


def _login_transaction() -> transactions.LoginTransaction | None:
    tx_id = request.args.get("tx")
    if not tx_id:
        return None
    tx = transactions.load(tx_id)
    g.ui_locales = (tx.params.get("ui_locales") or "").split()
    return tx


def _login_binding(tx: transactions.LoginTransaction | None, *, create: bool) -> str:
    """The challenge belongs to the login transaction (itself bound to this
    browser), or without one to this browser's session."""
    if tx is not None:
        return f"tx:{tx.id}"
    return f"browser:{browser_binding(create=create) or 'none'}"


@bp.post("/login/passkey/options")
def login_options() -> ResponseReturnValue:
    tx = _login_transaction()
    service.check_not_throttled(_ip())
    binding = _login_binding(tx, create=True)
    return _options(service.begin_authentication(purpose="login", binding=binding, user=None))


@bp.post("/login/passkey")
def login() -> ResponseReturnValue:
    tx = _login_transaction()
    credential = _credential()
    verified = service.finish_authentication(
        purpose="login",
        binding=_login_binding(tx, create=False),
        response=credential,
        ip=_ip(),
        now=utcnow(),
        client_id=tx.client_id if tx else None,
    )
    user = verified.user
    # A passkey with user verification is two factors on its own (idp.auth.amr).
    amr = amr_for([verified.method])
    login_session = start_login_session(
        user, amr=amr, acr=acr_for(amr), passkey_id=verified.passkey_id
    )
    audit.record(
        "passkey_login", user_id=user.id, client_id=tx.client_id if tx else None, amr=amr,
        sid=login_session.id, passkey=verified.passkey_id, step="login",
        user_agent=login_session.user_agent,
    )  # fmt: skip
    if tx is None:
        # A direct sign-in goes to the account, or to a fixed local ``next``
        # (the admin pages): never an open redirect.
        next_path = transactions.return_path(request.args.get("next"))
        return _follow(next_path or url_for("account.home"))
    # A push approval started earlier in this login is not needed any more.
    approvals.withdraw(tx.id, reason="passkey")
    # Both interactions are done: the policy asks for no push approval.
    tx.done = [step for step in tx.done if step not in ("login", "mfa")] + ["login", "mfa"]
    tx.user_id = user.id
    tx.save()
    return _follow(url_for("oidc.resume", tx=tx.id))


# --- a passkey as the second factor after the password ----------------------------------


def _second_factor() -> tuple[transactions.LoginTransaction, LoginSession]:
    """The browser's transaction and its user, signed in with the password."""
    tx = transactions.load(request.args.get("tx"))
    login = current_login_session()
    if login is None or tx.user_id is None or login.user_id != tx.user_id:
        raise LoginTransactionExpired()
    g.ui_locales = (tx.params.get("ui_locales") or "").split()
    return tx, login


@bp.get("/login/passkey/confirm")
def confirm_page() -> ResponseReturnValue:
    tx, login = _second_factor()
    if tx.for_account:
        # The account page's own step-up (idp.accounts.views): no client.
        client_name = str(transactions.ACCOUNT_CLIENT_NAME)
    else:
        client = query_client(tx.client_id)
        if client is None:
            raise LoginTransactionExpired()
        client_name = client.name
    if not service.has_passkeys(login.user_id):
        raise LoginTransactionExpired()
    return render_template(
        "passkey_confirm.html",
        tx=tx,
        client_name=client_name,
        has_devices=bool(active_devices(login.user_id)),
    )


@bp.post("/login/passkey/confirm/options")
def confirm_options() -> ResponseReturnValue:
    tx, login = _second_factor()
    service.check_not_throttled(_ip())
    return _options(service.begin_authentication(purpose="mfa", binding=tx.id, user=login.user))


@bp.post("/login/passkey/confirm")
def confirm() -> ResponseReturnValue:
    tx, login = _second_factor()
    credential = _credential()
    verified = service.finish_authentication(
        purpose="mfa",
        binding=tx.id,
        response=credential,
        ip=_ip(),
        now=utcnow(),
        client_id=tx.client_id,
    )
    # The push approval is not needed any more: no device may answer it.
    approvals.withdraw(tx.id, reason="passkey")
    first = ["password"] if "pwd" in login.amr else []
    amr = amr_for([*first, verified.method])
    new_login = start_login_session(
        verified.user, amr=amr, acr=ACR_MFA, passkey_id=verified.passkey_id
    )
    audit.record(
        "passkey_login", user_id=verified.user.id, client_id=tx.client_id, amr=amr,
        sid=new_login.id, passkey=verified.passkey_id, step="mfa",
        user_agent=new_login.user_agent,
    )  # fmt: skip
    tx.done = [step for step in tx.done if step != "mfa"] + ["mfa"]
    tx.save()
    return _follow(transactions.after_second_factor(tx))


# --- the account page: add and remove passkeys -----------------------------------------


def _signed_in() -> LoginSession:
    login = current_login_session()
    if login is None:
        raise LoginRequired()
    return login


@bp.post("/account/passkeys/options")
def registration_options() -> ResponseReturnValue:
    login = _signed_in()
    given = parse_body(NewPasskey, required=True)
    assert isinstance(given, NewPasskey)
    name = registration.check_name(given.name)
    return _options(registration.begin_registration(login, name=name, now=utcnow()))


@bp.post("/account/passkeys")
def register() -> ResponseReturnValue:
    login = _signed_in()
    passkey = registration.finish_registration(
        login, credential=_credential(), default_name=_("Passkey"), now=utcnow()
    )
    # Said once on the account page the script goes to next.
    flash(_("Passkey added: “%(name)s”.", name=passkey.name), "passkey_added")
    response = jsonify(passkey=service.describe(passkey), redirect=url_for("account.home"))
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/account/passkeys/<passkey_id>/delete")
def delete(passkey_id: str) -> ResponseReturnValue:
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login"))
    signing_out = request.form.get("sign_out") == "yes"
    registration.delete(login, passkey_id[:32], now=utcnow(), sign_out=signing_out)
    if signing_out and login.passkey_id == passkey_id:
        # This browser was one of the sessions the passkey signed in: it
        # ended above; forget its cookie too.
        end_login_session(reason="passkey_deleted")
        return redirect(url_for("auth.login"))
    return redirect(url_for("account.home"))
