"""Who may use the admin pages: an administrator with an MFA session in use
(confirmed again after the idle timeout), and the admin home page."""

from __future__ import annotations

from datetime import datetime

from flask import (
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from ...auth import transactions
from ...auth.amr import ACR_MFA, acr_satisfies
from ...auth.factors import second_factors
from ...auth.models import LoginSession
from ...auth.sessions import current_login_session
from ...auth.step_up import withdraw_earlier_step_ups
from ...extensions import utcnow
from ...i18n import switch_returns_to
from ...state import idp
from .common import (
    ACTIVE_SESSIONS,
    bp,
)


def _confirming_ways(user_id: int, now: datetime) -> dict[str, bool]:
    """How this administrator can confirm it is them: a device that can answer
    an approval now (not one waiting after a restoration), or a passkey."""
    factors = second_factors(user_id, now)
    return {"app": factors.app, "passkey": factors.passkey}


def _in_use(login: LoginSession, now: datetime) -> bool:
    """An MFA session that confirmed or used the admin pages within the idle
    timeout (NIST SP 800-63B: reauthentication after a period of inactivity)."""
    if not acr_satisfies(login.acr, ACR_MFA):
        return False
    idle = idp().settings.admin_idle_timeout
    if (now - login.auth_time).total_seconds() <= idle:
        return True
    return ACTIVE_SESSIONS.exists(login.id)


def _here() -> str:
    """Where to come back to after signing in or confirming: this page, or
    for a form's action (a POST-only URL) the page it belongs to, the path
    one segment up (``/admin/users/SUB/lock`` -> ``/admin/users/SUB``)."""
    home = url_for("admin.home")
    path = request.path
    rule = request.url_rule
    if rule is not None and "GET" not in (rule.methods or ()):
        path = path.rsplit("/", 1)[0]
    adapter = current_app.url_map.bind_to_environ(request.environ)
    while path.startswith("/admin/"):
        try:
            endpoint, args = adapter.match(path, method="GET")
        except (NotFound, MethodNotAllowed, RequestRedirect):
            path = path.rsplit("/", 1)[0]
            continue
        if not endpoint.startswith("admin."):
            break
        return transactions.return_path(url_for(endpoint, **args)) or home
    return home


@bp.before_request
def _guard() -> ResponseReturnValue | None:
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login", next=_here()))
    if not login.user.is_admin:
        return render_template("admin/forbidden.html"), 403
    g.admin_user = login.user
    g.admin_login = login
    if request.endpoint == "admin.confirm":
        return None
    now = utcnow()
    if not _in_use(login, now):
        ways = _confirming_ways(login.user_id, now)
        switch_returns_to(_here())  # a form's POST: its page, not a 405
        page = render_template(
            "admin/confirm.html",
            step_up=ways if any(ways.values()) else None,
            step_up_endpoint="admin.confirm",
            next_path=_here(),
            again=acr_satisfies(login.acr, ACR_MFA),
            minutes=max(1, idp().settings.admin_idle_timeout // 60),
        )
        return page, 200 if request.method == "GET" else 403
    ACTIVE_SESSIONS.put(login.id, 1)
    return None


@bp.post("/confirm")
def confirm() -> ResponseReturnValue:
    """Start "Confirm in your app" or "Confirm with your passkey" for the admin pages."""
    login: LoginSession = g.admin_login
    target = transactions.return_path(request.form.get("next"))
    if target is None or not target.startswith("/admin"):
        target = url_for("admin.home")
    now = utcnow()
    method = str(request.form.get("method"))
    if _in_use(login, now) or not _confirming_ways(login.user_id, now).get(method):
        # Confirmed already (another tab), or nothing to confirm with.
        return redirect(target)
    withdraw_earlier_step_ups()
    tx = transactions.begin_for_account(login.user_id, next_path=target)
    return redirect(transactions.second_factor_page(tx, passkey=method != "app"))


@bp.get("/")
def home() -> ResponseReturnValue:
    return render_template("admin/home.html", idle_minutes=idp().settings.admin_idle_timeout // 60)
