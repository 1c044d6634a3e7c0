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

from . import access, apps, audit, clients, keys, sessions, users
from .common import bp

__all__ = ["access", "apps", "audit", "bp", "clients", "keys", "sessions", "users"]
