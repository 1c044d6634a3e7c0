// Deleting a device: "lost or stolen" ticks "also sign out everywhere this
// device confirmed a sign-in" (the default for that reason); another reason
// clears it again, unless the person set the box themselves.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("input[data-sign-out-default]");
  if (!box) { return; }
  let touched = false;
  box.addEventListener("change", () => { touched = true; });
  for (const reason of document.querySelectorAll("input[name=reason]")) {
    reason.addEventListener("change", () => {
      if (!touched && reason.checked) { box.checked = reason.value === box.dataset.signOutDefault; }
    });
  }
});
