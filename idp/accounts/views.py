"""The account page of a signed-in user: details, devices, adding a device, passkeys."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from .. import idp
from ..auth.amr import ACR_MFA, acr_satisfies
from ..auth.sessions import current_login_session, end_login_session
from ..devices.service import active_devices, new_binding_code
from ..extensions import utcnow
from ..passkeys import service as passkeys

bp = Blueprint("account", __name__)


@bp.get("/")
def index() -> ResponseReturnValue:
    return redirect(url_for("account.home"))


@bp.get("/account")
def home() -> ResponseReturnValue:
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login"))
    devices = active_devices(login.user_id)
    refusal = passkeys.may_manage(login, now=utcnow())
    return render_template(
        "account.html",
        login=login,
        user=login.user,
        devices=devices,
        can_add_device=_can_add_device(login.acr),
        passkeys=passkeys.passkeys_of(login.user_id),
        passkey_refusal=refusal.error if refusal else None,
    )


def _can_add_device(acr: str) -> bool:
    # Path B needs a session with full MFA (a device approval or a passkey):
    # with a password alone, a device could be added without the user's
    # existing second factor ever being asked. Without MFA, the app's own
    # enrolment (path A: password and a code by SMS or e-mail) is the way in.
    return acr_satisfies(acr, ACR_MFA)


@bp.post("/account/devices/binding-code")
def binding_code() -> ResponseReturnValue:
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login"))
    if not _can_add_device(login.acr):
        return redirect(url_for("account.home"))
    code = new_binding_code(login.user)
    link = "freigabe://enrol?" + urlencode({"server": idp().settings.issuer, "code": code})
    import segno

    qr = segno.make(link, error="m").svg_data_uri(scale=5, border=2)
    minutes = idp().settings.binding_code_lifetime // 60
    return render_template("binding_code.html", code=code, qr=qr, link=link, minutes=minutes)


@bp.post("/account/logout")
def logout() -> ResponseReturnValue:
    end_login_session(reason="user")
    return render_template("logged_out.html", client=None)
