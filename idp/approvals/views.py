"""The waiting page: "Confirm in your app", the number to type, a countdown.

The page listens on Server-Sent Events (``/login/approval/events``), falls back
to polling (``/login/approval/status``), and without JavaScript offers a
"continue" button. Whatever the page believes, the server checks the approval
itself before it signs the browser in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from flask import (
    Blueprint,
    Response,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue

from .. import audit
from ..auth import transactions
from ..auth.amr import ACR_MFA, amr_for
from ..auth.sessions import current_login_session, start_login_session
from ..errors import LoginTransactionExpired
from ..extensions import db, utcnow
from ..i18n import switch_returns_to
from ..oidc.client_auth import query_client
from ..passkeys.service import has_passkeys
from . import service
from .service import APPROVED, FINAL, PENDING, ApprovalError

bp = Blueprint("approvals", __name__)

CODES_KEY = "approval_codes"


def _context() -> tuple[transactions.LoginTransaction, object]:
    """The browser's transaction and its signed-in user (after the password)."""
    tx = transactions.load(request.args.get("tx") or request.form.get("tx"))
    login = current_login_session()
    if login is None or tx.user_id is None or login.user_id != tx.user_id:
        raise LoginTransactionExpired()
    g.ui_locales = (tx.params.get("ui_locales") or "").split()
    return tx, login


def _client_name(tx: transactions.LoginTransaction) -> str:
    if tx.for_account:
        # The account page's own step-up (idp.accounts.views): no client.
        return str(transactions.ACCOUNT_CLIENT_NAME)
    client = query_client(tx.client_id)
    if client is None:
        raise LoginTransactionExpired()
    return client.name


def _new_approval(tx: transactions.LoginTransaction, login: object) -> service.StartedApproval:
    """Start the login's approval; the one before it (if any) is cancelled."""
    started = service.start(
        user=login.user,  # type: ignore[attr-defined]
        client_id=tx.client_id,
        client_name=_client_name(tx),
        tx_id=tx.id,
        ip=request.remote_addr,
        user_agent=request.user_agent.string,
        now=utcnow(),
    )
    # The number is shown to this browser only; it never travels in the push.
    session[CODES_KEY] = {started.approval.id: started.match_code}
    return started


def _code_of(approval: service.Approval) -> str | None:
    """The number of ``approval`` if this browser was shown it."""
    codes = session.get(CODES_KEY)
    return codes.get(approval.id) if isinstance(codes, dict) else None


def _usable(approval: service.Approval | None) -> bool:
    """Still waiting for the device, and this browser can show its number."""
    return (
        approval is not None
        and approval.status == PENDING
        and not approval.expired(utcnow())
        and _code_of(approval) is not None
    )


def _page(
    tx: transactions.LoginTransaction, approval: service.Approval | None, **extra: object
) -> str:
    now = utcnow()
    status = approval.public(now)["status"] if approval else None
    code = _code_of(approval) if approval else None
    remaining = max(0, approval.expires_at - int(now.timestamp())) if approval else 0
    return render_template(
        "approval_wait.html",
        tx=tx,
        approval=approval,
        status=status,
        code=code,
        remaining=remaining,
        client_name=_client_name(tx),
        # A passkey meets the second factor as well: offered instead.
        passkey_instead=tx.user_id is not None and has_passkeys(tx.user_id),
        **extra,
    )


def _retry(exc: ApprovalError) -> dict[str, str]:
    return {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}


def _refused(
    tx: transactions.LoginTransaction, approval: service.Approval | None, exc: ApprovalError
) -> ResponseReturnValue:
    """The page when no new approval may be made now: why, and for a limit
    exactly when a new request is possible (the page counts down to it and
    only then offers "Send a new request")."""
    extra: dict[str, object] = {"error": exc.message}
    if exc.retry_after:
        # One second more: the window's counter may live a moment past its TTL.
        retry_in = exc.retry_after + 1
        extra["retry_in"] = retry_in
        extra["retry_at"] = utcnow().replace(microsecond=0) + timedelta(seconds=retry_in)
    # Also the answer to "Send a new request" (a POST): the switch goes to
    # the waiting page.
    switch_returns_to(url_for("approvals.wait_page", tx=tx.id))
    return _page(tx, approval, **extra), exc.status, _retry(exc)


@bp.get("/login/approval")
def wait_page() -> ResponseReturnValue:
    tx, login = _context()
    approval = service.live_for(tx.id)
    # None yet, or one whose number this browser cannot show (another tab or
    # request of this login started a newer one meanwhile): a new approval,
    # which cancels the one before it. A final one is shown as it ended.
    if approval is None or (approval.status == PENDING and not _usable(approval)):
        try:
            approval = _new_approval(tx, login).approval
        except ApprovalError as exc:
            return _refused(tx, None, exc)
    return _page(tx, approval)


@bp.post("/login/approval/retry")
def retry() -> ResponseReturnValue:
    tx, login = _context()
    try:
        _new_approval(tx, login)
    except ApprovalError as exc:
        return _refused(tx, service.live_for(tx.id), exc)
    return redirect(url_for("approvals.wait_page", tx=tx.id))


@bp.get("/login/approval/status")
def status() -> ResponseReturnValue:
    tx, _login = _context()
    approval = service.live_for(tx.id)
    if approval is None:
        return jsonify(status="missing"), 404
    response = jsonify(status=approval.public(utcnow())["status"])
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/login/approval/events")
def events() -> ResponseReturnValue:
    tx, _login = _context()
    approval = service.live_for(tx.id)
    if approval is None:
        return jsonify(status="missing"), 404
    timeout = max(1, approval.expires_at - int(utcnow().timestamp())) + 2
    # The stream needs Redis only: give the database connection back to the
    # pool now, or every waiting page would hold one.
    db.session.close()

    def stream() -> Iterator[str]:
        last = None
        yield "retry: 3000\n\n"
        for current in service.wait(approval.id, timeout=timeout):
            if current is None:
                break
            state = current.public(datetime.now(UTC))["status"]
            if state != last:
                yield f"event: status\ndata: {json.dumps({'status': state})}\n\n"
                last = state
            else:
                yield ": waiting\n\n"
            if state != PENDING:
                break

    response = Response(stream_with_context(stream()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


@bp.post("/login/approval")
def proceed() -> ResponseReturnValue:
    """Continue after the device's answer (the page's form, with or without JS)."""
    tx, login = _context()
    approval = service.live_for(tx.id)
    if approval is None or approval.user_id != tx.user_id:
        raise LoginTransactionExpired()
    state = approval.public(utcnow())["status"]
    if state != APPROVED:
        # "Continue" pressed before the device answered (without JavaScript
        # the button is always there): say what is still missing.
        return _page(tx, approval, not_yet=state == PENDING), (200 if state not in FINAL else 409)
    if not service.take_grant(approval):
        # Used already (another tab, or a replay of this form).
        raise LoginTransactionExpired()
    user = login.user  # type: ignore[attr-defined]
    methods = ["password", f"device_{approval.device_amr}"]
    amr = amr_for(methods)
    new_login = start_login_session(user, amr=amr, acr=ACR_MFA, device_id=approval.device_id)
    session.pop(CODES_KEY, None)
    audit.record(
        "login_mfa", user_id=user.id, client_id=tx.client_id, amr=amr, sid=new_login.id,
        approval=approval.id, device=approval.device_id, user_agent=new_login.user_agent,
    )  # fmt: skip
    tx.done = [step for step in tx.done if step != "mfa"] + ["mfa"]
    tx.save()
    return redirect(transactions.after_second_factor(tx))


@bp.get("/login/approval/begin")
def begin() -> ResponseReturnValue:
    """Where the login decision sends the browser for the device
    (``transactions.second_factor_page``): the waiting page, with the login's
    approval if it is still waiting for the device (asking again sends no
    second push), else a new one."""
    tx, _login = _context()
    if not _usable(service.live_for(tx.id)):
        service.release(tx.id, reason="replaced")
    return redirect(url_for("approvals.wait_page", tx=tx.id))
