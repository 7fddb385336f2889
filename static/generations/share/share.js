// Kiln share links: copy a link to the clipboard. Loaded with defer; no inline
// script anywhere (the CSP forbids it).
(function () {
  "use strict";

  function announce(button, text) {
    var status = document.querySelector(".share-status");
    if (status) status.textContent = text;
    var label = button.getAttribute("data-copy-label");  // kept at the click (see copy)
    button.textContent = text === "Copied to the clipboard." ? "Copied" : label;
    button.classList.add("is-copied");
    window.clearTimeout(button.shareCopiedBack);
    button.shareCopiedBack = window.setTimeout(function () {
      button.textContent = label;
      button.classList.remove("is-copied");
    }, 2000);
  }

  function fallback(field, button) {
    field.focus();
    field.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    announce(button, ok ? "Copied to the clipboard." : "Selected: press Ctrl+C (⌘C) to copy.");
  }

  function copy(button) {
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) return;
    // "Copy link", before any answer changes it (kiln.js keeps the same attribute).
    if (!button.hasAttribute("data-copy-label")) button.setAttribute("data-copy-label", button.textContent);
    var text = field.value || field.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { announce(button, "Copied to the clipboard."); },
        function () { fallback(field, button); }
      );
    } else {
      fallback(field, button);
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    event.preventDefault();
    copy(button);
  });

  // Clicking into the link selects all of it.
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches(".share-url")) event.target.select();
  });
})();
