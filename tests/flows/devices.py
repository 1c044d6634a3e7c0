"""A device for tests: the software authenticator speaking the device API.

The same messages the phone app sends (docs/device-api.md); the SMS with the
confirmation code is read from the IdP's development outbox.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from clients.device.authenticator import CredentialKey, create_credential, get_assertion
from idp.webauthn import approval_challenge


def last_sms_code(instance_path: str | Path) -> str:
    log = Path(instance_path) / "outbox" / "sms.log"
    codes = re.findall(r"code: (\d{6})", log.read_text(encoding="utf-8"))
    assert codes, log.read_text(encoding="utf-8")
    return codes[-1]


@dataclass
class SoftDevice:
    server: str
    # The IdP's issuer: the WebAuthn origin, whichever instance is called.
    origin: str = ""
    key: CredentialKey | None = None
    token: str | None = None
    device_id: str | None = None
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.origin = self.origin or self.server

    @property
    def rp_id(self) -> str:
        return urlsplit(self.origin).hostname or ""

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.http.request(
            method, f"{self.server}/device/v1{path}", headers=headers, timeout=30, **kwargs
        )

    def start(self, **body: Any) -> requests.Response:
        body.setdefault("device_name", "Test phone")
        body.setdefault("kind", "cli")
        return self.call("POST", "/enrolments", json=body)

    def complete(
        self, started: dict[str, Any], code: str | None = None, user_verified: bool = True
    ) -> requests.Response:
        key, credential = create_credential(
            options_json=json.dumps(started["public_key"]),
            origin=self.origin,
            user_verified=user_verified,
        )
        body: dict[str, Any] = {"credential": credential}
        if code is not None:
            body["confirmation_code"] = code
        response = self.call("POST", f"/enrolments/{started['enrolment_id']}/complete", json=body)
        if response.status_code == 201:
            self.key = key
            self.token = response.json()["device_token"]
            self.device_id = response.json()["device"]["id"]
        return response

    def enrol(self, identifier: str, password: str, instance_path: str | Path) -> None:
        started = self.start(identifier=identifier, password=password)
        assert started.status_code == 201, started.text
        done = self.complete(started.json(), last_sms_code(instance_path))
        assert done.status_code == 201, done.text

    def approvals(self) -> list[dict[str, Any]]:
        response = self.call("GET", "/approvals")
        assert response.status_code == 200, response.text
        return list(response.json()["approvals"])

    def assertion(
        self, approval: dict[str, Any], decision: str, code: str, user_verified: bool = True
    ) -> dict[str, Any]:
        assert self.key is not None
        challenge = approval_challenge(
            approval_id=approval["id"],
            decision=decision,  # type: ignore[arg-type]
            code=code if decision == "approve" else "",
            context=approval["context"],
        )
        return get_assertion(
            key=self.key,
            rp_id=self.rp_id,
            origin=self.origin,
            challenge=challenge,
            user_verified=user_verified,
        )

    def answer(
        self,
        approval_id: str,
        decision: str = "approve",
        code: str = "",
        fraud: bool = False,
        assertion: dict[str, Any] | None = None,
    ) -> requests.Response:
        if assertion is None:
            approval = self.call("GET", f"/approvals/{approval_id}").json()
            assertion = self.assertion(approval, decision, code)
        return self.call(
            "POST",
            f"/approvals/{approval_id}",
            json={"decision": decision, "code": code, "fraud": fraud, "assertion": assertion},
        )
