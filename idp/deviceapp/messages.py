"""Texts the device app's scripts show, localised on the server.

The page carries ``APP_MESSAGES`` as JSON (``<script type="application/json">``,
never executed); the service worker fetches ``NOTIFICATION_MESSAGES`` (and
``NOTICE_MESSAGES`` for notices) from ``/app/messages.json``; the page's own
labels for restoration and device management are ``PAGE_TEXTS``. Placeholders
are ``%(name)s``, filled in by the script. Error texts come from the server's
own ``error_description`` (already in the user's language); these are the
texts that no server answer carries.

Two kinds of text: gettext strings (``_l``, translated in ``idp/translations``)
and the app's own catalogue, ``Bilingual`` texts that carry their English and
German wording side by side (restoration, notices, device management). Both
become the request's language through ``str()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString


@dataclass(frozen=True)
class Bilingual:
    """A text of the app's own catalogue, in English and German; ``str()``
    gives the one of the current request's language (English for any other)."""

    en: str
    de: str

    def __str__(self) -> str:
        locale = get_locale()
        return self.de if locale is not None and locale.language == "de" else self.en


Text: TypeAlias = LazyString | Bilingual

APP_MESSAGES: Mapping[str, Text] = {
    # enrolment
    "device_name_needed": _l("Please give this device a name."),
    "code_sent_sms": _l("A confirmation code was sent by text message to %(destination)s."),
    "code_sent_email": _l("A confirmation code was sent by e-mail to %(destination)s."),
    "create_key": _l(
        "Confirm with your fingerprint, face or screen lock to create this device's key …"
    ),
    "enrolled": _l("This browser is now a device of access number %(access_number)s."),
    "already_enrolled": _l("This browser is already set up as a device."),
    "webauthn_missing": _l(
        "This browser cannot create keys for sign-in confirmations (WebAuthn is not available)."
    ),
    "key_exists": _l("This browser's key is already registered for your account."),
    "webauthn_cancelled": _l(
        "The confirmation with your fingerprint, face or screen lock was cancelled or timed "
        "out. Please try again."
    ),
    # errors without a server answer
    "network_error": _l("The server cannot be reached. Check the connection and try again."),
    "unexpected": _l("The server's answer could not be understood."),
    "retry_after": _l("Try again in %(seconds)s seconds."),
    # the device is gone
    "revoked": _l(
        "This device has been removed from your account, and its data in this browser was "
        "deleted. You can set it up again."
    ),
    "invalid_token": _l(
        "The server does not recognise this device. Its data in this browser was deleted. "
        "Please set it up again."
    ),
    "this_device_deleted": _l(
        "This device was deleted from your account, and its data in this browser was deleted."
    ),
    # approvals
    "account": _l("Access number %(access_number)s · this device: %(name)s"),
    "approval_title": _l("Sign-in to %(client)s"),
    "approval_from": _l("from %(ip)s, %(time)s"),
    "approval_from_browser": _l("%(browser)s, from %(ip)s, %(time)s"),
    "unknown_ip": _l("an unknown address"),
    "code_needed": _l("Type the number shown in the browser."),
    "unlock": _l("Confirm with your fingerprint, face or screen lock …"),
    "approved": _l("Sign-in to %(client)s confirmed. The browser continues by itself."),
    "denied": _l("Sign-in to %(client)s refused."),
    "reported": _l("Sign-in to %(client)s refused and reported as not made by you."),
    "no_longer_waiting": _l("This sign-in request is no longer waiting (%(status)s)."),
    "status_expired": _l("expired"),
    "status_cancelled": _l("cancelled"),
    "status_approved": _l("confirmed"),
    "status_denied": _l("refused"),
    "expires_in": _l("This request expires in %(seconds)s seconds."),
    # devices
    "this_device": _l("this device"),
    "added": _l("Added %(date)s"),
    "last_used": _l("last used %(date)s"),
    "never_used": _l("not used yet"),
    "kind_iphone": _l("iPhone"),
    "kind_ipad": _l("iPad"),
    "kind_android": _l("Android"),
    "kind_browser": _l("Browser"),
    "kind_cli": _l("Command line"),
    "via_password_sms": _l("set up with password and text message"),
    "via_password_email": _l("set up with password and e-mail"),
    "via_binding_code": _l("set up with a code from the account page"),
    "via_restoration": _l("set up by restoring your ID"),
    "delete": _l("Delete"),
    "delete_named": _l("Delete %(name)s"),
    "delete_question": _l("Delete the device “%(name)s”? It can no longer confirm sign-ins."),
    "device_deleted": _l("The device “%(name)s” was deleted."),
    # push
    "push_on": _l(
        "Notifications are on: sign-in requests reach this device even when this page is closed."
    ),
    "push_ask": _l(
        "Turn on notifications to learn of sign-in requests while this page is closed. "
        "Until then, this page checks for them while it is open."
    ),
    "push_denied": _l(
        "Notifications are blocked in this browser. This page checks for sign-in requests "
        "while it is open."
    ),
    "push_unavailable": _l(
        "Push notifications are unavailable. This page checks for sign-in requests while it "
        "is open."
    ),
    # --- the app's own catalogue from here on (Bilingual) ---
    "retry_after_minutes": Bilingual(
        "Try again in %(minutes)s minutes.", "Versuchen Sie es in %(minutes)s Minuten erneut."
    ),
    "device_pending": Bilingual(
        "This device can be used from %(date)s. Until then, your other devices can refuse it.",
        "Dieses Gerät kann ab %(date)s verwendet werden. Bis dahin können Ihre anderen Geräte "
        "es ablehnen.",
    ),
    # restoring the ID on this browser ("Restore identity")
    "login_id_needed": Bilingual("Please enter your ID.", "Bitte geben Sie Ihre ID ein."),
    "code1_needed": Bilingual(
        "Please enter the restoration code you wrote down.",
        "Bitte geben Sie den notierten Wiederherstellungscode ein.",
    ),
    "code2_needed": Bilingual(
        "Please enter the restoration code from the e-mail.",
        "Bitte geben Sie den Wiederherstellungscode aus der E-Mail ein.",
    ),
    "restore_code2_sent": Bilingual(
        "A second restoration code was sent by e-mail to %(destination)s. Enter it here.",
        "Ein zweiter Wiederherstellungscode wurde per E-Mail an %(destination)s gesendet. "
        "Geben Sie ihn hier ein.",
    ),
    "restore_failed": Bilingual(
        "The ID or a restoration code is not correct, or the restoration has expired. Check "
        "your entries or start again.",
        "Die ID oder ein Wiederherstellungscode ist nicht korrekt, oder die Wiederherstellung "
        "ist abgelaufen. Prüfen Sie Ihre Eingaben oder beginnen Sie erneut.",
    ),
    "restore_used_up": Bilingual(
        "The key could not be registered, and this restoration cannot go on. Please start again.",
        "Der Schlüssel konnte nicht registriert werden, und diese Wiederherstellung kann nicht "
        "fortgesetzt werden. Bitte beginnen Sie erneut.",
    ),
    "restored": Bilingual(
        "Done! Your ID %(access_number)s now works on this device too.",
        "Fertig! Ihre ID %(access_number)s funktioniert jetzt auch auf diesem Gerät.",
    ),
    "restored_pending": Bilingual(
        "This device can be used from %(date)s. Until then, your other devices can refuse it; "
        "if one does, this device is removed again.",
        "Dieses Gerät kann ab %(date)s verwendet werden. Bis dahin können Ihre anderen Geräte "
        "es ablehnen; dann wird es wieder entfernt.",
    ),
    "server_url_invalid": Bilingual(
        "Please enter the address of the server, for example https://id.example.com.",
        "Bitte geben Sie die Adresse des Servers ein, zum Beispiel https://id.example.com.",
    ),
    "opening_other": Bilingual(
        "Opening the Freigabe app of %(server)s …",
        "Die Freigabe-App von %(server)s wird geöffnet …",
    ),
    # "Back up your identity" (restoration settings)
    "backup_active": Bilingual(
        "Restoration is active (since %(date)s). The second restoration code is sent to %(email)s.",
        "Die Wiederherstellungsfunktion ist aktiviert (seit %(date)s). Der zweite "
        "Wiederherstellungscode wird an %(email)s gesendet.",
    ),
    "backup_inactive": Bilingual(
        "Restoration is not active. When you activate it, the second restoration code will be "
        "sent to %(email)s.",
        "Die Wiederherstellungsfunktion ist nicht aktiviert. Nach der Aktivierung wird der "
        "zweite Wiederherstellungscode an %(email)s gesendet.",
    ),
    "backup_inactive_no_email": Bilingual(
        "Restoration is not active. Your account has no e-mail address yet: you will be asked "
        "for one.",
        "Die Wiederherstellungsfunktion ist nicht aktiviert. Für Ihren Zugang ist noch keine "
        "E-Mail-Adresse hinterlegt: Sie werden danach gefragt.",
    ),
    "email_invalid": Bilingual(
        "Please enter a valid e-mail address.", "Bitte geben Sie eine gültige E-Mail-Adresse ein."
    ),
    "email_code_needed": Bilingual(
        "Please enter the confirmation code from the e-mail.",
        "Bitte geben Sie den Bestätigungscode aus der E-Mail ein.",
    ),
    "code1_replaced": Bilingual(
        "This code replaces your previous restoration code, which no longer works.",
        "Dieser Code ersetzt Ihren bisherigen Wiederherstellungscode; der alte ist nicht mehr "
        "gültig.",
    ),
    "backup_done": Bilingual(
        "Restoration is active. Keep your restoration code in a safe place.",
        "Die Wiederherstellungsfunktion ist aktiviert. Bewahren Sie Ihren "
        "Wiederherstellungscode gut auf.",
    ),
    # notices (GET /notices) and pending restored devices
    "notice_restore_started": Bilingual(
        "A restoration of your ID was started for a new device, “%(name)s” (%(kind)s), from "
        "the IP address %(ip)s (%(time)s).",
        "Für ein neues Gerät, „%(name)s“ (%(kind)s), wurde eine Wiederherstellung Ihrer ID "
        "gestartet, von der IP-Adresse %(ip)s (%(time)s).",
    ),
    "notice_restore_started_advice": Bilingual(
        "If this is not you, someone knows your restoration code: create a new one.",
        "Wenn Sie das nicht sind, kennt jemand Ihren Wiederherstellungscode: Erstellen Sie "
        "einen neuen.",
    ),
    "notice_device_restored": Bilingual(
        "A new device, “%(name)s” (%(kind)s), was added to your ID on %(time)s (IP address "
        "%(ip)s).",
        "Ein neues Gerät, „%(name)s“ (%(kind)s), wurde am %(time)s zu Ihrer ID hinzugefügt "
        "(IP-Adresse %(ip)s).",
    ),
    "notice_device_added": Bilingual(
        "A new device, “%(name)s” (%(kind)s), was added to your ID on %(time)s (IP address "
        "%(ip)s), %(how)s.",
        "Ein neues Gerät, „%(name)s“ (%(kind)s), wurde am %(time)s zu Ihrer ID hinzugefügt "
        "(IP-Adresse %(ip)s), %(how)s.",
    ),
    "notice_device_removed": Bilingual(
        "The device “%(name)s” (%(kind)s) was removed from your ID on %(time)s (IP address "
        "%(ip)s) %(by)s.",
        "Das Gerät „%(name)s“ (%(kind)s) wurde am %(time)s (IP-Adresse %(ip)s) %(by)s aus "
        "Ihrer ID entfernt.",
    ),
    "notice_device_refused": Bilingual(
        "The device “%(name)s” (%(kind)s), waiting after a restoration, was refused on "
        "%(time)s (IP address %(ip)s) %(by)s.",
        "Das Gerät „%(name)s“ (%(kind)s), das nach einer Wiederherstellung wartete, wurde am "
        "%(time)s (IP-Adresse %(ip)s) %(by)s abgelehnt.",
    ),
    "removed_by_this_device": Bilingual("by this device", "von diesem Gerät"),
    "removed_by_itself": Bilingual("by the device itself", "vom Gerät selbst"),
    "removed_by_device": Bilingual("by the device “%(name)s”", "vom Gerät „%(name)s“"),
    "removed_on_account_page": Bilingual("on your account page", "auf der Seite „Ihr Zugang“"),
    "removed_by_administrator": Bilingual("by an administrator", "von einem Administrator"),
    "notice_removed_not_me": Bilingual(
        "If this was not you, someone else can manage your devices: check the devices below "
        "and remove any you do not know.",
        "Wenn Sie das nicht waren, kann jemand anderes Ihre Geräte verwalten: Prüfen Sie die "
        "Geräte unten und entfernen Sie alle, die Sie nicht kennen.",
    ),
    "notice_not_me": Bilingual(
        "If this was not you, remove this device.",
        "Wenn Sie das nicht waren, entfernen Sie dieses Gerät.",
    ),
    "notice_pending": Bilingual(
        "It can be used from %(date)s. Until then you can refuse it.",
        "Es kann ab %(date)s verwendet werden. Bis dahin können Sie es ablehnen.",
    ),
    "notice_device_gone": Bilingual(
        "This device has been removed.", "Dieses Gerät wurde bereits entfernt."
    ),
    "notice_ok": Bilingual("OK", "OK"),
    "new_code": Bilingual("New restoration code", "Neuer Wiederherstellungscode"),
    "remove_device": Bilingual("Remove this device", "Dieses Gerät entfernen"),
    "refuse": Bilingual("Refuse", "Ablehnen"),
    "refuse_named": Bilingual("Refuse %(name)s", "%(name)s ablehnen"),
    "device_refused": Bilingual(
        "The device “%(name)s” was refused and removed.",
        "Das Gerät „%(name)s“ wurde abgelehnt und entfernt.",
    ),
    "device_refused_code_void": Bilingual(
        "The device “%(name)s” was refused and removed. It was shown your restoration code, so "
        "that code no longer works: activate restoration again.",
        "Das Gerät „%(name)s“ wurde abgelehnt und entfernt. Ihm wurde Ihr "
        "Wiederherstellungscode angezeigt, daher ist dieser nicht mehr gültig: Aktivieren Sie "
        "die Wiederherstellungsfunktion erneut.",
    ),
    # the device list
    "pending_badge": Bilingual("waiting period", "Wartezeit"),
    "pending_until": Bilingual(
        "can be used from %(date)s; until then you can refuse it",
        "verwendbar ab %(date)s; bis dahin können Sie es ablehnen",
    ),
    "rename": Bilingual("Rename", "Umbenennen"),
    "rename_named": Bilingual("Rename %(name)s", "%(name)s umbenennen"),
    "rename_label": Bilingual("New name", "Neuer Name"),
    "save": Bilingual("Save", "Speichern"),
    "cancel": Bilingual("Cancel", "Abbrechen"),
    "device_renamed": Bilingual(
        "The device is now called “%(name)s”.", "Das Gerät heißt jetzt „%(name)s“."
    ),
    "signed_out_everywhere": Bilingual(
        "Everywhere it confirmed a sign-in, you are signed out now.",
        "Überall, wo es eine Anmeldung bestätigt hat, sind Sie jetzt abgemeldet.",
    ),
    # the sessions list (GET /sessions)
    "unknown_browser": Bilingual("Unknown browser", "Unbekannter Browser"),
    "session_where": Bilingual("IP address %(ip)s", "IP-Adresse %(ip)s"),
    "session_times": Bilingual(
        "signed in %(start)s · last active %(active)s",
        "angemeldet %(start)s · zuletzt aktiv %(active)s",
    ),
    "confirmed_password": Bilingual("Password only", "Nur mit Passwort"),
    "confirmed_device": Bilingual(
        "Confirmed with the device “%(name)s”", "Bestätigt mit dem Gerät „%(name)s“"
    ),
    "confirmed_a_device": Bilingual("Confirmed with a device", "Bestätigt mit einem Gerät"),
    "confirmed_passkey": Bilingual(
        "Signed in with the passkey “%(name)s”", "Angemeldet mit dem Passkey „%(name)s“"
    ),
    "confirmed_a_passkey": Bilingual("Signed in with a passkey", "Angemeldet mit einem Passkey"),
    "session_apps": Bilingual("Signed in to: %(apps)s", "Angemeldet bei: %(apps)s"),
    "end_session": Bilingual("End this session", "Diese Sitzung beenden"),
    "end_session_named": Bilingual(
        "End the session of %(browser)s", "Sitzung von %(browser)s beenden"
    ),
    "session_ended": Bilingual(
        "The session has ended. Its apps were signed out.",
        "Die Sitzung wurde beendet. Ihre Apps wurden abgemeldet.",
    ),
    "sessions_ended": Bilingual(
        "%(count)s session(s) ended; you are signed out everywhere.",
        "%(count)s Sitzung(en) beendet; Sie sind überall abgemeldet.",
    ),
}

# The labels of the restoration and device-management screens in
# device_app.html (``t.KEY`` there); the app's own catalogue.
PAGE_TEXTS: Mapping[str, Bilingual] = {
    # "Your sessions" and the delete dialog's question
    "sessions_title": Bilingual("Where you are signed in", "Wo Sie angemeldet sind"),
    "sessions_intro": Bilingual(
        "Browsers signed in to your account. If you do not recognise one, end it.",
        "Browser, die bei Ihrem Zugang angemeldet sind. Wenn Sie einen nicht kennen, beenden "
        "Sie die Sitzung.",
    ),
    "sessions_none": Bilingual("You are not signed in anywhere.", "Sie sind nirgends angemeldet."),
    "sessions_end_all": Bilingual("Sign out everywhere", "Überall abmelden"),
    "delete_reason": Bilingual("Why are you deleting it?", "Warum löschen Sie es?"),
    "reason_lost": Bilingual("It was lost or stolen", "Es wurde verloren oder gestohlen"),
    "reason_unused": Bilingual("I no longer use it", "Ich nutze es nicht mehr"),
    "delete_sign_out": Bilingual(
        "Also sign out everywhere this device confirmed a sign-in",
        "Auch überall abmelden, wo dieses Gerät eine Anmeldung bestätigt hat",
    ),
    # the start screen: restoring ("Restore identity")
    "restore_heading": Bilingual(
        "Already using your ID on another device?",
        "Nutzen Sie Ihre ID schon auf einem anderen Gerät?",
    ),
    "restore_intro": Bilingual(
        "With the restoration code you wrote down when you activated restoration, and a second "
        "code we send you by e-mail, your ID works on this device too.",
        "Mit dem Wiederherstellungscode, den Sie bei der Aktivierung der "
        "Wiederherstellungsfunktion notiert haben, und einem zweiten Code, den wir Ihnen per "
        "E-Mail senden, funktioniert Ihre ID auch auf diesem Gerät.",
    ),
    "restore_identity": Bilingual("Restore identity", "Identität wiederherstellen"),
    "restore_other": Bilingual(
        "Restore identity on other server", "Identität auf anderem Server wiederherstellen"
    ),
    "restore_step1": Bilingual(
        "Enter your ID and the restoration code you wrote down.",
        "Geben Sie Ihre ID und den notierten Wiederherstellungscode ein.",
    ),
    "login_id": Bilingual(
        "Your ID (access number, user name or e-mail)",
        "Ihre ID (Zugangsnummer, Benutzername oder E-Mail-Adresse)",
    ),
    "code1": Bilingual("Restoration code", "Wiederherstellungscode"),
    "next": Bilingual("Next", "Weiter"),
    "code2": Bilingual("Restoration code from the e-mail", "Wiederherstellungscode aus der E-Mail"),
    "complete_registration": Bilingual(
        "Complete key registration", "Schlüsselregistrierung abschließen"
    ),
    "register_key": Bilingual("Register key", "Schlüssel registrieren"),
    "start_again": Bilingual("Start again", "Neu beginnen"),
    "back": Bilingual("Back", "Zurück"),
    "new_code_label": Bilingual("Your new restoration code", "Ihr neuer Wiederherstellungscode"),
    "code_label": Bilingual("Your restoration code", "Ihr Wiederherstellungscode"),
    "write_down": Bilingual(
        "Please write this code down and keep it in a safe place! You need it to restore your "
        "ID on another device. It is shown only once.",
        "Bitte notieren Sie diesen Code und bewahren Sie ihn unbedingt gut auf! Sie benötigen "
        "ihn, um Ihre ID auf einem weiteren Gerät wiederherzustellen. Er wird nur einmal "
        "angezeigt.",
    ),
    "written_down": Bilingual("I have written it down", "Ich habe ihn notiert"),
    # "Restore identity on other server"
    "other_limit": Bilingual(
        "This browser app can only hold keys for the server it was opened from: a browser "
        "ties every key to the address of the page. For another server, that server's own "
        "Freigabe app opens with your ID filled in, and you restore your identity there.",
        "Diese Browser-App kann Schlüssel nur für den Server halten, von dem sie geöffnet "
        "wurde: Ein Browser bindet jeden Schlüssel an die Adresse der Seite. Für einen anderen "
        "Server öffnet sich dessen eigene Freigabe-App mit Ihrer ID, und Sie stellen Ihre "
        "Identität dort wieder her.",
    ),
    "server_url": Bilingual("Address of the server", "Adresse des Servers"),
    "open_other": Bilingual("Open the app of this server", "App dieses Servers öffnen"),
    # notices
    "notices_title": Bilingual("Notices about your ID", "Hinweise zu Ihrer ID"),
    # "Back up your identity" (restoration settings)
    "backup_title": Bilingual("Back up your identity", "Identität sichern"),
    "backup_intro": Bilingual(
        "With restoration active, you can use your ID on further devices, and restore it on a "
        "new device if you lose this one. It takes two restoration codes: the first is shown "
        "once when you activate restoration; the second is sent to your e-mail address during "
        "the restoration.",
        "Ist die Wiederherstellungsfunktion aktiviert, können Sie Ihre ID auf weiteren Geräten "
        "nutzen und sie bei Verlust dieses Geräts auf einem neuen Gerät wiederherstellen. Dafür "
        "sind zwei Wiederherstellungscodes nötig: Der erste wird bei der Aktivierung einmal "
        "angezeigt, der zweite wird Ihnen während der Wiederherstellung an Ihre "
        "E-Mail-Adresse gesendet.",
    ),
    "activate": Bilingual("Activate", "Aktivieren"),
    "new_code": Bilingual("New restoration code", "Neuer Wiederherstellungscode"),
    "email_prompt": Bilingual(
        "Your account has no e-mail address yet. Enter the address the second restoration "
        "code is to be sent to when you restore your ID.",
        "Für Ihren Zugang ist noch keine E-Mail-Adresse hinterlegt. Geben Sie die Adresse ein, "
        "an die bei einer Wiederherstellung der zweite Wiederherstellungscode gesendet werden "
        "soll.",
    ),
    "email_label": Bilingual("E-mail address", "E-Mail-Adresse"),
    "save": Bilingual("Save", "Speichern"),
    "confirmation_code": Bilingual("Confirmation code", "Bestätigungscode"),
    "confirm": Bilingual("Confirm", "Bestätigen"),
    "regenerate_question": Bilingual(
        "Create a new restoration code? The code you wrote down stops working at once, and "
        "restorations started with it cannot be finished.",
        "Einen neuen Wiederherstellungscode erstellen? Der notierte Code ist dann sofort "
        "ungültig, und damit begonnene Wiederherstellungen können nicht abgeschlossen werden.",
    ),
    "regenerate_yes": Bilingual("Create a new code", "Neuen Code erstellen"),
    "cancel": Bilingual("Cancel", "Abbrechen"),
    # the sixth-login prompt
    "prompt_title": Bilingual("Back up your identity?", "Identität sichern?"),
    "prompt_text": Bilingual(
        "Activate restoration, so that you can restore your ID on a new device if you lose "
        "this one, and use it on further devices.",
        "Aktivieren Sie die Wiederherstellungsfunktion, damit Sie Ihre ID bei Verlust dieses "
        "Geräts auf einem neuen Gerät wiederherstellen und sie auf weiteren Geräten nutzen "
        "können.",
    ),
    "prompt_not_now_hint": Bilingual(
        "If you choose “Not now”, this hint is not shown again. You can activate restoration "
        "at any time under “Back up your identity”.",
        "Wenn Sie „Jetzt nicht“ wählen, wird dieser Hinweis nicht erneut angezeigt. Sie können "
        "die Wiederherstellungsfunktion jederzeit unter „Identität sichern“ aktivieren.",
    ),
    "show": Bilingual("Show", "Anzeigen"),
    "not_now": Bilingual("Not now", "Jetzt nicht"),
}

NOTIFICATION_MESSAGES: Mapping[str, Text] = {
    "title": _l("Sign-in request"),
    "body": _l("A sign-in to your account waits for your confirmation. Open it to check it."),
}


# A notice push (``{"type": "notice"}``): someone is restoring the ID, or a
# device was added or removed (docs/device-api.md "Notices").
NOTICE_MESSAGES: Mapping[str, Text] = {
    "title": Bilingual("Notice about your ID", "Hinweis zu Ihrer ID"),
    "body": Bilingual(
        "A device is being added to your ID, or a device was added or removed. Open the app "
        "to check it.",
        "Ihrer ID wird ein Gerät hinzugefügt, oder ein Gerät wurde hinzugefügt oder entfernt. "
        "Öffnen Sie die App, um das zu prüfen.",
    ),
}


def localised(messages: Mapping[str, Text]) -> dict[str, str]:
    """The texts in the current request's language."""
    return {key: str(text) for key, text in messages.items()}
