"""Freigabe as FinanceCloud sees it. The only module of the demo RP that imports
Authlib; it translates Authlib's, joserfc's and requests' exceptions into
``RpError``.

Authlib's Flask client does the protocol work: discovery, state, nonce, PKCE
(S256), the code exchange, and the ID token checks (signature against the JWKS,
``iss``, ``aud``, ``exp``, ``nonce``, ``at_hash``). This module adds what it
leaves to the application: the discovered issuer (OIDC Discovery 1.0 §4.3), the
``iss`` authorization response parameter (RFC 9207), ``max_age`` against
``auth_time``, the userinfo ``sub`` (OIDC Core §5.3.4) and refreshed ID tokens
(OIDC Core §12.2). Logout Tokens (OpenID Connect Back-Channel Logout 1.0), which
Authlib's client does not handle, are checked here with joserfc against the
same JWKS.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask, Response, session
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from .settings import Settings
from .store import MemoryStore

log = logging.getLogger(__name__)

NAME = "freigabe"
STATE_PREFIX = f"_state_{NAME}_"  # where Authlib keeps pending requests in the session
MAX_PENDING = 4  # sign-ins started in other tabs that may still come back
HTTP_TIMEOUT = 10
LEEWAY = 120  # seconds of clock skew tolerated, as Authlib does for exp and iat
# Back-Channel Logout 1.0 §2.4: the events member of a Logout Token, and its
# explicit type (§4.1), which an ID token does not have.
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE = "logout+jwt"
# Logout Tokens are posted when they are made: refuse older ones, and ones
# that claim to stay valid longer, so that each jti is remembered only briefly.
MAX_LOGOUT_TOKEN_AGE = 600


class RpError(Exception):
    """A sign-in, refresh or userinfo call failed. ``error`` is the OAuth error
    code (the IdP's, or ours for checks the RP makes); ``description`` is shown
    to the user and never holds exception text."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class Tokens:
    """What a sign-in leaves: the raw tokens and the validated ID token claims."""

    id_token: str
    access_token: str
    refresh_token: str | None
    expires_at: int | None
    scope: str
    claims: dict[str, Any] = field(default_factory=dict)
    refreshed: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Tokens:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class VerifiedLogout:
    """A Logout Token that passed every check of Back-Channel Logout 1.0 §2.6:
    end the sign-in with ``sid`` or, without one, every sign-in of ``sub``."""

    sub: str | None
    sid: str | None
    jti: str


class Provider:
    """The IdP, registered from its discovery document on first use, so the RP
    can start before the IdP is up."""

    def __init__(self, app: Flask, settings: Settings, store: MemoryStore) -> None:
        self.settings = settings
        self.store = store
        # With a cache, Authlib keeps the PKCE verifier and nonce in the store
        # and only the state's expiry in the (readable) session cookie.
        self.oauth = OAuth(app, cache=store)
        self.remote: Any = self.oauth.register(
            NAME,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            server_metadata_url=settings.discovery_url,
            client_kwargs={
                "scope": settings.scope,
                # Authlib sends no PKCE unless told; RFC 9700 §2.1.1, S256 only.
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": settings.token_endpoint_auth_method,
                "default_timeout": HTTP_TIMEOUT,
            },
        )

    # --- discovery ---------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        try:
            metadata = cast(dict[str, Any], self.remote.load_server_metadata())
        except (requests.RequestException, ValueError) as exc:
            log.warning("discovery at %s failed: %r", self.settings.discovery_url, exc)
            raise RpError(
                "idp_unreachable", "Freigabe cannot be reached right now. Try again soon.", 502
            ) from None
        if metadata.get("issuer") != self.settings.issuer:
            # OIDC Discovery 1.0 §4.3: the issuer in the document MUST be exactly
            # the one it was fetched for; otherwise it may be an impostor's.
            log.error(
                "discovery names issuer %r, expected %r",
                metadata.get("issuer"),
                self.settings.issuer,
            )
            self.remote.server_metadata.clear()  # fetch again next time
            raise RpError("issuer_mismatch", "Freigabe's configuration does not match.", 502)
        return metadata

    # --- sign-in -----------------------------------------------------------------

    def authorize_redirect(self, extra: Mapping[str, str]) -> Response:
        """Redirect to the authorization endpoint; Authlib adds state, nonce and
        the S256 code challenge and remembers them under the state."""
        self.metadata()
        _prune_pending()
        return cast(Response, self.remote.authorize_redirect(self.settings.redirect_uri, **extra))

    def finish_sign_in(self, args: Mapping[str, str]) -> Tokens:
        """Check the authorization response, redeem the code, validate the ID token."""
        metadata = self.metadata()
        iss = args.get("iss")
        if iss is not None:
            if iss != metadata["issuer"]:
                # RFC 9207 §2.4: a response from another issuer (mix-up attack).
                raise RpError("issuer_mismatch", "The answer came from an unexpected issuer.")
        elif metadata.get("authorization_response_iss_parameter_supported"):
            # RFC 9207 §2.4: the IdP promises iss, so a response without it is refused.
            raise RpError("missing_iss", "The answer did not say which server sent it.")

        state = args.get("state") or ""
        pending = self.remote.framework.get_state_data(session, state) if state else None
        if not isinstance(pending, dict) or "nonce" not in pending:
            # RFC 6749 §10.12: only answers to requests this browser started.
            raise RpError("invalid_state", "This sign-in was not started here, or it expired.")
        if args.get("error"):
            self.remote.framework.clear_state_data(session, state)
            raise RpError(args["error"][:100], (args.get("error_description") or "")[:300])

        try:
            token = self.remote.authorize_access_token()
        except OAuthError as exc:
            log.warning("code exchange failed: %s %s", exc.error, exc.description)
            raise RpError(exc.error, exc.description or "") from None
        except (JoseError, ValueError) as exc:
            log.warning("ID token refused: %r", exc)
            raise RpError("invalid_id_token", "The ID token did not pass validation.") from None
        except requests.RequestException as exc:
            log.warning("token endpoint unreachable: %r", exc)
            raise RpError("idp_unreachable", "Freigabe cannot be reached right now.", 502) from None
        if "userinfo" not in token:
            raise RpError("invalid_id_token", "The token response had no ID token.")
        claims = dict(token["userinfo"])

        max_age = _query_param(pending.get("url"), "max_age")
        if max_age is not None and max_age.isdigit():
            # OIDC Core §3.1.2.1: with max_age, auth_time is required and the RP
            # checks that the authentication is recent enough.
            auth_time = claims.get("auth_time")
            if not isinstance(auth_time, int | float) or (
                time.time() - auth_time > int(max_age) + LEEWAY
            ):
                raise RpError("invalid_id_token", "The sign-in is older than max_age allows.")
        return _tokens(token, claims)

    # --- with the tokens ---------------------------------------------------------

    def userinfo(self, tokens: Tokens) -> dict[str, Any]:
        self.metadata()
        bearer = {"access_token": tokens.access_token, "token_type": "Bearer"}
        try:
            info = dict(self.remote.userinfo(token=bearer))
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            log.warning("userinfo answered %s", status)
            raise RpError(
                "userinfo_failed", f"The userinfo endpoint answered {status}.", 502
            ) from None
        except (requests.RequestException, ValueError) as exc:
            log.warning("userinfo failed: %r", exc)
            raise RpError("userinfo_failed", "The userinfo endpoint did not answer.", 502) from None
        if info.get("sub") != tokens.claims.get("sub"):
            # OIDC Core §5.3.4: the userinfo sub MUST equal the ID token's.
            raise RpError("userinfo_failed", "The userinfo response is about someone else.", 502)
        return info

    def refresh(self, tokens: Tokens) -> Tokens:
        """The refresh_token grant. Freigabe rotates refresh tokens (RFC 9700
        §4.14.2): the new one replaces the old, which is then worthless."""
        if not tokens.refresh_token:
            raise RpError("no_refresh_token", "Sign in again with offline_access to refresh.")
        metadata = self.metadata()
        with OAuth2Session(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret,
            token_endpoint_auth_method=self.settings.token_endpoint_auth_method,
            default_timeout=HTTP_TIMEOUT,
        ) as http:
            try:
                token = http.refresh_token(
                    metadata["token_endpoint"], refresh_token=tokens.refresh_token
                )
            except OAuthError as exc:
                log.warning("refresh failed: %s %s", exc.error, exc.description)
                raise RpError(exc.error, exc.description or "") from None
            except (requests.RequestException, ValueError) as exc:
                log.warning("token endpoint unreachable: %r", exc)
                raise RpError("idp_unreachable", "Freigabe cannot be reached.", 502) from None

        claims = tokens.claims
        if "id_token" in token:
            # OIDC Core §12.2: a new ID token from a refresh is validated like the
            # first (there is no nonce) and must be about the same user.
            try:
                fresh = dict(self.remote.parse_id_token(token, nonce=None))
            except (JoseError, ValueError) as exc:
                log.warning("refreshed ID token refused: %r", exc)
                raise RpError("invalid_id_token", "The new ID token did not validate.") from None
            if fresh.get("sub") != claims.get("sub") or fresh.get("auth_time") != claims.get(
                "auth_time"
            ):
                raise RpError("invalid_id_token", "The new ID token is about someone else.")
            claims = fresh
        fresh_tokens = _tokens(
            {**token, "id_token": token.get("id_token") or tokens.id_token}, claims
        )
        return replace(
            fresh_tokens,
            refresh_token=fresh_tokens.refresh_token or tokens.refresh_token,
            scope=fresh_tokens.scope or tokens.scope,
            refreshed=tokens.refreshed + 1,
        )

    # --- sign-out ----------------------------------------------------------------

    def logout_redirect(self, id_token: str | None) -> Response:
        """OIDC RP-Initiated Logout 1.0 §2: to the end_session_endpoint with
        id_token_hint, post_logout_redirect_uri, client_id and a fresh state."""
        metadata = self.metadata()
        if not metadata.get("end_session_endpoint"):
            raise RpError("logout_unsupported", "Freigabe offers no sign-out endpoint.", 502)
        return cast(
            Response,
            self.remote.logout_redirect(
                post_logout_redirect_uri=self.settings.post_logout_redirect_uri,
                id_token_hint=id_token,
                client_id=self.settings.client_id,
            ),
        )

    def finish_logout(self) -> bool:
        """True when the request returns from a sign-out this browser started."""
        try:
            self.remote.validate_logout_response()
        except OAuthError:
            return False
        return True

    # --- back-channel logout ---------------------------------------------------------

    def verify_logout_token(self, *, token: str, now: int | None = None) -> VerifiedLogout:
        """OpenID Connect Back-Channel Logout 1.0 §2.6. Raises RpError
        ``invalid_request`` naming the check that failed."""
        metadata = self.metadata()
        now = int(time.time()) if now is None else now
        # §2.6 step 2: validated as an ID token is (OIDC Core §3.1.3.7): the
        # signature with the IdP's published keys and the algorithms it
        # announces for ID tokens; never "none", never a MAC.
        registry = JWSRegistry(
            algorithms=metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        )
        try:
            try:
                keys = KeySet.import_key_set(self.remote.fetch_jwk_set())
                decoded = jwt.decode(token, keys, registry=registry)
            except InvalidKeyIdError:
                # A key rotated in since the key set was fetched.
                keys = KeySet.import_key_set(self.remote.fetch_jwk_set(force=True))
                decoded = jwt.decode(token, keys, registry=registry)
        except requests.RequestException as exc:
            log.warning("JWKS unreachable for a logout token: %r", exc)
            raise _logout_refused("The IdP's keys could not be fetched.") from None
        except (JoseError, ValueError, TypeError) as exc:
            log.warning("logout token refused: %r", exc)
            raise _logout_refused("The logout token's signature did not verify.") from None
        # §2.4 / §4.1: Freigabe types its Logout Tokens, so an ID token (or any
        # other JWT it signed) cannot be passed off as one.
        if decoded.header.get("typ") != LOGOUT_TOKEN_TYPE:
            raise _logout_refused("The token is not typed logout+jwt.")
        claims = dict(decoded.claims)
        # §2.6 step 2 (continued): iss, aud, iat and exp as for an ID token.
        try:
            jwt.JWTClaimsRegistry(
                now=now,
                leeway=LEEWAY,
                iss={"essential": True, "value": metadata["issuer"]},
                aud={"essential": True, "value": self.settings.client_id},
                iat={"essential": True},
                exp={"essential": True},
                jti={"essential": True},
            ).validate(claims)
        except JoseError as exc:
            log.warning("logout token refused: %r", exc)
            raise _logout_refused("The logout token's claims are not valid.") from None
        if claims["iat"] < now - MAX_LOGOUT_TOKEN_AGE - LEEWAY or (
            claims["exp"] > now + MAX_LOGOUT_TOKEN_AGE
        ):
            raise _logout_refused("The logout token is too old or lives too long.")
        # §2.6 step 3: sub, sid or both.
        sub, sid = claims.get("sub"), claims.get("sid")
        if sub is None and sid is None:
            raise _logout_refused("The logout token names neither sub nor sid.")
        if not isinstance(sub, str | None) or not isinstance(sid, str | None) or "" in (sub, sid):
            raise _logout_refused("sub and sid must be strings.")
        # §2.6 step 4: the events claim with the back-channel logout member,
        # whose value is a JSON object.
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(LOGOUT_EVENT), dict):
            raise _logout_refused("The logout token has no back-channel logout event.")
        # §2.6 step 5: a Logout Token never carries a nonce (an ID token does).
        if "nonce" in claims:
            raise _logout_refused("A logout token must not contain a nonce.")
        # §2.6 step 6: each jti once, remembered for as long as the token
        # would pass the checks above.
        jti = str(claims["jti"])
        ttl = max(60, int(claims["exp"]) - now + LEEWAY)
        if not self.store.add(f"logout-jti:{metadata['issuer']}:{jti}", "1", ttl):
            raise _logout_refused("This logout token was used before.")
        return VerifiedLogout(sub=sub, sid=sid, jti=jti)


def _logout_refused(description: str) -> RpError:
    # §2.8: a refused Logout Token is answered 400.
    return RpError("invalid_request", description, 400)


def _tokens(token: Mapping[str, Any], claims: dict[str, Any]) -> Tokens:
    expires_at = token.get("expires_at")
    return Tokens(
        id_token=str(token["id_token"]),
        access_token=str(token["access_token"]),
        refresh_token=token.get("refresh_token"),
        expires_at=int(expires_at) if isinstance(expires_at, int | float) else None,
        scope=str(token.get("scope") or ""),
        claims=claims,
    )


def _query_param(url: Any, name: str) -> str | None:
    if not isinstance(url, str):
        return None
    values = parse_qs(urlsplit(url).query).get(name)
    return values[0] if values else None


def _prune_pending() -> None:
    """Each started sign-in leaves a small entry in the cookie; keep a few."""
    pending = sorted(
        (key for key in session if key.startswith(STATE_PREFIX)),
        key=lambda key: float((session[key] or {}).get("exp") or 0),
    )
    for key in pending[: max(0, len(pending) - MAX_PENDING + 1)]:
        session.pop(key, None)
