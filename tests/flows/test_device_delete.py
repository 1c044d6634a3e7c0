"""Deleting a device: a signed request from one of the user's devices (DESIGN §4).

``POST /device/v1/devices/{id}/delete`` carries a single-use nonce from
``POST /device/v1/actions/challenge`` and a WebAuthn assertion with user
verification over ``action_challenge(purpose="delete_device", payload={"device":
ID, "nonce": NONCE})``. The deleted device is revoked at once: its token
answers ``device_revoked``, its push subscription is dropped, and approvals
that only it could answer are cancelled, which wakes the waiting browser.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import requests

from clients.device.authenticator import get_assertion
from clients.device.keystore import KeyStore
from idp.webauthn import action_challenge

from .devices import SoftDevice
from .test_approvals import enrolled, match_code, mfa_client, to_waiting_page
from .test_device_cli import PIN, Cli, new_user
from .test_device_cli import enrol as cli_enrol


def binding_device(idp: Any, user: Any, **body: Any) -> SoftDevice:
    """A second device of ``user``, enrolled with a binding code (path B)."""
    from idp.accounts.models import User
    from idp.devices.enrolment import new_binding_code
    from idp.extensions import db

    with idp.app.app_context():
        account = db.session.get(User, user.id)
        assert account is not None
        code = new_binding_code(account)
    device = SoftDevice(idp.url)
    started = device.start(binding_code=code, **body)
    assert started.status_code == 201, started.text
    assert device.complete(started.json()).status_code == 201
    return device


def nonce_for(device: SoftDevice, purpose: str = "delete_device") -> str:
    response = device.call("POST", "/actions/challenge", json={"purpose": purpose})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["purpose"] == purpose and body["expires_in"] > 0
    return str(body["nonce"])


def delete_assertion(
    device: SoftDevice, target_id: str, nonce: str, *, user_verified: bool = True
) -> dict[str, Any]:
    assert device.key is not None
    challenge = action_challenge(
        purpose="delete_device", payload={"device": target_id, "nonce": nonce}
    )
    return get_assertion(
        key=device.key,
        rp_id=device.rp_id,
        origin=device.origin,
        challenge=challenge,
        user_verified=user_verified,
    )


def send_delete(
    device: SoftDevice, target_id: str, nonce: str, assertion: dict[str, Any]
) -> requests.Response:
    return device.call(
        "POST", f"/devices/{target_id}/delete", json={"nonce": nonce, "assertion": assertion}
    )


def delete(device: SoftDevice, target_id: str, **kwargs: Any) -> requests.Response:
    nonce = nonce_for(device)
    return send_delete(
        device, target_id, nonce, delete_assertion(device, target_id, nonce, **kwargs)
    )


def device_row(idp: Any, device_id: str) -> Any:
    from idp.devices.models import Device
    from idp.extensions import db

    with idp.app.app_context():
        row = db.session.get(Device, device_id)
        assert row is not None
        db.session.expunge(row)
        return row


def listen_to_waiting_page(
    browser: Any, page: requests.Response, idp: Any
) -> tuple[threading.Thread, list[str], threading.Event]:
    """What the waiting page's EventSource would receive, in a thread."""
    found = re.search(r'data-events="([^"]+)"', page.text)
    assert found, page.text
    url = idp.url + found.group(1).replace("&amp;", "&")
    received: list[str] = []
    opened = threading.Event()

    def listen() -> None:
        with browser.session.get(url, stream=True, timeout=30) as response:
            opened.set()
            for line in response.iter_lines(decode_unicode=True):
                if line.startswith("data:"):
                    received.append(json.loads(line[5:])["status"])
                    if received[-1] != "pending":
                        return

    listener = threading.Thread(target=listen)
    listener.start()
    return listener, received, opened


def test_a_device_deletes_another_which_is_revoked_at_once(idp: Any, push_service: Any) -> None:
    user, phone = enrolled(idp)
    subscription = push_service.new_subscription()
    assert phone.call("PUT", "/push-subscription", json=subscription).status_code == 204
    # A sign-in waits for the phone, the only device when it was made.
    browser, page, _ = to_waiting_page(idp, mfa_client(idp), user)
    approval = phone.approvals()[0]
    tablet = binding_device(idp, user, kind="ipad", device_name="Tablet")
    assert phone.device_id and tablet.device_id
    # The tablet came later: that approval is not aimed at it.
    assert tablet.approvals() == []
    listener, received, opened = listen_to_waiting_page(browser, page, idp)
    assert opened.wait(10)

    deleted = delete(tablet, phone.device_id)
    assert deleted.status_code == 200, deleted.text
    body = deleted.json()
    assert body["status"] == "deleted" and body["remaining_devices"] == 1
    assert body["device"]["id"] == phone.device_id and body["device"]["this_device"] is False

    # The phone's token is dead: every call says device_revoked.
    status = phone.call("GET", "/status")
    assert status.status_code == 401 and status.json()["error"] == "device_revoked"
    # It can no longer answer the sign-in it was asked about.
    answer = phone.answer(approval["id"], "approve", match_code(page), assertion={"id": "x"})
    assert answer.status_code == 401 and answer.json()["error"] == "device_revoked"
    # That sign-in was cancelled, and the waiting page was told at once.
    listener.join(15)
    assert received[-1:] == ["cancelled"]
    row = device_row(idp, phone.device_id)
    assert row.revoked_at is not None and row.push_subscription is None
    listed = tablet.call("GET", "/devices").json()["devices"]
    assert [(d["id"], d["this_device"]) for d in listed] == [(tablet.device_id, True)]
    # The acting device's last use is the signed deletion.
    assert listed[0]["last_used_at"] is not None

    (event,) = idp.events("device_deleted")
    assert event.user_id == user.id and event.actor == f"device:{tablet.device_id}"
    assert event.detail["device"] == phone.device_id
    assert event.detail["actor_device"] == tablet.device_id
    cancelled = idp.events("approval_cancelled")
    assert [e.detail["approval"] for e in cancelled] == [approval["id"]]
    assert cancelled[0].detail["reason"] == "device_deleted"


def test_an_approval_another_device_can_answer_stays_pending(idp: Any) -> None:
    user, phone = enrolled(idp)
    tablet = binding_device(idp, user)
    _, page, _ = to_waiting_page(idp, mfa_client(idp), user)
    approval = tablet.approvals()[0]
    assert [a["id"] for a in phone.approvals()] == [approval["id"]]
    assert phone.device_id is not None

    assert delete(tablet, phone.device_id).status_code == 200
    # The tablet was asked too, so the sign-in still waits for it.
    assert not idp.events("approval_cancelled")
    answered = tablet.answer(approval["id"], "approve", match_code(page))
    assert answered.status_code == 200 and answered.json() == {"status": "approved"}


def test_another_users_device_is_not_found_and_nothing_changes(idp: Any) -> None:
    me, mine = enrolled(idp, email="erika@example.org")
    _, theirs = enrolled(idp, email="max@example.org")
    assert theirs.device_id is not None and mine.device_id is not None

    refused = delete(mine, theirs.device_id)
    assert refused.status_code == 404 and refused.json()["error"] == "device_not_found"
    unknown = delete(mine, "no-such-device")
    assert unknown.status_code == 404 and unknown.json()["error"] == "device_not_found"
    assert theirs.call("GET", "/status").status_code == 200
    assert device_row(idp, theirs.device_id).revoked_at is None
    assert not idp.events("device_deleted")

    # A deleted device is gone for good: deleting it again finds nothing.
    tablet = binding_device(idp, me)
    assert delete(tablet, mine.device_id).status_code == 200
    again = delete(tablet, mine.device_id)
    assert again.status_code == 404 and again.json()["error"] == "device_not_found"


def test_a_delete_assertion_cannot_be_replayed_or_reused(idp: Any) -> None:
    user, phone = enrolled(idp)
    tablet = binding_device(idp, user)
    laptop = binding_device(idp, user, kind="browser")
    assert phone.device_id and tablet.device_id and laptop.device_id

    nonce = nonce_for(tablet)
    assertion = delete_assertion(tablet, phone.device_id, nonce)
    # Signed for the phone, sent for the laptop: the challenge differs.
    wrong_target = send_delete(tablet, laptop.device_id, nonce, assertion)
    assert wrong_target.status_code == 400 and wrong_target.json()["error"] == "webauthn_failed"
    # The nonce was spent by that attempt, even though it failed.
    spent = send_delete(tablet, phone.device_id, nonce, assertion)
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_nonce"

    nonce = nonce_for(tablet)
    assertion = delete_assertion(tablet, phone.device_id, nonce)
    assert send_delete(tablet, phone.device_id, nonce, assertion).status_code == 200
    # The same request again: the nonce is gone.
    replayed = send_delete(tablet, phone.device_id, nonce, assertion)
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_nonce"
    # The same assertion with a fresh nonce: not what was signed.
    fresh = send_delete(tablet, laptop.device_id, nonce_for(tablet), assertion)
    assert fresh.status_code == 400 and fresh.json()["error"] == "webauthn_failed"
    # A nonce is the device's own: another device cannot use it.
    borrowed = nonce_for(tablet)
    stolen = send_delete(laptop, tablet.device_id, borrowed,
                         delete_assertion(laptop, tablet.device_id, borrowed))  # fmt: skip
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_nonce"
    # Nonces exist for known actions only.
    other = tablet.call("POST", "/actions/challenge", json={"purpose": "approve"})
    assert other.status_code == 400 and other.json()["error"] == "invalid_request"
    # Without a nonce or an assertion, nothing happens.
    bare = tablet.call("POST", f"/devices/{laptop.device_id}/delete", json={})
    assert bare.status_code == 400 and bare.json()["error"] == "invalid_nonce"
    unsigned = tablet.call(
        "POST", f"/devices/{laptop.device_id}/delete", json={"nonce": nonce_for(tablet)}
    )
    assert unsigned.status_code == 400 and unsigned.json()["error"] == "webauthn_failed"
    assert laptop.call("GET", "/status").status_code == 200
    assert len(idp.events("device_deleted")) == 1


def test_a_delete_without_user_verification_is_refused(idp: Any) -> None:
    user, phone = enrolled(idp)
    tablet = binding_device(idp, user)
    assert phone.device_id is not None

    refused = delete(tablet, phone.device_id, user_verified=False)
    assert refused.status_code == 400 and refused.json()["error"] == "webauthn_failed"
    assert phone.call("GET", "/status").status_code == 200
    assert not idp.events("device_deleted")


def test_a_device_deletes_itself(idp: Any) -> None:
    user, phone = enrolled(idp)
    browser, page, _ = to_waiting_page(idp, mfa_client(idp), user)
    assert phone.device_id is not None

    deleted = delete(phone, phone.device_id)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["device"]["this_device"] is True
    assert deleted.json()["remaining_devices"] == 0
    gone = phone.call("GET", "/approvals")
    assert gone.status_code == 401 and gone.json()["error"] == "device_revoked"
    # No device is left to answer the waiting sign-in.
    status = re.search(r'data-status-url="([^"]+)"', page.text)
    assert status
    shown = browser.session.get(idp.url + status.group(1).replace("&amp;", "&"), timeout=10)
    assert shown.json() == {"status": "cancelled"}


def test_a_revoked_device_cannot_ask_for_a_nonce(idp: Any) -> None:
    user, phone = enrolled(idp)
    tablet = binding_device(idp, user)
    assert phone.device_id is not None
    assert delete(tablet, phone.device_id).status_code == 200
    refused = phone.call("POST", "/actions/challenge", json={"purpose": "delete_device"})
    assert refused.status_code == 401 and refused.json()["error"] == "device_revoked"


def test_a_device_revoked_after_signing_cannot_delete(idp: Any) -> None:
    user, phone = enrolled(idp)
    tablet = binding_device(idp, user)
    assert phone.device_id and tablet.device_id
    # The phone has its nonce and its signed request ready when the tablet deletes it.
    nonce = nonce_for(phone)
    assertion = delete_assertion(phone, tablet.device_id, nonce)
    assert delete(tablet, phone.device_id).status_code == 200

    refused = send_delete(phone, tablet.device_id, nonce, assertion)
    assert refused.status_code == 401 and refused.json()["error"] == "device_revoked"
    assert device_row(idp, tablet.device_id).revoked_at is None
    assert [e.detail["device"] for e in idp.events("device_deleted")] == [phone.device_id]


# --- the CLI device ----------------------------------------------------------------------


def test_the_cli_deletes_a_device_and_the_deleted_one_wipes_its_store(
    idp: Any, tmp_path: Path
) -> None:
    from idp.accounts.models import User
    from idp.devices.enrolment import new_binding_code
    from idp.extensions import db

    laptop = Cli(store=tmp_path / "laptop" / "device.json")
    user = new_user(idp)
    cli_enrol(idp, laptop, user, name="Erika's laptop")
    with idp.app.app_context():
        account = db.session.get(User, user.id)
        assert account is not None
        code = new_binding_code(account)
    tablet = Cli(store=tmp_path / "tablet" / "device.json", pin="2580-tablet")
    tablet.ok("enrol", "--server", idp.url, "--binding-code", code, "--name", "Erika's tablet")
    laptop_id = KeyStore.unlock(laptop.store, PIN)["device"]["id"]
    tablet_id = KeyStore.unlock(tablet.store, "2580-tablet")["device"]["id"]

    unknown = tablet.run("delete", "no-such-device", "--yes")
    assert unknown.returncode == 1 and "no such device" in unknown.stderr
    # Without --yes the answer is asked for (stdin here); anything but yes keeps it.
    kept = tablet.run("delete", laptop_id, input="no\n")
    assert kept.returncode == 1 and "Nothing was deleted" in kept.stderr
    assert laptop.ok("status")

    done = tablet.ok("delete", laptop_id, "--yes")
    assert "Erika's laptop" in done.stderr and "was deleted" in done.stderr
    assert "last device" not in done.stderr
    # The laptop learns it at its next call and wipes its key store.
    revoked = laptop.run("status")
    assert revoked.returncode == 1
    assert "removed from your account" in revoked.stderr and "wiped" in revoked.stderr
    assert not laptop.store.exists()

    # The tablet is the last one now: deleting it warns, and un-enrols it.
    last = tablet.run("delete", tablet_id, input="yes\n")
    assert last.returncode == 0, last.stderr
    assert "last device" in last.stderr and "wiped" in last.stderr
    assert not tablet.store.exists()
    events = idp.events("device_deleted")
    assert [e.detail["device"] for e in events] == [laptop_id, tablet_id]
