"""The admin pages' blueprint and what every area's pages share."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    g,
    request,
)

from ...accounts.models import User
from .. import service
from ..service import Actor

bp = Blueprint("admin", __name__, url_prefix="/admin")

# Redis: "this login session used the admin pages recently", one key per
# session with the idle timeout as its TTL.
ACTIVE_NAMESPACE = "admin-active"
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
    return service.page_bounds(request.args.get("offset"), request.args.get("limit", PAGE_SIZE))


def search_text() -> str:
    return request.args.get("q", "")[:MAX_SEARCH].strip()


def no_store(page: str) -> Response:
    """A page that shows a secret: not kept in any cache or history."""
    response = Response(page, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
