// Kiln: the small shared behaviours htmx does not cover. Loaded with `defer`;
// no inline scripts anywhere (CSP). Other rooms add their own files.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // <select data-autosubmit>: submit its form on change (the plain submit button
  // next to it has class "js-hide" and stays as the no-JS fallback).
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("[data-autosubmit]") && el.form) {
      el.form.requestSubmit();
    }
  });

  // <form data-forget-drafts> (Sign out): forget the studio drafts this browser keeps
  // (generations/studio/studio.js), so the next person here finds none of them.
  document.addEventListener("submit", function (event) {
    if (!event.target.matches || !event.target.matches("[data-forget-drafts]")) return;
    try {
      Object.keys(window.localStorage).forEach(function (key) {
        if (key.indexOf("kiln:studio-draft:") === 0) window.localStorage.removeItem(key);
      });
    } catch (e) {
      // No storage, no drafts.
    }
  });

  // <button data-confirm="Question?">: ask before submitting.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // <button data-copy="#selector">: copy that input's value (or element's text).
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    var target = document.querySelector(button.getAttribute("data-copy"));
    if (!target) return;
    var text = "value" in target ? target.value : target.textContent;
    // The button's own words, kept at the first click: a second click (or share.js, which
    // answers the same click on share links) must not take "Copied" for them and keep it.
    if (!button.hasAttribute("data-copy-label")) button.setAttribute("data-copy-label", button.textContent);
    var done = function () {
      button.textContent = "Copied";
      window.clearTimeout(button.kilnCopiedBack);
      button.kilnCopiedBack = window.setTimeout(function () {
        button.textContent = button.getAttribute("data-copy-label");
      }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else if (target.select) {
      target.select();
      document.execCommand("copy");
      done();
    }
  });

  // <button data-copy-text="…">: copy that text (a prompt, whole) and say "Copied" on the button.
  // The clipboard API needs a secure context (https, localhost); on a plain-http host the text
  // is copied through a selected, hidden textarea, and where even that is refused it is shown
  // selected in a dialog for Ctrl+C.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(function () { return true; }, function () { return copyBySelection(text); });
    }
    return Promise.resolve(copyBySelection(text));
  }

  function copyBySelection(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "copy-buffer";
    document.body.appendChild(area);
    area.select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (e) {
      copied = false;
    }
    area.remove();
    if (!copied) window.prompt("Copy with Ctrl+C (⌘+C on a Mac):", text);
    return copied;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy-text]");
    if (!button) return;
    copyText(button.getAttribute("data-copy-text")).then(function (copied) {
      if (!copied) return;
      if (!button.hasAttribute("data-copy-label")) button.setAttribute("data-copy-label", button.textContent);
      button.textContent = "Copied";
      button.classList.add("is-copied");
      window.clearTimeout(button.kilnCopied);
      button.kilnCopied = window.setTimeout(function () {
        button.textContent = button.getAttribute("data-copy-label");
        button.classList.remove("is-copied");
      }, 1500);
    });
  });

  // htmx parses the HTML it swaps in as if scripting were off, so a <noscript> fallback in
  // it turns into live markup: the studio's no-JS "Use this model" button became the form's
  // first submit button, and Enter in a field pressed it (a GET of the whole page into the
  // results). Scripts run on this page, so such fallbacks go as they arrive.
  document.addEventListener("htmx:load", function (event) {
    var root = event.detail && event.detail.elt;
    if (root && root.querySelectorAll) {
      root.querySelectorAll("noscript").forEach(function (node) { node.remove(); });
    }
  });

  // kiln:tick: one heartbeat every 2 s on <body>, only while the tab is visible.
  // Live status polling listens to it (hx-trigger="kiln:tick from:body"), so a
  // hidden tab costs the server nothing; coming back fires one tick at once.
  var TICK_MS = 2000;
  function tick() {
    if (document.visibilityState === "visible" && document.body) {
      document.body.dispatchEvent(new CustomEvent("kiln:tick", { bubbles: true }));
    }
  }
  window.setInterval(tick, TICK_MS);
  document.addEventListener("visibilitychange", tick);
})();
