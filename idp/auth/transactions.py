"""Login transactions: an authorization request waiting for the user.

Kept in Redis with a TTL and bound to the browser that started it (its id is
listed in that browser's signed session cookie), so a transaction id seen in
a URL cannot be resumed from another browser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask import session, url_for

from ..errors import LoginTransactionExpired
from ..redirects import local_path
from ..state import idp
from ..store.kinds import Kind
from ..tokens import new_token

SESSION_KEY = "txs"
MAX_OPEN_PER_BROWSER = 8

# The client id of a login transaction for Freigabe's own account page, not
# for a client: the step-up to MFA before a change there (idp.accounts.views)
# runs through the same waiting page and passkey confirmation as a client's
# login. It carries no authorization request, so /authorize/resume refuses it,
# and no client can be registered under this id (idp.oidc.clients).
ACCOUNT_CLIENT_ID = "freigabe:account"
# How the device names it instead of a client: "Sign-in to Freigabe",
# "Anmeldung bei Freigabe" (the product's name reads right in every language;
# the approval's context keeps it as it was sent).
ACCOUNT_CLIENT_NAME = "Freigabe"

# Where a browser may return to after signing in or a step-up: the account
# page and its device pages, and the admin pages. Checked on the path that
# redirects.local_path made of the value (dot segments resolved, percent-
# encoded): that function decides whether it is safe at all; this only narrows
# it to these pages. Admin paths are non-empty segments of RFC 3986 pchars.
_RETURN_PATH = re.compile(
    r"/account(/devices/[A-Za-z0-9_-]{1,64}/(delete|rename))?"
    r"|/admin(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*/?"
)


def return_path(value: object) -> str | None:
    """``value`` as a local path (``redirects.local_path``) if it leads to the
    account or admin pages, with its query, else None."""
    path = local_path(value, issuer=idp().settings.issuer)
    if path is None or not _RETURN_PATH.fullmatch(path.split("?", 1)[0].split("#", 1)[0]):
        return None
    return path


@dataclass
class LoginTransaction:
    id: str
    client_id: str
    params: dict[str, str]
    # Interactions completed in this transaction ("login", "consent", ...).
    done: list[str] = field(default_factory=list)
    user_id: int | None = None

    @property
    def for_account(self) -> bool:
        return self.client_id == ACCOUNT_CLIENT_ID

    @property
    def prompt(self) -> frozenset[str]:
        return frozenset((self.params.get("prompt") or "").split())

    def save(self) -> None:
        TRANSACTIONS.put(self.id, self)


# Open login transactions, for as long as a login may take.
TRANSACTIONS = Kind("tx", LoginTransaction, ttl=lambda s: s.login_transaction_lifetime)


def begin(client_id: str, params: dict[str, str]) -> LoginTransaction:
    tx = LoginTransaction(id=new_token(16), client_id=client_id, params=params)
    tx.save()
    open_ids = [t for t in session.get(SESSION_KEY, []) if isinstance(t, str)]
    session[SESSION_KEY] = [*open_ids, tx.id][-MAX_OPEN_PER_BROWSER:]
    return tx


def begin_for_account(user_id: int, *, next_path: str) -> LoginTransaction:
    """A transaction for the account page's step-up to MFA; ``next_path`` (a
    local path the caller checked) is where the browser returns afterwards."""
    tx = begin(ACCOUNT_CLIENT_ID, {"next": next_path})
    tx.user_id = user_id
    tx.save()
    return tx


def load(tx_id: str | None) -> LoginTransaction:
    """The browser's own open transaction, or LoginTransactionExpired."""
    if not tx_id or tx_id not in session.get(SESSION_KEY, []):
        raise LoginTransactionExpired()
    # (A record stored by another release may have members this one lacks:
    # the kind ignores them, so a sign-in under way survives an upgrade.)
    tx = TRANSACTIONS.get(tx_id)
    if tx is None:
        raise LoginTransactionExpired()
    return tx


def finish(tx: LoginTransaction) -> None:
    """Single use: the transaction produces one response. Consumed atomically,
    so a second tab racing on the same transaction gets LoginTransactionExpired."""
    session[SESSION_KEY] = [t for t in session.get(SESSION_KEY, []) if t != tx.id]
    if TRANSACTIONS.consume(tx.id) is None:
        raise LoginTransactionExpired()


def after_second_factor(tx: LoginTransaction) -> str:
    """Where the browser goes once the second factor is met: back into the
    authorization flow, or, for the account page's own transaction (finished
    here: it has nothing more to do), to the page that asked for it."""
    if tx.for_account:
        finish(tx)
        return tx.params.get("next") or url_for("account.home")
    return url_for("oidc.resume", tx=tx.id)


def second_factor_page(tx: LoginTransaction, *, passkey: bool) -> str:
    """Where the browser gives the second factor the login decision asked for:
    the passkey page, or the approval's waiting page by way of its ``begin``
    route (which keeps an approval still waiting for the device, else starts a
    new one). Saves ``tx``."""
    tx.save()
    return url_for("passkeys.confirm_page" if passkey else "approvals.begin", tx=tx.id)
