"""Restoration: the ID on a second device (DESIGN §5, docs/device-api.md "Restoration").

Two software devices speak the device API as the app does; e-mail goes to a
real SMTP server (aiosmtpd) and the test reads code 2 and the notices from the
mail it received; the second device then confirms a real login.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import requests

from clients.device.authenticator import create_credential, get_assertion
from idp.webauthn import action_challenge

from .conftest import PASSWORD, LiveIdp
from .devices import SoftDevice
from .helpers import Browser, query
from .test_approvals import match_code, mfa_client, proceed, to_waiting_page

EMAIL = "erika@example.org"
# The mails a test waits for (others, such as a notice about a device, are
# left for their own wait).
CONFIRMATION_MAIL = "Confirm your e-mail address"
CODE2_MAIL = "Your second restoration code"
ADDED_MAIL = "A new device was added"
CODE1 = re.compile(r"^[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){3}$")


@dataclass
class RestoringDevice(SoftDevice):
    """SoftDevice with the restoration calls of the app."""

    def action(
        self, purpose: str, payload: dict[str, Any] | None = None, *, user_verified: bool = True
    ) -> tuple[str, dict[str, Any]]:
        """A fresh nonce for ``purpose`` and an assertion over the action."""
        assert self.key is not None
        response = self.call("POST", "/actions/challenge", json={"purpose": purpose})
        assert response.status_code == 201, response.text
        nonce = response.json()["nonce"]
        challenge = action_challenge(purpose=purpose, payload={**(payload or {}), "nonce": nonce})
        assertion = get_assertion(
            key=self.key,
            rp_id=self.rp_id,
            origin=self.origin,
            challenge=challenge,
            user_verified=user_verified,
        )
        return nonce, assertion

    def status(self) -> dict[str, Any]:
        response = self.call("GET", "/restoration")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def activate(self, email: str | None = None, user_verified: bool = True) -> requests.Response:
        nonce, assertion = self.action(
            "activate_restoration", {"email": email or ""}, user_verified=user_verified
        )
        body: dict[str, Any] = {"nonce": nonce, "assertion": assertion}
        if email is not None:
            body["email"] = email
        return self.call("POST", "/restoration/activation", json=body)

    def confirm(self, activation_id: str, code: str) -> requests.Response:
        return self.call(
            "POST", f"/restoration/activation/{activation_id}/confirm", json={"code": code}
        )

    def regenerate(self) -> requests.Response:
        nonce, assertion = self.action("regenerate_restoration_code")
        return self.call("POST", "/restoration/code", json={"nonce": nonce, "assertion": assertion})

    def refuse(self, device_id: str) -> requests.Response:
        nonce, assertion = self.action("refuse_device", {"device": device_id})
        return self.call(
            "POST",
            f"/restoration/devices/{device_id}/refuse",
            json={"nonce": nonce, "assertion": assertion},
        )

    def notices(self) -> list[dict[str, Any]]:
        response = self.call("GET", "/notices")
        assert response.status_code == 200, response.text
        return list(response.json()["notices"])

    # --- the new device, before it has a token
    def restore(self, login_id: str, code1: str, name: str = "New phone") -> requests.Response:
        return self.call(
            "POST",
            "/restorations",
            json={"login_id": login_id, "code1": code1, "device_name": name, "kind": "cli"},
        )

    def send_code2(self, restoration_id: str, code2: str) -> requests.Response:
        return self.call("POST", f"/restorations/{restoration_id}/code", json={"code2": code2})

    def register(self, restoration_id: str, options: dict[str, Any]) -> requests.Response:
        key, credential = create_credential(options_json=json.dumps(options), origin=self.origin)
        response = self.call(
            "POST", f"/restorations/{restoration_id}/complete", json={"credential": credential}
        )
        if response.status_code == 201:
            self.key = key
            self.token = response.json()["device_token"]
            self.device_id = response.json()["device"]["id"]
        return response


# --- helpers -----------------------------------------------------------------------


def smtp_idp(idp_factory: Callable[..., LiveIdp], smtp_server: Any, **settings: Any) -> LiveIdp:
    return idp_factory(
        smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_security="none", **settings
    )


def mail_code(mail: EmailMessage, digits: int) -> str:
    text = mail.get_content()
    found = re.findall(rf"(?<!\d)(\d{{{digits}}})(?!\d)", text)
    assert found, text
    return str(found[0])


def enrolled(idp: LiveIdp, **user_fields: Any) -> tuple[Any, RestoringDevice]:
    user_fields.setdefault("phone_number", "+49 151 1234567")
    user = idp.add_user(**user_fields)
    device = RestoringDevice(idp.url)
    device.enrol(user.access_number, PASSWORD, idp.app.instance_path)
    return user, device


def verify_email(idp: LiveIdp, user: Any) -> None:
    from idp.accounts.models import User
    from idp.extensions import db

    with idp.app.app_context():
        row = db.session.get(User, user.id)
        assert row is not None
        row.email_verified = True
        db.session.commit()


def activated(idp: LiveIdp, device: RestoringDevice) -> str:
    """Code 1 of a user whose e-mail address is verified (no confirmation)."""
    response = device.activate()
    assert response.status_code == 200, response.text
    return str(response.json()["restoration_code"])


def restored(
    device: RestoringDevice, user: Any, code1: str, smtp_server: Any, name: str = "New phone"
) -> requests.Response:
    """Steps 1-3 on ``device``; the answer of step 3."""
    started = device.restore(user.access_number, code1, name)
    assert started.status_code == 201, started.text
    code2 = mail_code(smtp_server.wait_for(EMAIL, subject=CODE2_MAIL), 8)
    verified = device.send_code2(started.json()["restoration_id"], code2)
    assert verified.status_code == 200, verified.text
    return device.register(started.json()["restoration_id"], verified.json()["public_key"])


def failure_window_ends(idp: LiveIdp, user: Any) -> None:
    """The restoration failure window of ``user``'s login ID ends: its counter
    expires, as the window's time would make it (without waiting it out)."""
    from idp.restore.service import limits
    from idp.store.ratelimit import reset

    with idp.app.app_context():
        per_login, _per_ip = limits()
        reset(idp.app.extensions["idp"].store, per_login, f"user:{user.id}")


def reasons(idp: LiveIdp) -> list[str]:
    return [e.detail["reason"] for e in idp.events("restore_failed")]


def approve_a_login(idp: LiveIdp, user: Any, device: SoftDevice, rp: Any) -> dict[str, Any]:
    """A login to ``rp`` confirmed on ``device``; the ID token's claims."""
    browser, page, req = to_waiting_page(idp, rp, user)
    (approval,) = device.approvals()
    answered = device.answer(approval["id"], "approve", match_code(page))
    assert answered.status_code == 200, answered.text
    done = proceed(browser, page)
    assert done.status_code == 302, done.text
    tokens = rp.redeem(query(done.headers["Location"])["code"], req["verifier"]).json()
    return dict(rp.validate_id_token(tokens["id_token"], req["nonce"]))


# --- the journey -------------------------------------------------------------------


def test_activate_restore_on_a_second_device_and_sign_in_with_it(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any, push_service: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server)
    user, phone = enrolled(idp)  # no e-mail address on the account
    subscription = push_service.new_subscription()
    assert phone.call("PUT", "/push-subscription", json=subscription).status_code == 204
    assert phone.status() == {
        "active": False,
        "email_masked": None,
        "email_confirmed": False,
        "activated_at": None,
        "rotated_at": None,
        "prompt_backup": False,
        "pending_devices": [],
    }

    # Activation: the account has no e-mail address, so the app asks for one.
    missing = phone.activate()
    assert missing.status_code == 400 and missing.json()["error"] == "email_required"
    started = phone.activate(EMAIL)
    assert started.status_code == 202, started.text
    body = started.json()
    assert (
        body["status"] == "email_confirmation_required"
        and body["email_masked"] == "e•••@example.org"
    )
    confirmation = mail_code(smtp_server.wait_for(EMAIL, subject=CONFIRMATION_MAIL), 6)
    wrong = phone.confirm(body["activation_id"], f"{(int(confirmation) + 1) % 10**6:06d}")
    assert wrong.status_code == 400 and wrong.json()["error"] == "wrong_code"
    done = phone.confirm(body["activation_id"], confirmation)
    assert done.status_code == 200, done.text
    code1 = done.json()["restoration_code"]
    assert CODE1.match(code1), code1  # 16 of 32 symbols: 80 bits, grouped for reading
    assert done.headers["Cache-Control"] == "no-store"
    # Shown once: never again in any answer.
    status = phone.status()
    assert status["active"] and status["email_confirmed"] and code1 not in str(status)
    assert phone.confirm(body["activation_id"], confirmation).status_code == 404
    assert phone.activate().json()["error"] == "restoration_already_active"

    # Restore on the second device: login ID, code 1 (as typed: any case, no dashes) ...
    tablet = RestoringDevice(idp.url)
    step1 = tablet.restore(user.access_number, code1.replace("-", " ").lower(), "Erika's tablet")
    assert step1.status_code == 201, step1.text
    assert step1.json()["email_masked"] == "e•••@example.org"
    restoration_id = step1.json()["restoration_id"]
    mail = smtp_server.wait_for(EMAIL, subject=CODE2_MAIL)
    assert "Erika's tablet" in mail.get_content()
    code2 = mail_code(mail, 8)
    # ... and every existing device is told, by push (opaque) and in its notices.
    pushed = push_service.wait_for_message(subscription, timeout=10).json()
    assert pushed == {"type": "notice", "id": pushed["id"]}
    (notice,) = phone.notices()
    assert notice["id"] == pushed["id"] and notice["type"] == "restore_started"
    assert notice["device"] == {"name": "Erika's tablet", "kind": "cli"}

    step2 = tablet.send_code2(restoration_id, code2)
    assert step2.status_code == 200, step2.text
    assert step2.json()["public_key"]["authenticatorSelection"]["userVerification"] == "required"
    # Code 2 is single use.
    assert tablet.send_code2(restoration_id, code2).json()["error"] == "restore_failed"
    step3 = tablet.register(restoration_id, step2.json()["public_key"])
    assert step3.status_code == 201, step3.text
    result = step3.json()
    assert result["status"] == "active" and result["pending_until"] is None
    assert result["device"]["enrolled_via"] == "restoration"
    assert result["user"]["access_number"] == user.access_number
    new_code1 = result["restoration_code"]
    assert CODE1.match(new_code1) and new_code1 != code1
    assert tablet.register(restoration_id, step2.json()["public_key"]).status_code == 400

    # Both devices hold the ID.
    listed = tablet.call("GET", "/devices").json()["devices"]
    assert [(d["enrolled_via"], d["this_device"]) for d in listed] == [
        ("password_sms", False),
        ("restoration", True),
    ]
    # The notice naming the new device: on the old device, and by mail with the way to remove it.
    pushed = push_service.wait_for_message(subscription, timeout=10, count=2).json()
    added = phone.notices()[0]
    assert added["id"] == pushed["id"] and added["type"] == "device_restored"
    assert added["device"] == {"id": tablet.device_id, "name": "Erika's tablet", "kind": "cli"}
    assert tablet.notices() == []  # nothing about itself
    notice_mail = smtp_server.wait_for(EMAIL, subject=ADDED_MAIL)
    assert notice_mail["Subject"] == "A new device was added to your Freigabe ID"
    assert "Erika's tablet" in notice_mail.get_content()
    assert f"{idp.url}/account" in notice_mail.get_content()

    # The second device confirms a login.
    rp = mfa_client(idp)
    claims = approve_a_login(idp, user, tablet, rp)
    assert "mfa" in claims["amr"]

    # Code 1 was rotated: the old one is refused, the new one works.
    other = RestoringDevice(idp.url)
    refused = other.restore(user.access_number, code1)
    assert refused.status_code == 400 and refused.json()["error"] == "restore_failed"
    assert other.restore(user.access_number, new_code1).status_code == 201

    for event in (
        "restoration_email_code_sent",
        "restoration_email_confirmed",
        "restoration_activated",
        "restore_started",
        "restore_code_verified",
        "restore_completed",
    ):
        assert idp.events(event), event
    assert reasons(idp) == ["unknown_restoration", "unknown_restoration", "wrong_code1"]
    (completed,) = idp.events("restore_completed")
    assert completed.detail["device"] == tablet.device_id


def test_back_up_your_identity_is_asked_at_the_sixth_login_and_not_now_is_final(
    idp_factory: Callable[..., LiveIdp],
) -> None:
    idp = idp_factory(approval_push_limit=20)
    user, phone = enrolled(idp, email=EMAIL)
    rp = mfa_client(idp)
    for _ in range(5):
        approve_a_login(idp, user, phone, rp)
        assert phone.status()["prompt_backup"] is False
    approve_a_login(idp, user, phone, rp)  # the sixth
    assert phone.status()["prompt_backup"] is True

    # NOT NOW: remembered, never asked again.
    assert phone.call("POST", "/restoration/prompt-dismissed").status_code == 204
    assert phone.status()["prompt_backup"] is False
    approve_a_login(idp, user, phone, rp)
    assert phone.status()["prompt_backup"] is False
    assert len(idp.events("restoration_prompt_dismissed")) == 1
    # Activation stays available in the settings: the unverified address gets a
    # code; another address than the account's is not taken.
    other = phone.activate("someone@example.net")
    assert other.status_code == 400 and other.json()["error"] == "email_mismatch"
    started = phone.activate()
    assert started.status_code == 202 and started.json()["email_masked"] == "e•••@example.org"


def test_regenerating_code1_voids_the_old_one_and_its_restorations(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server)
    user, phone = enrolled(idp, email=EMAIL)
    verify_email(idp, user)  # a verified address: activated at once
    old = activated(idp, phone)
    tablet = RestoringDevice(idp.url)
    pending = tablet.restore(user.access_number, old)
    assert pending.status_code == 201
    code2 = mail_code(smtp_server.wait_for(EMAIL, subject=CODE2_MAIL), 8)

    regenerated = phone.regenerate()
    assert regenerated.status_code == 200, regenerated.text
    new = regenerated.json()["restoration_code"]
    assert CODE1.match(new) and new != old
    # The restoration started with the old code cannot go on, the old code is refused,
    # the new one works.
    late = tablet.send_code2(pending.json()["restoration_id"], code2)
    assert late.status_code == 400 and late.json()["error"] == "restore_failed"
    assert tablet.restore(user.access_number, old).json()["error"] == "restore_failed"
    assert tablet.restore(user.access_number, new).status_code == 201
    assert reasons(idp) == ["code1_replaced", "wrong_code1"]
    assert idp.events("restoration_code_regenerated")


# --- adversarial -------------------------------------------------------------------


def test_unknown_id_inactive_restoration_and_wrong_code1_answer_alike(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server)
    user, phone = enrolled(idp, email=EMAIL, username="erika")
    inactive, _ = enrolled(idp, username="max", phone_number="+49 151 7654321")
    verify_email(idp, user)
    code1 = activated(idp, phone)
    stranger = RestoringDevice(idp.url)

    answers = [
        stranger.restore("nobody-here", code1),  # unknown ID
        stranger.restore(inactive.access_number, code1),  # restoration not active
        stranger.restore("max", "ABCD-EFGH-JKLM-NPQR"),
        stranger.restore("erika", "ABCD-EFGH-JKLM-NPQR"),  # wrong code 1
        stranger.restore("erika", ""),
    ]
    assert {(a.status_code, a.text) for a in answers} == {(400, answers[0].text)}, [
        a.text for a in answers
    ]
    assert answers[0].json()["error"] == "restore_failed"
    assert reasons(idp) == ["unknown_id", "not_active", "not_active", "wrong_code1", "wrong_code1"]
    assert smtp_server.mail_for(EMAIL, subject=CODE2_MAIL) == []  # nothing was sent
    assert phone.notices() == []
    # The right code still works (the limit of 5 per login ID is not reached).
    assert stranger.restore("erika", code1).status_code == 201


def test_brute_force_of_code1_is_stopped_until_the_window_ends(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server, restore_failures_per_login=3)
    user, phone = enrolled(idp, email=EMAIL)
    verify_email(idp, user)
    code1 = activated(idp, phone)
    attacker = RestoringDevice(idp.url)
    for guess in ("AAAA-AAAA-AAAA-AAAA", "BBBB-BBBB-BBBB-BBBB", "CCCC-CCCC-CCCC-CCCC"):
        assert attacker.restore(user.access_number, guess).json()["error"] == "restore_failed"
    # Locked: even the right code is refused now, with the same answer as for an
    # unknown ID that was guessed at as often.
    locked = attacker.restore(user.access_number, code1)
    assert locked.status_code == 429 and locked.json()["error"] == "too_many_attempts"
    assert 1 <= int(locked.headers["Retry-After"]) <= 3600
    for _ in range(3):
        attacker.restore("9999999999", code1)
    unknown = attacker.restore("9999999999", code1)
    assert (unknown.status_code, unknown.json()) == (429, locked.json())
    assert smtp_server.mail_for(EMAIL, subject=CODE2_MAIL) == []
    assert idp.events("restore_throttled")

    # The lockout ends with the window.
    failure_window_ends(idp, user)
    assert attacker.restore(user.access_number, code1).ok
    assert len(smtp_server.mail_for(EMAIL, subject=CODE2_MAIL)) == 1


def test_failures_are_also_counted_per_ip_address(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server, restore_failures_per_ip=4)
    user, phone = enrolled(idp, email=EMAIL)
    verify_email(idp, user)
    code1 = activated(idp, phone)
    attacker = RestoringDevice(idp.url)
    for n in range(4):  # a different login ID each time: only the IP address adds up
        assert attacker.restore(f"10000000{n:02d}", code1).status_code == 400
    blocked = attacker.restore(user.access_number, code1)
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers
    assert attacker.send_code2("whatever", "12345678").status_code == 429


def test_brute_force_of_code2_is_stopped(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server, restore_failures_per_login=4)
    user, phone = enrolled(idp, email=EMAIL)
    verify_email(idp, user)
    code1 = activated(idp, phone)
    attacker = RestoringDevice(idp.url)

    # Two attempts, each with its code 2 from the mail.
    first = attacker.restore(user.access_number, code1).json()["restoration_id"]
    first_code = mail_code(smtp_server.wait_for(EMAIL, subject=CODE2_MAIL), 8)
    second = attacker.restore(user.access_number, code1).json()["restoration_id"]
    right = mail_code(smtp_server.wait_for(EMAIL, subject=CODE2_MAIL), 8)

    def wrong(code: str) -> str:
        return f"{(int(code) + 1) % 10**8:08d}"

    for _ in range(3):
        assert attacker.send_code2(first, wrong(first_code)).json()["error"] == "restore_failed"
    # Three wrong codes void the attempt: now its right code fails too.
    assert attacker.send_code2(first, first_code).json()["error"] == "restore_failed"
    # The wrong codes also count for the login ID: one more, and it is locked.
    assert attacker.send_code2(second, wrong(right)).json()["error"] == "restore_failed"
    locked = attacker.send_code2(second, right)
    assert locked.status_code == 429 and locked.json()["error"] == "too_many_attempts"
    assert attacker.restore(user.access_number, code1).status_code == 429
    assert reasons(idp) == ["wrong_code2"] * 3 + ["unknown_restoration", "wrong_code2"]

    # After the window the attempt (still alive) goes on with its right code.
    failure_window_ends(idp, user)
    assert attacker.send_code2(second, right).ok
    assert len(idp.events("restore_code_verified")) == 1


def test_code2_of_another_attempt_is_refused(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server)
    user, phone = enrolled(idp, email=EMAIL)
    verify_email(idp, user)
    code1 = activated(idp, phone)
    device = RestoringDevice(idp.url)
    first = device.restore(user.access_number, code1).json()["restoration_id"]
    first_code = mail_code(smtp_server.wait_for(EMAIL, subject=CODE2_MAIL), 8)
    second = device.restore(user.access_number, code1).json()["restoration_id"]
    second_code = mail_code(smtp_server.wait_for(EMAIL, subject=CODE2_MAIL), 8)
    assert first != second

    crossed = device.send_code2(first, second_code)
    assert crossed.status_code == 400 and crossed.json()["error"] == "restore_failed"
    assert device.send_code2(second, first_code).json()["error"] == "restore_failed"
    assert device.send_code2(first, first_code).status_code == 200
    # An unknown attempt is the same failure.
    assert device.send_code2("no-such-attempt", first_code).json()["error"] == "restore_failed"
    assert reasons(idp) == ["wrong_code2", "wrong_code2", "unknown_restoration"]


def test_activation_needs_user_verification_and_a_fresh_nonce(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server)
    user, phone = enrolled(idp, email=EMAIL)
    verify_email(idp, user)
    no_uv = phone.activate(user_verified=False)
    assert no_uv.status_code == 400 and no_uv.json()["error"] == "webauthn_failed"
    assert phone.status()["active"] is False

    # The address sent is part of what is signed.
    nonce, assertion = phone.action("activate_restoration", {"email": ""})
    body = {"nonce": nonce, "assertion": assertion, "email": EMAIL}
    forged = phone.call("POST", "/restoration/activation", json=body)
    assert forged.status_code == 400 and forged.json()["error"] == "webauthn_failed"
    # The nonce is single use: the same signed request again is refused.
    nonce, assertion = phone.action("activate_restoration", {"email": ""})
    body = {"nonce": nonce, "assertion": assertion}
    assert phone.call("POST", "/restoration/activation", json=body).status_code == 200
    replay = phone.call("POST", "/restoration/activation", json=body)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_nonce"
    # Without a token: nothing.
    anonymous = requests.get(f"{idp.url}/device/v1/restoration", timeout=10)
    assert anonymous.status_code == 401


# --- the veto window ---------------------------------------------------------------


def test_a_pending_restored_device_can_be_refused(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server, restore_veto_window=3600)
    user, phone = enrolled(idp, email=EMAIL)
    verify_email(idp, user)
    code1 = activated(idp, phone)
    intruder = RestoringDevice(idp.url)
    done = restored(intruder, user, code1, smtp_server, name="Not mine")
    assert done.status_code == 201, done.text
    assert done.json()["status"] == "pending" and done.json()["pending_until"]
    notice = smtp_server.mail_for(EMAIL, subject=ADDED_MAIL)[-1].message.get_content()
    assert "Not mine" in notice and "refuse" in notice

    # Pending: it can do nothing, not even see approvals.
    waiting = intruder.call("GET", "/status")
    assert waiting.status_code == 403 and waiting.json()["error"] == "device_pending"
    assert 3500 < int(waiting.headers["Retry-After"]) <= 3600
    rp = mfa_client(idp)
    _, page, _ = to_waiting_page(idp, rp, user)
    assert intruder.call("GET", "/approvals").json()["error"] == "device_pending"

    # The old device sees it and refuses it.
    (listed,) = phone.status()["pending_devices"]
    assert listed["id"] == intruder.device_id and listed["pending_until"]
    assert phone.notices()[0]["pending_until"] == listed["pending_until"]
    refused = phone.refuse(intruder.device_id or "")
    assert refused.status_code == 200, refused.text
    assert refused.json()["status"] == "refused"
    # Code 1 was shown on the refused device: void; restoration must be activated again.
    assert refused.json()["restoration_active"] is False
    assert intruder.call("GET", "/status").json()["error"] == "device_revoked"
    assert phone.refuse(intruder.device_id or "").json()["error"] == "device_not_found"
    assert phone.status()["active"] is False and phone.status()["pending_devices"] == []
    assert RestoringDevice(idp.url).restore(user.access_number, code1).status_code == 400
    assert idp.events("restore_vetoed") and idp.events("restoration_code_revoked")
    # The login is still there for the old device.
    (approval,) = phone.approvals()
    assert phone.answer(approval["id"], "approve", match_code(page)).status_code == 200


def test_a_device_in_its_veto_window_is_no_second_factor_yet(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any
) -> None:
    """The login, the account page and the admin pages ask one definition of
    the second factors a user can use now: a restored device still in its
    veto window cannot answer an approval, so a sign-in that needs one is
    refused (with the ways to set one up) instead of waiting for nobody."""
    idp = smtp_idp(idp_factory, smtp_server, restore_veto_window=3600)
    user, phone = enrolled(idp, email=EMAIL)
    verify_email(idp, user)
    tablet = RestoringDevice(idp.url)
    done = restored(tablet, user, activated(idp, phone), smtp_server, name="Tablet")
    assert done.status_code == 201 and done.json()["status"] == "pending", done.text
    # The phone is lost: only the pending tablet is left.
    from .test_device_delete import delete

    assert delete(phone, phone.device_id or "").status_code == 200

    rp = mfa_client(idp)
    browser = Browser(idp.url)
    url, _req = rp.authorize_url()
    page = browser.sign_in(browser.go(url), user.access_number, PASSWORD)
    assert page.status_code == 403, page.text[:300]
    assert "/login/approval" not in (browser.last.url if browser.last else "")
    assert idp.events("login_refused_no_device") and not idp.events("approval_requested")


def test_after_the_veto_window_the_restored_device_works(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server, restore_veto_window=3600)
    user, phone = enrolled(idp, email=EMAIL)
    verify_email(idp, user)
    code1 = activated(idp, phone)
    tablet = RestoringDevice(idp.url)
    assert restored(tablet, user, code1, smtp_server).json()["status"] == "pending"
    assert tablet.call("GET", "/status").status_code == 403
    # The veto window passes (its end moves to now, rather than waiting it out).
    from idp.devices.models import Device
    from idp.extensions import db, utcnow

    with idp.app.app_context():
        device = db.session.get(Device, tablet.device_id)
        assert device is not None and device.pending_until is not None
        device.pending_until = utcnow()
        db.session.commit()
    assert tablet.call("GET", "/status").status_code == 200
    # Too late to refuse it; it is an ordinary device now.
    late = phone.refuse(tablet.device_id or "")
    assert late.status_code == 409 and late.json()["error"] == "device_not_pending"
    approve_a_login(idp, user, tablet, mfa_client(idp))


def test_removing_the_device_that_showed_code1_voids_it(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server)
    user, phone = enrolled(idp, email=EMAIL)
    verify_email(idp, user)
    tablet = RestoringDevice(idp.url)
    assert restored(tablet, user, activated(idp, phone), smtp_server).status_code == 201
    # "If this was not you, remove it": the old device deletes the new one.
    nonce, assertion = phone.action("delete_device", {"device": tablet.device_id})
    deleted = phone.call(
        "POST",
        f"/devices/{tablet.device_id}/delete",
        json={"nonce": nonce, "assertion": assertion},
    )
    assert deleted.status_code == 200, deleted.text
    assert phone.status()["active"] is False
    smtp_server.wait_for(EMAIL, subject="Your restoration code is no longer valid")
    (event,) = idp.events("restoration_code_revoked")
    assert event.detail["device"] == tablet.device_id
    # Activated again, on the remaining device.
    assert CODE1.match(activated(idp, phone))
