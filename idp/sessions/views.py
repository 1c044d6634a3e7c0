"""The account page's "Your sessions": end one session, or all others. The
list itself is part of the account page (``templates/_account_sessions.html``,
filled by ``service.sessions_of``)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext

from ..auth.sessions import current_login_session
from . import service

bp = Blueprint("sessions", __name__)


@bp.post("/account/sessions/<sid>/end")
def end(sid: str) -> ResponseReturnValue:
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login"))
    if sid == login.id:
        # This browser: that is "Sign out", which the page offers instead.
        return redirect(url_for("account.home"))
    try:
        service.end_session(login.user_id, sid[:64], actor=f"user:{login.user_id}")
    except service.SessionNotFound:
        # Ended meanwhile (another tab, an expiry): the list says so by now.
        flash(_("That session had ended already."), "sessions")
    else:
        flash(_("The session has ended. Its apps were signed out."), "sessions")
    return redirect(url_for("account.home") + "#sessions")


@bp.post("/account/sessions/end-others")
def end_others() -> ResponseReturnValue:
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login"))
    ended = service.end_all_sessions(
        login.user_id, actor=f"user:{login.user_id}", except_sid=login.id
    )
    flash(
        ngettext("%(num)d other session has ended.", "%(num)d other sessions have ended.", ended),
        "sessions",
    )
    return redirect(url_for("account.home") + "#sessions")
