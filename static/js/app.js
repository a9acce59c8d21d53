// vccweb behaviour. No inline scripts (strict CSP): everything lives here.
"use strict";

function isTyping(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

// Keyboard shortcuts: "/" search, "c" call, "g" call via group, "w" wrap-up. Listed on the contact page.
document.addEventListener("keydown", (event) => {
  if (isTyping(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "/") {
    const search = document.querySelector("input[type=search]");
    if (search) {
      event.preventDefault();
      search.focus();
    }
    return;
  }
  if (event.key === "c" || event.key === "g") {
    const button = document.querySelector(`button[data-shortcut="${event.key}"]:not([disabled])`);
    if (button) {
      event.preventDefault();
      button.click();
    }
    return;
  }
  if (event.key === "w") {
    const wrapup = document.querySelector(".wrapup select");
    if (wrapup) {
      event.preventDefault();
      wrapup.scrollIntoView({ block: "center" });
      wrapup.focus();
    }
  }
});

// Announce call progress to screen readers: the panel is swapped as a whole, so a steady live region
// outside it carries the words, and only when they change.
let lastAnnounced = "";
document.addEventListener("htmx:afterSettle", () => {
  const announcer = document.getElementById("call-announcer") || document.getElementById("list-call");
  const panel = document.querySelector("[data-announce]");
  if (!announcer || !panel || announcer.id === "list-call") return;
  const words = panel.dataset.announce;
  if (words && words !== lastAnnounced) {
    lastAnnounced = words;
    announcer.textContent = words;
  }
});

// An htmx request that fails must not fail silently: say what happened where the person is looking.
function flash(message) {
  const box = document.getElementById("flash");
  if (!box) return;
  box.textContent = message;
  box.hidden = false;
}
// A form that could not be read comes back as a 400 holding the same part of the page with what to fix: show it.
document.addEventListener("htmx:beforeSwap", (event) => {
  const xhr = event.detail.xhr;
  if (xhr.status === 400 && xhr.getResponseHeader("X-Form-Errors") === "1") {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
  const status = xhr.status;
  // Refusals come back as a plain sentence meant for the person who clicked.
  if ((xhr.getResponseHeader("Content-Type") || "").startsWith("text/plain") && xhr.responseText) {
    flash(xhr.responseText.slice(0, 500));
    return;
  }
  const reasons = {
    400: "The request was refused as malformed: reload the page and try again.",
    403: "You are not allowed to do that. If you think you should be, ask an admin.",
    404: "That is no longer there: reload the page.",
  };
  flash(reasons[status] || `vccweb could not complete that (HTTP ${status}). Try again; tell an admin if it keeps happening.`);
});
document.addEventListener("htmx:sendError", () => {
  flash("vccweb could not be reached: check your connection, then try again.");
});
document.addEventListener("htmx:beforeRequest", () => {
  const box = document.getElementById("flash");
  if (box) box.hidden = true;
});

// --- Contacts: more than one new number row without a save ---------------------------------------------------
// The contact form carries an empty number row in a <template>; "Add another number" appends a copy with the
// formset's next index and counts it in TOTAL_FORMS. Without JavaScript the button stays hidden (one empty row).
function setUpAddPhone() {
  const button = document.querySelector("[data-add-phone]");
  const template = document.getElementById("phone-row-template");
  const rows = document.getElementById("phone-rows");
  const total = document.querySelector("input[name$='-TOTAL_FORMS']");
  if (!button || !template || !rows || !total) return;
  button.hidden = false;
  button.addEventListener("click", () => {
    const index = Number(total.value);
    const html = template.innerHTML.replaceAll("__prefix__", String(index));
    rows.insertAdjacentHTML("beforeend", html);
    total.value = String(index + 1);
    const input = rows.lastElementChild && rows.lastElementChild.querySelector("input[name$='-number']");
    if (input) input.focus();
  });
}
document.addEventListener("DOMContentLoaded", setUpAddPhone);
