"""The admin pages' blueprint and what every area's pages share."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    g,
    request,
)

from ...accounts.models import User
from ...store.kinds import Kind
from ..paging import page_bounds
from ..service import Actor

bp = Blueprint("admin", __name__, url_prefix="/admin")

# "This login session used the admin pages recently", per login session,
# living as long as the idle timeout.
ACTIVE_SESSIONS = Kind("admin-active", int, ttl=lambda s: s.admin_idle_timeout)
PAGE_SIZE = 25
MAX_SEARCH = 200
HOUR = 3600


def admin_user() -> User:
    """The administrator of this request (set by the guard, idp.admin.views.access)."""
    user: User = g.admin_user
    return user


def actor() -> Actor:
    return Actor.admin(admin_user())


def paging() -> tuple[int, int]:
    return page_bounds(request.args.get("offset"), request.args.get("limit", PAGE_SIZE))


def search_text() -> str:
    return request.args.get("q", "")[:MAX_SEARCH].strip()


def no_store(page: str) -> Response:
    """A page that shows a secret: not kept in any cache or history."""
    response = Response(page, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
