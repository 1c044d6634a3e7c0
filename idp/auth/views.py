"""The login page, the new password an administrator asked for, and the
language switch.

A direct sign-in (no login transaction) may carry ``next``: where the browser
goes afterwards instead of the account page, one of the fixed local paths of
``transactions.return_path`` (the admin pages send signed-out browsers here).

When an administrator forced a password reset (``User.password_reset_required``),
a correct password does not sign in yet: the user first chooses a new password
(``/login/new-password``), then the login continues as it would have.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from .. import audit
from ..accounts.models import User
from ..accounts.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    check_password_policy,
)
from ..accounts.service import normalise_identifier
from ..errors import LoginTransactionExpired
from ..extensions import db
from ..oidc.client_auth import query_client
from ..passkeys.binding import browser_binding
from ..redirects import local_path
from ..state import idp
from ..store.kinds import Kind
from ..tokens import new_token
from . import transactions
from .amr import acr_for, amr_for
from .first_factor import FirstFactorError, verify_password_login
from .sessions import start_login_session

bp = Blueprint("auth", __name__)

# The pending password change of this browser: a random name in its signed
# session cookie for a Redis entry (user, login transaction, next) that lives
# as long as a login transaction.
PASSWORD_CHANGE_KEY = "password_change"
PASSWORD_CHANGES = Kind("password-change", dict, ttl=lambda s: s.login_transaction_lifetime)


def _load_tx() -> transactions.LoginTransaction | None:
    tx_id = request.args.get("tx")
    tx = transactions.load(tx_id) if tx_id else None
    if tx is not None:
        g.ui_locales = (tx.params.get("ui_locales") or "").split()
    return tx


def _client_of(tx: transactions.LoginTransaction | None) -> Any:
    if tx is None:
        return None
    return query_client(tx.client_id)


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    tx = _load_tx()
    client = _client_of(tx)
    # Only without a transaction (which knows where it goes), and only a
    # local path of a fixed shape: never an open redirect.
    next_path = transactions.return_path(request.args.get("next")) if tx is None else None
    identifier = (tx.params.get("login_hint") if tx else None) or ""
    if request.method == "GET":
        if tx is None:
            # Made with the page (whose CSRF token writes the session anyway), so
            # the passkey autofill request running beside the form need not.
            browser_binding(create=True)
        return render_template(
            "login.html", tx=tx, client=client, identifier=identifier, next_path=next_path
        )

    identifier = normalise_identifier(request.form.get("identifier", ""))[:254]
    password = request.form.get("password", "")[:1024]
    try:
        user = verify_password_login(
            identifier=identifier,
            password=password,
            ip=request.remote_addr or "unknown",
            client_id=tx.client_id if tx else None,
        )
    except FirstFactorError as exc:
        page = render_template(
            "login.html",
            tx=tx,
            client=client,
            identifier=identifier,
            next_path=next_path,
            error=exc.message,
        )
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        return page, exc.status, headers
    if user.password_reset_required:
        # Nothing else happens before the new password: no session, no
        # approval, no code for the client.
        return _begin_password_change(user, tx, next_path)
    return _signed_in(user, tx, next_path)


def _signed_in(
    user: User, tx: transactions.LoginTransaction | None, next_path: str | None
) -> ResponseReturnValue:
    """The password was right (and is current): sign the browser in and go on."""
    amr = amr_for(["password"])
    login_session = start_login_session(user, amr=amr, acr=acr_for(amr))
    audit.record(
        "login",
        user_id=user.id,
        client_id=tx.client_id if tx else None,
        amr=amr,
        sid=login_session.id,
        user_agent=login_session.user_agent,
    )
    if tx is not None:
        tx.done = [step for step in tx.done if step != "login"] + ["login"]
        tx.user_id = user.id
        tx.save()
        return redirect(url_for("oidc.resume", tx=tx.id))
    return redirect(next_path or url_for("account.home"))


# --- a new password, when an administrator asked for one ------------------------------


def _begin_password_change(
    user: User, tx: transactions.LoginTransaction | None, next_path: str | None
) -> ResponseReturnValue:
    name = new_token(16)
    pending = {"user_id": user.id, "tx": tx.id if tx else None, "next": next_path}
    PASSWORD_CHANGES.put(name, pending)
    session[PASSWORD_CHANGE_KEY] = name
    return redirect(url_for("auth.new_password"))


def _password_problem(user: User, password: str, again: str) -> str | None:
    """What is wrong with the new password (the policy of
    idp.accounts.passwords), or None."""
    if check_password_policy(password) is not None:
        return str(
            _(
                "The new password must have %(min)s to %(max)s characters.",
                min=MIN_PASSWORD_LENGTH,
                max=MAX_PASSWORD_LENGTH,
            )
        )
    if password != again:
        return str(_("The two passwords are not the same."))
    if idp().passwords.verify(user.password_hash, password):
        # The reset exists because the current password may be known to others.
        return str(_("Please choose a password that differs from your current one."))
    return None


def _new_password_page(client: Any, *, error: str | None = None) -> str:
    return render_template(
        "new_password.html", client=client, error=error, min_length=MIN_PASSWORD_LENGTH
    )


@bp.route("/login/new-password", methods=["GET", "POST"])
def new_password() -> ResponseReturnValue:
    name = session.get(PASSWORD_CHANGE_KEY)
    pending = PASSWORD_CHANGES.get(name) if isinstance(name, str) else None
    if not isinstance(pending, dict):
        raise LoginTransactionExpired()
    user = db.session.get(User, pending["user_id"])
    # Changed meanwhile (another tab), or locked: this change is void.
    if user is None or not user.is_active or not user.password_reset_required:
        raise LoginTransactionExpired()
    tx = transactions.load(pending["tx"]) if pending.get("tx") else None
    if tx is not None:
        g.ui_locales = (tx.params.get("ui_locales") or "").split()
    client = _client_of(tx)
    if request.method == "GET":
        return _new_password_page(client)
    password = request.form.get("password", "")[: MAX_PASSWORD_LENGTH * 4]
    again = request.form.get("password_again", "")[: MAX_PASSWORD_LENGTH * 4]
    problem = _password_problem(user, password, again)
    if problem is not None:
        return _new_password_page(client, error=problem), 400
    if PASSWORD_CHANGES.consume(str(name)) is None:
        raise LoginTransactionExpired()  # used by a concurrent request
    session.pop(PASSWORD_CHANGE_KEY, None)
    user.password_hash = idp().passwords.hash(password)
    user.password_reset_required = False
    audit.record(
        "password_changed",
        user_id=user.id,
        client_id=tx.client_id if tx else None,
        actor=f"user:{user.id}",
        reason="reset_required",
    )
    return _signed_in(user, tx, transactions.return_path(pending.get("next")))


@bp.get("/lang/<code>")
def set_language(code: str) -> ResponseReturnValue:
    if code in idp().settings.languages:
        session["lang"] = code
    # Back to the page it was on (any page of ours, with its query), never
    # elsewhere: the switch must not become an open redirect.
    target = local_path(request.args.get("next"), issuer=idp().settings.issuer)
    return redirect(target or url_for("account.index"))
