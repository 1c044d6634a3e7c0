"""E-mail to the user after a reported fraudulent sign-in attempt."""

from __future__ import annotations

from flask_babel import force_locale
from flask_babel import gettext as _

from ..accounts.models import User
from ..devices.messages import user_locale
from ..notify import compose
from ..state import idp
from .model import Approval


def send_fraud_notice(user: User, approval: Approval) -> None:
    if not user.email:
        return
    with force_locale(user_locale(user)):
        subject = _("A sign-in attempt to your account was reported")
        text = _(
            "You reported that a sign-in to %(client)s at %(time)s (UTC) from the IP "
            "address %(ip)s was not made by you. It was refused, and sign-in "
            "confirmations for your account are paused for %(minutes)s minutes.\n\n"
            "If someone knows your password, change it now and tell your administrator.",
            client=approval.client_name,
            time=approval.created_at.replace("T", " ").rstrip("Z"),
            ip=approval.ip or "?",
            minutes=idp().settings.fraud_block_duration // 60,
        )
        idp().mailer.send(compose(user.email, subject, text))
