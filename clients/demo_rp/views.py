"""FinanceCloud's pages: start, sign-in, callback, the signed-in page, refresh
and sign-out; and the back-channel logout endpoint Freigabe posts to."""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from datetime import UTC, datetime
from typing import Any, cast

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from .oidc import RpError, Tokens
from .state import EXTENSION, DemoRp

log = logging.getLogger(__name__)

bp = Blueprint("demo_rp", __name__, template_folder="templates")

# Authorization request parameters a link to /login may set (OIDC Core §3.1.2.1).
FORWARDED = ("prompt", "max_age", "acr_values", "ui_locales", "login_hint")
TOKENS_LIFETIME = 12 * 3600  # how long the RP remembers a sign-in

HINTS = {
    "login_required": "You are not signed in at Freigabe, so it could not sign you in silently.",
    "consent_required": "Freigabe needs you to allow FinanceCloud access first.",
    "interaction_required": "Freigabe needs you to do something before signing you in.",
    "access_denied": "The sign-in was cancelled or access was not allowed.",
    "invalid_state": "This answer does not belong to a sign-in started in this browser.",
    "issuer_mismatch": "The answer did not come from Freigabe.",
    "missing_iss": "The answer did not say which server sent it.",
    "invalid_grant": "The sign-in has expired or was revoked. Please sign in again.",
    "idp_unreachable": "Freigabe cannot be reached right now.",
}


def rp() -> DemoRp:
    return cast(DemoRp, current_app.extensions[EXTENSION])


# --- session helpers --------------------------------------------------------------


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        raise RpError("invalid_csrf_token", "The form expired. Please try again.")


def current_tokens() -> Tokens | None:
    key = session.get("tokens")
    if not isinstance(key, str):
        return None
    stored = rp().store.get("tokens:" + key)
    return Tokens.from_json(stored) if stored else None


def save_tokens(tokens: Tokens, *, new_key: bool = False) -> None:
    key = session.get("tokens")
    if new_key or not isinstance(key, str):
        forget_tokens()
        key = secrets.token_urlsafe(24)
        session["tokens"] = key
        session.pop("csrf", None)  # a new sign-in gets a new CSRF token
    store = rp().store
    store.set("tokens:" + key, tokens.to_json(), TOKENS_LIFETIME)
    # For back-channel logout: this sign-in by the IdP's session (sid) and
    # by the user (sub).
    for claim in ("sid", "sub"):
        value = tokens.claims.get(claim)
        if isinstance(value, str) and value:
            store.add_member(f"{claim}:{value}", key, TOKENS_LIFETIME)


def end_sign_ins(*, sid: str | None, sub: str | None) -> int:
    """Back-Channel Logout 1.0 §2.7: forget the sign-ins of the IdP session
    ``sid`` (of ``sub``, if given too) or, without ``sid``, every sign-in of
    ``sub``; how many there were. Their browsers are signed out at their next
    request."""
    store = rp().store
    keys = store.pop_members(f"sid:{sid}") if sid else store.pop_members(f"sub:{sub}")
    ended = 0
    for key in keys:
        stored = store.get("tokens:" + key)
        if stored is None:
            continue
        if sub is not None and Tokens.from_json(stored).claims.get("sub") != sub:
            continue  # another user's sign-in: never ended by this token
        store.delete("tokens:" + key)
        ended += 1
    return ended


def forget_tokens() -> None:
    key = session.pop("tokens", None)
    if isinstance(key, str):
        rp().store.delete("tokens:" + key)


def readable_time(epoch: Any) -> str | None:
    if not isinstance(epoch, int | float):
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.app_context_processor
def template_helpers() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "readable_time": readable_time}


@bp.after_app_request
def security_headers(response: Response) -> Response:
    issuer_origin = rp().settings.issuer_origin
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        f"frame-ancestors 'none'; form-action 'self' {issuer_origin}",
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    # The callback URL carries the code; pages show tokens.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_errorhandler(RpError)
def rp_error(error: RpError) -> ResponseReturnValue:
    log.info("showing error %s (%s)", error.error, error.status)
    hint = HINTS.get(error.error)
    return render_template("error.html", error=error, hint=hint), error.status


# --- pages -------------------------------------------------------------------------


@bp.get("/")
def index() -> ResponseReturnValue:
    signed_out = "state" in request.args and rp().provider.finish_logout()
    return render_template("index.html", tokens=current_tokens(), signed_out=signed_out)


@bp.get("/login")
def login() -> ResponseReturnValue:
    extra = {name: request.args[name][:200] for name in FORWARDED if request.args.get(name)}
    acr_values = rp().settings.acr_values
    if acr_values and "acr_values" not in extra:
        extra["acr_values"] = acr_values
    return rp().provider.authorize_redirect(extra)


@bp.get("/callback")
def callback() -> ResponseReturnValue:
    tokens = rp().provider.finish_sign_in(request.args)
    save_tokens(tokens, new_key=True)
    log.info("signed in sub=%s acr=%s", tokens.claims.get("sub"), tokens.claims.get("acr"))
    return redirect(url_for(".me"))


@bp.get("/me")
def me() -> ResponseReturnValue:
    tokens = current_tokens()
    if tokens is None:
        return redirect(url_for(".index"))
    userinfo: dict[str, Any] | None = None
    userinfo_error: RpError | None = None
    try:
        userinfo = rp().provider.userinfo(tokens)
    except RpError as error:
        userinfo_error = error
    return render_template(
        "me.html",
        tokens=tokens,
        claims=tokens.claims,
        claims_json=json.dumps(tokens.claims, indent=2, sort_keys=True, ensure_ascii=False),
        userinfo_json=(
            json.dumps(userinfo, indent=2, sort_keys=True, ensure_ascii=False)
            if userinfo is not None
            else None
        ),
        userinfo_error=userinfo_error,
    )


@bp.post("/refresh")
def refresh() -> ResponseReturnValue:
    check_csrf()
    tokens = current_tokens()
    if tokens is None:
        return redirect(url_for(".index"))
    try:
        fresh = rp().provider.refresh(tokens)
    except RpError as error:
        if error.error == "invalid_grant":
            forget_tokens()  # the refresh token is dead; so is this sign-in
        raise
    save_tokens(fresh)
    rotated = fresh.refresh_token != tokens.refresh_token
    flash(
        "Tokens refreshed. The new access token expires "
        f"{readable_time(fresh.expires_at) or 'at an unknown time'}"
        + ("; the refresh token was rotated." if rotated else ".")
    )
    return redirect(url_for(".me"))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    check_csrf()
    tokens = current_tokens()
    forget_tokens()
    session.clear()
    return rp().provider.logout_redirect(tokens.id_token if tokens else None)


@bp.post("/backchannel-logout")
def backchannel_logout() -> ResponseReturnValue:
    """OpenID Connect Back-Channel Logout 1.0 §2.5: Freigabe posts a Logout
    Token when a session that signed in here ends; §2.8: 200 when the token
    was good (whether or not a sign-in was left to end), 400 when it was not.
    No CSRF token: the caller is the IdP, and the token is its proof."""
    token = request.form.get("logout_token")
    if not token:
        return _logout_error(RpError("invalid_request", "logout_token is missing.", 400))
    try:
        verified = rp().provider.verify_logout_token(token=token)
    except RpError as error:
        return _logout_error(error)
    ended = end_sign_ins(sid=verified.sid, sub=verified.sub)
    log.info("back-channel logout: sid=%s sub=%s, %d sign-in(s) ended", verified.sid,
             verified.sub, ended)  # fmt: skip
    return Response(status=200)


def _logout_error(error: RpError) -> ResponseReturnValue:
    log.warning("back-channel logout refused: %s", error.description)
    body = {"error": "invalid_request", "error_description": error.description}
    return jsonify(body), 400
