"""Messages to the user about devices, in the user's language."""

from __future__ import annotations

from flask_babel import force_locale
from flask_babel import gettext as _

from .. import idp
from ..accounts.models import User


def user_locale(user: User) -> str:
    settings = idp().settings
    return user.locale if user.locale in settings.languages else settings.default_language


def send_enrolment_code(user: User, code: str, *, channel: str) -> None:
    """The confirmation code of path A, by SMS or (without a phone) e-mail."""
    from ..notify import compose

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
