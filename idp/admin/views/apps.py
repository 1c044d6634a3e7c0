"""The admin pages of a user's connected apps: removing one's access."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from .. import connected_apps, service
from .common import actor, bp


@bp.route("/users/<sub>/apps/remove", methods=["GET", "POST"])
def remove_app(sub: str) -> ResponseReturnValue:
    """A page naming the app, then the form (the client ID in the query or form)."""
    found = service.get_user(sub)
    client_id = request.values.get("client_id", "")[:128]
    app = connected_apps.user_app(found, client_id)
    if request.method == "GET":
        return render_template("admin/app_remove.html", user=found, app=app)
    connected_apps.remove_app(actor(), found, app.client_id)
    flash(
        _(
            "%(name)s no longer has access to this account; it was signed out and will ask "
            "for consent at the next sign-in.",
            name=app.name,
        ),
        "success",
    )
    return redirect(url_for("admin.user", sub=found.sub))
