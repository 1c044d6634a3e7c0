"""The admin pages' "Sessions" of a user: end one, or all. The list is on
the user's page (``templates/admin/_user_sessions.html``)."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext

from .. import service
from .common import actor, bp


def _back_to(sub: str) -> ResponseReturnValue:
    return redirect(url_for("admin.user", sub=sub) + "#sessions")


@bp.post("/users/<sub>/sessions/<sid>/end")
def end_session(sub: str, sid: str) -> ResponseReturnValue:
    found = service.get_user(sub)
    try:
        service.end_session(actor(), found, sid)
    except service.NotFound:
        flash(_("That session had ended already."), "success")
    else:
        flash(
            _("The session has ended. Its apps were signed out."),
            "success",
        )
    return _back_to(found.sub)


@bp.post("/users/<sub>/sessions/end-all")
def end_all_sessions(sub: str) -> ResponseReturnValue:
    found = service.get_user(sub)
    ended = service.end_all_sessions(actor(), found)
    flash(ngettext("%(num)d session has ended.", "%(num)d sessions have ended.", ended), "success")
    return _back_to(found.sub)
