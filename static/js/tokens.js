// The API tokens page (templates/calls/tokens.html): the Copy button beside a new token. No inline script (strict
// CSP). Without JavaScript the button stays hidden and the token is selected by hand from its box.
"use strict";

function copyByHand(input) {
  input.focus();
  input.select();
  try {
    return document.execCommand("copy");
  } catch {
    return false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const input = document.getElementById(button.dataset.copy);
    if (!input) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      let copied = false;
      try {
        await navigator.clipboard.writeText(input.value);
        copied = true;
      } catch {
        copied = copyByHand(input);  // no clipboard API (not a secure origin) or no permission
      }
      button.textContent = copied ? button.dataset.copied || "Copied" : "Select and copy it";
      if (!copied) {
        input.focus();
        input.select();
      }
    });
  }
});
