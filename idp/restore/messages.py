"""E-mails about restoration, in the user's language."""

from __future__ import annotations

from flask_babel import force_locale
from flask_babel import gettext as _

from ..accounts.models import User
from ..devices.messages import user_locale
from ..devices.models import Device
from ..notify import compose, send_after_commit
from ..state import idp


def _send(to: str, subject: str, text: str, *, after_commit: bool = False) -> None:
    """Send now, or once the current transaction commits (never if it rolls
    back; a failure to send is then logged, and the change stands)."""
    message = compose(to, subject, text)
    if after_commit:
        send_after_commit(idp().mailer, message)
    else:
        idp().mailer.send(message)


def _minutes() -> int:
    return max(1, idp().settings.restore_code_lifetime // 60)


def _login_id(user: User) -> str:
    return user.username or user.access_number


def send_activation_code(user: User, email: str, code: str) -> None:
    """The code that confirms the address restoration codes will be sent to."""
    with force_locale(user_locale(user)):
        subject = _("Confirm your e-mail address for restoring your Freigabe ID")
        text = _(
            "Your code to confirm this e-mail address: %(code)s. It is valid for "
            "%(minutes)s minutes.\n\n"
            "You are activating restoration for your Freigabe ID %(login_id)s. When you "
            "restore your ID on another device later, the second restoration code will be "
            "sent to this address.\n\n"
            "If you did not ask for this, ignore this message.",
            code=code,
            minutes=_minutes(),
            login_id=_login_id(user),
        )
        _send(email, subject, text)


def send_restore_code(user: User, code: str, *, device_name: str, ip: str) -> None:
    """Restoration code 2, to the confirmed address."""
    assert user.email is not None
    with force_locale(user_locale(user)):
        subject = _("Your second restoration code for your Freigabe ID")
        text = _(
            "Your second restoration code: %(code)s. It is valid for %(minutes)s minutes.\n\n"
            'Your Freigabe ID %(login_id)s is being restored on a new device, "%(device)s" '
            "(IP address %(ip)s). Enter this code on that device to finish.\n\n"
            "If this is not you, do not give this code to anyone: without it your ID "
            "cannot be restored. Someone knows your first restoration code, though: open "
            "the Freigabe app on your device and create a new restoration code in the "
            "restoration settings.",
            code=code,
            minutes=_minutes(),
            login_id=_login_id(user),
            device=device_name,
            ip=ip,
        )
        _send(user.email, subject, text)


def send_code_revoked(user: User, device: Device) -> None:
    """Code 1 is void because the device that was shown it was removed (sent
    once the removal has committed)."""
    if not user.email:
        return
    with force_locale(user_locale(user)):
        subject = _("Your restoration code is no longer valid")
        text = _(
            'The device "%(device)s" was removed from your Freigabe ID %(login_id)s. It was '
            "the device that showed your current first restoration code, so that code is no "
            "longer valid.\n\n"
            "To be able to restore your ID again, open the Freigabe app on one of your "
            "devices and activate restoration in the restoration settings.",
            device=device.name,
            login_id=_login_id(user),
        )
        _send(user.email, subject, text, after_commit=True)
