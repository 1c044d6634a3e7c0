// The waiting page: follow the approval over Server-Sent Events, fall back to
// polling, and continue by submitting the page's own form once approved. The
// server checks the approval again when the form arrives.
(function () {
  "use strict";
  var box = document.getElementById("approval");
  var form = document.getElementById("continue-form");
  if (!box || !form || box.dataset.status !== "pending") { return; }
  var done = false;
  var countdown = document.getElementById("countdown");
  var remaining = parseInt(box.dataset.remaining, 10) || 0;

  function settle(status) {
    if (done || status === "pending") { return; }
    done = true;
    if (status === "approved") { form.submit(); } else { window.location.reload(); }
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
})();
