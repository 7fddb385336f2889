// Kiln gallery: live status ids, elapsed times, the lightbox, card menus, selecting cards.
// Loaded with `defer`; no inline scripts (CSP). The 2-second `kiln:tick` on
// <body> comes from kiln.js and only fires while the tab is visible.
(function () {
  "use strict";
  // base.html loads this file on every page; a page that adds it again gets it once.
  if (window.kilnGallery) return;
  window.kilnGallery = true;

  var MAX_IDS = 100;

  // --- Live status: one request per tick for every pending card ------------
  // The grid (data-status-poll) has hx-get=status_batch and
  // hx-trigger="kiln:tick from:body". Here we add the ids (and the state each
  // card shows) of the pending cards inside it, new studio cards included, and
  // send nothing at all when none is pending.
  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt || !elt.hasAttribute || !elt.hasAttribute("data-status-poll")) return;
    var ids = [];
    var cards = elt.querySelectorAll("[data-card][data-pending]");
    for (var i = 0; i < cards.length && ids.length < MAX_IDS; i++) {
      ids.push(cards[i].getAttribute("data-card") + ":" + cards[i].getAttribute("data-pending"));
    }
    if (!ids.length) {
      event.preventDefault();
      return;
    }
    event.detail.parameters.ids = ids.join(",");
  });

  // --- Elapsed times tick along between server updates ---------------------
  // "12 s", "1 min 12 s", "2 h 5 min": as gallery_tags.duration_text.
  function durationText(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + " s";
    var minutes = Math.floor(seconds / 60);
    seconds = seconds % 60;
    if (minutes < 60) return minutes + " min" + (seconds ? " " + seconds + " s" : "");
    var hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    return hours + " h" + (minutes ? " " + minutes + " min" : "");
  }
  document.addEventListener("kiln:tick", function () {
    var now = Date.now();
    document.querySelectorAll("time[data-elapsed]").forEach(function (el) {
      var since = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(since)) el.textContent = durationText((now - since) / 1000);
    });
  });

  // --- The expected time left counts down with them ------------------------
  // As gallery_tags.time_left_text: an estimate, so rounded, and never negative.
  function timeLeftText(seconds) {
    if (seconds <= 0) return "taking longer than usual";
    if (seconds < 55) return "about " + Math.max(10, Math.round(seconds / 10) * 10) + " s left";
    var minutes = Math.max(1, Math.round(seconds / 60));
    return "about " + (minutes < 60 ? minutes + " min" : durationText(minutes * 60)) + " left";
  }
  document.addEventListener("kiln:tick", function () {
    var now = Date.now();
    document.querySelectorAll("[data-time-left][data-typical]").forEach(function (el) {
      var since = Date.parse(el.getAttribute("data-since"));
      var typical = parseFloat(el.getAttribute("data-typical"));
      if (!isNaN(since) && !isNaN(typical)) el.textContent = timeLeftText(typical - (now - since) / 1000);
    });
  });

  // --- Card menus: one open at a time, closed by a click elsewhere or Esc ---
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.card-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  // --- Selecting cards for the bar's actions (#bulk-form) -------------------
  // Each card's box belongs to the bar's form (form="bulk-form"), so the bar's buttons post
  // the ticked ids with no script at all. Here: the set of selected ids survives cards being
  // swapped (live status, the bar's own answers), Shift ticks the range from the last box
  // clicked, "Select all on page", "Clear", Esc, the count, and the limits of each action.
  var selected = new Set();
  var anchor = null;
  var syncQueued = false;

  function bar() { return document.getElementById("bulk-form"); }
  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-selectable] input[data-select]"));
  }

  function sync() {
    syncQueued = false;
    var form = bar();
    if (!form) return;
    var present = new Set();
    var finished = 0;
    boxes().forEach(function (box) {
      present.add(box.value);
      box.checked = selected.has(box.value);
      var card = box.closest(".gcard");
      if (card) card.classList.toggle("is-selected", box.checked);
      if (box.checked && card && card.classList.contains("status-succeeded")) finished++;
    });
    // A card that went (archived, deleted) leaves the selection with its box.
    selected.forEach(function (id) { if (!present.has(id)) selected.delete(id); });
    var count = selected.size;
    form.querySelector("[data-bulk-count]").textContent = String(count);
    var status = document.getElementById("bulk-status");
    var open = count > 0 || (status && status.textContent.trim() !== "");
    form.toggleAttribute("data-open", open);
    document.documentElement.classList.toggle("is-selecting", count > 0);
    var active = form.contains(document.activeElement) ? document.activeElement : null;
    var limits = { max: +form.getAttribute("data-max"), zip: +form.getAttribute("data-zip-max"),
                   share: +form.getAttribute("data-share-max") };
    var hint = "";
    if (count > limits.max) hint = "Select at most " + limits.max + " results at once.";
    form.querySelectorAll(".bulk-actions button").forEach(function (button) {
      var kind = button.getAttribute("data-bulk-limit");
      var over = (kind === "zip" && count > limits.zip) || (kind === "share" && finished > limits.share);
      if (over && !hint) {
        hint = kind === "zip" ? "A zip holds at most " + limits.zip + " results: select fewer to download."
                              : "A link shares at most " + limits.share + " results: select fewer to share.";
      }
      button.disabled = count === 0 || count > limits.max || over;
    });
    form.querySelector("[data-bulk-hint]").textContent = hint;
    // The action just taken emptied the selection (Archive, Remove from a board) and disabled the
    // button under the keyboard's focus: focus stays in the bar, on its first control still usable.
    if (active && active.disabled) {
      var next = Array.prototype.filter.call(form.querySelectorAll("button:not([disabled]), input:not([type=hidden]):not([disabled])"),
        function (el) { return !!(el.offsetWidth || el.offsetHeight); })[0];
      if (next) next.focus();
    }
  }

  function queueSync() {
    if (syncQueued) return;
    syncQueued = true;
    window.setTimeout(sync, 0);
  }

  // Shift+click must not also select the text between two cards.
  document.addEventListener("mousedown", function (event) {
    if (event.shiftKey && event.target.closest && event.target.closest(".card-select")) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var box = event.target.closest && event.target.closest("input[data-select]");
    if (!box) return;
    var all = boxes();
    var here = all.indexOf(box);
    var from = anchor && document.contains(anchor) ? all.indexOf(anchor) : -1;
    // Shift: every box from the last one clicked to this one takes this one's state
    // (a keyboard's Shift+Space sends the same click).
    var range = event.shiftKey && from >= 0 && here >= 0 ? all.slice(Math.min(from, here), Math.max(from, here) + 1) : [box];
    range.forEach(function (b) {
      if (box.checked) selected.add(b.value); else selected.delete(b.value);
    });
    anchor = box;
    sync();
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-bulk-all], [data-bulk-clear]");
    if (!button) return;
    if (button.hasAttribute("data-bulk-all")) {
      boxes().forEach(function (box) { selected.add(box.value); });
    } else {
      selected.clear();
      anchor = null;
      var status = document.getElementById("bulk-status");
      if (status) status.textContent = "";
    }
    sync();
  });

  // A new action's answer replaces the last one's; cards swapped in get their ticks back.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = bar();
    if (form && form.contains(event.detail.elt)) document.getElementById("bulk-status").textContent = "";
  });
  ["htmx:load", "htmx:afterSwap", "htmx:oobAfterSwap"].forEach(function (name) {
    document.addEventListener(name, queueSync);
  });
  document.addEventListener("DOMContentLoaded", function () {
    // A reload may have kept boxes ticked (autocomplete=off aside): they are the selection.
    boxes().forEach(function (box) { if (box.checked) selected.add(box.value); });
    sync();
  });

  // --- Lightbox: images and an inline player; ← → between results, Esc ---
  var box = null;
  var index = -1;
  var opener = null;

  function items() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-lightbox]"));
  }

  function el(tag, className, attrs) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    return node;
  }

  function build() {
    box = el("div", "lightbox", { role: "dialog", "aria-modal": "true", "aria-label": "Viewer", tabindex: "-1" });
    var close = el("button", "lb-close", { type: "button", "aria-label": "Close (Esc)", title: "Close (Esc)" });
    close.textContent = "×";
    var prev = el("button", "lb-nav lb-prev", { type: "button", "aria-label": "Previous (←)", title: "Previous (←)" });
    prev.textContent = "‹";
    var next = el("button", "lb-nav lb-next", { type: "button", "aria-label": "Next (→)", title: "Next (→)" });
    next.textContent = "›";
    var figure = el("figure", "lb-figure");
    var stage = el("div", "lb-stage");
    var caption = el("figcaption", "lb-caption");
    var text = el("span", "lb-text");
    var count = el("span", "lb-count");
    var open = el("a", "lb-link", {});
    open.textContent = "Details";
    var download = el("a", "lb-link", {});
    download.textContent = "Download";
    caption.append(text, count, open, download);
    figure.append(stage, caption);
    box.append(close, prev, figure, next);
    close.addEventListener("click", hide);
    prev.addEventListener("click", function () { go(-1); });
    next.addEventListener("click", function () { go(1); });
    box.addEventListener("click", function (event) {
      if (event.target === box || event.target === figure || event.target === stage) hide();
    });
    document.body.appendChild(box);
  }

  function show(i) {
    var list = items();
    if (!list.length) return;
    index = (i + list.length) % list.length;
    var item = list[index];
    if (!box) build();
    var stage = box.querySelector(".lb-stage");
    stopMedia();
    stage.textContent = "";
    var media;
    if (item.getAttribute("data-kind") === "video") {
      // Named after its prompt; it starts by itself unless the person asked for less motion.
      media = el("video", "lb-media", { controls: "", playsinline: "", preload: "metadata",
                                        "aria-label": "Video: " + (item.getAttribute("data-caption") || "result") });
      if (!window.matchMedia("(prefers-reduced-motion: reduce)").matches) media.setAttribute("autoplay", "");
      if (item.getAttribute("data-poster")) media.setAttribute("poster", item.getAttribute("data-poster"));
    } else {
      media = el("img", "lb-media", { alt: item.getAttribute("data-caption") || "" });
    }
    media.setAttribute("src", item.getAttribute("data-src"));
    stage.appendChild(media);
    box.querySelector(".lb-text").textContent = item.getAttribute("data-caption") || "";
    box.querySelector(".lb-count").textContent = (index + 1) + " / " + list.length;
    var links = box.querySelectorAll(".lb-link");
    setLink(links[0], item.getAttribute("data-detail"));
    setLink(links[1], item.getAttribute("data-download"));
    box.querySelector(".lb-prev").hidden = list.length < 2;
    box.querySelector(".lb-next").hidden = list.length < 2;
    box.hidden = false;
    document.documentElement.classList.add("lightbox-open");
    if (!box.contains(document.activeElement)) box.querySelector(".lb-close").focus();
  }

  function setLink(link, href) {
    if (href) { link.setAttribute("href", href); link.hidden = false; } else { link.hidden = true; }
  }

  function stopMedia() {
    if (!box) return;
    box.querySelectorAll("video").forEach(function (video) { video.pause(); });
  }

  function go(step) { show(index + step); }

  function hide() {
    if (!box || box.hidden) return;
    stopMedia();
    box.querySelector(".lb-stage").textContent = "";
    box.hidden = true;
    document.documentElement.classList.remove("lightbox-open");
    if (opener && document.contains(opener)) opener.focus();
    opener = null;
  }

  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    var link = event.target.closest && event.target.closest("[data-lightbox]");
    if (!link) return;
    event.preventDefault();
    opener = link;
    show(items().indexOf(link));
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      var menus = document.querySelectorAll("details.card-menu[open]");
      menus.forEach(function (menu) {
        var inside = menu.contains(document.activeElement);
        menu.removeAttribute("open");
        // Focus was on the menu or in it (now hidden): it goes back to its ⋯ button.
        if (inside) menu.querySelector("summary").focus();
      });
      // Esc clears the selection, unless it was closing a menu or the viewer.
      if (!menus.length && (!box || box.hidden) && selected.size) {
        selected.clear();
        sync();
      }
    }
    if (!box || box.hidden) return;
    if (event.key === "Escape") { event.preventDefault(); hide(); }
    else if (event.key === "ArrowRight") { event.preventDefault(); go(1); }
    else if (event.key === "ArrowLeft") { event.preventDefault(); go(-1); }
    else if (event.key === "Tab") {
      // Keep focus inside the dialog.
      var focusables = Array.prototype.filter.call(box.querySelectorAll("button, a[href], video"), function (n) { return !n.hidden; });
      if (!focusables.length) return;
      var first = focusables[0], last = focusables[focusables.length - 1];
      if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
      else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
    }
  });
})();
