"""The step-ups of the account and admin pages: a login transaction of this
browser's own (``transactions.begin_for_account``), confirmed like a login."""

from __future__ import annotations

from contextlib import suppress

from flask import session

from ..approvals import service as approvals
from ..errors import LoginTransactionExpired
from . import transactions


def withdraw_earlier_step_ups() -> None:
    """This browser's earlier step-ups (left with the back button, say) end
    when it starts a new one: one push waits on the device, not several.
    (The account page's and the admin pages' step-ups.)"""
    for tx_id in list(session.get(transactions.SESSION_KEY, [])):
        try:
            tx = transactions.load(tx_id)
        except LoginTransactionExpired:
            continue
        if tx.for_account:
            approvals.withdraw(tx.id, reason="replaced")
            with suppress(LoginTransactionExpired):
                transactions.finish(tx)
