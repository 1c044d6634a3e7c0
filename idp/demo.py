"""``idp demo``: the IdP and the demo relying party on one machine.

Applies the migrations, seeds the demo user and clients (idempotently: a
second run finds them and brings their redirect URIs up to date), then runs
``idp serve`` and ``python -m clients.demo_rp`` as child processes until
Ctrl-C, which stops both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .accounts.service import create_user, find_user
from .app import create_app
from .config import write_demo_settings
from .extensions import commit, init_migrations
from .oidc.clients import create_client, get_client, set_secret
from .state import idp

DEMO_PASSWORD = "Freigabe-Demo-2026"
DEMO_ACCESS_NUMBER = "1000000001"
DEMO_USERNAME = "erika"
DEMO_EMAIL = "erika@example.org"
DEMO_CLIENT_ID = "financecloud"
DEMO_CLIENT_SECRET = "financecloud-demo-secret"
DEMO_PUBLIC_CLIENT_ID = "financeapp"


@dataclass(frozen=True)
class DemoUrls:
    idp: str
    rp: str


def seed(*, rp_base: str) -> None:
    """Create or update the demo user and clients (inside an app context)."""
    if find_user(DEMO_ACCESS_NUMBER).user is None:
        create_user(
            idp().passwords,
            password=DEMO_PASSWORD,
            access_number=DEMO_ACCESS_NUMBER,
            username=DEMO_USERNAME,
            email=DEMO_EMAIL,
            given_name="Erika",
            family_name="Mustermann",
            phone_number="+49 151 23456789",
        )
    # The demo user is also an administrator, so /admin can be tried (after a
    # confirmation in the app, as for any administrator).
    demo_user = find_user(DEMO_ACCESS_NUMBER).user
    if demo_user is not None:
        demo_user.is_admin = True
    uris: dict[str, Any] = {
        "redirect_uris": [f"{rp_base}/callback"],
        "post_logout_redirect_uris": [f"{rp_base}/"],
    }
    # FinanceCloud requires a confirmation on a device (push approval) and is
    # told by back-channel logout when the user signs out of Freigabe;
    # FinanceApp, the public client, takes the password alone.
    for client_id, name, method, require_mfa, backchannel_logout_uri in (
        (DEMO_CLIENT_ID, "FinanceCloud", "client_secret_basic", True,
         f"{rp_base}/backchannel-logout"),
        (DEMO_PUBLIC_CLIENT_ID, "FinanceApp", "none", False, None),
    ):  # fmt: skip
        client = get_client(client_id)
        if client is None:
            client, _ = create_client(
                client_id=client_id,
                name=name,
                token_endpoint_auth_method=method,
                require_mfa=require_mfa,
                backchannel_logout_uri=backchannel_logout_uri,
                **uris,
            )
        else:
            client.redirect_uris = uris["redirect_uris"]
            client.post_logout_redirect_uris = uris["post_logout_redirect_uris"]
            client.backchannel_logout_uri = backchannel_logout_uri
            client.require_mfa = require_mfa
            client.disabled = False
        if method != "none":
            set_secret(client, DEMO_CLIENT_SECRET)
    commit()


def _wait_until_up(url: str, processes: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise SystemExit(f"a demo process exited with status {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up within {timeout:.0f} s")


def banner(urls: DemoUrls, outbox: Path) -> str:
    return f"""
  Freigabe demo is running.

    Identity provider   {urls.idp}
    FinanceCloud (RP)   {urls.rp}

    access number   {DEMO_ACCESS_NUMBER}
    user name       {DEMO_USERNAME}
    e-mail          {DEMO_EMAIL}
    password        {DEMO_PASSWORD}

    clients         {DEMO_CLIENT_ID} (secret {DEMO_CLIENT_SECRET}; requires a confirmation
                    on a device), {DEMO_PUBLIC_CLIENT_ID} (public; password only)

  FinanceCloud asks for a confirmation in the Freigabe app. The demo phone is
  either the browser device app or the device client; set one up once.

  The browser device app: open {urls.idp}/app/ in a new browser tab, enter a device
  name, under "With your access number and password" the access number and
  the password, "Register key", then the confirmation code "sent by SMS" (in
  {outbox / "sms.log"}) and "Complete key registration". Sign-in requests
  appear there while it is open.

  The device client, in a second terminal:

    .venv/bin/idp-device enrol --server {urls.idp} --identifier {DEMO_ACCESS_NUMBER}
        (password above; choose a PIN; the confirmation code is in the same file)
    .venv/bin/idp-device watch

  Then open {urls.rp}, press "Sign in with Freigabe", sign in, and type
  the number the browser shows into the app (or when watch asks for it).

  {DEMO_USERNAME} is also an administrator: {urls.idp}/admin (confirm in the app).

  E-mails (restoration codes, notices about devices) are .eml files in
  {outbox}. idp commands run here use this demo's issuer.

  Ctrl-C stops everything.
"""


def run_demo(*, idp_port: int, rp_port: int) -> None:
    urls = DemoUrls(idp=f"http://localhost:{idp_port}", rp=f"http://localhost:{rp_port}")
    # The issuer follows the demo's port unless IDP_ISSUER says otherwise (an
    # issuer left in demo.toml by an earlier run on another port does not count).
    os.environ.setdefault("IDP_ISSUER", urls.idp)
    from flask_migrate import upgrade  # (this process only prepares; the server imports none)

    app = create_app()
    write_demo_settings(Path(app.instance_path), issuer=app.extensions["idp"].settings.issuer)
    init_migrations(app)
    with app.app_context():
        upgrade()
        seed(rp_base=urls.rp)
        idp().keyring.ensure_keys()
        idp().push.public_key()

    # (The idp command is a Flask CLI, which marks its environment; the demo
    # RP would then refuse app.run().)
    inherited = {k: v for k, v in os.environ.items() if k != "FLASK_RUN_FROM_CLI"}
    rp_env = {
        **inherited,
        "DEMO_RP_ISSUER": app.extensions["idp"].settings.issuer,
        "DEMO_RP_PORT": str(rp_port),
        "DEMO_RP_BASE_URL": urls.rp,
        "DEMO_RP_CLIENT_ID": DEMO_CLIENT_ID,
        "DEMO_RP_CLIENT_SECRET": DEMO_CLIENT_SECRET,
    }
    # Ctrl-C and a service manager's SIGTERM both stop the demo cleanly, even
    # when this process was started with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupted)
    processes = [
        subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "idp", "serve", "--port", str(idp_port), "--no-migrate"]
        ),
        subprocess.Popen([sys.executable, "-m", "clients.demo_rp"], env=rp_env),
    ]
    try:
        _wait_until_up(f"{urls.idp}/.well-known/openid-configuration", processes, 60)
        _wait_until_up(f"{urls.rp}/", processes, 60)
        outbox = Path(app.instance_path) / "outbox"
        print(banner(urls, outbox), flush=True)
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        raise SystemExit("a demo process stopped; shutting down the demo")
    except KeyboardInterrupt:
        print("\nstopping the demo ...", file=sys.stderr, flush=True)
    finally:
        _stop(processes)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
