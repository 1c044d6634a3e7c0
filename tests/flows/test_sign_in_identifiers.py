"""What a person types to sign in: a user name or an e-mail address, found in
any case (lower case as Python folds it, on every database), by an index, and
a user name never given twice in two cases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError

from .helpers import Browser, RelyingParty
from .test_protocol import PASSWORD


def signs_in(idp: Any, identifier: str) -> bool:
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    url, _req = rp.authorize_url()
    page = browser.sign_in(browser.go(url), identifier, PASSWORD)
    return page.status_code == 302 and page.headers["Location"].startswith(rp.redirect_uri)


def test_a_user_name_or_address_signs_in_in_any_case(idp: Any) -> None:
    idp.add_user(username="ÜberMut", email="Ärger@Example.org")
    # SQL's lower() folds only ASCII on SQLite: "ÜBERMUT" was not "übermut" there.
    for identifier in ("ÜberMut", "übermut", "ÜBERMUT", "ärger@example.org", "ÄRGER@EXAMPLE.ORG"):
        assert signs_in(idp, identifier), identifier
    assert not signs_in(idp, "ubermut")


def test_a_sign_in_finds_the_user_by_an_index(idp: Any) -> None:
    """Neither a user name nor an address is looked up by reading every row."""
    from idp.accounts.service import find_user
    from idp.extensions import db

    idp.add_user(username="erika", email="erika@example.org")
    statements: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM users" in statement:
            statements.append((statement, parameters))

    with idp.app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", keep)
        try:
            assert find_user("ERIKA").user is not None
            assert find_user("Erika@Example.org").user is not None
        finally:
            event.remove(engine, "before_cursor_execute", keep)
        assert len(statements) == 2
        with engine.connect() as connection:
            for statement, parameters in statements:
                if engine.dialect.name == "sqlite":
                    plan = connection.exec_driver_sql(
                        f"EXPLAIN QUERY PLAN {statement}", parameters
                    ).all()
                    details = " ".join(str(row[-1]) for row in plan)
                    assert "SCAN" not in details and "USING INDEX" in details, details
                else:
                    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")  # this transaction
                    plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
                    details = " ".join(row[0] for row in plan)
                    assert "Seq Scan" not in details and "Index" in details, details


def test_a_user_name_another_request_takes_meanwhile_is_refused(idp: Any) -> None:
    """Two accounts created as "Bob" and "bob" at once: both find the name
    free, the database's unique index refuses the second insert, and the
    creation says the name is taken as the check would have."""
    from sqlalchemy.orm import Session

    from idp.accounts.models import User
    from idp.accounts.service import AccountError

    taken: list[int] = []
    began: list[bool] = []

    def other_request(session: Session, *_: Any) -> None:
        if began or not any(isinstance(row, User) for row in session.new):
            return
        began.append(True)
        taken.append(idp.add_user(username="bob").id)

    event.listen(Session, "before_flush", other_request)
    try:
        with pytest.raises(AccountError, match="is taken"):
            idp.add_user(username="Bob")
    finally:
        event.remove(Session, "before_flush", other_request)
    assert taken, "no user was flushed"
    with idp.app.app_context():
        from idp.extensions import db

        names = db.session.scalars(select(User.username).where(User.username.is_not(None)))
        assert list(names) == ["bob"]
        # And the database itself refuses the name in another case.
        with pytest.raises(IntegrityError):
            db.session.execute(
                text(
                    "INSERT INTO users (sub, access_number, username, username_key,"
                    " email_verified, phone_number_verified, status, is_admin,"
                    " password_reset_required, created_at, updated_at) VALUES ('s-x', '12',"
                    " 'BOB', 'bob', false, false, 'active', false, false,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        db.session.rollback()
