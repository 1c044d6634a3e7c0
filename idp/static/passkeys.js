// Passkeys in the browser: sign in (button and autofill in the user name
// field), confirm a sign-in, and add a passkey on the account page. Every page
// works without this script; the server verifies whatever it is sent.
//
// The server's options are WebAuthn's JSON forms with binary members in
// base64url; responses go back the same way as {"credential": ...}. Answers
// are {"redirect": url} or {"error": code, "message": text}.
(function () {
  "use strict";
  var supported = !!(window.PublicKeyCredential && navigator.credentials && window.fetch);

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = window.atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      var copy = Object.assign({}, c);
      copy.id = toBytes(c.id);
      return copy;
    });
  }

  function creationOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  function credentialJson(credential) {
    var r = credential.response;
    var response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) { response.userHandle = toText(r.userHandle); }
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      authenticatorAttachment: credential.authenticatorAttachment || undefined
    };
  }

  function csrfToken() {
    var input = document.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }

  // POST JSON; resolves with the answer, rejects with an Error carrying the
  // server's message (error.server = true).
  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRFToken": csrfToken()
      },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error(data.error_description || "");
          error.server = true;
          error.code = data.error;
          throw error;
        }
        return data;
      });
    });
  }

  function show(box, error) {
    var target = box.querySelector("#passkey-error");
    if (!target) { return; }
    var text;
    if (error && error.server && error.message) {
      text = error.message;
    } else if (error && error.name === "InvalidStateError" && box.dataset.exists) {
      text = box.dataset.exists; // excludeCredentials matched
    } else if (error && (error.name === "NotAllowedError" || error.name === "AbortError")) {
      text = box.dataset.cancelled;
    } else {
      text = box.dataset.failed;
    }
    target.textContent = text;
    target.hidden = false;
  }

  function clear(box) {
    var target = box.querySelector("#passkey-error");
    if (target) { target.hidden = true; target.textContent = ""; }
  }

  function unsupported() {
    var note = document.getElementById("passkey-unsupported");
    if (note) { note.hidden = false; }
  }

  // Runs one assertion ceremony: options, navigator.credentials.get, verify.
  function assertion(box, mediation, signal) {
    return post(box.dataset.options).then(function (json) {
      var request = { publicKey: requestOptions(json) };
      if (mediation) { request.mediation = mediation; }
      if (signal) { request.signal = signal; }
      return navigator.credentials.get(request);
    }).then(function (credential) {
      if (!credential) { throw new DOMException("no credential", "NotAllowedError"); }
      return post(box.dataset.verify, { credential: credentialJson(credential) });
    }).then(function (answer) {
      window.location.assign(answer.redirect);
    });
  }

  // --- login page: "Sign in with a passkey" and autofill --------------------------------
  var login = document.getElementById("passkey-login");
  if (login && supported) {
    var pending = null;
    var rearm = 3; // autofill offers again after the server refused a passkey, a few times
    var startAutofill = function () {
      if (!PublicKeyCredential.isConditionalMediationAvailable) { return; }
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (!available) { return; }
        var controller = new AbortController();
        pending = controller;
        assertion(login, "conditional", controller.signal).catch(function (error) {
          if (controller.signal.aborted) { return; } // replaced by the button
          pending = null;
          // The browser's own refusals (nothing chosen, not supported here)
          // end the autofill quietly; the button still works.
          if (!(error && error.server)) { return; }
          show(login, error);
          if (error.code !== "too_many_attempts" && rearm > 0) { rearm -= 1; startAutofill(); }
        });
      }).catch(function () { /* no autofill */ });
    };
    login.hidden = false;
    document.getElementById("passkey-login-button").addEventListener("click", function () {
      clear(login);
      if (pending) { pending.abort(); pending = null; }
      assertion(login, null, null).catch(function (error) { show(login, error); });
    });
    startAutofill();
  }

  // --- second factor: "Confirm with your passkey" -----------------------------------------
  var confirm = document.getElementById("passkey-confirm");
  if (confirm) {
    if (!supported) {
      unsupported();
    } else {
      var button = document.getElementById("passkey-confirm-button");
      button.hidden = false;
      button.addEventListener("click", function () {
        clear(confirm);
        button.disabled = true;
        assertion(confirm, null, null).catch(function (error) {
          show(confirm, error);
          button.disabled = false;
        });
      });
    }
  }

  // --- account page: "Add a passkey" --------------------------------------------------------
  var add = document.getElementById("passkey-add");
  if (add) {
    if (!supported) {
      unsupported();
    } else {
      add.hidden = false;
      add.addEventListener("submit", function (event) {
        event.preventDefault();
        clear(add);
        var submit = document.getElementById("add-passkey");
        submit.disabled = true;
        var name = document.getElementById("passkey-name").value;
        post(add.dataset.options, { name: name }).then(function (json) {
          return navigator.credentials.create({ publicKey: creationOptions(json) });
        }).then(function (credential) {
          if (!credential) { throw new DOMException("no credential", "NotAllowedError"); }
          return post(add.dataset.register, { credential: credentialJson(credential) });
        }).then(function (answer) {
          window.location.assign(answer.redirect);
        }).catch(function (error) {
          show(add, error);
          submit.disabled = false;
        });
      });
    }
  }
})();
