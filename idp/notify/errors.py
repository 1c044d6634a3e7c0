"""What the senders raise when a message could not be handed on."""

from __future__ import annotations

from ..errors import IdpError


class DeliveryError(IdpError):
    """The mail server or SMS gateway did not take the message. The text is for
    the log (host, status); callers show their own message to people."""

    error = "delivery_failed"
    status = 502
