// The waiting page: follow the approval over Server-Sent Events, fall back to
// polling, and continue by submitting the page's own form once approved. The
// server checks the approval again when the form arrives. "Continue" stays
// disabled until the device has answered (without JavaScript it is always
// there, and the server says what is still missing).
//
// After a limit: count down to the time the page states, then bring back
// "Send a new request".
(function () {
  "use strict";

  function retryCountdown() {
    var wait = document.getElementById("retry-wait");
    var retryForm = document.getElementById("retry-form");
    if (!wait) { return; }
    var left = parseInt(wait.dataset.retryIn, 10) || 0;
    var ends = Date.now() + left * 1000;
    var line = document.getElementById("retry-countdown");
    var shown = document.getElementById("retry-left");
    var time = wait.querySelector("time");
    if (time) {
      // The local time instead of UTC (the server does not know the zone).
      var at = new Date(time.getAttribute("datetime"));
      var local = at.toLocaleTimeString(document.documentElement.lang || undefined,
                                        { hour: "2-digit", minute: "2-digit" });
      time.textContent = local;
    }
    if (line) { line.hidden = false; }

    function tick() {
      var seconds = Math.max(0, Math.ceil((ends - Date.now()) / 1000));
      if (shown) {
        var s = seconds % 60;
        shown.textContent = Math.floor(seconds / 60) + ":" + (s < 10 ? "0" : "") + s;
      }
      if (seconds > 0) { window.setTimeout(tick, 250); return; }
      wait.hidden = true;
      var error = document.getElementById("approval-error");
      if (error) { error.hidden = true; }
      // (The ticking countdown is not announced every second; the button that
      // comes back takes the focus, so a screen reader hears it.)
      if (retryForm) {
        retryForm.hidden = false;
        var again = document.getElementById("retry");
        if (again) { again.focus(); }
      }
    }
    tick();
  }

  function follow() {
    var box = document.getElementById("approval");
    var form = document.getElementById("continue-form");
    if (!box || !form || box.dataset.status !== "pending") { return; }
    var button = document.getElementById("continue");
    var hint = document.getElementById("continue-hint");
    if (button) {
      button.disabled = true;
      if (hint) { hint.hidden = false; button.setAttribute("aria-describedby", "continue-hint"); }
    }
    var done = false;
    var countdown = document.getElementById("countdown");
    var remaining = parseInt(box.dataset.remaining, 10) || 0;

    function settle(status) {
      if (done || status === "pending") { return; }
      done = true;
      if (status === "approved") {
        if (button) { button.disabled = false; }
        if (hint) { hint.hidden = true; }
        form.submit();
      } else {
        window.location.reload();
      }
    }

    var timer = window.setInterval(function () {
      remaining = Math.max(0, remaining - 1);
      if (countdown) { countdown.textContent = countdown.textContent.replace(/\d+/, String(remaining)); }
      if (remaining === 0) { window.clearInterval(timer); window.setTimeout(function () { settle("expired"); }, 2500); }
    }, 1000);

    function poll() {
      if (done) { return; }
      fetch(box.dataset.statusUrl, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.json(); })
        .then(function (body) { settle(body.status); })
        .catch(function () { /* try again */ })
        .then(function () { if (!done) { window.setTimeout(poll, 2000); } });
    }

    if (window.EventSource) {
      var source = new EventSource(box.dataset.events);
      source.addEventListener("status", function (event) {
        settle(JSON.parse(event.data).status);
        if (done) { source.close(); }
      });
      source.onerror = function () { source.close(); window.setTimeout(poll, 1000); };
    } else {
      poll();
    }
  }

  retryCountdown();
  follow();
})();
