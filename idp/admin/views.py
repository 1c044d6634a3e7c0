"""The admin pages (``/admin``): client registrations and initial access
tokens, users and their devices, signing keys, and the audit log.

Administrators are users with ``is_admin``. They sign in at /login like
anyone (a signed-out browser is sent there and back), and the admin area
then needs a session with MFA (a device approval or a passkey, ``acr`` MFA)
that is in use: after ``admin_idle_timeout`` seconds without an admin page
request, the next one asks for the confirmation again. The confirmation is
the account page's step-up (a login transaction of the account itself, the
waiting page or the passkey page of idp.approvals / idp.passkeys) with a
return path under /admin.

Every change goes through ``idp.admin.service`` (as ``Actor.admin``), the
same operations the admin JSON API and the ``idp`` CLI use, and every form
carries the CSRF token (Flask-WTF's CSRFProtect covers the whole app).
Secrets (a new client secret, an initial access token) are shown once, on a
page that is not stored (Cache-Control: no-store).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from ..accounts.models import User
from ..auth import transactions
from ..auth.amr import ACR_MFA, acr_satisfies
from ..auth.factors import second_factors
from ..auth.models import LoginSession
from ..auth.sessions import current_login_session
from ..auth.step_up import withdraw_earlier_step_ups
from ..devices.messages import ENROLLED_VIA_LABELS, KIND_LABELS
from ..extensions import utcnow
from ..oidc import registration
from ..oidc.clients import ClientError
from ..oidc.fields import SIGNING_ALGS
from ..oidc.models import Client
from ..state import idp
from . import client_form, service
from .service import Actor, AdminError

bp = Blueprint("admin", __name__, url_prefix="/admin")

# Redis: "this login session used the admin pages recently", one key per
# session with the idle timeout as its TTL.
ACTIVE_NAMESPACE = "admin-active"
PAGE_SIZE = 25
MAX_SEARCH = 200
MAX_FIELD = 4000
HOUR = 3600


# --- who may use the admin pages ------------------------------------------------------


def _admin() -> User:
    user: User = g.admin_user
    return user


def _actor() -> Actor:
    return Actor.admin(_admin())


def _confirming_ways(user_id: int, now: datetime) -> dict[str, bool]:
    """How this administrator can confirm it is them: a device that can answer
    an approval now (not one waiting after a restoration), or a passkey."""
    factors = second_factors(user_id, now)
    return {"app": factors.app, "passkey": factors.passkey}


def _in_use(login: LoginSession, now: datetime) -> bool:
    """An MFA session that confirmed or used the admin pages within the idle
    timeout (NIST SP 800-63B: reauthentication after a period of inactivity)."""
    if not acr_satisfies(login.acr, ACR_MFA):
        return False
    idle = idp().settings.admin_idle_timeout
    if (now - login.auth_time).total_seconds() <= idle:
        return True
    return idp().store.exists(ACTIVE_NAMESPACE, login.id)


def _here() -> str:
    """Where to come back to after signing in or confirming: this page, or
    for a form's action (a POST-only URL) the page it belongs to, the path
    one segment up (``/admin/users/SUB/lock`` -> ``/admin/users/SUB``)."""
    home = url_for("admin.home")
    path = request.path
    rule = request.url_rule
    if rule is not None and "GET" not in (rule.methods or ()):
        path = path.rsplit("/", 1)[0]
    adapter = current_app.url_map.bind_to_environ(request.environ)
    while path.startswith("/admin/"):
        try:
            endpoint, args = adapter.match(path, method="GET")
        except (NotFound, MethodNotAllowed, RequestRedirect):
            path = path.rsplit("/", 1)[0]
            continue
        if not endpoint.startswith("admin."):
            break
        return transactions.return_path(url_for(endpoint, **args)) or home
    return home


@bp.before_request
def _guard() -> ResponseReturnValue | None:
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login", next=_here()))
    if not login.user.is_admin:
        return render_template("admin/forbidden.html"), 403
    g.admin_user = login.user
    g.admin_login = login
    if request.endpoint == "admin.confirm":
        return None
    now = utcnow()
    if not _in_use(login, now):
        ways = _confirming_ways(login.user_id, now)
        page = render_template(
            "admin/confirm.html",
            step_up=ways if any(ways.values()) else None,
            step_up_endpoint="admin.confirm",
            next_path=_here(),
            again=acr_satisfies(login.acr, ACR_MFA),
            minutes=max(1, idp().settings.admin_idle_timeout // 60),
        )
        return page, 200 if request.method == "GET" else 403
    idp().store.put(ACTIVE_NAMESPACE, login.id, 1, ttl=idp().settings.admin_idle_timeout)
    return None


@bp.post("/confirm")
def confirm() -> ResponseReturnValue:
    """Start "Confirm in your app" or "Confirm with your passkey" for the admin pages."""
    login: LoginSession = g.admin_login
    target = transactions.return_path(request.form.get("next"))
    if target is None or not target.startswith("/admin"):
        target = url_for("admin.home")
    now = utcnow()
    method = str(request.form.get("method"))
    if _in_use(login, now) or not _confirming_ways(login.user_id, now).get(method):
        # Confirmed already (another tab), or nothing to confirm with.
        return redirect(target)
    withdraw_earlier_step_ups()
    tx = transactions.begin_for_account(login.user_id, next_path=target)
    return redirect(transactions.second_factor_page(tx, passkey=method != "app"))


# --- helpers for the pages ------------------------------------------------------------


def _paging() -> tuple[int, int]:
    return service.page_bounds(request.args.get("offset"), request.args.get("limit", PAGE_SIZE))


def _search() -> str:
    return request.args.get("q", "")[:MAX_SEARCH].strip()


def _no_store(page: str) -> Response:
    """A page that shows a secret: not kept in any cache or history."""
    response = Response(page, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.get("/")
def home() -> ResponseReturnValue:
    return render_template("admin/home.html", idle_minutes=idp().settings.admin_idle_timeout // 60)


# --- clients --------------------------------------------------------------------------


@bp.get("/clients")
def clients() -> ResponseReturnValue:
    q = _search()
    offset, limit = _paging()
    page = service.search_clients(q, offset=offset, limit=limit)
    return render_template("admin/clients.html", page=page, q=q, args={"q": q, "limit": limit})


def _client_form(
    *,
    client: Client | None,
    values: Mapping[str, Any],
    errors: Mapping[str, str] | None = None,
) -> str:
    return render_template(
        "admin/client_form.html",
        client=client,
        values=values,
        errors=errors or {},
        sections=client_form.sections(),
    )


def _secret_page(client: Client, secret: str, *, created: bool) -> Response:
    return _no_store(
        render_template("admin/client_secret.html", client=client, secret=secret, created=created)
    )


@bp.route("/clients/new", methods=["GET", "POST"])
def new_client() -> ResponseReturnValue:
    if request.method == "GET":
        return _client_form(client=None, values=client_form.current(None))
    values = client_form.submitted(request.form)
    fields, errors = client_form.read(values)
    client_id = values["client_id"].strip()
    if client_id:
        fields["client_id"] = client_id
    if errors:
        return _client_form(client=None, values=values, errors=errors), 400
    try:
        client, secret = service.create_client(_actor(), **fields)
    except ClientError as exc:
        return _client_form(client=None, values=values, errors=client_form.field_error(exc)), 400
    if secret is not None:
        return _secret_page(client, secret, created=True)
    flash(_("The client was registered."), "success")
    return redirect(url_for("admin.client", client_id=client.client_id))


@bp.get("/clients/<path:client_id>")
def client(client_id: str) -> ResponseReturnValue:
    found = service.get_client(client_id)
    return render_template(
        "admin/client.html", client=found, details=service.describe_client(found)
    )


@bp.route("/clients/<path:client_id>/edit", methods=["GET", "POST"])
def edit_client(client_id: str) -> ResponseReturnValue:
    found = service.get_client(client_id)
    if request.method == "GET":
        return _client_form(client=found, values=client_form.current(found))
    values = client_form.submitted(request.form)
    values["client_id"] = found.client_id
    fields, errors = client_form.read(values)
    if errors:
        return _client_form(client=found, values=values, errors=errors), 400
    try:
        secret = service.update_client(_actor(), found, **fields)
    except ClientError as exc:
        # The service rolled back: the registration is as it was.
        found = service.get_client(client_id)
        return _client_form(client=found, values=values, errors=client_form.field_error(exc)), 400
    if secret is not None:
        return _secret_page(found, secret, created=False)
    flash(_("The changes were saved."), "success")
    return redirect(url_for("admin.client", client_id=found.client_id))


@bp.post("/clients/<path:client_id>/disable")
def disable_client(client_id: str) -> ResponseReturnValue:
    found = service.get_client(client_id)
    service.set_client_disabled(_actor(), found, disabled=True)
    flash(_("The client is disabled: no sign-ins or tokens through it."), "success")
    return redirect(url_for("admin.client", client_id=found.client_id))


@bp.post("/clients/<path:client_id>/enable")
def enable_client(client_id: str) -> ResponseReturnValue:
    found = service.get_client(client_id)
    service.set_client_disabled(_actor(), found, disabled=False)
    flash(_("The client is enabled again."), "success")
    return redirect(url_for("admin.client", client_id=found.client_id))


@bp.route("/clients/<path:client_id>/delete", methods=["GET", "POST"])
def delete_client(client_id: str) -> ResponseReturnValue:
    found = service.get_client(client_id)
    if request.method == "GET":
        return render_template("admin/client_delete.html", client=found)
    name = found.name
    service.delete_client(_actor(), found)
    flash(_("The client %(name)s was deleted.", name=name), "success")
    return redirect(url_for("admin.clients"))


@bp.route("/clients/<path:client_id>/secret", methods=["GET", "POST"])
def rotate_secret(client_id: str) -> ResponseReturnValue:
    found = service.get_client(client_id)
    if request.method == "GET":
        return render_template("admin/client_rotate.html", client=found)
    try:
        new = service.rotate_client_secret(_actor(), found)
    except ClientError:
        flash(_("This client signs in without a secret: there is none to replace."), "error")
        return redirect(url_for("admin.client", client_id=found.client_id))
    return _secret_page(found, new.secret, created=False)


# --- initial access tokens (RFC 7591 §3) ----------------------------------------------


def _token_page(
    values: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None
) -> str:
    return render_template(
        "admin/registration_tokens.html",
        tokens=registration.initial_tokens(),
        values=values or {"uses": "1", "hours": "24"},
        errors=errors or {},
        open_registration=idp().settings.client_registration_open,
        max_hours=registration.MAX_INITIAL_TOKEN_LIFETIME // HOUR,
        max_uses=registration.MAX_INITIAL_TOKEN_USES,
    )


@bp.route("/registration-tokens", methods=["GET", "POST"])
def registration_tokens() -> ResponseReturnValue:
    if request.method == "GET":
        return _token_page()
    values = {name: request.form.get(name, "").strip()[:20] for name in ("uses", "hours")}
    errors: dict[str, str] = {}
    max_hours = registration.MAX_INITIAL_TOKEN_LIFETIME // HOUR
    max_uses = registration.MAX_INITIAL_TOKEN_USES
    uses = _int_in(values["uses"], 1, max_uses)
    hours = _int_in(values["hours"], 1, max_hours)
    if uses is None:
        errors["uses"] = _("Please enter a number from 1 to %(max)s.", max=max_uses)
    if hours is None:
        errors["hours"] = _("Please enter a number from 1 to %(max)s.", max=max_hours)
    if uses is None or hours is None:
        return _token_page(values, errors), 400
    try:
        issued = registration.issue_initial_token(
            actor=_actor().label, expires_in=hours * HOUR, uses=uses
        )
    except registration.InitialTokenError as exc:
        return _token_page(values, {"hours": str(exc)}), 400
    register_url = idp().settings.issuer + url_for("oidc_api.register")
    return _no_store(
        render_template("admin/registration_token.html", issued=issued, register_url=register_url)
    )


def _int_in(raw: str, low: int, high: int) -> int | None:
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if low <= value <= high else None


@bp.post("/registration-tokens/<int:token_id>/revoke")
def revoke_registration_token(token_id: int) -> ResponseReturnValue:
    if registration.revoke_initial_token(actor=_actor().label, token_id=token_id):
        flash(_("The initial access token was revoked."), "success")
    else:
        flash(_("There is no such token (any more)."), "error")
    return redirect(url_for("admin.registration_tokens"))


# --- users and their devices ------------------------------------------------------------


@bp.get("/users")
def users() -> ResponseReturnValue:
    q = _search()
    offset, limit = _paging()
    page = service.search_users(q, offset=offset, limit=limit)
    return render_template("admin/users.html", page=page, q=q, args={"q": q, "limit": limit})


def _user_page(user: User, *, error: str | None = None) -> str:
    overview = service.user_overview(user)
    return render_template(
        "admin/user.html",
        overview=overview,
        user=user,
        events=service.describe_events(overview.recent_events),
        now=utcnow(),
        kinds=KIND_LABELS,
        enrolled_via=ENROLLED_VIA_LABELS,
        is_self=user.id == _admin().id,
        error=error,
    )


def _refused(user: User, message: str) -> ResponseReturnValue:
    """An operation an administrator may not do to themselves: the user's
    page again, with the reason."""
    return _user_page(user, error=message), 409


@bp.get("/users/<sub>")
def user(sub: str) -> ResponseReturnValue:
    return _user_page(service.get_user(sub))


def _back_to(user: User) -> ResponseReturnValue:
    return redirect(url_for("admin.user", sub=user.sub))


@bp.post("/users/<sub>/lock")
def lock_user(sub: str) -> ResponseReturnValue:
    found = service.get_user(sub)
    try:
        service.lock_user(_actor(), found)
    except service.NotOnYourself:
        return _refused(found, _("You cannot lock your own account."))
    flash(_("The account is locked; its sessions and refresh tokens have ended."), "success")
    return _back_to(found)


@bp.post("/users/<sub>/unlock")
def unlock_user(sub: str) -> ResponseReturnValue:
    found = service.get_user(sub)
    service.unlock_user(_actor(), found)
    flash(_("The account is unlocked."), "success")
    return _back_to(found)


@bp.post("/users/<sub>/force-password-reset")
def force_password_reset(sub: str) -> ResponseReturnValue:
    found = service.get_user(sub)
    service.force_password_reset(_actor(), found)
    flash(_("At the next sign-in with a password, a new password must be chosen first."), "success")
    return _back_to(found)


@bp.post("/users/<sub>/admin")
def set_admin(sub: str) -> ResponseReturnValue:
    found = service.get_user(sub)
    grant = request.form.get("action") == "grant"
    try:
        service.set_admin(_actor(), found, admin=grant)
    except service.NotOnYourself:
        return _refused(
            found,
            _("You cannot take away your own administrator role; another administrator can."),
        )
    if grant:
        flash(_("The user is now an administrator."), "success")
    else:
        flash(_("The user is no longer an administrator."), "success")
    return _back_to(found)


@bp.route("/users/<sub>/devices/<device_id>/remove", methods=["GET", "POST"])
def remove_device(sub: str, device_id: str) -> ResponseReturnValue:
    found = service.get_user(sub)
    device = next((d for d in service.user_devices(found) if d.id == device_id), None)
    if device is None:
        raise service.NotFound()
    if request.method == "GET":
        return render_template(
            "admin/device_remove.html",
            user=found,
            device=device,
            kind=KIND_LABELS.get(device.kind, device.kind),
        )
    remaining = service.remove_device(_actor(), found, device_id, ip=request.remote_addr)
    flash(
        _(
            "The device %(name)s was removed; %(count)s device(s) left.",
            name=device.name,
            count=remaining,
        ),
        "success",
    )
    return _back_to(found)


# --- signing keys -------------------------------------------------------------------------


@bp.get("/keys")
def keys() -> ResponseReturnValue:
    return render_template(
        "admin/keys.html", keys=service.signing_keys(), vapid=service.vapid_public_key()
    )


@bp.route("/keys/rotate", methods=["GET", "POST"])
def rotate_keys() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("admin/keys_rotate.html", algs=SIGNING_ALGS, error=None)
    algs = [alg for alg in SIGNING_ALGS if alg in request.form.getlist("algs")]
    if not algs:
        error = _("Please choose at least one algorithm.")
        return render_template("admin/keys_rotate.html", algs=SIGNING_ALGS, error=error), 400
    rotated = service.rotate_signing_keys(_actor(), algs)
    flash(
        _("New signing keys: %(kids)s.", kids=", ".join(f"{k.alg} {k.kid}" for k in rotated)),
        "success",
    )
    return redirect(url_for("admin.keys"))


@bp.post("/keys/retire-expired")
def retire_expired_keys() -> ResponseReturnValue:
    count = service.retire_expired_keys(_actor())
    flash(_("Keys retired: %(count)s.", count=count), "success")
    return redirect(url_for("admin.keys"))


# --- the audit log ----------------------------------------------------------------------


def _moment(raw: str) -> datetime:
    """A time from the filter form (``datetime-local``: UTC here), or ISO 8601."""
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _audit_filters() -> tuple[service.AuditQuery | None, dict[str, str], dict[str, str]]:
    """The query from the filter form (None: nothing can match), the values
    as given, and what was wrong with them."""
    values = {
        name: request.args.get(name, "").strip()[:MAX_SEARCH]
        for name in ("user", "client", "type", "since", "until")
    }
    errors: dict[str, str] = {}
    user_id = None
    if values["user"]:
        try:
            user_id = service.find_user(values["user"]).id
        except service.NotFound:
            errors["user"] = _("There is no such user.")
        except AdminError:
            errors["user"] = _("Several accounts have this e-mail address; use the access number.")
    moments: dict[str, datetime | None] = {"since": None, "until": None}
    for name in moments:
        if values[name]:
            try:
                moments[name] = _moment(values[name])
            except ValueError:
                errors[name] = _("Please enter a date and time, e.g. 2025-01-31T14:30.")
    if errors:
        return None, values, errors
    query = service.AuditQuery(
        user_id=user_id,
        client_id=values["client"] or None,
        types=(values["type"],) if values["type"] else (),
        since=moments["since"],
        until=moments["until"],
    )
    return query, values, errors


@bp.get("/audit")
def audit() -> ResponseReturnValue:
    query, values, errors = _audit_filters()
    offset, limit = _paging()
    if query is None:
        page: service.Page[Any] = service.Page([], 0, offset, limit)
    else:
        page = service.audit_events(query, offset=offset, limit=limit)
    filters: dict[str, Any] = {k: v for k, v in values.items() if v}
    return render_template(
        "admin/audit.html",
        page=page,
        events=service.describe_events(page.items),
        values=values,
        errors=errors,
        types=service.audit_event_types(),
        args={**filters, "limit": limit},
        export_url=url_for("admin.audit_export", **filters),
    ), 400 if errors else 200


@bp.get("/audit/export")
def audit_export() -> ResponseReturnValue:
    """The filtered log as JSON lines (one event per line, oldest first)."""
    query, _values, _errors = _audit_filters()

    def lines() -> Iterator[str]:
        if query is None:
            return
        for event in service.export_audit(query):
            yield json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"

    return Response(
        stream_with_context(lines()),
        mimetype="application/x-ndjson",
        headers={
            "Content-Disposition": 'attachment; filename="audit-events.jsonl"',
            "Cache-Control": "no-store",
        },
    )
