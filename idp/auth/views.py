"""The login page and the language switch."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from .. import audit, idp
from ..accounts.service import find_user, normalise_identifier
from ..extensions import db
from ..store.ratelimit import FailureCounter, Limit
from . import transactions
from .amr import acr_for, amr_for
from .sessions import start_login_session

bp = Blueprint("auth", __name__)


def _counters() -> tuple[FailureCounter, FailureCounter]:
    settings = idp().settings
    window = settings.login_failure_window
    store = idp().store
    return (
        FailureCounter(store, Limit("login-account", settings.login_failures_per_account, window)),
        FailureCounter(store, Limit("login-ip", settings.login_failures_per_ip, window)),
    )


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    tx_id = request.args.get("tx")
    tx = transactions.load(tx_id) if tx_id else None
    client = None
    if tx is not None:
        from ..oidc.server import query_client

        client = query_client(tx.client_id)
        g.ui_locales = (tx.params.get("ui_locales") or "").split()
    identifier = (tx.params.get("login_hint") if tx else None) or ""
    if request.method == "GET":
        return render_template("login.html", tx=tx, client=client, identifier=identifier)

    identifier = normalise_identifier(request.form.get("identifier", ""))[:254]
    password = request.form.get("password", "")[:1024]
    per_account, per_ip = _counters()
    ip = request.remote_addr or "unknown"

    def fail(message: str, status: int = 401) -> ResponseReturnValue:
        page = render_template(
            "login.html", tx=tx, client=client, identifier=identifier, error=message
        )
        return page, status

    if not identifier or not password:
        return fail(
            _("Please enter your access number, user name or e-mail and your password."), 400
        )
    if per_ip.blocked(ip):
        return fail(_("Too many failed sign-in attempts. Please wait a few minutes."), 429)

    lookup = find_user(identifier)
    if lookup.ambiguous_email:
        per_ip.record_failure(ip)
        return fail(
            _(
                "This e-mail address is used by several accounts. "
                "Please sign in with your access number."
            ),
            400,
        )
    user = lookup.user
    # Unknown identifiers are throttled like accounts, so the lockout does
    # not tell whether an account exists.
    account_key = (
        f"user:{user.id}"
        if user
        else "unknown:" + idp().digester.digest(identifier.lower(), purpose="login-id")
    )
    if per_account.blocked(account_key):
        audit.record("login_throttled", user_id=user.id if user else None)
        return fail(_("Too many failed sign-in attempts. Please wait a few minutes."), 429)

    if not idp().passwords.verify(user.password_hash if user else None, password) or not user:
        per_account.record_failure(account_key)
        per_ip.record_failure(ip)
        audit.record(
            "login_failed",
            user_id=user.id if user else None,
            client_id=tx.client_id if tx else None,
        )
        return fail(_("The sign-in details are not correct."))
    if not user.is_active:
        audit.record("login_refused_locked", user_id=user.id)
        return fail(_("This account is locked. Please contact your administrator."), 403)

    per_account.reset(account_key)
    if user.password_hash and idp().passwords.needs_rehash(user.password_hash):
        user.password_hash = idp().passwords.hash(password)
        db.session.commit()
    amr = amr_for(["password"])
    login_session = start_login_session(user, amr=amr, acr=acr_for(amr))
    audit.record(
        "login",
        user_id=user.id,
        client_id=tx.client_id if tx else None,
        amr=amr,
        sid=login_session.id,
    )
    if tx is not None:
        tx.done = [step for step in tx.done if step != "login"] + ["login"]
        tx.user_id = user.id
        tx.save()
        return redirect(url_for("oidc.resume", tx=tx.id))
    return redirect(url_for("account.home"))


@bp.get("/lang/<code>")
def set_language(code: str) -> ResponseReturnValue:
    if code in idp().settings.languages:
        session["lang"] = code
    target = request.args.get("next", "/")
    # Only local paths: the switch must not become an open redirect.
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/"
    return redirect(target)
