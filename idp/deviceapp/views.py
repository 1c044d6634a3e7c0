"""The browser device app (PWA) under ``/app/``.

- ``/app/``: the page (the app is ``static/app.js``); ``/app`` redirects here.
  ``?code=...`` prefills a binding code (path B); so does ``#code=...``, which
  never reaches the server.
- ``/app/manifest.webmanifest``: the web app manifest (scope and start URL ``/app/``).
- ``/app/sw.js``: the service worker, served from ``/app/`` so that its scope
  is ``/app/``: it shows a notification for each Web Push and opens the approval.
- ``/app/messages.json``: the service worker's notification texts (sign-in
  requests and notices), in the language of the browser (or the language switch).
- ``/app/icon.svg``, ``/app/icon-192.png``, ``/app/icon-512.png``.

Nothing here authenticates: the page holds its device token itself and talks
to the device API like any other device.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import segno
from flask import Blueprint, Response, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound

from ..devices import API_PREFIX as DEVICE_API
from ..devices import APP_PATH, app_url
from ..devices.service import ACTION_NONCE_LIFETIME
from ..state import idp
from .icons import ICON_SVG, PNG_SIZES, shipped_png
from .messages import APP_MESSAGES, NOTICE_MESSAGES, NOTIFICATION_MESSAGES, PAGE_TEXTS, localised

bp = Blueprint("device_app", __name__, url_prefix="/app")

SCOPE = APP_PATH
THEME_COLOUR = "#0b5fff"  # style.css --accent
BACKGROUND_COLOUR = "#f4f6f9"  # style.css --bg
# Seconds between two looks at the pending approvals while the page is open.
POLL_SECONDS = 4
# What a binding code looks like (idp.devices.enrolment: 12 of 32 letters and
# digits in groups of four); anything else is not put into the page.
_BINDING_CODE = re.compile(r"[A-Za-z0-9-]{1,32}")
SERVICE_WORKER = Path(__file__).resolve().parent.parent / "static" / "sw.js"


def qr_data_uri(text: str) -> str:
    """A QR code of ``text`` as an SVG ``data:`` URI (for an ``<img>``)."""
    return str(segno.make(text, error="m").svg_data_uri(scale=5, border=2))


@bp.app_context_processor
def _app_url() -> dict[str, Any]:
    """``device_app_url`` and ``device_app_qr()`` for every template: the pages
    that ask for a device offer this app (a link and a QR code for a phone)."""
    url = app_url(idp().settings.issuer)
    return {"device_app_url": url, "device_app_qr": lambda: qr_data_uri(url)}


@bp.get("/")
def page() -> ResponseReturnValue:
    code = request.args.get("code", "")
    config: dict[str, Any] = {
        "api": DEVICE_API,
        "scope": SCOPE,
        "serviceWorker": url_for("device_app.service_worker"),
        "rpId": idp().settings.rp_id,
        "vapidPublicKey": idp().push.public_key(),
        "lang": str(get_locale()),
        "pollSeconds": POLL_SECONDS,
        "actionLifetime": ACTION_NONCE_LIFETIME,
        "messages": localised(APP_MESSAGES),
    }
    return render_template(
        "device_app.html",
        config=config,
        t=localised(PAGE_TEXTS),
        binding_code=code if _BINDING_CODE.fullmatch(code) else "",
        code_digits=idp().settings.approval_code_digits,
    )


@bp.get("/manifest.webmanifest")
def manifest() -> ResponseReturnValue:
    icons = [{"src": url_for("device_app.icon_svg"), "sizes": "any", "type": "image/svg+xml"}]
    icons += [
        {
            "src": url_for("device_app.icon", size=size),
            "sizes": f"{size}x{size}",
            "type": "image/png",
        }
        for size in PNG_SIZES
    ]
    body = {
        # The manifest's id and start_url must lie inside its scope (W3C
        # Web Application Manifest, "processing the scope member"): /app/.
        "id": SCOPE,
        "name": "Freigabe",
        "short_name": "Freigabe",
        "description": _("Confirm sign-ins to your account on this device."),
        "lang": str(get_locale()),
        "start_url": SCOPE,
        "scope": SCOPE,
        "display": "standalone",
        "background_color": BACKGROUND_COLOUR,
        "theme_color": THEME_COLOUR,
        "icons": icons,
    }
    response = jsonify(body)
    response.mimetype = "application/manifest+json"
    response.headers["Cache-Control"] = "no-cache"
    response.vary.add("Accept-Language")
    return response


@bp.get("/sw.js")
def service_worker() -> ResponseReturnValue:
    # Served from /app/, so its scope may be /app/ (Service Workers §
    # "max scope"); no-cache: browsers check for a new version every time.
    response = Response(SERVICE_WORKER.read_bytes(), mimetype="application/javascript")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/messages.json")
def messages() -> ResponseReturnValue:
    response = jsonify(
        lang=str(get_locale()),
        notification=localised(NOTIFICATION_MESSAGES),
        notice=localised(NOTICE_MESSAGES),
        url=SCOPE,
    )
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Language"] = str(get_locale())
    response.vary.update(("Accept-Language", "Cookie"))
    return response


@bp.get("/icon.svg")
def icon_svg() -> ResponseReturnValue:
    response = Response(ICON_SVG, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@bp.get("/icon-<int:size>.png")
def icon(size: int) -> ResponseReturnValue:
    if size not in PNG_SIZES:
        raise NotFound()
    response = Response(shipped_png(size), mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
