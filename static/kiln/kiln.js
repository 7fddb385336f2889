// Kiln: the small shared behaviours htmx does not cover. Loaded with `defer`;
// no inline scripts anywhere (CSP). Other rooms add their own files.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // The sticky header's height as drawn, in --header-measured: kiln.css's scroll-padding-top,
  // so a control the keyboard moves to is never scrolled under the header, however many rows
  // the header wraps to (a long team name, a long e-mail, zoom). Set through the CSSOM, which
  // the CSP allows (a style attribute in the markup it would not).
  var topbar = document.querySelector(".topbar");
  if (topbar && window.ResizeObserver) {
    var measured = "";
    new ResizeObserver(function () {
      // Outside the observer's callback, and only when the height changed (a style change
      // inside it, on every notification, upset Chromium as a page went away).
      window.requestAnimationFrame(function () {
        var height = Math.ceil(topbar.getBoundingClientRect().height) + "px";
        if (height === measured) return;
        measured = height;
        document.documentElement.style.setProperty("--header-measured", height);
      });
    }).observe(topbar);
  }

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

  // ---------------------------------------------------------------------------
  // Live status, said in words. Each card and the result page's status panel carries
  // data-announce="Wan 2.7: running" and data-announce-key="<generation id>:<status>".
  // After each swap, a job whose state changed since this page last showed it is announced
  // once in the page's one polite live region (#live-status, base.html, never swapped);
  // a job the studio has just created (data-announce-new) is announced as it appears.
  // What the page showed when it loaded is never announced, and a poll repeating a state
  // says nothing.
  var shown = {};  // generation id -> the status the page last showed

  function announce(text) {
    var region = document.getElementById("live-status");
    if (!region || !text) return;
    var line = document.createElement("p");
    line.textContent = text;
    region.appendChild(line);
    while (region.childElementCount > 5) region.removeChild(region.firstElementChild);
  }

  function announced(root) {
    if (!root || !root.querySelectorAll) return [];
    var found = Array.prototype.slice.call(root.querySelectorAll("[data-announce-key]"));
    if (root.matches && root.matches("[data-announce-key]")) found.unshift(root);
    return found;
  }

  function learn(root, speak) {
    announced(root).forEach(function (el) {
      if (!document.contains(el)) return;
      var key = el.getAttribute("data-announce-key");
      var id = key.slice(0, key.lastIndexOf(":"));
      var status = key.slice(key.lastIndexOf(":") + 1);
      var before = shown[id];
      shown[id] = status;
      if (speak && (before ? before !== status : el.hasAttribute("data-announce-new"))) {
        announce(el.getAttribute("data-announce"));
      }
      el.removeAttribute("data-announce-new");
    });
  }

  document.addEventListener("htmx:load", function (event) {
    var root = event.detail && event.detail.elt;
    learn(root, root !== document.body);
  });

  // ---------------------------------------------------------------------------
  // Focus after live updates: never left on <body>.
  //
  // htmx puts focus back on an element of the same id when a swap replaced the focused one;
  // a control that was disabled during its request (Generate) lost focus before that, so the
  // element focused when a request left is remembered and given focus back after the swap.
  // Where nothing of the same id came back (Cancel, once cancelled), focus goes to the first
  // control of what was swapped in.
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), " +
    "textarea:not([disabled]), summary, video[controls], [tabindex]:not([tabindex='-1'])";
  function lost() {
    return !document.activeElement || document.activeElement === document.body;
  }

  function visible(el) {
    return !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  }

  function firstControl(root) {
    return Array.prototype.filter.call(root.querySelectorAll(FOCUSABLE), visible)[0];
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var active = document.activeElement;
    var elt = event.detail.elt;
    var xhr = event.detail.xhr;
    // A status poll is no one's doing: only a request the member made moves their focus.
    if (!xhr || !elt || !elt.hasAttribute || elt.hasAttribute("data-status-poll") || elt.id === "detail-live") return;
    if (active && active !== document.body) xhr.kilnFocus = {id: active.id};
  });

  // A swap that takes the focused control out and puts it (or its twin of the same id) back —
  // hx-preserve through a status poll, in a browser without Element.moveBefore (Safari, older
  // Firefox), re-inserts the node and the browser drops focus to <body> — gives it focus back.
  var swapFocus = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    var active = document.activeElement;
    swapFocus = null;
    if (target && active && active !== document.body && target.contains(active)) {
      swapFocus = {el: active, id: active.id};
    }
  });

  function restoreSwapFocus() {
    var was = swapFocus;
    if (!was || !lost()) return;
    var again = document.contains(was.el) ? was.el : (was.id && document.getElementById(was.id));
    if (again && !again.disabled && visible(again)) again.focus({preventScroll: true});
  }
  document.addEventListener("htmx:afterSwap", restoreSwapFocus);

  document.addEventListener("htmx:afterSettle", function (event) {
    restoreSwapFocus();
    swapFocus = null;
    var xhr = event.detail.xhr;
    var was = xhr && xhr.kilnFocus;
    if (!was || !lost()) return;
    var again = was.id && document.getElementById(was.id);
    if (again && !again.disabled && visible(again)) {
      again.focus();
      return;
    }
    var elt = event.detail.elt;
    if (!elt || elt === document.body || !document.contains(elt) || !elt.querySelectorAll) return;
    var first = firstControl(elt);
    if (first) {
      first.focus();
    } else if (elt.getAttribute("tabindex") === "-1") {
      elt.focus();  // a card that says "Deleted." and offers nothing more
    }
  });

  // A form refused (a failed sign-in, a team form with errors, the studio's 422): focus goes to its
  // first invalid field that can take it, or else to its errors (a summary, or a group marked has-error).
  function focusFirstError(root) {
    var field = Array.prototype.filter.call(root.querySelectorAll("[aria-invalid=true]"), function (el) {
      return !el.disabled && visible(el);
    })[0];
    if (field) {
      field.focus();
      return true;
    }
    var summary = root.querySelector(".form-errors, .error-summary, .has-error");
    if (summary) {
      if (!summary.hasAttribute("tabindex")) summary.setAttribute("tabindex", "-1");
      summary.focus();
      return true;
    }
    return false;
  }
  window.kilnFocusFirstError = focusFirstError;

  document.addEventListener("DOMContentLoaded", function () {
    var main = document.querySelector("main");
    if (!main || !lost()) return;
    var forms = Array.prototype.filter.call(main.querySelectorAll("form"), function (form) {
      return form.querySelector("[aria-invalid=true], .form-errors[tabindex='-1']") && !form.matches("[role=search]");
    });
    if (forms.length) focusFirstError(forms[0]);
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
