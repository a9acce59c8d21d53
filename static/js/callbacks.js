// Callbacks: choosing a "Call back …" disposition in a wrap-up brings its "Call back at" field forward.
// Without this script the field is there all the same (the call bar's behind "Call back…").
"use strict";

document.addEventListener("change", (event) => {
  const select = event.target;
  if (!(select instanceof HTMLSelectElement) || select.name !== "disposition") return;
  const form = select.form;
  const fields = form && form.querySelector("[data-callback-fields]");
  if (!fields) return;
  const wanted = Boolean(select.selectedOptions[0] && select.selectedOptions[0].hasAttribute("data-callback"));
  fields.classList.toggle("is-prominent", wanted);
  const details = form.querySelector("[data-callback-details]");
  if (details && wanted) details.open = true;
  const at = fields.querySelector("[data-callback-at]");
  if (wanted && at && !at.value) at.focus();
});
