"""The admin pages of the signing keys."""

from __future__ import annotations

from flask import (
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ...oidc.fields import SIGNING_ALGS
from .. import service
from .common import (
    actor,
    bp,
)


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
    rotated = service.rotate_signing_keys(actor(), algs)
    flash(
        _("New signing keys: %(kids)s.", kids=", ".join(f"{k.alg} {k.kid}" for k in rotated)),
        "success",
    )
    return redirect(url_for("admin.keys"))


@bp.post("/keys/retire-expired")
def retire_expired_keys() -> ResponseReturnValue:
    count = service.retire_expired_keys(actor())
    flash(_("Keys retired: %(count)s.", count=count), "success")
    return redirect(url_for("admin.keys"))
