"""Protocol endpoints: discovery, JWKS, authorize, token, userinfo, revocation,
introspection, RP-initiated logout and dynamic client registration."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode as url_encode

from authlib.oauth2 import OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidRequestError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
)
from flask import (
    Blueprint,
    Response,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as WerkzeugResponse

from .. import audit
from ..approvals import service as approvals
from ..auth import transactions
from ..auth.factors import NONE as NO_FACTORS
from ..auth.factors import second_factors
from ..auth.policy import CONSENT, DEVICE, LOGIN, PASSKEY, REFUSE, PolicyContext, evaluate
from ..auth.sessions import current_login_session
from ..errors import ApiBlueprint, InvalidAuthorizationRequest
from ..extensions import csrf, db, insert_ignore, utcnow
from ..i18n import switch_returns_to
from ..state import authorization_server, idp, resource_protector
from . import metadata, published, registration
from .claims import user_info
from .client_auth import query_client
from .models import SUPPORTED_SCOPES, Client, Consent
from .server import IdpAuthorizationServer

# The pages of the authorization flow and of RP-initiated logout.
bp = Blueprint("oidc", __name__)
# The protocol endpoints: discovery, JWKS, token, revocation, introspection,
# userinfo and client registration (every answer JSON).
api = ApiBlueprint("oidc_api", __name__)

# Parameters of an authorization request kept in the login transaction.
AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "ui_locales",
    "acr_values",
    "response_mode",
)


def server() -> IdpAuthorizationServer:
    return authorization_server()


# GET and HEAD of these are answered before routing (idp.oidc.published); the
# routes answer other methods (405, OPTIONS) and an app without that layer.
@api.get("/.well-known/openid-configuration")
@api.get("/.well-known/oauth-authorization-server")
def discovery() -> Response:
    return published.discovery_response()


@api.get("/jwks.json")
def jwks() -> Response:
    return published.jwks_response()


# --- authorization endpoint -----------------------------------------------------------


def _redirect_error(error: OAuth2Error, state: str | None) -> WerkzeugResponse:
    """An error sent back to the client's validated redirect URI, with ``iss``
    (RFC 9207 §2); an error without one is shown here and never redirected
    (RFC 6749 §4.1.2.1)."""
    if not error.redirect_uri:
        raise InvalidAuthorizationRequest(detail=error.description)
    params = {"error": error.error, "iss": idp().settings.issuer}
    if error.description:
        params["error_description"] = error.description
    if state:
        params["state"] = state
    return _redirect_to_client(error.redirect_uri, params)


def _redirect_to_client(redirect_uri: str, params: dict[str, str]) -> WerkzeugResponse:
    separator = "&" if "?" in redirect_uri else "?"
    response = redirect(redirect_uri + separator + url_encode(params), code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


def _request_from_transaction(tx: transactions.LoginTransaction) -> OAuth2Request:
    req = OAuth2Request("GET", idp().settings.issuer + "/authorize", headers=request.headers)
    req.payload = BasicOAuth2Payload(dict(tx.params))
    return req


def _client_of(client_id: str) -> Client | None:
    return query_client(client_id)


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> ResponseReturnValue:
    # OIDC Core §3.1.2.1: GET and POST are both supported.
    req = server().create_oauth2_request(None)
    return _authorize(req, tx=None)


@bp.get("/authorize/resume")
def resume() -> ResponseReturnValue:
    tx = transactions.load(request.args.get("tx"))
    return _authorize(_request_from_transaction(tx), tx=tx)


@bp.post("/authorize/consent")
def consent() -> ResponseReturnValue:
    tx = transactions.load(request.form.get("tx"))
    req = _request_from_transaction(tx)
    login = current_login_session()
    if login is None or login.user_id != tx.user_id:
        # The consent screen was answered by another (or no) signed-in user.
        return _authorize(req, tx=tx)
    if request.form.get("decision") != "allow":
        return _deny(req, tx, "The user declined the request.")
    client = _client_of(tx.client_id)
    if client is None:
        raise InvalidAuthorizationRequest()
    scopes = set(client.get_allowed_scope(tx.params.get("scope")).split())
    # Two sign-ins granting at the same moment: the row is made once, then
    # each adds its scopes under the row's lock (no lost update, no 500).
    now = utcnow()
    insert_ignore(
        Consent,
        {"user_id": login.user_id, "client_id": tx.client_id, "scopes": [], "granted_at": now},
        key=["user_id", "client_id"],
    )
    row = db.session.scalars(
        select(Consent)
        .where(Consent.user_id == login.user_id, Consent.client_id == tx.client_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    row.scopes = sorted(scopes | set(row.scopes))
    row.granted_at = now
    audit.record(
        "consent_granted", user_id=login.user_id, client_id=tx.client_id, scopes=row.scopes
    )
    tx.done.append(CONSENT)
    tx.save()
    return _authorize(req, tx=tx)


@bp.post("/authorize/cancel")
def cancel() -> ResponseReturnValue:
    tx = transactions.load(request.form.get("tx"))
    # The approval waiting on the device is not needed any more: no device may
    # answer it, and it does not count toward the push limit.
    approvals.withdraw(tx.id, reason="cancelled")
    return _deny(_request_from_transaction(tx), tx, "The user cancelled the sign-in.")


def _deny(req: OAuth2Request, tx: transactions.LoginTransaction, why: str) -> WerkzeugResponse:
    try:
        grant = server().get_consent_grant(request=req, end_user=None)
        redirect_uri = grant.validate_authorization_request()
    except OAuth2Error as error:
        return _redirect_error(error, req.payload.state)
    transactions.finish(tx)
    audit.record("authorization_denied", client_id=tx.client_id, user_id=tx.user_id)
    return _redirect_error(AccessDeniedError(why, redirect_uri=redirect_uri), req.payload.state)


def _authorize(req: OAuth2Request, tx: transactions.LoginTransaction | None) -> ResponseReturnValue:
    data = req.payload.data
    g.ui_locales = (data.get("ui_locales") or "").split()
    state = data.get("state")
    login = current_login_session()
    user = login.user if login is not None else None
    try:
        grant = server().get_consent_grant(request=req, end_user=user)
        redirect_uri = grant.validate_authorization_request()
        _validate_oidc_parameters(req, redirect_uri)
    except OAuth2Error as error:
        return _redirect_error(error, state)

    client: Client = req.client
    prompt = frozenset((data.get("prompt") or "").split())
    consented: frozenset[str] = frozenset()
    if user is not None:
        row = db.session.scalar(
            select(Consent).where(Consent.user_id == user.id, Consent.client_id == client.client_id)
        )
        consented = frozenset(row.scopes) if row else frozenset()
    if tx is not None and tx.user_id is not None and (user is None or user.id != tx.user_id):
        # The browser's user changed since this transaction began; start over.
        tx.done = []
    now = utcnow()
    decision = evaluate(
        PolicyContext(
            session=login,
            user=user,
            client_first_party=client.first_party,
            client_requires_mfa=client.require_mfa,
            client_mfa_fallback=client.mfa_fallback,
            factors=second_factors(user.id, now) if user is not None else NO_FACTORS,
            prompt=prompt,
            max_age=int(data["max_age"]) if data.get("max_age") else None,
            acr_values=tuple((data.get("acr_values") or "").split()),
            requested_scopes=frozenset((req.scope or "").split()),
            consented_scopes=consented,
            done=frozenset(tx.done if tx else ()),
            now=now,
        )
    )
    step = decision.step

    if step is not None and "none" in prompt:
        # OIDC Core §3.1.2.6: prompt=none never shows a page.
        if tx is not None:
            transactions.finish(tx)
        error_cls = {LOGIN: LoginRequiredError, CONSENT: ConsentRequiredError}.get(
            step, InteractionRequiredError
        )
        return _redirect_error(error_cls(redirect_uri=redirect_uri), state)

    if step is not None and tx is None:
        params = {k: data[k] for k in AUTHORIZE_PARAMS if data.get(k)}
        tx = transactions.begin(client.client_id, params)

    if step == LOGIN:
        assert tx is not None
        return redirect(url_for("auth.login", tx=tx.id))

    if step in (DEVICE, PASSKEY):
        assert tx is not None and user is not None
        tx.user_id = user.id
        # A push approval when a device can answer it (its page offers a
        # passkey instead, if the user has one); else the passkey.
        return redirect(transactions.second_factor_page(tx, passkey=step == PASSKEY))

    if tx is not None:
        # The pages below may answer a POST (/authorize, the consent form):
        # the language switch resumes this transaction.
        switch_returns_to(url_for("oidc.resume", tx=tx.id))

    if step == REFUSE:
        assert user is not None
        # A clear page, and the ways to set up a second factor are offered there.
        audit.record("login_refused_no_device", user_id=user.id, client_id=client.client_id)
        return render_template("no_device.html", client=client, tx=tx, user=user), 403

    if step == CONSENT:
        assert tx is not None and user is not None
        tx.user_id = user.id
        tx.save()
        scopes = [s for s in (req.scope or "").split() if s in SUPPORTED_SCOPES]
        return render_template("consent.html", client=client, scopes=scopes, tx=tx, user=user)

    assert login is not None and user is not None
    if tx is not None:
        transactions.finish(tx)
    req.login_session = login
    response: Response = server().create_authorization_response(
        request=req, grant_user=user, grant=grant
    )
    if response.status_code == 302 and response.location:
        # RFC 9207 §2: iss in every authorization response.
        response.location = response.location + "&" + url_encode({"iss": idp().settings.issuer})
        response.headers["Cache-Control"] = "no-store"
        audit.record(
            "authorization_code_issued",
            user_id=user.id,
            client_id=client.client_id,
            sid=login.id,
            amr=login.amr,
        )
    return response


def _validate_oidc_parameters(req: OAuth2Request, redirect_uri: str) -> None:
    data = req.payload.data
    if "openid" not in (req.scope or "").split():
        raise InvalidRequestError("The 'openid' scope is required.", redirect_uri=redirect_uri)
    max_age = data.get("max_age")
    if max_age is not None and max_age != "" and (not max_age.isdigit() or len(max_age) > 9):
        raise InvalidRequestError(
            "'max_age' must be a non-negative integer.", redirect_uri=redirect_uri
        )
    prompt = set((data.get("prompt") or "").split())
    if not prompt <= {"none", "login", "consent"}:
        raise InvalidRequestError("Unsupported 'prompt' value.", redirect_uri=redirect_uri)
    if data.get("response_mode") not in (None, "", "query"):
        raise InvalidRequestError(
            "Only 'response_mode=query' is supported.", redirect_uri=redirect_uri
        )
    if data.get("request") or data.get("request_uri"):
        # OIDC Core §6: request objects are not supported (discovery says so).
        raise InvalidRequestError("Request objects are not supported.", redirect_uri=redirect_uri)
    for name in ("state", "nonce", "login_hint", "acr_values", "ui_locales"):
        if len(data.get(name) or "") > 512:
            raise InvalidRequestError(f"'{name}' is too long.", redirect_uri=redirect_uri)


# --- token endpoints -------------------------------------------------------------------


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@api.post("/token")
@csrf.exempt
def token() -> Response:
    return _no_store(server().create_token_response())


@api.post("/revoke")
@csrf.exempt
def revoke() -> Response:
    return _no_store(server().create_endpoint_response("revocation"))


@api.post("/introspect")
@csrf.exempt
def introspect() -> Response:
    return _no_store(server().create_endpoint_response("introspection"))


@api.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo() -> Response:
    # OIDC Core §5.3: GET and POST with a bearer access token holding openid.
    protector = resource_protector()
    try:
        access = protector.acquire_token(["openid"])
    except OAuth2Error as error:
        # RFC 6750 §3: the error with its WWW-Authenticate challenge.
        status, error_body, headers = error()
        return Response(json.dumps(dict(error_body)), status, headers)
    user = access.get_user()
    if user is None or not user.is_active:
        response = Response(
            json.dumps({"error": "invalid_token"}), status=401, content_type="application/json"
        )
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    body: dict[str, Any] = dict(user_info(user, access.scope))
    return _no_store(Response(json.dumps(body), content_type="application/json"))


# --- RP-initiated logout ------------------------------------------------------------


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> ResponseReturnValue:
    try:
        end = server().validate_endpoint_request("end_session")
    except OAuth2Error as error:
        raise InvalidAuthorizationRequest(detail=error.description) from None
    g.ui_locales = (end.ui_locales or "").split()
    confirmed = request.method == "POST" and request.form.get("confirm") == "yes"
    if end.needs_confirmation and not confirmed:
        # RP-Initiated Logout §6: without a valid id_token_hint, ask first.
        fields = {k: v for k, v in request.values.items() if k != "csrf_token"}
        return render_template("logout_confirm.html", fields=fields, client=end.client)
    response: Response | None = server().create_endpoint_response("end_session", end)
    if response is None:
        return render_template("logged_out.html", client=end.client)
    return response


# --- dynamic client registration (RFC 7591, RFC 7592) ------------------------------
# Thin views: idp.oidc.registration decides; errors are Authlib's classes
# rendered as RFC 7591 §3.2.2 / RFC 6750 §3 JSON.


def _oauth_error(error: OAuth2Error) -> Response:
    status, body, headers = error()
    return Response(json.dumps(dict(body)), status, headers)


def _registration_json(body: dict[str, Any], status: int) -> Response:
    # Secrets and tokens inside: never cached (RFC 7591 §3.2.1).
    response = Response(json.dumps(body), status, content_type="application/json")
    return _no_store(response)


def _json_body() -> Any:
    """The JSON request body; anything else is an invalid_request."""
    try:
        data = request.get_json(silent=True)
    except RequestEntityTooLarge:
        raise InvalidRequestError("The request body is too large.", status_code=413) from None
    if data is None:
        raise InvalidRequestError("Send the metadata as a JSON object (application/json).")
    return data


@api.post("/register")
@csrf.exempt
def register() -> Response:
    """RFC 7591 §3: register a client."""
    try:
        grant = registration.verify_registration_request(
            authorization=request.headers.get("Authorization"), ip=request.remote_addr
        )
        body = registration.register(metadata.parse_metadata(_json_body()), grant=grant)
    except OAuth2Error as error:
        return _oauth_error(error)
    return _registration_json(body, 201)


@api.route("/register/<client_id>", methods=["GET", "PUT", "DELETE"])
@csrf.exempt
def client_configuration(client_id: str) -> Response:
    """RFC 7592 §2: read, replace or delete the client's own registration."""
    try:
        access = registration.verify_registration_access(
            client_id=client_id, authorization=request.headers.get("Authorization")
        )
        if request.method == "GET":
            return _registration_json(registration.read(access), 200)
        if request.method == "PUT":
            envelope, sent = metadata.parse_update(_json_body(), client_id=client_id)
            return _registration_json(registration.update(access, envelope, sent), 200)
        registration.delete(access)
    except OAuth2Error as error:
        return _oauth_error(error)
    return _no_store(Response(status=204))
