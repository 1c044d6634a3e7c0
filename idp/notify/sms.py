"""Text messages: one small interface, an HTTP gateway sender, and an outbox.

Gateways differ, so the request is a template from configuration:
``sms_gateway_url`` with ``{to}`` and ``{text}`` (URL-encoded into it), sent
with ``sms_gateway_method``; for POST an optional ``sms_gateway_body``, sent as
JSON when it is a JSON document (placeholders inside its strings) and as a
form otherwise (``to={to}&text={text}``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import quote, quote_plus, urlsplit

import requests

from .errors import DeliveryError

log = logging.getLogger(__name__)


class SmsSender(Protocol):
    def send(self, to: str, text: str) -> None:
        """Hand the message on, or raise DeliveryError."""
        ...


def _fill(template: str, to: str, text: str, escape: Callable[[str], str]) -> str:
    # Plain replacement, not str.format: gateway templates may hold other braces.
    return template.replace("{to}", escape(to)).replace("{text}", escape(text))


def _json_escape(value: str) -> str:
    return json.dumps(value)[1:-1]


def is_json_template(body: str) -> bool:
    if not body.lstrip().startswith(("{", "[")):
        return False
    try:
        json.loads(_fill(body, "", "", str))
    except ValueError:
        return False
    return True


class HttpSmsGateway:
    def __init__(
        self,
        *,
        url: str,
        method: Literal["GET", "POST"] = "POST",
        body: str = "",
        token: str = "",
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.method = method
        self.body = body
        self._token = token
        self._timeout = timeout
        self._json = bool(body) and is_json_template(body)

    def send(self, to: str, text: str) -> None:
        url = _fill(self.url, to, text, lambda value: quote(value, safe=""))
        headers = {"Accept": "application/json, text/plain, */*"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        data: bytes | None = None
        if self.method == "POST" and self.body:
            if self._json:
                data = _fill(self.body, to, text, _json_escape).encode()
                headers["Content-Type"] = "application/json"
            else:
                data = _fill(self.body, to, text, lambda value: quote_plus(value)).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
        host = urlsplit(self.url).hostname
        try:
            response = requests.request(
                self.method,
                url,
                data=data,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            log.warning("sms to %s via %s failed: %s", to, host, type(exc).__name__)
            raise DeliveryError(f"SMS gateway unreachable ({type(exc).__name__})") from exc
        if not 200 <= response.status_code < 300:
            log.warning("sms to %s via %s: gateway answered %s", to, host, response.status_code)
            raise DeliveryError(f"SMS gateway answered {response.status_code}")
        log.info("sms to %s via %s: %s", to, host, response.status_code)


class OutboxSmsSender:
    """Appends one JSON line per message to ``<outbox>/sms.log`` (local development)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, to: str, text: str) -> None:
        line = json.dumps(
            {"at": datetime.now(UTC).isoformat(timespec="seconds"), "to": to, "text": text},
            ensure_ascii=False,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        # The text may hold a code: it goes to the file, not to the log.
        log.info("sms to %s", to)
