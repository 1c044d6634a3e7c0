"""The account page of a signed-in user: details, devices, adding a device, passkeys.

Changes that could hand the account to someone else (deleting a device, adding
one with a binding code, adding or removing passkeys) need a recent sign-in
with MFA (``confirmed_recently``). A session without one is offered the
step-up: "Confirm with your app" (the waiting page of idp.approvals, for a
login transaction of the account itself, ``transactions.ACCOUNT_CLIENT_ID``)
or "Use a passkey" (idp.passkeys); afterwards the browser returns to the page
that asked, with a fresh MFA session.

A direct sign-in at /login stays a password session, also for users with a
device: looking at the account needs no push, and a push the user did not ask
for teaches them to approve pushes without thinking. The account page asks
for the confirmation when an action needs it.

Renaming a device needs only a signed-in session: a name grants nothing (the
device API lets a device rename with its token alone).
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import cast
from urllib.parse import urlencode

import segno
from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ..approvals import service as approvals
from ..auth import transactions
from ..auth.amr import ACR_MFA, acr_satisfies
from ..auth.factors import second_factors
from ..auth.models import LoginSession
from ..auth.sessions import current_login_session, end_login_session
from ..auth.step_up import withdraw_earlier_step_ups
from ..devices import app_url
from ..devices.enrolment import new_binding_code
from ..devices.messages import ENROLLED_VIA_LABELS, KIND_LABELS
from ..devices.models import Device
from ..devices.service import (
    DELETION_REASONS,
    DeletionReason,
    DeviceNameTaken,
    DeviceNotFound,
    active_devices,
    rename_device,
    revoke_device,
)
from ..errors import LoginTransactionExpired
from ..extensions import db, utcnow
from ..http import csp_with_images
from ..i18n import switch_returns_to
from ..oidc import connected_apps
from ..passkeys import registration as passkey_changes
from ..passkeys import service as passkeys
from ..redirects import origin_of
from ..sessions.service import sessions_of
from ..state import idp
from . import activity

bp = Blueprint("account", __name__)

MAX_DEVICE_NAME = 100


# --- who may change what ---------------------------------------------------------------


def confirmed_recently(login: LoginSession, now: datetime) -> bool:
    """A session with MFA (a device approval or a passkey) from the last
    ``passkey_changes.RECENT_AUTHENTICATION`` seconds: a session cookie lives for
    hours, and a device removed or added from a stolen one would change who
    can confirm sign-ins (NIST SP 800-63B §6.1.2.1, as for passkeys)."""
    return (
        acr_satisfies(login.acr, ACR_MFA)
        and (now - login.auth_time).total_seconds() <= passkey_changes.RECENT_AUTHENTICATION
    )


def _step_up(login: LoginSession, now: datetime) -> dict[str, bool] | None:
    """The ways this session can confirm it is the user, or None when it need
    not (confirmed recently) or cannot (no device that can answer, no passkey)."""
    if confirmed_recently(login, now):
        return None
    factors = second_factors(login.user_id, now)
    return {"app": factors.app, "passkey": factors.passkey} if factors.any else None


def _return_path(value: object) -> str:
    # Only the fixed shapes of transactions.return_path: no open redirect.
    return transactions.return_path(value) or url_for("account.home")


# --- the account page -----------------------------------------------------------------


@bp.get("/")
def index() -> ResponseReturnValue:
    return redirect(url_for("account.home"))


@bp.get("/account")
def home() -> ResponseReturnValue:
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login"))
    now = utcnow()
    devices = active_devices(login.user_id)
    refusal = passkey_changes.may_manage(login, now=now)
    apps = connected_apps.connected_apps(login.user_id)
    page = render_template(
        "account.html",
        login=login,
        user=login.user,
        devices=devices,
        now=now,
        kinds=KIND_LABELS,
        enrolled_via=ENROLLED_VIA_LABELS,
        can_add_device=confirmed_recently(login, now),
        step_up=_step_up(login, now),
        passkeys=passkeys.passkeys_of(login.user_id),
        passkey_refusal=refusal.error if refusal else None,
        apps=apps,
        activity=activity.recent_activity(login.user_id),
        sessions=sessions_of(login.user_id, current_sid=login.id),
    )
    return _with_logos(page, apps)


def _with_logos(page: str, apps: list[connected_apps.ConnectedApp]) -> ResponseReturnValue:
    """The page, with a policy that lets the apps' logos load (those on
    other https origins; the issuer's own load anyway)."""
    response = make_response(page)
    origins = [origin_of(app.logo_url) for app in apps if app.logo_url]
    response.headers["Content-Security-Policy"] = csp_with_images(origins)
    return response


# --- connected apps and recent activity --------------------------------------------------
# Removing an app's access only takes something away: a signed-in session
# is enough (as for signing out), after a page that asks.


def _connected_app(login: LoginSession, client_id: object) -> connected_apps.ConnectedApp | None:
    if not isinstance(client_id, str) or not client_id or len(client_id) > 128:
        return None
    try:
        return connected_apps.connected_app(login.user_id, client_id)
    except connected_apps.NotConnected:
        return None


@bp.route("/account/apps/remove", methods=["GET", "POST"])
def remove_app() -> ResponseReturnValue:
    """ "Remove access": a page naming the app and what it loses, then the form."""
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login"))
    client_id = request.values.get("client_id")
    app = _connected_app(login, client_id)
    if app is None:
        # Removed already (another tab, a second submit), or never connected.
        flash(_("This app has no access to your account (any more)."), "app_removed")
        return redirect(url_for("account.home", _anchor="apps"))
    if request.method == "GET":
        return _with_logos(render_template("app_remove.html", app=app), [app])
    # A concurrent removal that took it first has the same outcome.
    with suppress(connected_apps.NotConnected):
        connected_apps.remove_access(login.user_id, app.client_id, actor=f"user:{login.user_id}")
    flash(
        _(
            "%(name)s no longer has access to your account. It was signed out, and it will "
            "ask for your permission again the next time you sign in there.",
            name=app.name,
        ),
        "app_removed",
    )
    return redirect(url_for("account.home", _anchor="apps"))


@bp.get("/account/activity")
def all_activity() -> ResponseReturnValue:
    """Older activity, a page at a time."""
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login"))
    try:
        offset = max(0, min(int(request.args.get("offset", 0)), 1_000_000))
    except ValueError:
        offset = 0
    page = activity.recent_activity(login.user_id, offset=offset, limit=activity.PAGE)
    return render_template("account_activity.html", activity=page)


# --- the step-up to MFA -----------------------------------------------------------------


@bp.post("/account/confirm")
def confirm() -> ResponseReturnValue:
    """Start "Confirm in your app" or "Confirm with your passkey" for this session."""
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login"))
    target = _return_path(request.form.get("next"))
    ways = _step_up(login, utcnow())
    method = request.form.get("method")
    if ways is None or not ways.get(str(method)):
        # Confirmed already (a second tab), or nothing to confirm with.
        return redirect(target)
    withdraw_earlier_step_ups()
    tx = transactions.begin_for_account(login.user_id, next_path=target)
    return redirect(transactions.second_factor_page(tx, passkey=method != "app"))


@bp.post("/account/confirm/cancel")
def cancel_confirmation() -> ResponseReturnValue:
    """The step-up's "Cancel" (waiting page or passkey page): back to the account."""
    try:
        tx = transactions.load(request.form.get("tx"))
    except LoginTransactionExpired:
        return redirect(url_for("account.home"))
    if not tx.for_account:
        raise LoginTransactionExpired()
    # No device may answer it any more.
    approvals.withdraw(tx.id, reason="cancelled")
    with suppress(LoginTransactionExpired):  # finished meanwhile (another tab)
        transactions.finish(tx)
    return redirect(url_for("account.home"))


def _step_up_page(login: LoginSession, next_path: str, *, status: int = 200) -> ResponseReturnValue:
    now = utcnow()
    return render_template(
        "account_confirm.html", step_up=_step_up(login, now), next_path=next_path
    ), status


# --- devices ---------------------------------------------------------------------------


def _own_device(login: LoginSession, device_id: str) -> Device:
    """One of the user's devices, removed ones too; another user's device or
    an unknown id is not found (ids are not confirmed to strangers)."""
    device = db.session.get(Device, device_id[:64])
    if device is None or device.user_id != login.user_id:
        raise DeviceNotFound()
    return device


def _check_name(raw: object) -> tuple[str, str | None]:
    """The name as it will be stored (white space collapsed), and what is
    wrong with it, if anything."""
    typed = raw if isinstance(raw, str) else ""
    name = " ".join(typed.split())
    if not name:
        return name, _("Please enter a name for the device.")
    if len(name) > MAX_DEVICE_NAME:
        return name, _("The name can have at most %(count)s characters.", count=MAX_DEVICE_NAME)
    if not name.isprintable():
        return name, _("The name contains characters that cannot be used.")
    return name, None


@bp.route("/account/devices/<device_id>/rename", methods=["GET", "POST"])
def rename(device_id: str) -> ResponseReturnValue:
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login"))
    device = _own_device(login, device_id)
    if not device.is_active:
        raise DeviceNotFound()
    if request.method == "GET":
        return render_template("device_rename.html", device=device, value=device.name)
    typed = request.form.get("name", "")[: MAX_DEVICE_NAME * 4]
    name, error = _check_name(typed)
    if error is not None:
        page = render_template("device_rename.html", device=device, value=typed, error=error)
        return page, 400
    try:
        rename_device(device, name, actor=f"user:{login.user_id}")
    except DeviceNameTaken as exc:
        page = render_template(
            "device_rename.html", device=device, value=typed, error=str(exc.message)
        )
        return page, 400
    return redirect(url_for("account.home"))


def _last_one(device: Device, now: datetime) -> bool:
    """Deleting ``device`` leaves no device that can confirm sign-ins."""
    return not [d for d in second_factors(device.user_id, now).devices if d != device.id]


def _delete_page(
    login: LoginSession,
    device: Device,
    now: datetime,
    *,
    error: str | None = None,
    reason: str | None = None,
    sign_out: bool = False,
) -> str:
    return render_template(
        "device_delete.html",
        device=device,
        kind=KIND_LABELS.get(device.kind, device.kind),
        last=_last_one(device, now),
        has_passkeys=passkeys.has_passkeys(login.user_id),
        error=error,
        reason=reason,
        sign_out=sign_out,
    )


@bp.route("/account/devices/<device_id>/delete", methods=["GET", "POST"])
def delete(device_id: str) -> ResponseReturnValue:
    """Delete a device: a page naming it, then the form; the last device that
    can confirm sign-ins only with an explicit "I understand"."""
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login"))
    now = utcnow()
    device = _own_device(login, device_id)
    if not device.is_active:
        # A second submit of the form, or another tab: nothing to do. A GET
        # (the language switch on the page the deletion showed, a reload)
        # shows that page again.
        return _deleted_page(device, already=request.method != "GET")
    if not confirmed_recently(login, now):
        here = url_for("account.delete", device_id=device.id)
        return _step_up_page(login, here, status=200 if request.method == "GET" else 403)
    if request.method == "GET":
        return _delete_page(login, device, now)
    given = request.form.get("reason")
    reason = cast(DeletionReason, given) if given in DELETION_REASONS else None
    # The box as the person left it (the page ticks it for "lost or stolen").
    sign_out = request.form.get("sign_out") == "yes"
    if _last_one(device, now) and request.form.get("confirm_last") != "yes":
        error = _("Please confirm that you want to delete your last device.")
        page = _delete_page(login, device, now, error=error, reason=reason, sign_out=sign_out)
        return page, 400
    try:
        remaining = revoke_device(
            device,
            now=now,
            actor=f"user:{login.user_id}",
            ip=request.remote_addr,
            reason=reason,
            sign_out=sign_out,
        )
    except DeviceNotFound:
        # Deleted by a concurrent request.
        return _deleted_page(device, already=True)
    signed_out_here = sign_out and login.device_id == device.id
    if signed_out_here:
        # This browser's sign-in was one the device confirmed: it ended with
        # the others; forget its cookie too.
        end_login_session(reason="device_deleted")
    return _deleted_page(
        device,
        already=False,
        remaining=remaining,
        signed_out=sign_out,
        signed_out_here=signed_out_here,
    )


def _deleted_page(
    device: Device,
    *,
    already: bool,
    remaining: int | None = None,
    signed_out: bool = False,
    signed_out_here: bool = False,
) -> str:
    """The "Device deleted" page; with no device left, the way to set one up again."""
    if remaining is None:
        remaining = len(active_devices(device.user_id))
    return render_template(
        "device_deleted.html",
        device=device,
        already=already,
        remaining=remaining,
        user=device.user,
        signed_out=signed_out,
        signed_out_here=signed_out_here,
    )


@bp.post("/account/devices/binding-code")
def binding_code() -> ResponseReturnValue:
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login"))
    # Path B needs a recent session with full MFA (a device approval or a
    # passkey): with a password alone, a device could be added without the
    # user's existing second factor ever being asked. Without MFA, the app's
    # own enrolment (path A: password and a code by SMS or e-mail) is the way in.
    if not confirmed_recently(login, utcnow()):
        return redirect(url_for("account.home"))
    code = new_binding_code(login.user)
    # An https link a phone camera opens: the browser device app with the code
    # in the fragment, which never reaches a server log (the app fills it in;
    # `idp-device enrol --link` takes it too).
    link = app_url(idp().settings.issuer) + "#" + urlencode({"code": code})
    qr = segno.make(link, error="m").svg_data_uri(scale=5, border=2)
    minutes = idp().settings.binding_code_lifetime // 60
    # The code is shown once (a GET must not make one): the switch leads to
    # the account page, whose "Add a device" makes a new one.
    switch_returns_to(url_for("account.home"))
    return render_template("binding_code.html", code=code, qr=qr, link=link, minutes=minutes)


@bp.post("/account/logout")
def logout() -> ResponseReturnValue:
    end_login_session(reason="user")
    switch_returns_to(url_for("auth.login"))
    return render_template("logged_out.html", client=None)
