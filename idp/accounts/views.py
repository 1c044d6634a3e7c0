"""The account page of a signed-in user."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from ..auth.sessions import current_login_session, end_login_session

bp = Blueprint("account", __name__)


@bp.get("/")
def index() -> ResponseReturnValue:
    return redirect(url_for("account.home"))


@bp.get("/account")
def home() -> ResponseReturnValue:
    login = current_login_session()
    if login is None:
        return redirect(url_for("auth.login"))
    return render_template("account.html", login=login, user=login.user)


@bp.post("/account/logout")
def logout() -> ResponseReturnValue:
    end_login_session(reason="user")
    return render_template("logged_out.html", client=None)
