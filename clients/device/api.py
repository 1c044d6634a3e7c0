"""HTTP client of the device API (``/device/v1``, docs/device-api.md).

One method per endpoint, JSON in and out, a timeout on every request. A
refusal comes out as ``ApiError`` carrying the server's ``error`` code (the
client acts on the code, never on ``error_description``); a network failure
as ``NetworkError``. The Server-Sent Events stream of new approvals is read
by ``DeviceApi.events``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests

API_PREFIX = "/device/v1"
# (connect, read) seconds. Enrolment may wait for the server to hash a
# password and hand an SMS to a gateway, hence the longer read timeout.
TIMEOUT = (10.0, 30.0)
# The event stream sends a comment every 15 s: three missed ones mean it is dead.
EVENTS_TIMEOUT = (10.0, 45.0)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_LINE_END = re.compile(rb"\r\n|\n|\r")
USER_AGENT = "idp-device/0.1 (Freigabe CLI device)"


class ClientError(Exception):
    """Anything that makes a device API call fail."""


class NetworkError(ClientError):
    """The server could not be reached, or did not answer in time."""


class ApiError(ClientError):
    """The server refused the request: ``{"error": CODE, "error_description": ...}``."""

    def __init__(
        self,
        *,
        status: int,
        error: str,
        description: str = "",
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{error} (HTTP {status})")
        self.status = status
        self.error = error
        self.description = description
        self.retry_after = retry_after


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event (HTML Living Standard §9.2.6)."""

    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def normalise_server_url(url: str) -> str:
    """The server's base URL (the issuer) without a trailing slash.

    The device token travels in every request, so the URL must be https,
    except on loopback for local development (the IdP's issuer rule too).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{url!r}: the server URL has no query, fragment or user info")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"{url!r}: the server URL must use https (http only on localhost)")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _retry_after(response: requests.Response) -> int | None:
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else None


def _error_from(response: requests.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        description = body.get("error_description")
        return ApiError(
            status=response.status_code,
            error=body["error"],
            description=description if isinstance(description, str) else "",
            retry_after=_retry_after(response),
        )
    # A proxy's page, or a server that is not a Freigabe IdP.
    return ApiError(
        status=response.status_code,
        error="unexpected_response",
        retry_after=_retry_after(response),
    )


def accept_language(environ: Mapping[str, str] = os.environ) -> str | None:
    """The person's language from the locale environment, as gettext reads it
    (LANGUAGE, LC_ALL, LC_MESSAGES, LANG), for ``Accept-Language``: the server
    sends its text messages and e-mails in it. ``de_DE.UTF-8`` is ``de-DE``;
    ``C`` and ``POSIX`` say nothing."""
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        tags = []
        for entry in value.split(":"):
            tag = entry.split(".")[0].split("@")[0].replace("_", "-")
            if re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", tag):
                tags.append(tag)
        if tags:
            return ", ".join(tags)
        if value:
            return None  # "C" or "POSIX": no language
    return None


class DeviceApi:
    """The device API of one server; ``token`` for every call but enrolment."""

    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.server = normalise_server_url(server)
        self._token = token
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        language = accept_language()
        if language:
            self._session.headers["Accept-Language"] = language

    # --- plumbing ----------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.server}{API_PREFIX}{path}"

    def _headers(self, *, authenticated: bool) -> dict[str, str]:
        # Accept-Language is the session's (accept_language): the server's
        # words ("Chrome on Linux") and its messages in the person's language.
        headers = {"Accept": "application/json"}
        if authenticated:
            if not self._token:
                raise ClientError("this call needs the device token")
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        authenticated: bool = True,
        expect: tuple[int, ...] = (200,),
    ) -> Any:
        try:
            response = self._session.request(
                method,
                self._url(path),
                json=body,
                headers=self._headers(authenticated=authenticated),
                timeout=TIMEOUT,
                # A redirect would carry the token elsewhere (requests drops the
                # header across hosts, but not across schemes on the same host).
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise NetworkError(f"{self.server} did not answer in time") from exc
        except requests.RequestException as exc:
            raise NetworkError(f"cannot reach {self.server} ({type(exc).__name__})") from exc
        if response.status_code not in expect:
            raise _error_from(response)
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(status=response.status_code, error="unexpected_response") from exc

    @staticmethod
    def _object(value: Any, member: str | None = None) -> Any:
        """``value`` (or its ``member``) checked to be what the protocol promises."""
        if not isinstance(value, dict) or (member is not None and member not in value):
            raise ApiError(status=200, error="unexpected_response")
        return value if member is None else value[member]

    # --- enrolment (anonymous) ---------------------------------------------------------

    def start_enrolment_with_password(
        self, *, identifier: str, password: str, device_name: str, kind: str
    ) -> dict[str, Any]:
        """Path A: "register key". The server sends a confirmation code."""
        answer = self._request(
            "POST",
            "/enrolments",
            body={
                "identifier": identifier,
                "password": password,
                "device_name": device_name,
                "kind": kind,
            },
            authenticated=False,
            expect=(201,),
        )
        self._object(answer, "enrolment_id")
        self._object(answer, "public_key")
        return dict(answer)

    def start_enrolment_with_binding_code(
        self, *, binding_code: str, device_name: str, kind: str
    ) -> dict[str, Any]:
        """Path B: a binding code from the account page."""
        answer = self._request(
            "POST",
            "/enrolments",
            body={"binding_code": binding_code, "device_name": device_name, "kind": kind},
            authenticated=False,
            expect=(201,),
        )
        self._object(answer, "enrolment_id")
        self._object(answer, "public_key")
        return dict(answer)

    def complete_enrolment(
        self,
        enrolment_id: str,
        *,
        credential: Mapping[str, Any],
        confirmation_code: str | None = None,
    ) -> dict[str, Any]:
        """ "Complete key registration": the registration response (and the code)."""
        body: dict[str, Any] = {"credential": dict(credential)}
        if confirmation_code is not None:
            body["confirmation_code"] = confirmation_code
        answer = self._request(
            "POST",
            f"/enrolments/{quote(enrolment_id, safe='')}/complete",
            body=body,
            authenticated=False,
            expect=(201,),
        )
        for member in ("device", "device_token", "user"):
            self._object(answer, member)
        return dict(answer)

    # --- the device --------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return dict(self._object(self._request("GET", "/status")))

    def devices(self) -> list[dict[str, Any]]:
        return list(self._object(self._request("GET", "/devices"), "devices"))

    # --- signed actions ----------------------------------------------------------------

    def action_nonce(self, purpose: str) -> str:
        """A single-use nonce to sign one action over (``action_challenge``)."""
        answer = self._request(
            "POST", "/actions/challenge", body={"purpose": purpose}, expect=(201,)
        )
        nonce = self._object(answer, "nonce")
        if not isinstance(nonce, str):
            raise ApiError(status=201, error="unexpected_response")
        return nonce

    def delete_device(
        self,
        device_id: str,
        *,
        nonce: str,
        assertion: Mapping[str, Any],
        reason: str | None = None,
        sign_out: bool | None = None,
    ) -> dict[str, Any]:
        """Delete one of the account's devices (this one too) with a signed
        request; ``reason`` and ``sign_out`` (also sign out everywhere it
        confirmed a sign-in) are signed with it where given."""
        body: dict[str, Any] = {"nonce": nonce, "assertion": dict(assertion)}
        if reason is not None:
            body["reason"] = reason
        if sign_out is not None:
            body["sign_out"] = sign_out
        answer = self._request("POST", f"/devices/{quote(device_id, safe='')}/delete", body=body)
        self._object(answer, "device")
        return dict(answer)

    # --- sessions (docs/device-api.md "Sessions") ---------------------------------------

    def sessions(self) -> list[dict[str, Any]]:
        """The account's login sessions (signed-in browsers), most recent first."""
        return list(self._object(self._request("GET", "/sessions"), "sessions"))

    def end_session(self, sid: str) -> int:
        answer = self._request("POST", f"/sessions/{quote(sid, safe='')}/end")
        return int(self._object(answer, "ended"))

    def end_all_sessions(self) -> int:
        return int(self._object(self._request("POST", "/sessions/end-all"), "ended"))

    def rename_device(self, device_id: str, name: str) -> dict[str, Any]:
        """Rename one of the account's devices (the token suffices); the device."""
        answer = self._request(
            "POST", f"/devices/{quote(device_id, safe='')}/rename", body={"name": name}
        )
        return dict(self._object(self._object(answer, "device")))

    # --- restoration (docs/device-api.md "Restoration") --------------------------------

    def restoration(self) -> dict[str, Any]:
        """Restoration status: active, e-mail, the backup prompt, pending devices."""
        answer = self._request("GET", "/restoration")
        self._object(answer, "active")
        return dict(answer)

    def dismiss_backup_prompt(self) -> None:
        """ "Not now" on "Back up your identity": never asked again."""
        self._request("POST", "/restoration/prompt-dismissed", expect=(204,))

    def activate_restoration(
        self, *, nonce: str, assertion: Mapping[str, Any], email: str | None
    ) -> dict[str, Any]:
        """Signed activation: ``status`` "active" with ``restoration_code`` (code 1),
        or "email_confirmation_required" with ``activation_id``."""
        body: dict[str, Any] = {"nonce": nonce, "assertion": dict(assertion)}
        if email is not None:
            body["email"] = email
        answer = self._request("POST", "/restoration/activation", body=body, expect=(200, 202))
        return self._activation(answer)

    def confirm_activation(self, activation_id: str, code: str) -> dict[str, Any]:
        """The e-mail confirmation code of an activation; code 1."""
        answer = self._request(
            "POST",
            f"/restoration/activation/{quote(activation_id, safe='')}/confirm",
            body={"code": code},
        )
        return self._code1(answer)

    def regenerate_restoration_code(
        self, *, nonce: str, assertion: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A new code 1 (signed); the old one is void."""
        answer = self._request(
            "POST", "/restoration/code", body={"nonce": nonce, "assertion": dict(assertion)}
        )
        return self._code1(answer)

    def refuse_device(
        self, device_id: str, *, nonce: str, assertion: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Refuse a restored device in its veto window (signed)."""
        answer = self._request(
            "POST",
            f"/restoration/devices/{quote(device_id, safe='')}/refuse",
            body={"nonce": nonce, "assertion": dict(assertion)},
        )
        self._object(answer, "device")
        return dict(answer)

    def notices(self) -> list[dict[str, Any]]:
        """Notices to this device ("a device was added by restoration" ...), newest first."""
        return list(self._object(self._request("GET", "/notices"), "notices"))

    def _activation(self, answer: Any) -> dict[str, Any]:
        if self._object(answer, "status") == "email_confirmation_required":
            if not isinstance(self._object(answer, "activation_id"), str):
                raise ApiError(status=202, error="unexpected_response")
            return dict(answer)
        return self._code1(answer)

    def _code1(self, answer: Any) -> dict[str, Any]:
        if not isinstance(self._object(answer, "restoration_code"), str):
            raise ApiError(status=200, error="unexpected_response")
        return dict(answer)

    # --- restoring the ID on this device (anonymous) ------------------------------------

    def start_restore(
        self, *, login_id: str, code1: str, device_name: str, kind: str
    ) -> dict[str, Any]:
        """Step 1, "Restore identity": login ID and code 1. The server e-mails code 2."""
        answer = self._request(
            "POST",
            "/restorations",
            body={"login_id": login_id, "code1": code1, "device_name": device_name, "kind": kind},
            authenticated=False,
            expect=(201,),
        )
        self._object(answer, "restoration_id")
        return dict(answer)

    def verify_restore_code(self, restoration_id: str, code2: str) -> dict[str, Any]:
        """Step 2: code 2 from the e-mail; the creation options for the new key."""
        answer = self._request(
            "POST",
            f"/restorations/{quote(restoration_id, safe='')}/code",
            body={"code2": code2},
            authenticated=False,
        )
        self._object(self._object(answer, "public_key"))
        return dict(answer)

    def complete_restore(
        self, restoration_id: str, *, credential: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Step 3: the new key's registration; the device, its token and the new code 1."""
        answer = self._request(
            "POST",
            f"/restorations/{quote(restoration_id, safe='')}/complete",
            body={"credential": dict(credential)},
            authenticated=False,
            expect=(201,),
        )
        for member in ("device", "device_token", "user"):
            self._object(answer, member)
        return self._code1(answer)

    # --- approvals ---------------------------------------------------------------------

    def approvals(self) -> list[dict[str, Any]]:
        """Pending approvals of this device's user, newest first."""
        return list(self._object(self._request("GET", "/approvals"), "approvals"))

    def approval(self, approval_id: str) -> dict[str, Any]:
        answer = self._request("GET", f"/approvals/{quote(approval_id, safe='')}")
        self._object(answer, "context")
        return dict(answer)

    def answer(
        self,
        approval_id: str,
        *,
        decision: str,
        code: str,
        fraud: bool,
        assertion: Mapping[str, Any],
    ) -> str:
        """Send a signed decision; the approval's new status."""
        answer = self._request(
            "POST",
            f"/approvals/{quote(approval_id, safe='')}",
            body={
                "decision": decision,
                "code": code,
                "fraud": fraud,
                "assertion": dict(assertion),
            },
        )
        return str(self._object(answer, "status"))

    def events(self) -> Iterator[Event]:
        """The stream of new approvals, until the server closes it.

        Yields an ``Event("open", "")`` first, as soon as the stream has begun,
        so the caller can fetch what was already pending (the stream itself
        only promises the new ones; ids may come twice).
        """
        try:
            response = self._session.get(
                self._url("/events"),
                headers={
                    **self._headers(authenticated=True),
                    "Accept": "text/event-stream",
                    "Cache-Control": "no-store",
                },
                stream=True,
                timeout=EVENTS_TIMEOUT,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise NetworkError(f"{self.server} did not answer in time") from exc
        except requests.RequestException as exc:
            raise NetworkError(f"cannot reach {self.server} ({type(exc).__name__})") from exc
        with response:
            if response.status_code != 200:
                raise _error_from(response)
            content_type = response.headers.get("Content-Type", "")
            if not content_type.startswith("text/event-stream"):
                raise ApiError(status=200, error="unexpected_response")
            try:
                yield from parse_events(_chunks(response), opened=True)
            except requests.Timeout as exc:
                raise NetworkError(f"the event stream of {self.server} went silent") from exc
            except requests.RequestException as exc:
                raise NetworkError(
                    f"the event stream of {self.server} broke ({type(exc).__name__})"
                ) from exc


def _chunks(response: requests.Response) -> Iterator[bytes]:
    """The body as it arrives: chunk by chunk for chunked transfer encoding;
    otherwise whatever one read returns, never waiting for a full buffer."""
    raw = response.raw
    if getattr(raw, "chunked", False):
        yield from response.iter_content(chunk_size=None)
        return
    while True:
        data = raw.read1(8192)
        if not data:
            return
        yield data


def parse_events(chunks: Iterator[bytes], *, opened: bool = False) -> Iterator[Event]:
    """Server-Sent Events from the body's bytes (HTML Living Standard §9.2.6):
    ``event:`` and ``data:`` fields, dispatched at a blank line; comments and
    other fields (``id``, ``retry``) ignored."""
    buffer = b""
    event, data = "", list[str]()
    announced = not opened
    for chunk in chunks:
        if not announced:
            # The stream has begun: the server accepted the token.
            announced = True
            yield Event("open", "")
        buffer += chunk
        while match := _LINE_END.search(buffer):
            if match.group() == b"\r" and match.end() == len(buffer):
                break  # perhaps the first half of a CRLF: wait for the next byte
            raw_line, buffer = buffer[: match.start()], buffer[match.end() :]
            line = raw_line.decode("utf-8", errors="replace")
            if not line:
                if data:
                    yield Event(event or "message", "\n".join(data))
                event, data = "", []
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    event = value
                elif name == "data":
                    data.append(value)
