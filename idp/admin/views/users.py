"""The admin pages of users and their devices."""

from __future__ import annotations

from typing import cast

from flask import (
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ...accounts.models import User
from ...devices.messages import ENROLLED_VIA_LABELS, KIND_LABELS
from ...devices.service import DELETION_REASONS, DeletionReason
from ...extensions import utcnow
from .. import audit_log, connected_apps, service
from .common import (
    actor,
    admin_user,
    bp,
    paging,
    search_text,
)


@bp.get("/users")
def users() -> ResponseReturnValue:
    q = search_text()
    offset, limit = paging()
    page = service.search_users(q, offset=offset, limit=limit)
    return render_template("admin/users.html", page=page, q=q, args={"q": q, "limit": limit})


def _user_page(user: User, *, error: str | None = None) -> str:
    overview = service.user_overview(user)
    return render_template(
        "admin/user.html",
        overview=overview,
        user=user,
        events=audit_log.describe_events(overview.recent_events),
        apps=connected_apps.user_apps(user),
        now=utcnow(),
        kinds=KIND_LABELS,
        enrolled_via=ENROLLED_VIA_LABELS,
        is_self=user.id == admin_user().id,
        error=error,
        sessions=service.user_sessions(user),
    )


def _refused(user: User, message: str) -> ResponseReturnValue:
    """An operation an administrator may not do to themselves: the user's
    page again, with the reason."""
    return _user_page(user, error=message), 409


@bp.get("/users/<sub>")
def user(sub: str) -> ResponseReturnValue:
    return _user_page(service.get_user(sub))


def _back_to(user: User) -> ResponseReturnValue:
    return redirect(url_for("admin.user", sub=user.sub))


@bp.post("/users/<sub>/lock")
def lock_user(sub: str) -> ResponseReturnValue:
    found = service.get_user(sub)
    try:
        service.lock_user(actor(), found)
    except service.NotOnYourself:
        return _refused(found, _("You cannot lock your own account."))
    flash(_("The account is locked; its sessions and refresh tokens have ended."), "success")
    return _back_to(found)


@bp.post("/users/<sub>/unlock")
def unlock_user(sub: str) -> ResponseReturnValue:
    found = service.get_user(sub)
    service.unlock_user(actor(), found)
    flash(_("The account is unlocked."), "success")
    return _back_to(found)


@bp.post("/users/<sub>/force-password-reset")
def force_password_reset(sub: str) -> ResponseReturnValue:
    found = service.get_user(sub)
    service.force_password_reset(actor(), found)
    flash(_("At the next sign-in with a password, a new password must be chosen first."), "success")
    return _back_to(found)


@bp.post("/users/<sub>/admin")
def set_admin(sub: str) -> ResponseReturnValue:
    found = service.get_user(sub)
    grant = request.form.get("action") == "grant"
    try:
        service.set_admin(actor(), found, admin=grant)
    except service.NotOnYourself:
        return _refused(
            found,
            _("You cannot take away your own administrator role; another administrator can."),
        )
    if grant:
        flash(_("The user is now an administrator."), "success")
    else:
        flash(_("The user is no longer an administrator."), "success")
    return _back_to(found)


@bp.route("/users/<sub>/devices/<device_id>/remove", methods=["GET", "POST"])
def remove_device(sub: str, device_id: str) -> ResponseReturnValue:
    found = service.get_user(sub)
    device = next((d for d in service.user_devices(found) if d.id == device_id), None)
    if device is None:
        raise service.NotFound()
    if request.method == "GET":
        return render_template(
            "admin/device_remove.html",
            user=found,
            device=device,
            kind=KIND_LABELS.get(device.kind, device.kind),
        )
    given = request.form.get("reason")
    remaining = service.remove_device(
        actor(),
        found,
        device_id,
        ip=request.remote_addr,
        reason=cast(DeletionReason, given) if given in DELETION_REASONS else None,
        sign_out=request.form.get("sign_out") == "yes",
    )
    flash(
        _(
            "The device %(name)s was removed; %(count)s device(s) left.",
            name=device.name,
            count=remaining,
        ),
        "success",
    )
    return _back_to(found)
