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
//   Enrolled, #screen-main:
//   #account-line            access number and this device's name
//   #push-status             push state; #push-enable asks for notification permission
//   #approvals               li[data-approval-id] > button.open-approval; #approvals-empty
//   #approval                the open request: #approval-title #approval-client #approval-ip
//                            #approval-user-agent #approval-time #approval-expires
//                            #approval-code #approve #deny #deny-fraud #approval-result
//                            #approval-close
//   #devices                 li[data-device-id][data-this-device="true|false"] with
//                            button.delete-device; #devices-result
//   #delete-dialog           #delete-dialog-text #delete-this-warning #delete-last-warning
//                            #delete-confirm #delete-cancel
//   body[data-app-state]     "enrol" | "main" once the script has started
//
// URLs: /app/?code=K7QH-2MZD-X9TA or /app/#code=... prefill path B;
// /app/#approval=ID opens that request (the notification's link).
//
// State (localStorage "freigabe-device"): the device id, name and API token, the
// credential id and transports, the RP ID, the user, the VAPID key and the push
// endpoint last sent. The private key never leaves the authenticator. A
// "device_revoked" (or "invalid_token") answer to any call wipes it.
(function () {
  "use strict";

  const STORAGE_KEY = "freigabe-device";
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
    element.classList.toggle("error", Boolean(error && text));
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
      return this.retryAfter ? this.message + " " + msg("retry_after", { seconds: this.retryAfter }) : this.message;
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
  }

  // This device is gone (deleted, or unknown to the server): forget everything.
  function wipe(message) {
    const wasEnrolled = state !== null;
    state = null;
    localStorage.removeItem(STORAGE_KEY);
    stopPolling();
    closeApproval();
    unsubscribePush();
    showEnrol();
    if (wasEnrolled || message) { setText("app-message", message); }
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
      }
      throw error;
    }
    if (response.status !== 204 && (data === null || typeof data !== "object")) {
      throw new AppError("unexpected_response", msg("unexpected"));
    }
    return data;
  }

  const quote = encodeURIComponent;

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
    setText("account-line", msg("account", {
      access_number: state.user && state.user.access_number, name: state.name,
    }));
    refreshApprovals().catch(() => undefined);
    refreshDevices().catch(() => undefined);
    setupPush(false);
    startPolling();
  }

  function busy(ids, on) {
    for (const id of ids) { const element = $(id); if (element) { element.disabled = on; } }
  }

  // --- enrolment ----------------------------------------------------------------------

  let pending = null; // {id, publicKey, needsCode, credential}

  function resetEnrolment() {
    pending = null;
    $("enrol-paths").hidden = false;
    $("enrol-confirm-form").hidden = true;
    $("enrol-code").value = "";
    setText("enrol-status", "");
    setText("enrol-error", "");
    busy(["enrol-start", "binding-start", "enrol-complete"], false);
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
      const credential = pending.credential;
      state = {
        version: STORE_VERSION,
        server: location.origin,
        deviceId: done.device.id,
        name: done.device.name,
        token: done.device_token,
        credentialId: credential.rawId,
        transports: credential.response.transports,
        rpId: (pending.publicKey.rp && pending.publicKey.rp.id) || config.rpId,
        user: done.user,
        vapidPublicKey: done.vapid_public_key || config.vapidPublicKey,
        pushEndpoint: null,
      };
      save();
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
      meta.textContent = msg("approval_from", {
        ip: facts.ip || msg("unknown_ip"), time: formatDate(facts.created_at, timeFormat),
      });
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
    setText("approval-user-agent", facts.user_agent || "–");
    setText("approval-time", formatDate(facts.created_at, timeFormat));
    setText("approval-result", "");
    $("approval-code").value = "";
    $("approvals-section").hidden = true;
    $("devices-section").hidden = true;
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
    $("approvals-section").hidden = false;
    $("devices-section").hidden = false;
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
  let deleting = null;

  function renderDevices() {
    const ul = $("devices");
    ul.replaceChildren();
    for (const device of devices) {
      const li = document.createElement("li");
      li.dataset.deviceId = device.id;
      li.dataset.thisDevice = device.this_device ? "true" : "false";
      const name = document.createElement("div");
      name.className = "name";
      name.textContent = device.name;
      if (device.this_device) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = msg("this_device");
        name.append(badge);
      }
      const kind = document.createElement("div");
      kind.className = "meta";
      kind.textContent = [
        messages["kind_" + device.kind] ? msg("kind_" + device.kind) : device.kind,
        messages["via_" + device.enrolled_via] ? msg("via_" + device.enrolled_via) : device.enrolled_via,
      ].join(" · ");
      const times = document.createElement("div");
      times.className = "meta";
      times.textContent = msg("added", { date: formatDate(device.created_at) }) + " · "
        + (device.last_used_at ? msg("last_used", { date: formatDate(device.last_used_at) }) : msg("never_used"));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "delete-device danger";
      remove.textContent = msg("delete");
      remove.setAttribute("aria-label", msg("delete_named", { name: device.name }));
      remove.addEventListener("click", () => askDelete(device));
      li.append(name, kind, times, remove);
      ul.append(li);
    }
  }

  async function refreshDevices() {
    if (!state) { return; }
    const data = await api("GET", "/devices");
    devices = Array.isArray(data.devices) ? data.devices : [];
    renderDevices();
  }

  function askDelete(device) {
    deleting = device;
    setText("devices-result", "");
    setText("delete-dialog-text", msg("delete_question", { name: device.name }));
    $("delete-this-warning").hidden = !device.this_device;
    $("delete-last-warning").hidden = devices.length > 1;
    $("delete-confirm").disabled = false;
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
    try {
      const issued = await api("POST", "/actions/challenge", { purpose: "delete_device" });
      const challenge = await actionChallenge("delete_device", { device: device.id, nonce: issued.nonce });
      const assertion = await getAssertion(challenge);
      await api("POST", "/devices/" + quote(device.id) + "/delete", { nonce: issued.nonce, assertion });
      closeDeleteDialog();
      deleting = null;
      if (device.this_device || device.id === state.deviceId) {
        wipe(msg("this_device_deleted"));
        return;
      }
      setText("devices-result", msg("device_deleted", { name: device.name }), { ok: true });
      await refreshDevices();
    } catch (error) {
      closeDeleteDialog();
      if (state) { setText("devices-result", describe(error), { error: true }); }
    }
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
      if (polls % DEVICES_EVERY === 0) { await refreshDevices(); }
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
    if (code || approval || url.searchParams.has("code")) {
      // Keep the binding code out of the history and of later links.
      url.searchParams.delete("code");
      url.hash = "";
      history.replaceState(null, "", url.pathname + url.search);
    }
    return { code, approval };
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
    $("delete-cancel").addEventListener("click", () => { deleting = null; closeDeleteDialog(); });
    $("push-enable").addEventListener("click", () => setupPush(true));
    window.addEventListener("hashchange", followLink);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) { pollNow(); } });
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.addEventListener("message", (event) => {
        const data = event.data || {};
        if (data.type === "approval") { pollNow(); }
        if (data.type === "open-approval" && typeof data.id === "string") { openApproval(data.id); }
      });
    }

    registerServiceWorker();
    if (state) { showMain(); } else { showEnrol(); }
    if (!window.PublicKeyCredential || !navigator.credentials || !window.crypto || !crypto.subtle) {
      setText("webauthn-missing", msg("webauthn_missing"));
      $("webauthn-missing").hidden = false;
      busy(["enrol-start", "binding-start"], true);
    }
    followLink();
  }

  start();
})();
