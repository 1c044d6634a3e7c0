"""Renaming a device: ``POST /device/v1/devices/{id}/rename`` (docs/device-api.md
"The device itself"). Any active device of the user, this one too, on the
bearer token alone (a name grants nothing); never another user's device."""

from __future__ import annotations

from typing import Any

from .devices import SoftDevice
from .test_approvals import enrolled
from .test_device_delete import binding_device, delete, device_row


def rename(device: SoftDevice, target_id: str, name: Any) -> Any:
    return device.call("POST", f"/devices/{target_id}/rename", json={"name": name})


def test_a_device_renames_itself_and_another_of_the_users_devices(idp: Any) -> None:
    user, phone = enrolled(idp)
    tablet = binding_device(idp, user, device_name="Tablet", kind="ipad")
    assert phone.device_id and tablet.device_id

    own = rename(phone, phone.device_id, "  Erika's   phone ")
    assert own.status_code == 200, own.text
    body = own.json()["device"]
    assert body["id"] == phone.device_id and body["this_device"] is True
    assert body["name"] == "Erika's phone"  # white space collapsed
    other = rename(phone, tablet.device_id, "x" * 100)  # the longest name
    assert other.status_code == 200, other.text
    assert other.json()["device"]["this_device"] is False
    listed = tablet.call("GET", "/devices").json()["devices"]
    assert {d["id"]: d["name"] for d in listed} == {
        phone.device_id: "Erika's phone",
        tablet.device_id: "x" * 100,
    }

    first, second = idp.events("device_renamed")
    assert first.user_id == user.id and first.actor == f"device:{phone.device_id}"
    assert first.detail == {
        "device": phone.device_id,
        "old_name": "Test phone",
        "name": "Erika's phone",
    }
    assert second.detail["device"] == tablet.device_id and second.detail["old_name"] == "Tablet"


def test_another_users_or_a_deleted_device_is_not_found(idp: Any) -> None:
    me, mine = enrolled(idp, email="erika@example.org")
    _, theirs = enrolled(idp, email="max@example.org")
    assert mine.device_id and theirs.device_id

    for target in (theirs.device_id, "no-such-device"):
        refused = rename(mine, target, "Mine now")
        assert refused.status_code == 404 and refused.json()["error"] == "device_not_found"
    assert device_row(idp, theirs.device_id).name == "Test phone"

    tablet = binding_device(idp, me)
    assert tablet.device_id is not None
    assert delete(mine, tablet.device_id).status_code == 200
    gone = rename(mine, tablet.device_id, "Back again")
    assert gone.status_code == 404 and gone.json()["error"] == "device_not_found"
    assert not idp.events("device_renamed")


def test_a_name_must_have_1_to_100_characters(idp: Any) -> None:
    _, phone = enrolled(idp)
    assert phone.device_id is not None
    for name in ("", "   ", "x" * 101, 42, None):
        refused = rename(phone, phone.device_id, name)
        assert refused.status_code == 400, (name, refused.text)
        assert refused.json()["error"] == "invalid_request"
    no_body = phone.call("POST", f"/devices/{phone.device_id}/rename", data="name=x")
    assert no_body.status_code == 400 and no_body.json()["error"] == "invalid_request"
    assert device_row(idp, phone.device_id).name == "Test phone"
    assert not idp.events("device_renamed")


def test_a_revoked_or_unknown_token_cannot_rename(idp: Any) -> None:
    user, phone = enrolled(idp)
    tablet = binding_device(idp, user, device_name="Tablet")
    assert phone.device_id and tablet.device_id
    assert delete(tablet, phone.device_id).status_code == 200

    revoked = rename(phone, tablet.device_id, "Taken over")
    assert revoked.status_code == 401 and revoked.json()["error"] == "device_revoked"
    stranger = SoftDevice(idp.url, token="not-a-device-token")
    unknown = rename(stranger, tablet.device_id, "Taken over")
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_token"
    assert device_row(idp, tablet.device_id).name == "Tablet"
    assert not idp.events("device_renamed")


def test_a_name_another_of_the_users_devices_has_is_refused(idp: Any) -> None:
    """Issue 14, 6b: two active devices of one user never get one name by a
    rename (the list and "delete" could not tell them apart); the device's own
    name, another user's and a deleted device's are free."""
    user, phone = enrolled(idp)
    tablet = binding_device(idp, user, device_name="Tablet", kind="ipad")
    assert phone.device_id and tablet.device_id

    for taken in ("Tablet", "  tablet "):
        refused = rename(phone, phone.device_id, taken)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "name_taken"
        assert "already has this name" in refused.json()["error_description"]
    german = phone.call(
        "POST",
        f"/devices/{phone.device_id}/rename",
        json={"name": "TABLET"},
        headers={"Accept-Language": "de"},
    )
    assert "hat schon diesen Namen" in german.json()["error_description"]
    assert device_row(idp, phone.device_id).name == "Test phone"
    assert not idp.events("device_renamed")

    assert rename(phone, tablet.device_id, "TABLET").status_code == 200  # its own name
    _, theirs = enrolled(idp, email="max@example.org")
    assert theirs.device_id is not None
    assert rename(theirs, theirs.device_id, "Tablet").status_code == 200  # another user's
    assert delete(phone, tablet.device_id).status_code == 200
    assert rename(phone, phone.device_id, "Tablet").status_code == 200  # a deleted one's


def test_a_device_enrolled_with_a_name_in_use_is_numbered(idp: Any) -> None:
    """Issue 14, 6b: a new device whose name another active device of the
    user has gets a number (the enrolment answers with it), so the list,
    the notices and "delete" can tell them apart; a deleted device's name
    is free again."""
    user, phone = enrolled(idp)  # "Test phone"
    second = binding_device(idp, user, device_name="TEST PHONE")
    assert second.device_id is not None
    assert device_row(idp, second.device_id).name == "TEST PHONE (2)"
    third = binding_device(idp, user)  # "Test phone" again
    assert third.device_id is not None
    assert device_row(idp, third.device_id).name == "Test phone (3)"
    status = third.call("GET", "/status").json()
    assert status["device"]["name"] == "Test phone (3)"  # what the device shows
    listed = phone.call("GET", "/devices").json()["devices"]
    assert sorted(d["name"] for d in listed) == ["TEST PHONE (2)", "Test phone", "Test phone (3)"]

    long_name = "x" * 100
    fourth = binding_device(idp, user, device_name=long_name)
    fifth = binding_device(idp, user, device_name=long_name)
    assert fourth.device_id and fifth.device_id
    assert device_row(idp, fifth.device_id).name == "x" * 96 + " (2)"

    assert delete(phone, second.device_id).status_code == 200
    again = binding_device(idp, user, device_name="Test Phone (2)")
    assert again.device_id is not None
    assert device_row(idp, again.device_id).name == "Test Phone (2)"


# --- two requests at the same moment -------------------------------------------------


def _store_device_meanwhile(idp: Any, user_id: int, name: str) -> Any:
    """Another request's device named ``name``, committed on a connection of
    its own: the moment two enrolments or renames both passed the check of
    the name and have not yet written it."""
    from sqlalchemy.orm import Session

    from idp.devices.models import Device
    from idp.extensions import db

    with Session(db.engine) as other:
        other.add(
            Device(
                id="other-request", user_id=user_id, name=name, kind="android",
                enrolled_via="binding_code", credential_id=b"other request",
                public_key=b"key", token_digest="0" * 64,
            )
        )  # fmt: skip
        other.commit()


def test_a_name_another_enrolment_stores_meanwhile_gets_the_next_number(idp: Any) -> None:
    """Two devices enrolled as "Tablet" at once: both find the name free, the
    database's unique index lets the other one store it, and this one takes
    the next number instead of failing (its enrolment is used up by then)."""
    from sqlalchemy import event
    from sqlalchemy.orm import ORMExecuteState, Session

    user, _phone = enrolled(idp)
    stored: list[str] = []

    def other_enrolment(state: ORMExecuteState) -> None:
        table = getattr(state.statement, "table", None)
        if stored or not state.is_insert or getattr(table, "name", None) != "devices":
            return
        stored.append("other-request")
        _store_device_meanwhile(idp, user.id, "TABLET")

    event.listen(Session, "do_orm_execute", other_enrolment)
    try:
        tablet = binding_device(idp, user, device_name="Tablet", kind="ipad")
    finally:
        event.remove(Session, "do_orm_execute", other_enrolment)
    assert stored, "no device was inserted"
    assert tablet.device_id is not None
    assert device_row(idp, tablet.device_id).name == "Tablet (2)"
    assert device_row(idp, "other-request").name == "TABLET"
    assert tablet.call("GET", "/status").json()["device"]["name"] == "Tablet (2)"


def test_a_name_another_request_stores_meanwhile_is_refused_to_a_rename(idp: Any) -> None:
    """A rename to "Tablet" while another device of the user is enrolled as
    "tablet": both passed the check, the unique index refuses the second
    write, and the rename answers name_taken as the check would."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from idp.devices.models import Device

    user, phone = enrolled(idp)
    assert phone.device_id is not None
    stored: list[str] = []

    def other_request(session: Session, *_: Any) -> None:
        if stored or not any(isinstance(row, Device) for row in session.dirty):
            return
        stored.append("other-request")
        _store_device_meanwhile(idp, user.id, "tablet")

    event.listen(Session, "before_flush", other_request)
    try:
        refused = rename(phone, phone.device_id, "Tablet")
    finally:
        event.remove(Session, "before_flush", other_request)
    assert stored, "no rename was flushed"
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "name_taken", refused.json()
    assert device_row(idp, phone.device_id).name == "Test phone"
    assert not idp.events("device_renamed")
    # The device still works, and renames to a free name.
    assert rename(phone, phone.device_id, "Phone").status_code == 200
