// A page that shows a secret once (an element marked data-shown-once): leaving it by the
// language switch, another link, the back button or closing the tab first asks,
// in the browser's own words, whether to leave. Following a link marked
// data-done ("Done: to the client") leaves without asking.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  if (!document.querySelector("[data-shown-once]")) { return; }
  let asking = true;
  window.addEventListener("beforeunload", (event) => {
    if (asking) { event.preventDefault(); }
  });
  for (const done of document.querySelectorAll("a[data-done]")) {
    done.addEventListener("click", () => { asking = false; });
  }
});
