"""Messages to the user about devices, in the user's language."""

from __future__ import annotations

from datetime import UTC, datetime

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from ..accounts.models import User
from ..notify import compose
from ..state import idp
from .models import Device, EnrolledVia

# A device's kind in words (the account page, the admin pages, the e-mails;
# the device app has the same words in idp.deviceapp.messages).
KIND_LABELS: dict[str, str | LazyString] = {
    "iphone": "iPhone",
    "ipad": "iPad",
    "android": "Android",
    "browser": _l("Browser"),
    "cli": _l("Command line"),
}

# How a device was added, in a few words (the account and admin pages).
ENROLLED_VIA_LABELS = {
    EnrolledVia.PASSWORD_SMS: _l("set up with password and text message"),
    EnrolledVia.PASSWORD_EMAIL: _l("set up with password and e-mail"),
    EnrolledVia.BINDING_CODE: _l("set up with a code from the account page"),
    EnrolledVia.RESTORATION: _l("set up by restoring your ID"),
}

# Who removed a device (idp.devices.changes): the user on the account page, a
# device of the user (this one or another), or an administrator (admin pages,
# admin API, the idp command).
REMOVED_ON_ACCOUNT_PAGE = "account_page"
REMOVED_BY_DEVICE = "device"
REMOVED_BY_ADMINISTRATOR = "administrator"


def user_locale(user: User) -> str:
    settings = idp().settings
    return user.locale if user.locale in settings.languages else settings.default_language


def send_enrolment_code(user: User, code: str, *, channel: str) -> None:
    """The confirmation code of path A, by SMS or (without a phone) e-mail."""
    with force_locale(user_locale(user)):
        text = _(
            "Your Freigabe confirmation code: %(code)s. It is valid for %(minutes)s minutes. "
            "If you did not ask for it, ignore this message.",
            code=code,
            minutes=idp().settings.enrolment_lifetime // 60,
        )
        if channel == "sms":
            assert user.phone_number is not None
            idp().sms.send(user.phone_number, text)
            return
        assert user.email is not None
        subject = _("Your confirmation code for the Freigabe app")
        idp().mailer.send(compose(user.email, subject, text))


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _login_id(user: User) -> str:
    return user.username or user.access_number


def _kind(device: Device) -> str:
    return str(KIND_LABELS.get(device.kind, device.kind))


def _account_url() -> str:
    return idp().settings.issuer.rstrip("/") + "/account"


# How a device was added, in the e-mail (lazy: in the language of the moment).
ENROLLED_HOW: dict[str, LazyString] = {
    EnrolledVia.PASSWORD_SMS: _l(
        "with your password and a confirmation code sent by text message to your phone"
    ),
    EnrolledVia.PASSWORD_EMAIL: _l(
        "with your password and a confirmation code sent to your e-mail address"
    ),
    EnrolledVia.BINDING_CODE: _l("with a binding code from your account page"),
    EnrolledVia.RESTORATION: _l("by restoring your ID with your restoration codes"),
}


def _removed_how(
    device: Device, removed_by: str, by_device: Device | None, *, refused: bool
) -> str:
    text: str
    if removed_by == REMOVED_BY_DEVICE and by_device is not None:
        if by_device.id == device.id:
            text = _("the device itself")
        elif refused:
            text = _(
                'refused in the waiting period after the restoration, on your device "%(name)s" '
                "(%(kind)s)",
                name=by_device.name,
                kind=_kind(by_device),
            )
        else:
            text = _(
                'your device "%(name)s" (%(kind)s)', name=by_device.name, kind=_kind(by_device)
            )
    elif removed_by == REMOVED_ON_ACCOUNT_PAGE:
        text = _("a sign-in to your account, on the account page")
    else:
        text = _("an administrator")
    return text


def send_device_added(user: User, device: Device, *, ip: str | None) -> None:
    """A device was added to the account (any way): what, when, from where,
    how, and the way to remove it if it was not the user."""
    if not user.email:
        return
    with force_locale(user_locale(user)):
        subject = _("A new device was added to your Freigabe ID")
        text = _(
            "A new device was added to your Freigabe ID %(login_id)s.\n\n"
            "Device: %(device)s (%(kind)s)\n"
            "Time: %(time)s (UTC)\n"
            "IP address: %(ip)s\n"
            "How: %(how)s\n\n"
            "The device can now confirm sign-ins to your account.",
            login_id=_login_id(user),
            device=device.name,
            kind=_kind(device),
            time=_when(device.created_at),
            ip=ip or _("unknown"),
            how=str(ENROLLED_HOW.get(device.enrolled_via, device.enrolled_via)),
        )
        if device.enrolled_via == EnrolledVia.RESTORATION:
            text += "\n\n" + _(
                "It was shown a new first restoration code; the old one is no longer valid."
            )
        if device.pending_until is not None:
            text += "\n\n" + _(
                "The new device can be used from %(time)s (UTC). Until then you can also "
                "refuse it in the Freigabe app on one of your other devices.",
                time=_when(device.pending_until),
            )
        text += "\n\n" + _(
            "If this was you, there is nothing to do.\n\n"
            "Not you? Remove it now: on your account page, under Devices: %(account_url)s\n"
            "or in the Freigabe app on one of your other devices, under Devices.",
            account_url=_account_url(),
        )
        idp().mailer.send(compose(user.email, subject, text))


def send_device_removed(
    user: User,
    device: Device,
    *,
    at: datetime,
    ip: str | None,
    removed_by: str,
    by_device: Device | None,
    refused: bool,
) -> None:
    """A device was removed from the account: what, when, from where, by whom."""
    if not user.email:
        return
    with force_locale(user_locale(user)):
        subject = _("A device was removed from your Freigabe ID")
        text = _(
            "A device was removed from your Freigabe ID %(login_id)s. It can no longer confirm "
            "sign-ins to your account.\n\n"
            "Device: %(device)s (%(kind)s)\n"
            "Time: %(time)s (UTC)\n"
            "IP address: %(ip)s\n"
            "Removed by: %(how)s\n\n"
            "If this was you, there is nothing to do.\n\n"
            "Not you? Then someone else can manage your devices. Check the devices on your "
            "account page and remove any you do not know: %(account_url)s",
            login_id=_login_id(user),
            device=device.name,
            kind=_kind(device),
            time=_when(at),
            ip=ip or _("unknown"),
            how=_removed_how(device, removed_by, by_device, refused=refused),
            account_url=_account_url(),
        )
        idp().mailer.send(compose(user.email, subject, text))
