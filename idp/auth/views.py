"""The login page and the language switch."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from .. import audit, idp
from ..accounts.service import normalise_identifier
from ..passkeys import views as passkey_views
from . import transactions
from .amr import acr_for, amr_for
from .first_factor import FirstFactorError, verify_password_login
from .sessions import start_login_session

bp = Blueprint("auth", __name__)


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
        if tx is None:
            # Made with the page (whose CSRF token writes the session anyway), so
            # the passkey autofill request running beside the form need not.
            passkey_views.browser_binding(create=True)
        return render_template("login.html", tx=tx, client=client, identifier=identifier)

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
            "login.html", tx=tx, client=client, identifier=identifier, error=exc.message
        )
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        return page, exc.status, headers

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
