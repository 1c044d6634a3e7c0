"""The purge (idp.housekeeping, ``idp purge``, and ``idp serve`` every
``purge_interval``): rows that served nothing for ``purge_after`` go, nothing
alive or recent does, and a real sign-in's refresh token still works after it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from .helpers import Browser, RelyingParty
from .test_protocol import login_through

DAY = timedelta(days=1)


def add_rows(idp: Any, *rows: Any) -> None:
    from idp.extensions import db

    with idp.app.app_context():
        db.session.add_all(rows)
        db.session.commit()


def ids(idp: Any, model: Any) -> set[Any]:
    from idp.extensions import db

    with idp.app.app_context():
        return set(db.session.scalars(select(model.id)))


def session_row(
    sid: str, user_id: int, now: datetime, *, expires: timedelta, ended: timedelta | None = None
) -> Any:
    from idp.auth.models import LoginSession

    return LoginSession(
        id=sid, secret_digest=f"digest-{sid}", user_id=user_id, auth_time=now - 40 * DAY,
        amr=["pwd"], acr="pwd", created_at=now - 40 * DAY, expires_at=now + expires,
        ended_at=None if ended is None else now + ended,
    )  # fmt: skip


def family_row(fid: str, user_id: int, client_id: str, last_used: datetime) -> Any:
    from idp.oidc.models import TokenFamily

    return TokenFamily(
        id=fid, client_id=client_id, user_id=user_id, created_at=last_used, last_used_at=last_used
    )


def token_row(
    digest: str, family_id: str, user_id: int, client_id: str, expires_at: datetime
) -> Any:
    from idp.oidc.models import RefreshToken

    return RefreshToken(
        digest=digest, family_id=family_id, client_id=client_id, user_id=user_id,
        scope="openid", auth_time=expires_at - 40 * DAY, issued_at=expires_at - 30 * DAY,
        expires_at=expires_at,
    )  # fmt: skip


def purge(idp: Any, **settings: Any) -> Any:
    from idp.housekeeping import purge

    with idp.app.app_context():
        state = idp.app.extensions["idp"]
        return purge(state.settings.model_copy(update=settings), actor="cli")


def test_what_served_nothing_for_purge_after_goes_and_the_rest_stays(idp: Any) -> None:
    from idp.auth.models import LoginSession, SessionClient
    from idp.extensions import utcnow
    from idp.oidc.models import InitialAccessToken, RefreshToken, TokenFamily

    user = idp.add_user()
    now = utcnow()
    add_rows(
        idp,
        session_row("live", user.id, now, expires=DAY),
        session_row("ended-long-ago", user.id, now, expires=DAY, ended=-31 * DAY),
        session_row("ended-lately", user.id, now, expires=DAY, ended=-29 * DAY),
        session_row("expired-long-ago", user.id, now, expires=-31 * DAY),
        session_row("expired-lately", user.id, now, expires=-DAY),
        SessionClient(session_id="ended-long-ago", client_id="shop", sid="ended-long-ago"),
        # Families of "shop": an old one without tokens (a newer one exists),
        # an old one whose refresh token lives, and the newest, itself old.
        family_row("old", user.id, "shop", now - 50 * DAY),
        family_row("old-with-token", user.id, "shop", now - 45 * DAY),
        family_row("newest-of-shop", user.id, "shop", now - 40 * DAY),
        # Of "bank": one old and one whose last access token may still live.
        family_row("old-of-bank", user.id, "bank", now - 50 * DAY),
        family_row("recent-of-bank", user.id, "bank", now - 30 * DAY - DAY // 2),
    )
    add_rows(
        idp,
        token_row("expired-long-ago", "old-with-token", user.id, "shop", now - 31 * DAY),
        token_row("expired-lately", "old-with-token", user.id, "shop", now - 29 * DAY),
        token_row("live", "old-with-token", user.id, "shop", now + DAY),
    )

    add_rows(
        idp,
        InitialAccessToken(digest="expired", uses=1, uses_left=1, expires_at=now - 31 * DAY),
        InitialAccessToken(digest="used-up", uses=1, uses_left=0, expires_at=now + DAY),
    )

    purged = purge(idp)

    with idp.app.app_context():
        from idp.extensions import db

        initial = set(db.session.scalars(select(InitialAccessToken.digest)))
    assert initial == {"used-up"}  # the administration lists it until it expired
    assert ids(idp, LoginSession) == {"live", "ended-lately", "expired-lately"}
    with idp.app.app_context():
        from idp.extensions import db

        assert db.session.scalar(select(func.count(SessionClient.id))) == 0  # with its session
        tokens = set(db.session.scalars(select(RefreshToken.digest)))
    assert tokens == {"expired-lately", "live"}
    assert ids(idp, TokenFamily) == {
        "old-with-token", "newest-of-shop", "recent-of-bank",
    }  # fmt: skip
    assert purged.as_dict() == {
        "login_sessions": 2, "refresh_tokens": 1, "token_families": 2,
        "initial_access_tokens": 1, "audit_events": 0,
    }  # fmt: skip
    [event] = idp.events("purged")
    assert event.actor == "cli" and event.detail["deleted"] == purged.as_dict()

    # Nothing left to purge: no rows, no event.
    assert purge(idp).total == 0
    assert len(idp.events("purged")) == 1


def test_audit_events_older_than_the_retention_go_when_one_is_set(idp: Any) -> None:
    from idp.audit import AuditEvent
    from idp.extensions import utcnow

    now = utcnow()
    add_rows(
        idp,
        AuditEvent(type="login", at=now - 400 * DAY, detail={}),
        AuditEvent(type="login", at=now - 300 * DAY, detail={}),
        AuditEvent(type="login", at=now - DAY, detail={}),
    )
    assert purge(idp).audit_events == 0  # 0 days: kept for good
    assert len(idp.events("login")) == 3
    assert purge(idp, audit_retention_days=365).audit_events == 1
    assert [e.at.date() for e in idp.events("login")] == [
        (now - 300 * DAY).date(), (now - DAY).date(),
    ]  # fmt: skip


def test_many_rows_go_a_batch_at_a_time(idp: Any) -> None:
    from idp.extensions import utcnow
    from idp.housekeeping import purge as purge_now
    from idp.oidc.models import RefreshToken

    user = idp.add_user()
    now = utcnow()
    add_rows(idp, family_row("f", user.id, "shop", now))
    add_rows(idp, *(token_row(f"t{n}", "f", user.id, "shop", now - 40 * DAY) for n in range(7)))
    with idp.app.app_context():
        purged = purge_now(idp.app.extensions["idp"].settings, actor="cli", batch=3)
    assert purged.refresh_tokens == 7 and ids(idp, RefreshToken) == set()


def test_a_signed_in_users_tokens_survive_the_purge(idp: Any) -> None:
    client_id, secret = idp.add_client()
    rp = RelyingParty(idp.url, client_id, secret)
    user = idp.add_user()
    params, req = login_through(idp, rp, Browser(idp.url), user)
    tokens = rp.redeem(params["code"], req["verifier"]).json()

    assert purge(idp).total == 0
    refreshed = rp.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text


def test_one_purge_per_interval_across_workers_and_instances(idp: Any) -> None:
    from idp.housekeeping import run_if_due

    with idp.app.app_context():
        assert run_if_due() is not None
        assert run_if_due() is None  # another worker's turn has not come


def test_idp_purge_prints_what_it_deleted(idp: Any) -> None:
    from idp.extensions import utcnow

    user = idp.add_user()
    now = utcnow()
    add_rows(idp, session_row("gone", user.id, now, expires=-40 * DAY))
    runner = idp.app.test_cli_runner()
    result = runner.invoke(args=["purge", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["login_sessions"] == 1
    again = runner.invoke(args=["purge"])
    assert again.exit_code == 0 and "0  login sessions" in again.stdout
