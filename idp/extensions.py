"""Extension objects, bound to an app in create_app()."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response
from flask_babel import Babel
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import ColumnElement, DateTime, MetaData, TypeDecorator, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, ORMExecuteState, Session, SessionTransaction

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


db = SQLAlchemy(model_class=Base)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def init_migrations(app: Flask) -> None:
    """Flask-Migrate on ``app``, for what runs or shows migrations (``idp db``,
    ``idp serve``'s upgrade before it starts, the demo). Imported only then:
    it brings alembic, mako and pygments, 12 MiB in every process that
    imports them, and the servers never need them."""
    if "migrate" in app.extensions:
        return
    from flask_migrate import Migrate

    Migrate(app, db, directory=str(MIGRATIONS))


# The bind of the detached sessions (create_app configures it: the same
# database as the default bind, a pool of its own).
DETACHED = "detached"


def detached_session(*, expire_on_commit: bool = True) -> Session:
    """A session outside the request's unit of work (what it reads is kept
    beyond the request, what it writes commits on its own), on a pool of its
    own: a request holding one of the main pool's connections never waits
    for another of them. With one pool, requests that held every connection
    while they waited for a loader (the signing keys are loaded by one thread
    while the others wait) left the loader no connection to load with."""
    return Session(db.engines[DETACHED], expire_on_commit=expire_on_commit)


def dispose_pools(*, close: bool = True) -> None:
    """Let go of the app's pooled connections, both pools (in an app
    context); ``close=False`` in a forked process, whose inherited
    connections are its parent's to close."""
    for engine in db.engines.values():
        engine.dispose(close=close)


babel = Babel()
csrf = CSRFProtect()


def upsert(
    model: type[Base],
    values: Mapping[str, Any],
    *,
    key: Sequence[str],
    update: Mapping[str, Any],
) -> None:
    """INSERT the row, or, if one with the same ``key`` (a unique constraint)
    exists, UPDATE it with ``update``: one statement, in the caller's
    transaction. Two requests writing one row at the same moment both
    succeed (the second waits for the first, then updates), instead of one
    failing on the unique constraint."""
    statement: Any = _insert(model).values(**values)
    statement = statement.on_conflict_do_update(index_elements=list(key), set_=dict(update))
    db.session.execute(statement)


def insert_ignore(
    model: type[Base],
    values: Mapping[str, Any],
    *,
    key: Sequence[str],
    where: ColumnElement[bool] | None = None,
) -> bool:
    """INSERT the row unless one with the same ``key`` exists (among the rows
    matching ``where``, for a partial unique index); True if it was inserted
    (one statement, in the caller's transaction)."""
    statement: Any = _insert(model).values(**values)
    statement = statement.on_conflict_do_nothing(index_elements=list(key), index_where=where)
    # RETURNING, not the row count: an ORM insert on psycopg reports -1.
    statement = statement.returning(*model.__mapper__.primary_key)
    return db.session.execute(statement).first() is not None


def _insert(model: type[Base]) -> Any:
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"upserts on {dialect}")


# --- the unit of work -----------------------------------------------------------
# One transaction per request or command (DESIGN §7): services add to the
# session and never commit; the request commits at its end (commit_request),
# a command when it has run (idp.cli). What must happen only once the change
# is durable (a mail, a push, a signal whose receivers tell the user) waits
# in after_commit.

# Session.info key: what to do once the current transaction has committed.
_AFTER_COMMIT = "idp.after_commit"
# Session.info key: the current transaction has written or locked rows.
_HOLDS = "idp.holds"


def after_commit(callback: Callable[[], object]) -> None:
    """Run ``callback`` once the unit of work has committed (``commit``),
    and never if it rolls back: side effects about a change (a mail, a push,
    a notice) never go out for a change that did not happen. A callback that
    fails is logged; the change it was about stands."""
    db.session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def commit() -> None:
    """End the unit of work: commit it, then run what waited for it (each
    callback may read the database; what it writes is its own business)."""
    if not db.session.registry.has():
        return  # the database was not touched (a client-credentials token)
    callbacks = db.session.info.pop(_AFTER_COMMIT, [])
    db.session.commit()
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("a side effect after the commit failed")


def rollback() -> None:
    db.session.rollback()


def give_connection_back() -> bool:
    """Before a long wait that needs no database (a password hash waiting for
    the hashing threads), end the unit of work's transaction if it has only
    read so far, so that its connection goes back to the pool for other
    requests meanwhile (a burst of logins otherwise held every connection
    while it waited, and the other requests waited for one). What was read is
    loaded again when next used. Nothing is done (False) once the unit of
    work has written, flushed or locked anything, or waits for its commit."""
    if not db.session.registry.has():
        return True
    sql_session = db.session()
    if (
        sql_session.new
        or sql_session.dirty
        or sql_session.deleted
        or sql_session.info.get(_HOLDS)
        or sql_session.info.get(_AFTER_COMMIT)
    ):
        return False
    sql_session.commit()
    return True


def init_unit_of_work(app: Flask) -> None:
    """A request's changes are committed when it ends with an answer below
    500 (a success, a redirect, or a deliberate refusal with its audit
    events and counters), and rolled back when the server failed (an
    outage, a bug): a failed request leaves durable state as it found it."""

    @app.after_request
    def _end_of_request(response: Response) -> Response:
        if response.status_code < 500:
            commit()
        else:
            rollback()
        return response


@event.listens_for(db.session, "after_flush")
def _flushed(sql_session: Session, _flush_context: Any) -> None:
    sql_session.info[_HOLDS] = True


@event.listens_for(db.session, "do_orm_execute")
def _executing(state: ORMExecuteState) -> None:
    # Anything but a plain SELECT (a DML or text statement, SELECT ... FOR
    # UPDATE) may have written or locked rows.
    if not state.is_select or getattr(state.statement, "_for_update_arg", None) is not None:
        state.session.info[_HOLDS] = True


@event.listens_for(db.session, "after_transaction_end")
def _ended(sql_session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        sql_session.info.pop(_HOLDS, None)


@event.listens_for(db.session, "after_rollback")
def _forget_after_commit(sql_session: Session) -> None:
    if not sql_session.in_nested_transaction():
        sql_session.info.pop(_AFTER_COMMIT, None)
