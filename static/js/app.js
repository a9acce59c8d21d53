// vccweb behaviour. No inline scripts (strict CSP): everything lives here.
"use strict";

function isTyping(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

// Keyboard shortcuts: "/" search, "c" call, "g" call via group, "w" wrap-up. Listed on the contact page.
document.addEventListener("keydown", (event) => {
  if (isTyping(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "/") {
    event.preventDefault();
    const search = document.querySelector("input[type=search]");
    if (search) {
      search.focus();
    } else if (document.body.dataset.searchUrl) {
      window.location.assign(`${document.body.dataset.searchUrl}#search`);  // the contact list, its box focused
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
    // The panel's wrap-up first (the page's own call), else the call bar's.
    const wrapup = document.querySelector(".wrapup select") || document.querySelector(".bar-wrapup select");
    if (wrapup) {
      event.preventDefault();
      wrapup.scrollIntoView({ block: "center" });
      wrapup.focus();
    }
  }
});

// Say what a search or a filter found, in a few words: the results are swapped as a whole at each keystroke, so they
// are in no live region (a screen reader would read the whole table); #results-status, steady, says the count.
let shownResults = document.getElementById("results"); // the page's own: not announced
document.addEventListener("htmx:afterSettle", () => {
  const results = document.getElementById("results");
  const status = document.getElementById("results-status");
  if (!results || !status || results === shownResults) return; // other parts (the call bar, a panel) settle too
  shownResults = results;
  status.textContent = results.dataset.status || "";
});

// Announce call progress to screen readers: the panel is swapped as a whole at each poll and its talk timer ticks, so
// it is in no live region (it would be read out again and again); a steady one outside it, #call-announcer on each page
// that shows a panel, carries the words, and only when they change.
let lastAnnounced = "";
document.addEventListener("htmx:afterSettle", () => {
  const announcer = document.getElementById("call-announcer");
  const panel = document.querySelector("[data-announce]");
  if (!announcer || !panel) return;
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
  // On a phone the call bar can fill the screen, leaving the box (under it) out of sight: bring it into view, by
  // as little as it takes (nothing when it is in view), so the form that was sent stays in sight too.
  box.scrollIntoView({ block: "nearest" });
}
// A form that could not be read comes back as a 400 holding the same part of the page with what to fix: show it.
document.addEventListener("htmx:beforeSwap", (event) => {
  const xhr = event.detail.xhr;
  if (xhr.status === 400 && xhr.getResponseHeader("X-Form-Errors") === "1") {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
// A part that polls (a call panel) is not replaced while a press is going on inside it: the release would land on
// the new part, and the click, on neither, would be lost. Its next poll brings what changed.
let pressedIn = null;
document.addEventListener("pointerdown", (event) => { pressedIn = event.target; }, true);
for (const end of ["click", "pointercancel"]) {
  document.addEventListener(end, () => { pressedIn = null; }, true);
}
document.addEventListener("pointerup", () => {
  setTimeout(() => { pressedIn = null; }, 0);  // after the click it makes, if any; or at once if it makes none
}, true);
document.addEventListener("htmx:beforeSwap", (event) => {
  const part = event.detail.target;
  const polls = /\bevery\b/.test(event.detail.elt.getAttribute("hx-trigger") || "");
  if (polls && pressedIn instanceof Node && part instanceof Element && part.contains(pressedIn)) {
    event.detail.shouldSwap = false;
  }
});
// htmx gives the focus back to the element of the focused one's id after a swap (a part that polls has ids on what can
// take the focus). A button disabled while its press is on the way (hx-disabled-elt) has lost the focus by then: the
// element of its id in what came (Resume recording after Pause) takes it, unless the person has moved it meanwhile.
let pressedFocus = null;
document.addEventListener("htmx:beforeRequest", (event) => {
  const active = document.activeElement;
  if (active instanceof HTMLElement && active.id && event.detail.elt instanceof Element && event.detail.elt.contains(active)) {
    pressedFocus = active;
  }
});
document.addEventListener("htmx:afterSettle", () => {
  if (!pressedFocus) return;
  const active = document.activeElement;
  // The pressed button, disabled, may still hold the focus for a moment: Chromium lets it go at its next frame, and a
  // part settling meanwhile (a poll) must not take that for a focus kept somewhere.
  if (active && active !== document.body && active !== pressedFocus && !active.disabled) {
    pressedFocus = null;  // the focus is somewhere: htmx kept it, or the person moved it
    return;
  }
  if (pressedFocus.isConnected && pressedFocus.disabled) return;  // its answer is still on the way
  const again = document.getElementById(pressedFocus.id);
  pressedFocus = null;
  if (again instanceof HTMLElement && !again.hasAttribute("disabled")) again.focus({ preventScroll: true });
});
// The contact page's Call buttons have no id: all of them are disabled while a click is on its way (hx-disabled-elt),
// which takes the focus from the pressed one, and stay so during the call it placed. The focus goes to the phase of
// the call's panel, the answer, just above them (it keeps it as the panel polls: it has an id); to the button again
// when the click was refused (no panel came, only a message, and the button is enabled again).
let pressedCall = null;
function focusLostFrom(button) {
  const active = document.activeElement;
  return !active || active === document.body || active === button;
}
document.addEventListener("htmx:beforeRequest", (event) => {
  const active = document.activeElement;
  const form = event.detail.elt;
  if (form instanceof HTMLFormElement && form.id === "dial-form" && active instanceof HTMLButtonElement && form.contains(active)) {
    pressedCall = active;
  }
});
document.addEventListener("htmx:afterRequest", (event) => {
  if (!pressedCall || event.detail.elt !== pressedCall.form || event.detail.successful) return;
  const button = pressedCall;
  pressedCall = null;
  if (button.isConnected && !button.disabled && focusLostFrom(button)) button.focus();
});
document.addEventListener("htmx:afterSettle", (event) => {
  if (!pressedCall || !(event.target instanceof Element) || event.target.id !== "call-slot") return;
  const button = pressedCall;
  pressedCall = null;
  const phase = event.target.querySelector(".call-panel .phase[tabindex]");
  if (phase instanceof HTMLElement && focusLostFrom(button)) phase.focus();
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
// A new action by the person clears the last message; the polls of a call going on (every 2 s) and the reloads
// other answers set off (calls-changed) leave it, or a refusal would vanish before it is read.
document.addEventListener("htmx:beforeRequest", (event) => {
  const config = event.detail.requestConfig || {};
  const byPerson = config.verb !== "get" || Boolean(config.triggeringEvent && config.triggeringEvent.isTrusted);
  if (!byPerson) return;
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

// --- The call bar (templates/calls/call_bar.html) -----------------------------------------------------------------
// Talk timers: every element with data-talk-since (ISO 8601, UTC), in the bar and in call panels, shows the talk
// time so far as m:ss, or h:mm:ss past an hour, ticking once a second.
function talkTime(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}
function tickTalkTimers() {
  const now = Date.now();
  for (const timer of document.querySelectorAll("[data-talk-since]")) {
    const since = Date.parse(timer.dataset.talkSince);
    if (!Number.isNaN(since)) timer.textContent = talkTime((now - since) / 1000);
  }
}
setInterval(tickTalkTimers, 1000);
document.addEventListener("htmx:afterSettle", tickTalkTimers);

// While the person's own call is going on, every Call button is disabled and says who the call is with, instead of
// the readiness notice; when it ends they come back. The bar carries the words (data-on-call), and is the one
// place that knows: pages render the same state, and this keeps them in step as the bar refreshes. Until the bar
// has reloaded after a click, the click's answer says it (calls/call_slot.html): htmx enables the buttons again as the
// answer comes, and a second click of a quick double click would then be refused as a call of its own.
function applyOnCall(event) {
  const bar = document.getElementById("call-bar");
  if (!bar) return;
  let answers = [...document.querySelectorAll("[data-on-call-after-click]")];
  if (event && event.target === bar) {
    for (const answer of answers) answer.remove();  // the bar has reloaded: it says it from now on
    answers = [];
  }
  const words = bar.dataset.onCall || (answers.length ? answers[answers.length - 1].dataset.onCallAfterClick : "");
  document.body.toggleAttribute("data-on-call", Boolean(words));
  for (const button of document.querySelectorAll("button[data-call-button]")) {
    // Its own title is kept in data-title while the call's words stand in (a page drawn during a call has both).
    if (words && button.dataset.title === undefined) button.dataset.title = button.title;
    // A click on its way: htmx disabled its buttons until the answer (hx-disabled-elt, data-disabled-by-htmx). The
    // bar's reload settling meanwhile must not enable them, or a second click would be queued behind the first.
    button.disabled = Boolean(words) || button.hasAttribute("data-disabled-by-htmx");
    if (words) button.title = words;
    else if (button.dataset.title) button.title = button.dataset.title;
    else button.removeAttribute("title");
  }
  for (const notice of document.querySelectorAll("[data-on-call-notice]")) {
    if (words) {
      notice.textContent = words;
      notice.className = "notice";
    } else if (notice.textContent.startsWith("You are on a call with")) {
      notice.textContent = "";
      notice.className = "visually-hidden";
    }
  }
}
// The bar's wrap-up steps aside where the page shows that call's own panel, which has the full form; from the
// start where the page has asked for the panel (data-panel-for), or the page would jump as it comes.
function placeBarWrapUps() {
  for (const form of document.querySelectorAll("#call-bar .bar-wrapup")) {
    const call = form.dataset.call;
    form.hidden = Boolean(
      document.getElementById(`call-panel-${call}`) || document.querySelector(`[data-panel-for="${call}"]`),
    );
  }
}
for (const step of [applyOnCall, placeBarWrapUps]) {
  document.addEventListener("DOMContentLoaded", step);
  document.addEventListener("htmx:afterSettle", step);
}

// The parts of a page reloaded on calls-changed (data-reloads-on-change: the call bar, the timeline, the queue bar)
// replace themselves. One asked to reload while its last request is on the way waits behind it (htmx queues it on
// that element), and htmx drops it once the answer has replaced the element: the new one, drawn from what was true
// before the change, would then stay as it is (a call over is not polled). So the new one asks again, once.
const staleParts = new Set();
document.addEventListener("calls-changed", () => {
  for (const part of document.querySelectorAll("[data-reloads-on-change].htmx-request")) staleParts.add(part.id);
});
document.addEventListener("htmx:afterSettle", (event) => {
  const part = event.target;
  if (part instanceof Element && part.id && staleParts.delete(part.id)) htmx.trigger(part, "reload-stale");
});

// A change made from the bar (recording) tells the page, as the panel's answers do: the bar, the timeline and
// the panels reload. A wrap-up's answer says so itself. A form the server could not read says what to fix.
// The form is the one that asked (requestConfig.elt): the bar's poll may have swapped it away meanwhile, and htmx
// then tells its nearest ancestor still on the page instead.
document.addEventListener("htmx:afterRequest", (event) => {
  const asked = (event.detail.requestConfig && event.detail.requestConfig.elt) || event.detail.elt;
  const form = asked instanceof Element ? asked.closest("[data-bar-action]") : null;
  if (!form) return;
  const xhr = event.detail.xhr;
  if (xhr.status === 400 && xhr.getResponseHeader("X-Form-Errors") === "1") {
    const answer = new DOMParser().parseFromString(xhr.responseText, "text/html");
    const alert = answer.querySelector("[role=alert]");
    flash(alert ? alert.textContent.trim() : "That could not be saved: check the form and try again.");
    return;
  }
  if (!event.detail.successful) return;
  // The answer is the call's panel: an error in it (VCC refused the change) is said where the person looks.
  const refused = new DOMParser().parseFromString(xhr.responseText, "text/html").querySelector("p.error[role=alert]");
  if (refused) flash(refused.textContent.trim());
  if (!(xhr.getResponseHeader("HX-Trigger") || "").includes("calls-changed")) {
    htmx.trigger(document.body, "calls-changed");
  }
});

// What VCC refused of a change made from the bar (recording, a wrap-up), told by the answer's HX-Trigger on the
// body: the bar's form may be gone by then (its poll replaced it), and an event on a detached form reaches no one.
document.body.addEventListener("bar-refused", (event) => {
  if (event.detail && event.detail.message) flash(event.detail.message);
});

// The contact list's Call buttons share one form (templates/calls/contact_list.html, data-id-per-click): each
// click gets an id of its own, so every click is a call of its own (htmx disables the button until the answer, so
// one click is sent once). Made with getRandomValues: crypto.randomUUID needs HTTPS or localhost.
function newRequestId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40; // a version 4 UUID
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
document.addEventListener("htmx:configRequest", (event) => {
  const form = event.detail.elt && event.detail.elt.form;
  if (form && form.hasAttribute("data-id-per-click")) event.detail.parameters.request_id = newRequestId();
});

// A click that placed a call and did not say so (a colleague's call from the agent directory) tells the bar.
document.addEventListener("htmx:afterRequest", (event) => {
  const config = event.detail.requestConfig;
  const path = (event.detail.pathInfo && event.detail.pathInfo.requestPath) || "";
  if (!event.detail.successful || !config || config.verb !== "post" || !path.endsWith("/call/")) return;
  if ((event.detail.xhr.getResponseHeader("HX-Trigger") || "").includes("calls-changed")) return;
  htmx.trigger(document.body, "calls-changed");
});

// A call seen going on and now over (the worker or a supervisor recorded its end, and this page's poll only read
// it) tells the page once, from the element that showed it, so that the timeline, the other panels and the bar all
// say it ended; the panel that showed it is not reloaded under the person's hands.
const seenStates = new Map();
const announcedEnds = new Set();
const GOING_ON = ["requested", "live"];
function noteCallStates() {
  let source = null;
  for (const element of document.querySelectorAll(".call-panel[id^='call-panel-'], .bar-call[id^='bar-call-']")) {
    const state = element.dataset.callState;
    const callId = element.id.replace(/^(call-panel|bar-call)-/, "");
    if (GOING_ON.includes(seenStates.get(element.id)) && !GOING_ON.includes(state) && !announcedEnds.has(callId)) {
      announcedEnds.add(callId);
      source = source || element;
    }
    seenStates.set(element.id, state);
  }
  if (source) htmx.trigger(source, "calls-changed");
}
document.addEventListener("DOMContentLoaded", noteCallStates);
document.addEventListener("htmx:afterSettle", noteCallStates);

// Panels that no longer poll (the call ended) reload when a call changes elsewhere (the bar, another panel), so
// the panel, the timeline and the bar agree. A panel someone is typing in is left alone.
document.addEventListener("calls-changed", (event) => {
  const source = event.target instanceof Element ? event.target.closest(".call-panel") : null;
  for (const panel of document.querySelectorAll(".call-panel[id^='call-panel-']")) {
    const state = panel.dataset.callState;
    if (panel === source || state === "live" || state === "requested" || panel.contains(document.activeElement)) continue;
    // A wrap-up form may hold what the person typed (or a refusal saying what to fix): never reloaded under them.
    if (panel.querySelector("form.wrapup")) continue;
    const pk = panel.id.slice("call-panel-".length);
    htmx.ajax("GET", `/calls/${pk}/panel/`, { target: panel, swap: "outerHTML" });
  }
});

// --- Required input, checked before sending (the server checks it again) -------------------------------------------
// "Call anyway" needs the reason for calling a do-not-call number; "Call via group" needs a ticked group. The
// checks depend on which button was clicked, so they are made here rather than with `required` on the form.
const refused = new Set();
function refuseInput(input, message) {
  refused.add(input);
  input.setCustomValidity(message);
  input.reportValidity();
  const clear = () => {
    input.setCustomValidity("");
    input.removeEventListener("input", clear);
    input.removeEventListener("change", clear);
  };
  input.addEventListener("input", clear);
  input.addEventListener("change", clear);
}
// A click on another button starts afresh: what one button needs must not hold back the others.
document.addEventListener(
  "click",
  (event) => {
    if (!(event.target instanceof Element) || !event.target.closest("button[type=submit], button:not([type])")) return;
    for (const input of refused) input.setCustomValidity("");
    refused.clear();
  },
  true,
);
document.addEventListener(
  "submit",
  (event) => {
    const button = event.submitter;
    if (!(button instanceof HTMLButtonElement) || !event.target.contains(button)) return;
    const form = event.target;
    if (button.hasAttribute("data-needs-group")) {
      const groups = [...form.querySelectorAll("input[name=groups]")];
      if (groups.length && !groups.some((box) => box.checked)) {
        event.preventDefault();
        event.stopImmediatePropagation();
        refuseInput(groups[0], "Tick at least one group to call via.");
        return;
      }
    }
    // One reason box per override the number needs (do-not-call, calling hours), ids separated by spaces.
    for (const id of (button.dataset.needsReason || "").split(" ").filter(Boolean)) {
      const reason = document.getElementById(id);
      if (!reason) continue;
      const needed = Number(reason.getAttribute("minlength") || 1);
      if (reason.value.trim().length < needed) {
        event.preventDefault();
        event.stopImmediatePropagation();
        refuseInput(reason, reason.dataset.requiredMessage || "Say why you are calling anyway.");
        return;
      }
    }
  },
  true,
);

// "/" from another page lands on the contact list with its search box focused.
document.addEventListener("DOMContentLoaded", () => {
  if (window.location.hash !== "#search") return;
  const search = document.querySelector("input[type=search]");
  if (search) search.focus();
});

// Call queues: on a contact's page with the queue bar, "n" opens the next contact, "s" goes to the skip reason,
// "x" stops. Once the call's outcome is settled the bar opens the next contact by itself after 5 s, unless the
// agent switched that off (kept in this browser); unticking the box stops the countdown.
document.addEventListener("keydown", (event) => {
  if (isTyping(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = document.querySelector(`#queue-bar [data-shortcut-queue="${event.key}"]`);
  if (!target) return;
  event.preventDefault();
  if (target instanceof HTMLInputElement) {
    target.focus();
  } else {
    stopQueueCountdown();
    target.click();
  }
});

let queueCountdown = null;

function stopQueueCountdown() {
  if (queueCountdown !== null) {
    clearInterval(queueCountdown);
    queueCountdown = null;
  }
  const words = document.querySelector("#queue-bar [data-countdown-words]");
  if (words) words.textContent = "";
}

function startQueueCountdown() {
  const bar = document.getElementById("queue-bar");
  const box = bar && bar.querySelector("[data-auto-next]");
  if (!box) return;
  box.checked = localStorage.getItem("vccweb.queueAutoNext") !== "off";  // on unless the agent switched it off
  if (!box.dataset.wired) {
    box.dataset.wired = "1";
    box.addEventListener("change", () => {
      localStorage.setItem("vccweb.queueAutoNext", box.checked ? "on" : "off");
      if (box.checked) startQueueCountdown(); else stopQueueCountdown();
    });
  }
  if (!box.checked || queueCountdown !== null) return;
  let left = 5;
  const say = () => {
    const words = document.querySelector("#queue-bar [data-countdown-words]");  // the bar is refreshed meanwhile
    if (words) words.textContent = `Next contact in ${left} s.`;
  };
  say();
  queueCountdown = setInterval(() => {
    left -= 1;
    if (left > 0) { say(); return; }
    stopQueueCountdown();
    const form = document.getElementById(bar.dataset.nextForm || "");
    if (form instanceof HTMLFormElement) form.requestSubmit();
  }, 1000);
}

document.addEventListener("DOMContentLoaded", startQueueCountdown);
document.addEventListener("htmx:afterSettle", () => {
  if (!document.querySelector("#queue-bar [data-auto-next]")) stopQueueCountdown();
  startQueueCountdown();
});
