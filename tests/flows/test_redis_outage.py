"""A request that fails because Redis went away changes nothing durable.

A real ``redis-server`` (tests/support/redis_outage.py) is killed the moment
a flow sends a given command, in the middle of the request. The request
answers 503 and leaves the database as it found it: nothing consumed,
nothing revoked, no false security event. Once Redis is back, the client's
retry succeeds. Each flow runs on SQLite and on PostgreSQL, both with the
killable Redis.

Before the writes were ordered (SQL flushed, then the one Redis step, then
the commit), a refresh during an outage committed ``consumed_at`` and the
retry was taken for token theft; a redeemed code was gone; an approval's
answer was half-written; a deleted device stayed deleted though the request
failed. Before a session's token families were revoked in one Redis step (and
a deleted device's after its approvals were looked at), a session ended, or a
device deleted with "sign out everywhere", during an outage took some access
tokens with it though nothing else changed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import missing_service
from tests.support.redis_outage import OutageRedis

from .conftest import PASSWORD, LiveIdp
from .devices import SoftDevice
from .helpers import Browser, RelyingParty, query
from .test_approvals import match_code, mfa_client, proceed, to_waiting_page
from .test_device_delete import binding_device, delete, device_row
from .test_protocol import login_through
from .test_restoration import CODE2_MAIL, EMAIL, RestoringDevice, activated, mail_code, verify_email
from .test_sessions import delete_with, open_sids


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[OutageRedis]:
    if not shutil.which("redis-server"):
        missing_service("redis-server is not installed")
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = OutageRedis(workdir)
    yield server
    server.close()


@pytest.fixture
def idp(idp_factory: Any, outage: OutageRedis, smtp_server: Any) -> LiveIdp:
    live: LiveIdp = idp_factory(
        redis_url=outage.url(),
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_security="none",
    )
    return live


def rows(idp: LiveIdp, model: Any, *conditions: Any) -> int:
    from idp.extensions import db

    with idp.app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model).where(*conditions)))


def refresh_tokens(idp: LiveIdp) -> list[tuple[Any, ...]]:
    from idp.extensions import db
    from idp.oidc.models import RefreshToken

    with idp.app.app_context():
        return [
            (r.digest, r.consumed_at, r.revoked_at)
            for r in db.session.scalars(select(RefreshToken).order_by(RefreshToken.id))
        ]


def test_a_refresh_during_an_outage_consumes_nothing(idp: LiveIdp, outage: OutageRedis) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    params, req = login_through(idp, rp, Browser(idp.url), user)
    tokens = rp.redeem(params["code"], req["verifier"]).json()
    before = refresh_tokens(idp)

    outage.kill_on(b"family-at")  # the moment the new access token is stored
    failed = rp.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert failed.status_code == 503 and outage.killed_at
    assert refresh_tokens(idp) == before

    outage.restart()
    retried = rp.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert retried.status_code == 200, retried.text
    assert not idp.events("refresh_token_reused")
    again = rp.token(grant_type="refresh_token", refresh_token=retried.json()["refresh_token"])
    assert again.status_code == 200, again.text


def test_a_code_redeemed_during_an_outage_can_be_redeemed_again(
    idp: LiveIdp, outage: OutageRedis
) -> None:
    user = idp.add_user()
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    params, req = login_through(idp, rp, Browser(idp.url), user)

    outage.kill_on(b"idp:at:")  # the moment the access token is stored
    failed = rp.redeem(params["code"], req["verifier"])
    assert failed.status_code == 503 and outage.killed_at
    assert refresh_tokens(idp) == []

    outage.restart()
    retried = rp.redeem(params["code"], req["verifier"])
    assert retried.status_code == 200, retried.text
    assert not idp.events("code_replayed")
    bearer = {"Authorization": f"Bearer {retried.json()['access_token']}"}
    assert requests.get(f"{idp.url}/userinfo", headers=bearer, timeout=30).status_code == 200


def test_an_approval_answered_during_an_outage_can_be_answered_again(
    idp: LiveIdp, outage: OutageRedis
) -> None:
    from idp.devices.models import Device

    user = idp.add_user(phone_number="+49 151 1234567")
    device = SoftDevice(idp.url)
    device.enrol(user.access_number, PASSWORD, idp.app.instance_path)
    rp = mfa_client(idp)
    browser, page, req = to_waiting_page(idp, rp, user)
    (approval,) = device.approvals()
    counter = device_row(idp, device.device_id or "").sign_count

    outage.kill_on(b"approval-grant")  # the moment the answer is written
    failed = device.answer(approval["id"], "approve", match_code(page))
    assert failed.status_code == 503 and outage.killed_at
    assert device_row(idp, device.device_id or "").sign_count == counter
    assert not idp.events("approval_approved")

    outage.restart()
    answered = device.answer(approval["id"], "approve", match_code(page))
    assert answered.status_code == 200, answered.text
    done = proceed(browser, page)
    assert done.status_code == 302, done.text
    tokens = rp.redeem(query(done.headers["Location"])["code"], req["verifier"]).json()
    assert "mfa" in rp.validate_id_token(tokens["id_token"], req["nonce"])["amr"]
    assert rows(idp, Device, Device.revoked_at.is_(None)) == 1


def test_a_device_deleted_during_an_outage_stays(idp: LiveIdp, outage: OutageRedis) -> None:
    user = idp.add_user(phone_number="+49 151 1234567")
    phone = SoftDevice(idp.url)
    phone.enrol(user.access_number, PASSWORD, idp.app.instance_path)
    tablet = binding_device(idp, user)
    # A login waits on an approval, so the deletion has approvals to look at.
    to_waiting_page(idp, mfa_client(idp), user)

    outage.kill_on(b"approvals-user")  # cancelling what only the tablet could answer
    failed = delete(phone, tablet.device_id or "")
    assert failed.status_code == 503 and outage.killed_at
    assert device_row(idp, tablet.device_id or "").revoked_at is None
    assert not idp.events("device_deleted")
    outage.restart()
    assert tablet.call("GET", "/approvals").status_code == 200  # still enrolled

    deleted = delete(phone, tablet.device_id or "")
    assert deleted.status_code == 200, deleted.text
    assert tablet.call("GET", "/approvals").json()["error"] == "device_revoked"


def userinfo(idp: LiveIdp, access_token: str) -> int:
    bearer = {"Authorization": f"Bearer {access_token}"}
    return requests.get(f"{idp.url}/userinfo", headers=bearer, timeout=30).status_code


def test_sessions_ended_during_an_outage_stay_as_they_were(
    idp: LiveIdp, outage: OutageRedis
) -> None:
    """Ending a session (and deleting a device with "sign out everywhere it
    confirmed") revokes refresh tokens in SQL and access tokens in Redis: if
    Redis goes away on the way, none of it happens, not the access tokens of
    one token family without the others'."""
    from idp.devices.models import Device
    from idp.oidc.models import TokenFamily

    user = idp.add_user(phone_number="+49 151 1234567")
    phone = SoftDevice(idp.url)
    phone.enrol(user.access_number, PASSWORD, idp.app.instance_path)
    tablet = binding_device(idp, user)
    rp = mfa_client(idp)
    # The phone confirms a sign-in; the same session then signs in a second
    # time (no new confirmation): two token families with one sid.
    browser, page, req = to_waiting_page(idp, rp, user)
    [approval] = phone.approvals()
    assert phone.answer(approval["id"], "approve", match_code(page)).status_code == 200
    first = rp.redeem(query(proceed(browser, page).headers["Location"])["code"], req["verifier"])
    sid = rp.validate_id_token(first.json()["id_token"], req["nonce"])["sid"]
    url, again = rp.authorize_url()
    second = rp.redeem(query(browser.go(url).headers["Location"])["code"], again["verifier"])
    access_tokens = [first.json()["access_token"], second.json()["access_token"]]
    # A login waits on an approval, so the deletion has approvals to look at.
    to_waiting_page(idp, rp, user)
    with idp.app.app_context():
        from idp.extensions import db

        families = list(db.session.scalars(select(TokenFamily.id).order_by(TokenFamily.id)))
    assert len(families) == 2
    before = refresh_tokens(idp)
    sessions = open_sids(idp, user.id)
    assert sid in sessions

    def as_it_was() -> None:
        assert open_sids(idp, user.id) == sessions
        assert refresh_tokens(idp) == before
        assert rows(idp, TokenFamily, TokenFamily.revoked_at.is_not(None)) == 0
        assert rows(idp, Device, Device.revoked_at.is_(None)) == 2
        assert [userinfo(idp, token) for token in access_tokens] == [200, 200]
        assert not idp.events("session_ended") and not idp.events("device_deleted")

    # The tablet ends the session; Redis dies at the second family's access tokens.
    outage.kill_on(f"family-at:{families[1]}".encode())
    failed = tablet.call("POST", f"/sessions/{sid}/end")
    assert failed.status_code == 503 and outage.killed_at
    assert failed.json()["error"] == "temporarily_unavailable"
    outage.restart()
    as_it_was()

    # The tablet deletes the phone as lost (signing out where it confirmed);
    # Redis dies when the approvals aimed at the phone are looked at.
    outage.kill_on(b"approvals-user")
    failed = delete_with(tablet, phone.device_id or "", reason="lost_or_stolen")
    assert failed.status_code == 503 and outage.killed_at
    outage.restart()
    as_it_was()

    deleted = delete_with(tablet, phone.device_id or "", reason="lost_or_stolen")
    assert deleted.status_code == 200 and deleted.json()["signed_out"] is True
    assert open_sids(idp, user.id) == sessions - {sid}
    assert [userinfo(idp, token) for token in access_tokens] == [401, 401]
    assert rows(idp, TokenFamily, TokenFamily.revoked_at.is_(None)) == 0


def test_a_restoration_finished_during_an_outage_is_whole(
    idp: LiveIdp, outage: OutageRedis, smtp_server: Any
) -> None:
    """The new device and code 1's rotation are committed together; telling
    the other devices is best effort once they are."""
    user = idp.add_user(phone_number="+49 151 1234567", email=EMAIL)
    phone = RestoringDevice(idp.url)
    phone.enrol(user.access_number, PASSWORD, idp.app.instance_path)
    verify_email(idp, user)
    code1 = activated(idp, phone)
    tablet = RestoringDevice(idp.url)
    started = tablet.restore(user.access_number, code1, "Tablet")
    assert started.status_code == 201, started.text
    restoration = started.json()["restoration_id"]
    code2 = mail_code(smtp_server.wait_for(EMAIL, subject=CODE2_MAIL), 8)
    verified = tablet.send_code2(restoration, code2)
    assert verified.status_code == 200, verified.text

    outage.kill_on(b"idp:notices:")  # telling the phone about the tablet
    finished = tablet.register(restoration, verified.json()["public_key"])
    assert outage.killed_at
    outage.restart()
    # Either it stands as a whole (the device works, the new code 1 too) ...
    assert finished.status_code == 201, finished.text
    assert tablet.call("GET", "/approvals").status_code == 200
    new_code1 = finished.json()["restoration_code"]
    third = RestoringDevice(idp.url)
    assert third.restore(user.access_number, new_code1, "Third").status_code == 201
    # ... and the old code 1 is void.
    assert RestoringDevice(idp.url).restore(user.access_number, code1).status_code == 400


def test_an_enrolment_completed_during_an_outage_can_be_completed_again(
    idp: LiveIdp, outage: OutageRedis, caplog: pytest.LogCaptureFixture
) -> None:
    from idp.devices.models import Device

    user = idp.add_user(phone_number="+49 151 1234567")
    device = SoftDevice(idp.url)
    started = device.start(identifier=user.access_number, password=PASSWORD)
    assert started.status_code == 201, started.text
    from .devices import last_sms_code

    code = last_sms_code(idp.app.instance_path)

    outage.kill_on(b"GETDEL")  # the moment the enrolment is taken
    failed = device.complete(started.json(), code)
    assert failed.status_code == 503 and outage.killed_at
    assert rows(idp, Device) == 0
    # The operator learns what broke (the message names only the address).
    assert "Redis unavailable: ConnectionError (" in caplog.text

    outage.restart()
    done = device.complete(started.json(), code)
    assert done.status_code == 201, done.text
    assert device.call("GET", "/approvals").status_code == 200


def test_a_client_changed_during_an_outage_stays_as_it_was(
    idp: LiveIdp, outage: OutageRedis
) -> None:
    from .test_admin_api import automation

    api = automation(idp)
    client_id, _secret = idp.add_client(name="Payroll")

    # The client's stamp is set to "pending" as the change commits: Redis
    # goes away right there, after the view has answered.
    outage.kill_on(b"pending")
    failed = api.call("PATCH", f"/clients/{client_id}", json={"client_name": "Payroll 2"})
    assert outage.killed_at
    assert failed.status_code == 503, failed.text
    assert failed.json()["error"] == "temporarily_unavailable"
    assert failed.headers["Cache-Control"] == "no-store"
    assert client_names(idp, client_id) == ["Payroll"]
    assert not idp.events("client_updated")

    outage.restart()
    assert api.ok("PATCH", f"/clients/{client_id}", json={"client_name": "Payroll 2"})
    assert client_names(idp, client_id) == ["Payroll 2"]


def test_a_client_changed_with_the_cli_during_an_outage_stays_as_it_was(
    idp: LiveIdp, outage: OutageRedis
) -> None:
    client_id, _secret = idp.add_client(name="Ledger")
    runner = idp.app.test_cli_runner()

    outage.kill_on(b"pending")
    failed = runner.invoke(args=["clients", "update", client_id, "--name", "Ledger 2"])
    assert outage.killed_at
    # A message, not a traceback; the change is not made.
    assert failed.exit_code == 1, failed.output
    assert "Redis cannot be reached" in failed.output and "nothing was changed" in failed.output
    assert "Traceback" not in failed.output and "updated" not in failed.output
    assert client_names(idp, client_id) == ["Ledger"]
    assert not idp.events("client_updated")

    outage.restart()
    done = runner.invoke(args=["clients", "update", client_id, "--name", "Ledger 2"])
    assert done.exit_code == 0, done.output
    assert client_names(idp, client_id) == ["Ledger 2"]


def client_names(idp: LiveIdp, client_id: str) -> list[str]:
    from idp.extensions import db
    from idp.oidc.models import Client

    with idp.app.app_context():
        return list(db.session.scalars(select(Client.name).where(Client.client_id == client_id)))
