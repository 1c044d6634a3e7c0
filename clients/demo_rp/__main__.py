"""``python -m clients.demo_rp``: run FinanceCloud on DEMO_RP_HOST:DEMO_RP_PORT
(localhost:5001). Discovery is fetched on the first request, so the IdP may
start later."""

from __future__ import annotations

import os
from typing import Any

from . import create_app


def main() -> None:
    host = os.environ.get("DEMO_RP_HOST") or "localhost"
    port = int(os.environ.get("DEMO_RP_PORT") or "5001")
    config: dict[str, Any] = {}
    if not os.environ.get("DEMO_RP_BASE_URL"):
        config["BASE_URL"] = f"http://{host}:{port}"
    app = create_app(config)
    settings = app.extensions["demo_rp"].settings
    print(
        f"FinanceCloud (demo relying party) on {settings.base_url}, "
        f"signing in with {settings.issuer} as {settings.client_id}",
        flush=True,
    )
    app.run(host=host, port=port, threaded=True)


if __name__ == "__main__":
    main()
