// The Freigabe device app (/app/): the device protocol of docs/device-api.md in
// the browser, as clients/device (idp-device) speaks it on the command line.
// Plain JavaScript, no build step. Everything shown is set with textContent.
//
// Element ids (stable: tests drive them; the page is idp/templates/device_app.html):
//   #app-config              JSON data block: api, scope, serviceWorker, rpId,
//                            vapidPublicKey, lang, pollSeconds, messages (localised)
//   #app-message             app-wide notice (e.g. "this device was removed")
//   Enrolment, #screen-enrol (shown while this browser is not a device):
//   #device-name             the new device's name (both paths)
//   #enrol-identifier #enrol-password #enrol-start          path A, step 1
//   #enrol-destination #enrol-code #enrol-complete           path A, step 2 ("complete
//   #enrol-restart                                           key registration"); path B
//                                                            retries with #enrol-complete
//   #binding-code #binding-start                             path B (code from the account page)
//   #enrol-status (progress), #enrol-error (role=alert), #webauthn-missing
//   Restoring, also on #screen-enrol (docs/device-api.md "Restoration"):
//   #restore-open #restore-other-open  "Restore identity" / "... on other server"
//   #restore                 #restore-login-id #restore-code1 #restore-start     step 1
//                            #restore-email-line #restore-code2 #restore-verify  step 2, then
//                            the key; #restore-register asks for the key again;
//                            #restore-restart #restore-cancel
//                            #restore-done: #restore-new-code (the new code 1, shown once),
//                            #restore-pending, #restore-done-confirm ("I have written it down")
//   #restore-other-form      #restore-server #restore-other-login-id #restore-other-go:
//                            opens SERVER/app/#restore=LOGIN_ID (see restoreOnOtherServer)
//   Enrolled, #screen-main:
//   #account-line            access number and this device's name
//   #push-status             push state; #push-enable asks for notification permission
//   #approvals               li[data-approval-id] > button.open-approval; #approvals-empty
//   #approval                the open request: #approval-title #approval-client #approval-ip
//                            #approval-location (hidden without a place) #approval-browser
//                            ("Chrome on Linux", from the server) and the raw string on demand:
//                            details#approval-user-agent-details > #approval-user-agent
//                            #approval-time #approval-expires
//                            #approval-code #approve #deny #deny-fraud #approval-result
//                            #approval-close
//   #notices                 li[data-notice-id][data-notice-type] with button.remove-device,
//                            button.refuse-device, button.notice-new-code, button.dismiss-notice;
//                            #notices-section (hidden without notices), #notices-result
//   #devices                 li[data-device-id][data-this-device="true|false"]
//                            [data-pending="true|false"] with button.rename-device,
//                            button.refuse-device (pending ones), button.delete-device;
//                            renaming: form.rename-form > input.rename-input, button.rename-save,
//                            button.rename-cancel; #devices-result
//   #delete-dialog           #delete-dialog-text #delete-this-warning #delete-last-warning
//                            #delete-reason-lost #delete-reason-unused (the reason; "lost"
//                            ticks #delete-sign-out unless it was set by hand)
//                            #delete-sign-out #delete-confirm #delete-cancel
//   #sessions-section        "Where you are signed in" (GET /sessions): #sessions
//                            li[data-sid] with .session-confirmed, .session-apps and
//                            button.end-session; #sessions-empty #sessions-end-all
//                            #sessions-result
//   #restoration-section     "Back up your identity"; data-restoration="active|inactive" once
//                            read: #restoration-status #restoration-activate
//                            #restoration-regenerate (#restoration-regenerate-confirm:
//                            #restoration-regenerate-yes #restoration-regenerate-no)
//                            #restoration-email-form: #restoration-email #restoration-email-save
//                            #restoration-confirm-form: #restoration-confirm-line
//                            #restoration-email-code #restoration-confirm
//                            #restoration-code-box: #restoration-code (code 1, shown once)
//                            #restoration-code-note #restoration-code-done
//                            #restoration-cancel #restoration-result
//   #backup-prompt           "Back up your identity?" (the sixth login): #backup-show #backup-not-now
//   body[data-app-state]     "enrol" | "main" once the script has started
//
// URLs: /app/?code=K7QH-2MZD-X9TA or /app/#code=... prefill path B;
// /app/#approval=ID opens that request (the notification's link);
// /app/#restore=LOGIN_ID opens "Restore identity" with the ID filled in.
//
// State (localStorage "freigabe-device"): the device id, name and API token, the
// credential id and transports, the RP ID, the user, the VAPID key and the push
// endpoint last sent, and the notices dismissed here. Never a restoration code:
// it is shown once. The private key never leaves the authenticator. A
// "device_revoked" (or "invalid_token") answer to any call wipes it.
// A restore in progress (sessionStorage "freigabe-restore", this tab only): its
// id and step, and at the end the new code 1 until "I have written it down", so
// that a reload (the language switch) loses neither.
(function () {
  "use strict";

  const STORAGE_KEY = "freigabe-device";

  // Why this browser was unenrolled ("this device was removed"), until it enrols

  // again: a reload, or an app that learnt it from a poll, still says why.

  const REMOVED_KEY = "freigabe-device-removed";
  const STORE_VERSION = 1;
  const WEBAUTHN_TIMEOUT_MS = 120000;
  const HIDDEN_POLL_MS = 30000;
  const DEVICES_EVERY = 8; // polls

  const configElement = document.getElementById("app-config");
  if (!configElement) { return; }
  const config = JSON.parse(configElement.textContent);
  const messages = config.messages || {};
  const $ = (id) => document.getElementById(id);

  // --- texts ------------------------------------------------------------------------

  function msg(key, params) {
    const text = messages[key] || key;
    return text.replace(/%\((\w+)\)s/g, (_, name) => (params && name in params ? String(params[name]) : ""));
  }

  const dateFormat = new Intl.DateTimeFormat(config.lang, { dateStyle: "medium", timeStyle: "short" });
  const timeFormat = new Intl.DateTimeFormat(config.lang, { dateStyle: "medium", timeStyle: "medium" });

  function formatDate(value, format) {
    if (typeof value !== "string") { return ""; }
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? value : (format || dateFormat).format(date);
  }

  function setText(id, text, { error = false, ok = false } = {}) {
    const element = $(id);
    if (!element) { return; }
    element.textContent = text || "";
    // role="alert" (#enrol-error) only ever holds errors.
    element.classList.toggle("error", Boolean((error || element.getAttribute("role") === "alert") && text));
    element.classList.toggle("result-ok", Boolean(ok && text));
    if (element.hasAttribute("hidden") !== !text && (id === "enrol-error" || id === "app-message")) {
      element.hidden = !text;
    }
  }

  // --- errors -------------------------------------------------------------------------

  class AppError extends Error {
    constructor(code, message, { status = 0, retryAfter = 0 } = {}) {
      super(message);
      this.code = code;
      this.status = status;
      this.retryAfter = retryAfter;
    }
    describe() {
      if (!this.retryAfter) { return this.message; }
      return this.message + " " + (this.retryAfter >= 120
        ? msg("retry_after_minutes", { minutes: Math.ceil(this.retryAfter / 60) })
        : msg("retry_after", { seconds: this.retryAfter }));
    }
  }

  function describe(error) {
    return error instanceof AppError ? error.describe() : msg("unexpected");
  }

  // --- encodings (idp/webauthn/encoding.py) -------------------------------------------

  function fromB64url(text) {
    const base64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) { bytes[i] = binary.charCodeAt(i); }
    return bytes;
  }

  function toB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (let i = 0; i < bytes.length; i += 1) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // canonical_json: sorted keys, no whitespace, JSON.stringify's string escapes.
  function canonicalJson(value) {
    if (Array.isArray(value)) { return "[" + value.map(canonicalJson).join(",") + "]"; }
    if (value !== null && typeof value === "object") {
      return "{" + Object.keys(value).sort()
        .map((key) => JSON.stringify(key) + ":" + canonicalJson(value[key])).join(",") + "}";
    }
    return JSON.stringify(value);
  }

  async function sha256(text) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // idp/webauthn/challenges.py approval_challenge: deny signs the empty code.
  async function approvalChallenge(approval, decision, code) {
    const context = hex(await sha256(canonicalJson(approval.context)));
    return sha256(canonicalJson({
      v: 1, approval: approval.id, decision, code: decision === "approve" ? code : "", context,
    }));
  }

  // idp/webauthn/challenges.py action_challenge.
  function actionChallenge(purpose, payload) {
    return sha256(canonicalJson({ v: 1, purpose, payload }));
  }

  // --- local state --------------------------------------------------------------------

  let state = load();

  function load() {
    try {
      const data = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
      if (data && data.version === STORE_VERSION && data.token && data.credentialId && data.server === location.origin) {
        return data;
      }
    } catch (error) { /* unreadable: not enrolled */ }
    return null;
  }

  function save() {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(state));
    localStorage.removeItem(REMOVED_KEY);
  }

  // This device is gone (deleted, or unknown to the server): forget everything.
  function wipe(message) {
    const wasEnrolled = state !== null;
    state = null;
    localStorage.removeItem(STORAGE_KEY);
    stopPolling();
    closeApproval();
    forgetMain();
    unsubscribePush();
    showEnrol();
    if (wasEnrolled || message) { setText("app-message", message); }
    if (message) { localStorage.setItem(REMOVED_KEY, message); }
  }

  // --- the device API -----------------------------------------------------------------

  async function api(method, path, body, { auth = true } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    if (auth) {
      if (!state) { throw new AppError("device_revoked", msg("revoked")); }
      headers.Authorization = "Bearer " + state.token;
    }
    let response;
    try {
      response = await fetch(config.api + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store", credentials: "same-origin", redirect: "error",
      });
    } catch (error) {
      throw new AppError("network_error", msg("network_error"));
    }
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch (error) { data = null; }
    }
    if (!response.ok) {
      const code = data && typeof data.error === "string" ? data.error : "unexpected_response";
      const text = data && typeof data.error_description === "string" && data.error_description
        ? data.error_description : msg("unexpected");
      const retryAfter = parseInt(response.headers.get("Retry-After") || "0", 10) || 0;
      const error = new AppError(code, text, { status: response.status, retryAfter });
      if (auth && (code === "device_revoked" || code === "invalid_token")) {
        wipe(msg(code === "device_revoked" ? "revoked" : "invalid_token"));
      } else if (auth && code === "device_pending") {
        // Restored while a veto window runs: usable after Retry-After seconds.
        setText("app-message", msg("device_pending", { date: formatDate(inSeconds(retryAfter)) }));
      }
      throw error;
    }
    if (response.status !== 204 && (data === null || typeof data !== "object")) {
      throw new AppError("unexpected_response", msg("unexpected"));
    }
    return data;
  }

  const quote = encodeURIComponent;

  function inSeconds(seconds) {
    return new Date(Date.now() + seconds * 1000).toISOString();
  }

  // --- WebAuthn -----------------------------------------------------------------------

  function webauthnError(error) {
    if (error && error.name === "InvalidStateError") { return new AppError("key_exists", msg("key_exists")); }
    return new AppError("webauthn_cancelled", msg("webauthn_cancelled"));
  }

  // PublicKeyCredentialCreationOptionsJSON (py_webauthn options_to_json) -> create().
  async function createCredential(options) {
    const publicKey = {
      rp: options.rp,
      user: { ...options.user, id: fromB64url(options.user.id) },
      challenge: fromB64url(options.challenge),
      pubKeyCredParams: options.pubKeyCredParams,
      timeout: options.timeout || WEBAUTHN_TIMEOUT_MS,
      excludeCredentials: (options.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) })),
      authenticatorSelection: options.authenticatorSelection,
      attestation: options.attestation || "none",
      hints: ["client-device"],
    };
    let credential;
    try {
      credential = await navigator.credentials.create({ publicKey });
    } catch (error) {
      throw webauthnError(error);
    }
    if (!credential) { throw webauthnError(null); }
    const response = credential.response;
    // RegistrationResponseJSON, by hand (PublicKeyCredential.toJSON() is recent).
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response: {
        clientDataJSON: toB64url(response.clientDataJSON),
        attestationObject: toB64url(response.attestationObject),
        transports: typeof response.getTransports === "function" ? response.getTransports() : [],
      },
      clientExtensionResults: typeof credential.getClientExtensionResults === "function"
        ? credential.getClientExtensionResults() : {},
      authenticatorAttachment: credential.authenticatorAttachment || null,
    };
  }

  // An assertion by this device's credential, with user verification, over challenge.
  async function getAssertion(challenge) {
    const allowed = { type: "public-key", id: fromB64url(state.credentialId) };
    if (Array.isArray(state.transports) && state.transports.length) { allowed.transports = state.transports; }
    let credential;
    try {
      credential = await navigator.credentials.get({
        publicKey: {
          challenge, rpId: state.rpId, allowCredentials: [allowed],
          userVerification: "required", timeout: WEBAUTHN_TIMEOUT_MS,
        },
      });
    } catch (error) {
      throw webauthnError(error);
    }
    if (!credential) { throw webauthnError(null); }
    const response = credential.response;
    const assertion = {
      clientDataJSON: toB64url(response.clientDataJSON),
      authenticatorData: toB64url(response.authenticatorData),
      signature: toB64url(response.signature),
    };
    if (response.userHandle) { assertion.userHandle = toB64url(response.userHandle); }
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response: assertion,
      clientExtensionResults: typeof credential.getClientExtensionResults === "function"
        ? credential.getClientExtensionResults() : {},
      authenticatorAttachment: credential.authenticatorAttachment || null,
    };
  }

  // A signed action (docs/device-api.md "Signed actions"): a single-use nonce for
  // purpose, then this device's assertion, with user verification, over
  // action_challenge(purpose, payload + nonce). Returns the request body's
  // {nonce, assertion}.
  async function signedAction(purpose, payload) {
    const issued = await api("POST", "/actions/challenge", { purpose });
    const challenge = await actionChallenge(purpose, { ...payload, nonce: issued.nonce });
    return { nonce: issued.nonce, assertion: await getAssertion(challenge) };
  }

  // --- screens ------------------------------------------------------------------------

  function showEnrol() {
    $("screen-main").hidden = true;
    $("screen-enrol").hidden = false;
    document.body.dataset.appState = "enrol";
    resetEnrolment();
  }

  function showMain() {
    $("screen-enrol").hidden = true;
    $("screen-main").hidden = false;
    document.body.dataset.appState = "main";
    showAccountLine();
    refreshApprovals().catch(() => undefined);
    refreshDevices().catch(() => undefined);
    // "Back up your identity?" is asked when the app opens, and after a confirmed sign-in.
    refreshRestoration({ prompt: true }).catch(() => undefined);
    refreshNotices().catch(() => undefined);
    refreshSessions().catch(() => undefined);
    setupPush(false);
    startPolling();
  }

  function showAccountLine() {
    setText("account-line", msg("account", {
      access_number: state.user && state.user.access_number, name: state.name,
    }));
  }

  function busy(ids, on) {
    for (const id of ids) { const element = $(id); if (element) { element.disabled = on; } }
  }

  // --- enrolment ----------------------------------------------------------------------

  let pending = null; // {id, publicKey, needsCode, credential}

  function resetEnrolment() {
    pending = null;
    restoring = null;
    $("enrol-paths").hidden = false;
    $("enrol-confirm-form").hidden = true;
    $("restore").hidden = true;
    $("restore-other-form").hidden = true;
    $("device-name-field").hidden = false;
    $("enrol-code").value = "";
    for (const id of ["restore-code1", "restore-code2"]) { $(id).value = ""; }
    setText("restore-new-code", "");
    setText("enrol-status", "");
    setText("enrol-error", "");
    busy(["enrol-start", "binding-start", "enrol-complete", "restore-start", "restore-verify",
      "restore-register"], false);
  }

  function guessDeviceName() {
    const ua = navigator.userAgent;
    const platform = /iPhone/.test(ua) ? "iPhone" : /iPad/.test(ua) ? "iPad" : /Android/.test(ua) ? "Android"
      : /Mac OS X/.test(ua) ? "Mac" : /Windows/.test(ua) ? "Windows" : /CrOS/.test(ua) ? "ChromeOS"
        : /Linux/.test(ua) ? "Linux" : "";
    const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox"
      : /Chrom(e|ium)\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
    return platform ? browser + " (" + platform + ")" : browser;
  }

  function deviceName() {
    const name = $("device-name").value.trim().replace(/\s+/g, " ");
    if (!name) {
      $("device-name").focus();
      throw new AppError("invalid_request", msg("device_name_needed"));
    }
    return name.slice(0, 100);
  }

  async function startWithPassword(event) {
    event.preventDefault();
    setText("app-message", "");
    setText("enrol-error", "");
    busy(["enrol-start", "binding-start"], true);
    try {
      const started = await api("POST", "/enrolments", {
        identifier: $("enrol-identifier").value.trim(),
        password: $("enrol-password").value,
        device_name: deviceName(),
        kind: "browser",
      }, { auth: false });
      $("enrol-password").value = "";
      pending = { id: started.enrolment_id, publicKey: started.public_key, needsCode: true, credential: null };
      const confirmation = started.confirmation || {};
      setText("enrol-destination", msg(confirmation.channel === "email" ? "code_sent_email" : "code_sent_sms",
        { destination: confirmation.destination || "" }));
      $("enrol-code-field").hidden = false;
      $("enrol-paths").hidden = true;
      $("enrol-confirm-form").hidden = false;
      $("enrol-code").focus();
    } catch (error) {
      setText("enrol-error", describe(error));
    } finally {
      busy(["enrol-start", "binding-start"], false);
    }
  }

  async function startWithBindingCode(event) {
    event.preventDefault();
    setText("app-message", "");
    setText("enrol-error", "");
    busy(["enrol-start", "binding-start"], true);
    try {
      const started = await api("POST", "/enrolments", {
        binding_code: $("binding-code").value.trim(),
        device_name: deviceName(),
        kind: "browser",
      }, { auth: false });
      pending = { id: started.enrolment_id, publicKey: started.public_key, needsCode: false, credential: null };
      // The code is spent; should the key prompt fail, #enrol-complete tries again.
      setText("enrol-destination", "");
      $("enrol-code-field").hidden = true;
      $("enrol-paths").hidden = true;
      $("enrol-confirm-form").hidden = false;
      $("binding-code").value = "";
      await completeEnrolment();
    } catch (error) {
      setText("enrol-error", describe(error));
    } finally {
      busy(["enrol-start", "binding-start"], false);
    }
  }

  async function completeEnrolment(event) {
    if (event) { event.preventDefault(); }
    if (!pending) { return; }
    setText("enrol-error", "");
    const code = $("enrol-code").value.trim();
    if (pending.needsCode && !code) { $("enrol-code").focus(); return; }
    busy(["enrol-complete"], true);
    try {
      if (!pending.credential) {
        setText("enrol-status", msg("create_key"));
        // Kept: after a wrong code the same registration is sent again.
        pending.credential = await createCredential(pending.publicKey);
      }
      const body = { credential: pending.credential };
      if (pending.needsCode) { body.confirmation_code = code; }
      const done = await api("POST", "/enrolments/" + quote(pending.id) + "/complete", body, { auth: false });
      becomeDevice(done, pending.credential, pending.publicKey);
      pending = null;
      setText("app-message", msg("enrolled", { access_number: done.user && done.user.access_number }));
      showMain();
      $("main-title").focus();
    } catch (error) {
      setText("enrol-status", "");
      setText("enrol-error", describe(error));
      if (error.code === "wrong_code") {
        $("enrol-code").select();
      } else if (error.code === "invalid_enrolment" || error.code === "too_many_attempts"
        || error.code === "webauthn_failed" || error.code === "invalid_request") {
        // Void on the server: start again.
        const shown = describe(error);
        resetEnrolment();
        setText("enrol-error", shown);
      }
    } finally {
      busy(["enrol-complete"], false);
    }
  }

  // This browser is a device now (enrolment or restoration): keep what it needs.
  function becomeDevice(done, credential, publicKey) {
    state = {
      version: STORE_VERSION,
      server: location.origin,
      deviceId: done.device.id,
      name: done.device.name,
      token: done.device_token,
      credentialId: credential.rawId,
      transports: credential.response.transports,
      rpId: (publicKey.rp && publicKey.rp.id) || config.rpId,
      user: done.user,
      vapidPublicKey: done.vapid_public_key || config.vapidPublicKey,
      pushEndpoint: null,
      dismissedNotices: [],
    };
    save();
  }

  // --- restoring the ID on this browser ("Restore identity") -------------------------
  //
  // Step 1: login ID + code 1 -> the server e-mails code 2. Step 2: code 2 ->
  // creation options; the key is made at once (#restore-register asks again if
  // the prompt was cancelled). Step 3: the registration -> this browser is a
  // device, and shows the new code 1 once (the old one is void).

  let restoring = null; // {id, publicKey, credential}

  // A restore in progress outlives a reload of the page (the language switch
  // is one): kept in this tab's sessionStorage from code 2 on, until the new
  // code 1 has been confirmed or the restore is started again. Without it a
  // switch lost the restore, or the new code 1 shown only once.
  const RESTORE_KEY = "freigabe-restore";

  function keepRestore(step, shown) {
    sessionStorage.setItem(RESTORE_KEY, JSON.stringify({ step, restoring, shown: shown || null }));
  }

  function dropRestore() {
    sessionStorage.removeItem(RESTORE_KEY);
  }

  function keptRestore() {
    try {
      return JSON.parse(sessionStorage.getItem(RESTORE_KEY) || "null");
    } catch (error) {
      return null;
    }
  }

  // After start(): back to the step the page was at. A kept restore that no
  // longer fits (a device by now, or none after "done") is dropped.
  function resumeRestore() {
    const kept = keptRestore();
    if (!kept) { return; }
    const done = kept.step === "done";
    if (done ? !state || !kept.shown : state || !kept.restoring) {
      dropRestore();
      return;
    }
    $("screen-main").hidden = true;
    $("screen-enrol").hidden = false;
    document.body.dataset.appState = "enrol";
    openRestore();
    if (done) {
      showRestored(kept.shown);
      return;
    }
    restoring = kept.restoring;
    if (kept.step === "code2") {
      askCode2(kept.shown || "");
    } else {
      restoreStep("register"); // #restore-register makes (or sends again) the key
      $("restore-register").focus();
    }
  }

  function restoreStep(step) { // "start" | "code2" | "register" | "done"
    $("restore-start-form").hidden = step !== "start";
    $("restore-code2-form").hidden = step !== "code2";
    $("restore-register").hidden = step !== "register";
    $("restore-done").hidden = step !== "done";
    $("restore-nav").hidden = step === "done";
    $("restore-restart").hidden = step === "start";
    $("device-name-field").hidden = step !== "start";
  }

  function openRestore(loginId) {
    resetEnrolment();
    setText("app-message", "");
    $("enrol-paths").hidden = true;
    $("restore").hidden = false;
    restoreStep("start");
    if (loginId) { $("restore-login-id").value = loginId; }
    ($("restore-login-id").value ? $("restore-code1") : $("restore-login-id")).focus();
  }

  // One text for every restore_failed: nobody can tell which part was wrong.
  function restoreError(error) {
    return error instanceof AppError && error.code === "restore_failed" ? msg("restore_failed") : describe(error);
  }

  async function startRestore(event) {
    event.preventDefault();
    setText("app-message", "");
    setText("enrol-error", "");
    busy(["restore-start"], true);
    try {
      const loginId = $("restore-login-id").value.trim();
      const code1 = $("restore-code1").value.trim();
      if (!loginId) {
        $("restore-login-id").focus();
        throw new AppError("invalid_request", msg("login_id_needed"));
      }
      if (!code1) {
        $("restore-code1").focus();
        throw new AppError("invalid_request", msg("code1_needed"));
      }
      const started = await api("POST", "/restorations", {
        login_id: loginId, code1, device_name: deviceName(), kind: "browser",
      }, { auth: false });
      restoring = { id: started.restoration_id, publicKey: null, credential: null };
      keepRestore("code2", started.email_masked || "");
      $("restore-code2").value = "";
      askCode2(started.email_masked || "");
    } catch (error) {
      setText("enrol-error", restoreError(error));
    } finally {
      busy(["restore-start"], false);
    }
  }

  // Step 2: code 2 was mailed to destination (masked).
  function askCode2(destination) {
    setText("restore-email-line", msg("restore_code2_sent", { destination }));
    restoreStep("code2");
    $("restore-code2").focus();
  }

  async function verifyRestoreCode(event) {
    event.preventDefault();
    if (!restoring) { return; }
    setText("enrol-error", "");
    const code2 = $("restore-code2").value.trim();
    if (!code2) {
      $("restore-code2").focus();
      setText("enrol-error", msg("code2_needed"));
      return;
    }
    busy(["restore-verify"], true);
    try {
      const verified = await api("POST", "/restorations/" + quote(restoring.id) + "/code", { code2 }, { auth: false });
      restoring.publicKey = verified.public_key;
      keepRestore("register");
      restoreStep("register");
    } catch (error) {
      setText("enrol-error", restoreError(error));
      $("restore-code2").select();
      return;
    } finally {
      busy(["restore-verify"], false);
    }
    await registerRestoredKey();
  }

  async function registerRestoredKey() {
    if (!restoring || !restoring.publicKey) { return; }
    setText("enrol-error", "");
    busy(["restore-register"], true);
    try {
      if (!restoring.credential) {
        setText("enrol-status", msg("create_key"));
        // Kept: should the answer be lost, the same registration is sent again.
        restoring.credential = await createCredential(restoring.publicKey);
        keepRestore("register");
      }
      const done = await api("POST", "/restorations/" + quote(restoring.id) + "/complete",
        { credential: restoring.credential }, { auth: false });
      becomeDevice(done, restoring.credential, restoring.publicKey);
      restoring = null;
      setText("enrol-status", "");
      // What the done step shows, the new code 1 among it, until it is confirmed.
      keepRestore("done", {
        user: { access_number: done.user && done.user.access_number },
        restoration_code: done.restoration_code,
        status: done.status,
        pending_until: done.pending_until,
      });
      showRestored(done);
    } catch (error) {
      setText("enrol-status", "");
      if (error.code === "webauthn_cancelled" || error.code === "network_error") {
        setText("enrol-error", describe(error)); // the restoration waits: #restore-register
      } else {
        // Used up on the server (restore_failed, webauthn_failed ...): start again.
        const shown = error.code === "restore_failed" || error.code === "webauthn_failed"
          ? msg("restore_used_up") : describe(error);
        restoring = null;
        dropRestore();
        restoreStep("start");
        setText("enrol-error", shown);
      }
    } finally {
      busy(["restore-register"], false);
    }
  }

  function showRestored(done) {
    restoreStep("done");
    setText("restore-done-text", msg("restored", { access_number: done.user && done.user.access_number }),
      { ok: true });
    // The new code 1, shown here once; the one on paper is void.
    setText("restore-new-code", done.restoration_code);
    setText("restore-code-note", msg("code1_replaced"));
    const until = done.status === "pending" ? done.pending_until : null;
    setText("restore-pending", until ? msg("restored_pending", { date: formatDate(until) }) : "");
    $("restore-pending").hidden = !until;
    $("restore-code1").value = "";
    $("restore-code2").value = "";
    $("restore-done-confirm").focus();
  }

  function finishRestore() {
    dropRestore();
    resetEnrolment(); // the code leaves the page
    if (!state) { return; }
    showMain();
    $("main-title").focus();
  }

  function restartRestore() {
    restoring = null;
    dropRestore();
    setText("enrol-error", "");
    setText("enrol-status", "");
    restoreStep("start");
    $("restore-code1").focus();
  }

  // --- "Restore identity on other server" --------------------------------------------
  //
  // A browser app cannot restore onto another server: WebAuthn binds a key to an
  // RP ID that must be this page's host (or a suffix of it), that server checks
  // the page's origin in clientDataJSON, and its device API is same-origin only.
  // So the option opens that server's own app, with the login ID handed over in
  // the fragment (which no server sees).

  function openOtherServer() {
    resetEnrolment();
    setText("app-message", "");
    $("enrol-paths").hidden = true;
    $("device-name-field").hidden = true;
    $("restore-other-form").hidden = false;
    $("restore-server").focus();
  }

  // The app of the server at text (https; http only on this machine), or null.
  function otherAppUrl(text) {
    let value = String(text || "").trim();
    if (!value) { return null; }
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) { value = "https://" + value; }
    let url;
    try { url = new URL(value); } catch (error) { return null; }
    const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
    if (!(url.protocol === "https:" || (url.protocol === "http:" && loopback)) || url.username || url.password) {
      return null;
    }
    // The issuer may have a path; its app is ISSUER/app/.
    const base = url.pathname.replace(/\/+$/, "").replace(/\/app$/, "");
    return new URL(base + config.scope, url.origin);
  }

  function restoreOnOtherServer(event) {
    event.preventDefault();
    setText("enrol-error", "");
    const target = otherAppUrl($("restore-server").value);
    const loginId = $("restore-other-login-id").value.trim().slice(0, 254);
    if (!target) {
      $("restore-server").focus();
      setText("enrol-error", msg("server_url_invalid"));
      return;
    }
    if (target.origin === location.origin) { openRestore(loginId); return; }
    target.hash = new URLSearchParams({ restore: loginId }).toString();
    setText("enrol-status", msg("opening_other", { server: target.origin }));
    location.assign(target.href);
  }

  // --- approvals ----------------------------------------------------------------------

  let current = null; // the open approval, as the server last described it
  let answered = false;
  let countdown = null;

  function approvalFacts(approval) {
    // The signed context holds the same facts the signature covers.
    return approval.context && typeof approval.context === "object" ? approval.context : approval;
  }

  function renderApprovals(list) {
    const ul = $("approvals");
    ul.replaceChildren();
    for (const approval of list) {
      const facts = approvalFacts(approval);
      const li = document.createElement("li");
      li.dataset.approvalId = approval.id;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "open-approval";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = msg("approval_title", { client: facts.client_name });
      const meta = document.createElement("span");
      meta.className = "meta";
      const where = {
        ip: facts.ip || msg("unknown_ip"), time: formatDate(facts.created_at, timeFormat),
      };
      meta.textContent = approval.browser
        ? msg("approval_from_browser", { browser: approval.browser, ...where })
        : msg("approval_from", where);
      button.append(name, document.createElement("br"), meta);
      button.addEventListener("click", () => openApproval(approval.id));
      li.append(button);
      ul.append(li);
    }
    $("approvals-empty").hidden = list.length > 0;
  }

  async function refreshApprovals() {
    if (!state) { return; }
    const data = await api("GET", "/approvals");
    const list = Array.isArray(data.approvals) ? data.approvals : [];
    renderApprovals(list);
    // The open request was answered elsewhere, expired or was cancelled.
    if (current && !answered && !list.some((a) => a.id === current.id)) {
      try {
        showGone((await api("GET", "/approvals/" + quote(current.id))).status);
      } catch (error) {
        if (error.code === "approval_not_found") { showGone("cancelled"); }
      }
    }
  }

  function setDecisionButtons(enabled) {
    busy(["approve", "deny", "deny-fraud", "approval-code"], !enabled);
  }

  function showGone(status) {
    if (!current) { return; }
    stopCountdown();
    setDecisionButtons(false);
    const label = messages["status_" + status] ? msg("status_" + status) : String(status);
    setText("approval-result", msg("no_longer_waiting", { status: label }), { error: true });
  }

  function stopCountdown() {
    if (countdown) { clearInterval(countdown); countdown = null; }
    setText("approval-expires", "");
  }

  function startCountdown(expiresAt) {
    stopCountdown();
    const end = new Date(expiresAt).getTime();
    if (Number.isNaN(end)) { return; }
    const tick = () => {
      const seconds = Math.max(0, Math.round((end - Date.now()) / 1000));
      setText("approval-expires", msg("expires_in", { seconds }));
      if (seconds === 0) { showGone("expired"); }
    };
    tick();
    countdown = setInterval(tick, 1000);
  }

  async function openApproval(id) {
    if (!state || typeof id !== "string" || !id) { return; }
    let approval;
    try {
      approval = await api("GET", "/approvals/" + quote(id));
    } catch (error) {
      setText("app-message", describe(error));
      return;
    }
    current = approval;
    answered = false;
    setText("app-message", "");
    const facts = approvalFacts(approval);
    setText("approval-title", msg("approval_title", { client: facts.client_name }));
    setText("approval-client", facts.client_name);
    setText("approval-ip", facts.ip || msg("unknown_ip"));
    // The server describes the browser and place in words (the same as idp-device);
    // the raw user-agent string is there on demand.
    const rawAgent = facts.user_agent || "";
    setText("approval-browser", approval.browser || rawAgent || "–");
    setText("approval-user-agent", rawAgent);
    $("approval-user-agent-details").hidden = !rawAgent || !approval.browser;
    $("approval-user-agent-details").open = false;
    setText("approval-location", approval.location || "");
    $("approval-location").hidden = !approval.location;
    $("approval-location-label").hidden = !approval.location;
    setText("approval-time", formatDate(facts.created_at, timeFormat));
    setText("approval-result", "");
    $("approval-code").value = "";
    mainSections(false);
    $("approval").hidden = false;
    if (approval.status === "pending") {
      setDecisionButtons(true);
      startCountdown(approval.expires_at);
      $("approval-code").focus();
    } else {
      showGone(approval.status);
      $("approval-title").focus();
    }
  }

  function closeApproval() {
    current = null;
    answered = false;
    stopCountdown();
    $("approval").hidden = true;
    mainSections(true);
  }

  // Everything but the open request: hidden while one is open.
  let sectionsVisible = true;

  function mainSections(visible) {
    sectionsVisible = visible;
    $("approvals-section").hidden = !visible;
    $("devices-section").hidden = !visible;
    $("sessions-section").hidden = !visible;
    $("restoration-section").hidden = !visible;
    $("notices-section").hidden = !visible || noticesShown === 0;
  }

  async function answer(decision, fraud) {
    if (!current || !state) { return; }
    let code = "";
    if (decision === "approve") {
      code = $("approval-code").value.trim();
      if (!code) {
        setText("approval-result", msg("code_needed"), { error: true });
        $("approval-code").focus();
        return;
      }
    }
    setDecisionButtons(false);
    setText("approval-result", msg("unlock"));
    const facts = approvalFacts(current);
    try {
      // Sign what the server holds now: its context goes into the challenge.
      const approval = await api("GET", "/approvals/" + quote(current.id));
      if (approval.status !== "pending") { showGone(approval.status); return; }
      const assertion = await getAssertion(await approvalChallenge(approval, decision, code));
      const result = await api("POST", "/approvals/" + quote(approval.id), {
        decision, code: decision === "approve" ? code : "", fraud: Boolean(fraud), assertion,
      });
      answered = true;
      stopCountdown();
      const key = result.status === "approved" ? "approved" : fraud ? "reported" : "denied";
      setText("approval-result", msg(key, { client: facts.client_name }), { ok: true });
      refreshApprovals().catch(() => undefined);
      // From the sixth confirmed sign-in: "Back up your identity?"
      if (result.status === "approved") { refreshRestoration({ prompt: true }).catch(() => undefined); }
    } catch (error) {
      if (!state) { return; } // wiped: the enrol screen says why
      setText("approval-result", describe(error), { error: true });
      if (error.code === "approval_expired" || error.code === "approval_already_answered"
        || error.code === "approval_not_found") {
        stopCountdown();
        return;
      }
      setDecisionButtons(true);
      if (error.code === "wrong_code") { $("approval-code").select(); }
    }
  }

  // --- devices ------------------------------------------------------------------------

  let devices = [];
  let devicesLoaded = false;
  let deleting = null;
  let renaming = null; // the id of the device whose name is being edited

  function kindLabel(kind) {
    return messages["kind_" + kind] ? msg("kind_" + kind) : String(kind || "");
  }

  function button(className, text, onClick, label) {
    const element = document.createElement("button");
    element.type = "button";
    element.className = className;
    element.textContent = text;
    if (label) { element.setAttribute("aria-label", label); }
    element.addEventListener("click", onClick);
    return element;
  }

  // A restored device still in its veto window (GET /restoration pending_devices).
  function pendingDevice(id) {
    const list = restoration && Array.isArray(restoration.pending_devices) ? restoration.pending_devices : [];
    const found = list.find((d) => d.id === id);
    return found && new Date(found.pending_until).getTime() > Date.now() ? found : null;
  }

  // force: also while a name is being edited (the open form would be lost).
  function renderDevices(force) {
    if (renaming && !force) { return; }
    const ul = $("devices");
    ul.replaceChildren();
    for (const device of devices) {
      const waiting = pendingDevice(device.id);
      const li = document.createElement("li");
      li.dataset.deviceId = device.id;
      li.dataset.thisDevice = device.this_device ? "true" : "false";
      li.dataset.pending = waiting ? "true" : "false";
      const name = document.createElement("div");
      name.className = "name";
      name.textContent = device.name;
      if (device.this_device) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = msg("this_device");
        name.append(badge);
      }
      if (waiting) {
        const badge = document.createElement("span");
        badge.className = "badge badge-pending";
        badge.textContent = msg("pending_badge");
        name.append(badge);
      }
      const kind = document.createElement("div");
      kind.className = "meta";
      kind.textContent = [
        kindLabel(device.kind),
        messages["via_" + device.enrolled_via] ? msg("via_" + device.enrolled_via) : device.enrolled_via,
      ].join(" · ");
      const times = document.createElement("div");
      times.className = "meta";
      times.textContent = msg("added", { date: formatDate(device.created_at) }) + " · "
        + (device.last_used_at ? msg("last_used", { date: formatDate(device.last_used_at) }) : msg("never_used"));
      li.append(renaming === device.id ? renameForm(device) : name, kind, times);
      if (waiting) {
        const until = document.createElement("div");
        until.className = "meta pending";
        until.textContent = msg("pending_until", { date: formatDate(waiting.pending_until) });
        li.append(until);
      }
      const actions = document.createElement("div");
      actions.className = "actions";
      actions.append(button("rename-device", msg("rename"), () => startRename(device),
        msg("rename_named", { name: device.name })));
      if (waiting && !device.this_device) {
        actions.append(button("refuse-device danger", msg("refuse"), () => refuseDevice(device, "devices-result"),
          msg("refuse_named", { name: device.name })));
      }
      actions.append(button("delete-device danger", msg("delete"), () => askDelete(device),
        msg("delete_named", { name: device.name })));
      li.append(actions);
      ul.append(li);
    }
  }

  async function refreshDevices() {
    if (!state) { return; }
    const data = await api("GET", "/devices");
    devices = Array.isArray(data.devices) ? data.devices : [];
    devicesLoaded = true;
    if (renaming && !devices.some((d) => d.id === renaming)) { renaming = null; }
    renderDevices();
    renderNotices();
  }

  // --- renaming (POST /devices/{id}/rename: the token suffices) -----------------------

  function renameForm(device) {
    const form = document.createElement("form");
    form.className = "rename-form";
    form.noValidate = true;
    const label = document.createElement("label");
    label.htmlFor = "rename-" + device.id;
    label.textContent = msg("rename_label");
    const input = document.createElement("input");
    input.id = "rename-" + device.id;
    input.className = "rename-input";
    input.maxLength = 100;
    input.autocomplete = "off";
    input.value = device.name;
    const save = button("rename-save primary", msg("save"), () => undefined);
    save.type = "submit";
    const cancel = button("rename-cancel link", msg("cancel"), () => { renaming = null; renderDevices(true); });
    form.append(label, input, save, cancel);
    form.addEventListener("submit", (event) => { event.preventDefault(); saveRename(device, input.value); });
    return form;
  }

  function startRename(device) {
    renaming = device.id;
    setText("devices-result", "");
    renderDevices(true);
    const input = $("devices").querySelector("input.rename-input");
    if (input) { input.focus(); input.select(); }
  }

  async function saveRename(device, value) {
    const name = String(value).trim().replace(/\s+/g, " ").slice(0, 100);
    if (!name) { setText("devices-result", msg("device_name_needed"), { error: true }); return; }
    try {
      const result = await api("POST", "/devices/" + quote(device.id) + "/rename", { name });
      const renamed = result.device || { ...device, name };
      devices = devices.map((d) => (d.id === device.id ? { ...d, ...renamed } : d));
      if (state && device.id === state.deviceId) {
        state.name = renamed.name;
        save();
        showAccountLine();
      }
      renaming = null;
      renderDevices(true);
      setText("devices-result", msg("device_renamed", { name: renamed.name }), { ok: true });
    } catch (error) {
      if (state) { setText("devices-result", describe(error), { error: true }); }
    }
  }

  // --- deleting (a signed action) -----------------------------------------------------

  function askDelete(device) {
    deleting = device;
    setText("devices-result", "");
    setText("delete-dialog-text", msg("delete_question", { name: device.name }));
    $("delete-this-warning").hidden = !device.this_device;
    // The last device: without another one, nobody can confirm sign-ins.
    $("delete-last-warning").hidden = devices.length > 1;
    $("delete-confirm").disabled = false;
    for (const id of ["delete-reason-lost", "delete-reason-unused"]) { $(id).checked = false; }
    $("delete-sign-out").checked = false;
    signOutTouched = false;
    const dialog = $("delete-dialog");
    if (typeof dialog.showModal === "function") {
      dialog.showModal();
      $("delete-cancel").focus();
    } else if (window.confirm(msg("delete_question", { name: device.name }))) {
      confirmDelete();
    }
  }

  function closeDeleteDialog() {
    const dialog = $("delete-dialog");
    if (dialog.open) { dialog.close(); }
  }

  async function confirmDelete() {
    const device = deleting;
    if (!device || !state) { closeDeleteDialog(); return; }
    $("delete-confirm").disabled = true;
    // The reason and the choice are signed with the action (docs/device-api.md).
    const chosen = document.querySelector("input[name=delete-reason]:checked");
    const signOut = $("delete-sign-out").checked;
    const extra = { sign_out: signOut };
    if (chosen) { extra.reason = chosen.value; }
    try {
      const signed = await signedAction("delete_device", {
        device: device.id, ...(chosen ? { reason: chosen.value } : {}), sign_out: signOut ? "yes" : "no",
      });
      const result = await api("POST", "/devices/" + quote(device.id) + "/delete", { ...signed, ...extra });
      closeDeleteDialog();
      deleting = null;
      if (device.this_device || device.id === state.deviceId) {
        wipe(msg("this_device_deleted"));
        return;
      }
      setText("devices-result", msg("device_deleted", { name: device.name })
        + (result.signed_out ? " " + msg("signed_out_everywhere") : ""), { ok: true });
      await refreshAll();
    } catch (error) {
      closeDeleteDialog();
      if (state) { setText("devices-result", describe(error), { error: true }); }
    }
  }

  // "Lost or stolen" ticks "sign out everywhere" (the default for that reason)
  // unless the box was set by hand.
  let signOutTouched = false;

  function reasonChanged(event) {
    if (!signOutTouched && event.target.checked) {
      $("delete-sign-out").checked = event.target.value === "lost_or_stolen";
    }
  }

  // --- sessions (GET /sessions; ending one or all: the token suffices) ----------------

  let sessions = [];

  function confirmedBy(session) {
    const by = session.confirmed_by || {};
    if (by.method === "device") {
      return by.name ? msg("confirmed_device", { name: by.name }) : msg("confirmed_a_device");
    }
    if (by.method === "passkey") {
      return by.name ? msg("confirmed_passkey", { name: by.name }) : msg("confirmed_a_passkey");
    }
    return msg("confirmed_password");
  }

  function renderSessions() {
    const ul = $("sessions");
    ul.replaceChildren();
    for (const session of sessions) {
      const browser = session.browser || msg("unknown_browser");
      const li = document.createElement("li");
      li.dataset.sid = session.sid;
      const name = document.createElement("div");
      name.className = "name session-browser";
      name.textContent = browser;
      const where = document.createElement("div");
      where.className = "meta session-where";
      where.textContent = [session.ip ? msg("session_where", { ip: session.ip }) : "", session.place || ""]
        .filter(Boolean).join(", ");
      const times = document.createElement("div");
      times.className = "meta";
      times.textContent = msg("session_times", {
        start: formatDate(session.started_at), active: formatDate(session.last_active_at),
      });
      const confirmed = document.createElement("div");
      confirmed.className = "meta session-confirmed";
      confirmed.textContent = confirmedBy(session);
      li.append(name, where, times, confirmed);
      const apps = Array.isArray(session.apps) ? session.apps.map((a) => a.name) : [];
      if (apps.length) {
        const line = document.createElement("div");
        line.className = "meta session-apps";
        line.textContent = msg("session_apps", { apps: apps.join(", ") });
        li.append(line);
      }
      const actions = document.createElement("div");
      actions.className = "actions";
      actions.append(button("end-session danger", msg("end_session"), () => endSession(session),
        msg("end_session_named", { browser })));
      li.append(actions);
      ul.append(li);
    }
    $("sessions-empty").hidden = sessions.length > 0;
    $("sessions-end-all").hidden = sessions.length === 0;
  }

  async function refreshSessions() {
    if (!state) { return; }
    const data = await api("GET", "/sessions");
    sessions = Array.isArray(data.sessions) ? data.sessions : [];
    renderSessions();
  }

  async function endSession(session) {
    try {
      await api("POST", "/sessions/" + quote(session.sid) + "/end");
      setText("sessions-result", msg("session_ended"), { ok: true });
    } catch (error) {
      if (state) { setText("sessions-result", describe(error), { error: true }); }
    }
    await refreshSessions().catch(() => undefined);
  }

  async function endAllSessions() {
    try {
      const result = await api("POST", "/sessions/end-all");
      setText("sessions-result", msg("sessions_ended", { count: result.ended }), { ok: true });
    } catch (error) {
      if (state) { setText("sessions-result", describe(error), { error: true }); }
    }
    await refreshSessions().catch(() => undefined);
  }

  // A restored device in its veto window: refuse it (a signed action). Code 1
  // was shown on it, so restoration usually has to be activated again.
  async function refuseDevice(device, resultId) {
    if (!state) { return; }
    setText(resultId, msg("unlock"));
    try {
      const signed = await signedAction("refuse_device", { device: device.id });
      const result = await api("POST", "/restoration/devices/" + quote(device.id) + "/refuse", signed);
      setText(resultId, msg(result.restoration_active ? "device_refused" : "device_refused_code_void",
        { name: device.name }), { ok: true });
      await refreshAll();
    } catch (error) {
      if (state) { setText(resultId, describe(error), { error: true }); }
    }
  }

  // --- notices (GET /notices): a restoration started, a device added or removed --------

  const NOTICE_TYPES = ["restore_started", "device_added", "device_restored", "device_removed"];
  let notices = [];
  let noticesShown = 0;

  async function refreshNotices() {
    if (!state) { return; }
    const data = await api("GET", "/notices");
    notices = Array.isArray(data.notices) ? data.notices : [];
    renderNotices();
  }

  function renderNotices() {
    const ul = $("notices");
    ul.replaceChildren();
    const dismissed = (state && Array.isArray(state.dismissedNotices)) ? state.dismissedNotices : [];
    const shown = notices.filter((n) => n && NOTICE_TYPES.includes(n.type) && !dismissed.includes(n.id));
    for (const notice of shown) {
      const about = notice.device && typeof notice.device === "object" ? notice.device : {};
      const li = document.createElement("li");
      li.dataset.noticeId = notice.id;
      li.dataset.noticeType = notice.type;
      const text = document.createElement("p");
      const facts = {
        name: about.name || "", kind: kindLabel(about.kind),
        ip: (notice.ip || msg("unknown_ip")) + (notice.location ? " (" + notice.location + ")" : ""),
        time: formatDate(notice.created_at, timeFormat),
      };
      const advice = document.createElement("p");
      advice.className = "meta";
      const actions = document.createElement("div");
      actions.className = "actions";
      if (notice.type === "restore_started") {
        text.textContent = msg("notice_restore_started", facts);
        // Someone knows code 1 (and asked for code 2): a new code 1 stops them.
        advice.textContent = msg("notice_restore_started_advice");
        if (restoration && restoration.active) {
          actions.append(button("notice-new-code", msg("new_code"), () => { closeApproval(); askRegenerate(); }));
        }
      } else if (notice.type === "device_removed") {
        // Gone already; whoever did it can manage the devices: check the list.
        const by = notice.by_device && typeof notice.by_device === "object" ? notice.by_device : null;
        text.textContent = msg(notice.refused ? "notice_device_refused" : "notice_device_removed",
          { ...facts, by: removedBy(notice, about, by) });
        advice.textContent = msg("notice_removed_not_me");
      } else {
        text.textContent = notice.type === "device_added"
          ? msg("notice_device_added", { ...facts, how: msg("via_" + notice.via) })
          : msg("notice_device_restored", facts);
        const listed = devices.find((d) => d.id === about.id);
        const waiting = listed ? pendingDevice(listed.id) : null;
        if (waiting) {
          advice.textContent = msg("notice_pending", { date: formatDate(waiting.pending_until) });
          actions.append(button("refuse-device danger", msg("refuse"), () => refuseDevice(listed, "notices-result"),
            msg("refuse_named", { name: listed.name })));
        } else if (listed) {
          advice.textContent = msg("notice_not_me");
          actions.append(button("remove-device danger", msg("remove_device"), () => askDelete(listed)));
        } else if (devicesLoaded) {
          advice.textContent = msg("notice_device_gone");
        }
      }
      actions.append(button("dismiss-notice", msg("notice_ok"), () => dismissNotice(notice.id)));
      li.append(text, advice, actions);
      ul.append(li);
    }
    noticesShown = shown.length;
    $("notices-section").hidden = !sectionsVisible || noticesShown === 0;
  }

  // Who removed the device of a device_removed notice (docs/device-api.md "Notices").
  function removedBy(notice, about, by) {
    if (notice.removed_by === "device" && by) {
      if (by.id === about.id) { return msg("removed_by_itself"); }
      if (state && by.id === state.deviceId) { return msg("removed_by_this_device"); }
      return msg("removed_by_device", { name: by.name || "" });
    }
    if (notice.removed_by === "account_page") { return msg("removed_on_account_page"); }
    return msg("removed_by_administrator");
  }

  // Read: not shown here again (the server keeps notices for a week).
  function dismissNotice(id) {
    if (!state) { return; }
    state.dismissedNotices = [...(state.dismissedNotices || []), id].slice(-50);
    save();
    renderNotices();
  }

  // --- "Back up your identity" (restoration settings) ---------------------------------

  let restoration = null; // the last GET /restoration
  let backupFlow = null; // null | "email" | "confirm" | "code" | "regenerate"
  let activationId = null;
  let promptAsked = false; // "Back up your identity?" was shown in this page

  async function refreshRestoration({ prompt = false } = {}) {
    if (!state) { return; }
    restoration = await api("GET", "/restoration");
    renderRestoration();
    renderDevices();
    renderNotices();
    if (prompt) { maybePromptBackup(); }
  }

  function refreshAll() {
    return Promise.all([refreshDevices(), refreshRestoration(), refreshNotices(), refreshSessions()]);
  }

  function renderRestoration() {
    if (!restoration) { return; }
    $("restoration-section").dataset.restoration = restoration.active ? "active" : "inactive";
    let text;
    if (restoration.active) {
      text = msg("backup_active", { date: formatDate(restoration.activated_at), email: restoration.email_masked || "" });
    } else if (restoration.email_masked) {
      text = msg("backup_inactive", { email: restoration.email_masked });
    } else {
      text = msg("backup_inactive_no_email");
    }
    setText("restoration-status", text);
    $("restoration-activate").hidden = restoration.active || backupFlow !== null;
    $("restoration-regenerate").hidden = !restoration.active || backupFlow !== null;
  }

  function setBackupFlow(flow) {
    backupFlow = flow;
    $("restoration-email-form").hidden = flow !== "email";
    $("restoration-confirm-form").hidden = flow !== "confirm";
    $("restoration-code-box").hidden = flow !== "code";
    $("restoration-regenerate-confirm").hidden = flow !== "regenerate";
    $("restoration-cancel").hidden = flow !== "email" && flow !== "confirm";
    if (flow !== "code") {
      setText("restoration-code", ""); // code 1 leaves the page
      setText("restoration-code-note", "");
    }
    if (flow === null) { activationId = null; }
    renderRestoration();
  }

  // SHOW, or "Activate": the account's address is used; one without an address gives one first.
  function startActivation() {
    setText("restoration-result", "");
    if (restoration && !restoration.active && restoration.email_masked === null) {
      setBackupFlow("email");
      $("restoration-email").focus();
      return;
    }
    activateRestoration(undefined);
  }

  function submitEmail(event) {
    event.preventDefault();
    const email = $("restoration-email").value.trim();
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
      setText("restoration-result", msg("email_invalid"), { error: true });
      $("restoration-email").focus();
      return;
    }
    activateRestoration(email);
  }

  // The e-mail address (or "") is part of what is signed.
  async function activateRestoration(email) {
    setText("restoration-result", msg("unlock"));
    busy(["restoration-activate", "restoration-email-save"], true);
    try {
      const signed = await signedAction("activate_restoration", { email: email === undefined ? "" : email });
      const result = await api("POST", "/restoration/activation", email === undefined ? signed : { ...signed, email });
      if (result.status === "email_confirmation_required") {
        setBackupFlow("confirm");
        activationId = result.activation_id;
        setText("restoration-result", "");
        setText("restoration-confirm-line", msg("code_sent_email", { destination: result.email_masked || "" }));
        $("restoration-email-code").value = "";
        $("restoration-email-code").focus();
      } else {
        showCode1(result.restoration_code, false);
      }
    } catch (error) {
      if (!state) { return; }
      if (error.code === "email_required") {
        setBackupFlow("email");
        $("restoration-email").focus();
      } else if (error.code === "restoration_already_active") {
        setBackupFlow(null);
        refreshRestoration().catch(() => undefined);
      }
      setText("restoration-result", describe(error), { error: true });
    } finally {
      busy(["restoration-activate", "restoration-email-save"], false);
    }
  }

  async function confirmEmailCode(event) {
    event.preventDefault();
    if (!activationId) { return; }
    const code = $("restoration-email-code").value.trim();
    if (!code) {
      setText("restoration-result", msg("email_code_needed"), { error: true });
      $("restoration-email-code").focus();
      return;
    }
    busy(["restoration-confirm"], true);
    try {
      const result = await api("POST", "/restoration/activation/" + quote(activationId) + "/confirm", { code });
      showCode1(result.restoration_code, false);
    } catch (error) {
      if (!state) { return; }
      if (error.code === "wrong_code") {
        $("restoration-email-code").select();
      } else if (error.code === "too_many_attempts" || error.code === "invalid_activation") {
        setBackupFlow(null); // void: activate again
      }
      setText("restoration-result", describe(error), { error: true });
    } finally {
      busy(["restoration-confirm"], false);
    }
  }

  // Code 1, once: in this answer and nowhere else. Gone with "I have written it down".
  function showCode1(code, replaced) {
    setBackupFlow("code");
    setText("restoration-result", "");
    setText("restoration-code", code);
    setText("restoration-code-note", replaced ? msg("code1_replaced") : "");
    $("restoration-code-done").focus();
    refreshRestoration().catch(() => undefined);
  }

  function codeWrittenDown() {
    setBackupFlow(null);
    setText("restoration-result", msg("backup_done"), { ok: true });
  }

  function askRegenerate() {
    setText("restoration-result", "");
    setBackupFlow("regenerate");
    $("restoration-title").focus();
    $("restoration-regenerate-no").focus();
  }

  async function regenerateCode() {
    busy(["restoration-regenerate-yes"], true);
    setText("restoration-result", msg("unlock"));
    try {
      const signed = await signedAction("regenerate_restoration_code", {});
      const result = await api("POST", "/restoration/code", signed);
      showCode1(result.restoration_code, true);
    } catch (error) {
      if (!state) { return; }
      setBackupFlow(null);
      setText("restoration-result", describe(error), { error: true });
      if (error.code === "restoration_not_active") { refreshRestoration().catch(() => undefined); }
    } finally {
      busy(["restoration-regenerate-yes"], false);
    }
  }

  function cancelBackupFlow() {
    setBackupFlow(null);
    setText("restoration-result", "");
  }

  // "Back up your identity?" from the sixth confirmed sign-in, until restoration is
  // active or NOT NOW was chosen (the server keeps that: never asked again).
  function maybePromptBackup() {
    if (!restoration || !restoration.prompt_backup || promptAsked || backupFlow !== null) { return; }
    if (current && !answered) { return; } // not over an open request
    const dialog = $("backup-prompt");
    if (dialog.open || typeof dialog.showModal !== "function") { return; }
    promptAsked = true;
    dialog.showModal();
    $("backup-show").focus();
  }

  function closePrompt() {
    const dialog = $("backup-prompt");
    if (dialog.open) { dialog.close(); }
  }

  function promptShow() {
    closePrompt();
    closeApproval();
    $("restoration-title").focus();
    startActivation();
  }

  async function promptNotNow() {
    closePrompt();
    try {
      await api("POST", "/restoration/prompt-dismissed");
      if (restoration) { restoration.prompt_backup = false; }
    } catch (error) {
      /* asked again when the app next opens */
    }
  }

  // This device is gone: forget what the main screen showed.
  function forgetMain() {
    closePrompt();
    closeDeleteDialog();
    devices = [];
    devicesLoaded = false;
    notices = [];
    restoration = null;
    renaming = null;
    deleting = null;
    promptAsked = false;
    setBackupFlow(null);
    setText("restoration-result", "");
    $("restoration-activate").hidden = true;
    $("restoration-regenerate").hidden = true;
    delete $("restoration-section").dataset.restoration;
    $("devices").replaceChildren();
    sessions = [];
    renderSessions();
    renderNotices();
  }

  // --- push, and polling while open ----------------------------------------------------

  let registration = null;

  async function registerServiceWorker() {
    if (!("serviceWorker" in navigator)) { return null; }
    try {
      registration = await navigator.serviceWorker.register(config.serviceWorker, { scope: config.scope });
    } catch (error) {
      registration = null;
    }
    return registration;
  }

  function withTimeout(promise, ms) {
    return Promise.race([promise, new Promise((resolve, reject) => setTimeout(() => reject(new Error("timeout")), ms))]);
  }

  function sameKey(a, b) {
    if (!a) { return false; }
    const x = new Uint8Array(a);
    return x.length === b.length && x.every((v, i) => v === b[i]);
  }

  function pushStatus(key, askable) {
    setText("push-status", msg(key));
    $("push-enable").hidden = !askable;
  }

  // Subscribe for Web Push once notifications are allowed. Without a push
  // service (or permission) the page keeps polling while it is open.
  async function setupPush(userAsked) {
    if (!state) { return; }
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      pushStatus("push_unavailable", false);
      return;
    }
    if (!registration && !(await registerServiceWorker())) {
      pushStatus("push_unavailable", false);
      return;
    }
    let permission = Notification.permission;
    if (permission === "default" && userAsked) {
      try { permission = await Notification.requestPermission(); } catch (error) { permission = "default"; }
    }
    if (permission === "denied") { pushStatus("push_denied", false); return; }
    if (permission !== "granted") { pushStatus("push_ask", true); return; }
    try {
      const ready = await withTimeout(navigator.serviceWorker.ready, 10000);
      const key = fromB64url(state.vapidPublicKey || config.vapidPublicKey);
      let subscription = await ready.pushManager.getSubscription();
      if (subscription && !sameKey(subscription.options.applicationServerKey, key)) {
        await subscription.unsubscribe();
        subscription = null;
      }
      if (!subscription) {
        subscription = await ready.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      }
      const json = subscription.toJSON();
      if (state && state.pushEndpoint !== json.endpoint) {
        await api("PUT", "/push-subscription", { endpoint: json.endpoint, keys: json.keys });
        state.pushEndpoint = json.endpoint;
        save();
      }
      pushStatus("push_on", false);
    } catch (error) {
      if (state) { pushStatus("push_unavailable", false); }
    }
  }

  function unsubscribePush() {
    if (!("serviceWorker" in navigator)) { return; }
    navigator.serviceWorker.getRegistration(config.scope)
      .then((found) => (found && found.pushManager ? found.pushManager.getSubscription() : null))
      .then((subscription) => (subscription ? subscription.unsubscribe() : null))
      .catch(() => undefined);
  }

  let pollTimer = null;
  let polls = 0;

  function startPolling() {
    stopPolling();
    pollTimer = setTimeout(poll, delay());
  }

  function stopPolling() {
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  }

  function delay() {
    return document.hidden ? HIDDEN_POLL_MS : (config.pollSeconds || 4) * 1000;
  }

  async function poll() {
    pollTimer = null;
    if (!state) { return; }
    polls += 1;
    try {
      await refreshApprovals();
      if (polls % DEVICES_EVERY === 0) { await refreshAll(); }
    } catch (error) {
      /* a network failure: try again at the next turn; a revoked device was wiped */
    }
    if (state && !pollTimer) { pollTimer = setTimeout(poll, delay()); }
  }

  function pollNow() {
    if (!state) { return; }
    stopPolling();
    poll();
  }

  // --- links: #code=..., ?code=..., #approval=... --------------------------------------

  function takeLink() {
    const url = new URL(location.href);
    const hash = new URLSearchParams(url.hash.replace(/^#/, ""));
    const code = hash.get("code") || url.searchParams.get("code");
    const approval = hash.get("approval");
    const restore = hash.has("restore") ? hash.get("restore") : null;
    if (code || approval || restore !== null || url.searchParams.has("code")) {
      // Keep the binding code out of the history and of later links.
      url.searchParams.delete("code");
      url.hash = "";
      history.replaceState(null, "", url.pathname + url.search);
    }
    return { code, approval, restore };
  }

  function followLink() {
    const link = takeLink();
    if (link.code) {
      if (state) {
        setText("app-message", msg("already_enrolled"));
      } else {
        $("binding-code").value = link.code;
        $("binding-start").focus();
      }
    }
    if (link.restore !== null) {
      if (state) {
        setText("app-message", msg("already_enrolled"));
      } else {
        openRestore(link.restore.slice(0, 254));
      }
    }
    if (link.approval && state) { openApproval(link.approval); }
  }

  // --- start --------------------------------------------------------------------------

  function start() {
    $("device-name").value = guessDeviceName();
    $("enrol-password-form").addEventListener("submit", startWithPassword);
    $("enrol-binding-form").addEventListener("submit", startWithBindingCode);
    $("enrol-confirm-form").addEventListener("submit", completeEnrolment);
    $("enrol-restart").addEventListener("click", resetEnrolment);
    $("approval-form").addEventListener("submit", (event) => { event.preventDefault(); answer("approve", false); });
    $("deny").addEventListener("click", () => answer("deny", false));
    $("deny-fraud").addEventListener("click", () => answer("deny", true));
    $("approval-close").addEventListener("click", () => { closeApproval(); pollNow(); });
    $("delete-confirm").addEventListener("click", confirmDelete);
    for (const id of ["delete-reason-lost", "delete-reason-unused"]) { $(id).addEventListener("change", reasonChanged); }
    $("delete-sign-out").addEventListener("change", () => { signOutTouched = true; });
    $("sessions-end-all").addEventListener("click", endAllSessions);
    $("delete-cancel").addEventListener("click", () => { deleting = null; closeDeleteDialog(); });
    $("push-enable").addEventListener("click", () => setupPush(true));
    $("restore-open").addEventListener("click", () => openRestore(""));
    $("restore-other-open").addEventListener("click", openOtherServer);
    $("restore-start-form").addEventListener("submit", startRestore);
    $("restore-code2-form").addEventListener("submit", verifyRestoreCode);
    $("restore-register").addEventListener("click", registerRestoredKey);
    $("restore-done-confirm").addEventListener("click", finishRestore);
    $("restore-restart").addEventListener("click", restartRestore);
    $("restore-cancel").addEventListener("click", () => { dropRestore(); resetEnrolment(); });
    $("restore-other-form").addEventListener("submit", restoreOnOtherServer);
    $("restore-other-cancel").addEventListener("click", resetEnrolment);
    $("restoration-activate").addEventListener("click", startActivation);
    $("restoration-regenerate").addEventListener("click", askRegenerate);
    $("restoration-regenerate-yes").addEventListener("click", regenerateCode);
    $("restoration-regenerate-no").addEventListener("click", cancelBackupFlow);
    $("restoration-email-form").addEventListener("submit", submitEmail);
    $("restoration-confirm-form").addEventListener("submit", confirmEmailCode);
    $("restoration-code-done").addEventListener("click", codeWrittenDown);
    $("restoration-cancel").addEventListener("click", cancelBackupFlow);
    $("backup-show").addEventListener("click", promptShow);
    $("backup-not-now").addEventListener("click", promptNotNow);
    window.addEventListener("hashchange", followLink);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) { pollNow(); } });
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.addEventListener("message", (event) => {
        const data = event.data || {};
        if (data.type === "approval") { pollNow(); }
        if (data.type === "notice" && state) { refreshAll().catch(() => undefined); }
        if (data.type === "open-approval" && typeof data.id === "string") { openApproval(data.id); }
      });
    }

    registerServiceWorker();
    if (state) {
      showMain();
    } else {
      showEnrol();
      const removed = localStorage.getItem(REMOVED_KEY);
      if (removed) { setText("app-message", removed); }
    }
    resumeRestore();
    if (!window.PublicKeyCredential || !navigator.credentials || !window.crypto || !crypto.subtle) {
      setText("webauthn-missing", msg("webauthn_missing"));
      $("webauthn-missing").hidden = false;
      busy(["enrol-start", "binding-start", "restore-start", "restore-verify"], true);
    }
    followLink();
  }

  start();
})();
