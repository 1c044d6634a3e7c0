"""A protocol-level test client: a browser that follows the IdP's pages and a
relying party that checks what comes back, with nothing of ours mocked."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

CALLBACK = "http://localhost:9/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def form_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@dataclass
class Browser:
    """Follows redirects inside the IdP; stops at the first one that leaves it."""

    issuer: str
    session: requests.Session = field(default_factory=requests.Session)
    last: requests.Response | None = None

    def go(self, url: str, method: str = "GET", **kwargs: Any) -> requests.Response:
        while True:
            response = self.session.request(
                method, url, allow_redirects=False, timeout=30, **kwargs
            )
            self.last = response
            location = response.headers.get("Location")
            if response.status_code not in (301, 302, 303) or not location:
                return response
            target = location if "://" in location else self.issuer + location
            if not target.startswith(self.issuer + "/"):
                return response
            url, method, kwargs = target, "GET", {}

    def submit(self, response: requests.Response, action: str, **values: str) -> requests.Response:
        data = form_fields(response.text)
        data.update(values)
        return self.go(
            self.issuer + action if action.startswith("/") else action, "POST", data=data
        )

    def sign_in(self, page: requests.Response, identifier: str, password: str) -> requests.Response:
        assert 'name="password"' in page.text, page.text[:500]
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action is not None
        path = action.group(1).replace("&amp;", "&")
        return self.submit(page, path, identifier=identifier, password=password)

    def allow(self, page: requests.Response) -> requests.Response:
        assert 'value="allow"' in page.text, page.text[:500]
        return self.submit(page, "/authorize/consent", decision="allow")


@dataclass
class RelyingParty:
    """Just enough of a client to run and check the code flow by hand."""

    issuer: str
    client_id: str
    client_secret: str | None = None
    redirect_uri: str = CALLBACK

    def authorize_url(self, **extra: str) -> tuple[str, dict[str, str]]:
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile email offline_access",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(extra)
        params = {k: v for k, v in params.items() if v is not None}
        return f"{self.issuer}/authorize?{urlencode(params)}", {**params, "verifier": verifier}

    def token(self, **form: str) -> requests.Response:
        auth = (self.client_id, self.client_secret) if self.client_secret else None
        if not self.client_secret:
            form.setdefault("client_id", self.client_id)
        return requests.post(f"{self.issuer}/token", data=form, auth=auth, timeout=30)

    def redeem(self, code: str, verifier: str) -> requests.Response:
        return self.token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
            code_verifier=verifier,
        )

    def validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """OIDC Core §3.1.3.7, against the published JWKS."""
        jwks = requests.get(f"{self.issuer}/jwks.json", timeout=30).json()
        token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["ES256", "RS256"])
        claims = dict(token.claims)
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(claims)
        return claims


def at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
