// Kiln studio: the little htmx does not do by itself. Loaded with `defer`; CSP-clean
// (no inline handlers, no eval).
(function () {
  "use strict";

  function studioForm() {
    return document.getElementById("studio-form");
  }

  // The generate view answers 422 (invalid) or 429 (too many at once) with the
  // form and its errors (HX-Retarget points at the form): let htmx swap it
  // instead of treating it as a failure.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr && event.detail.xhr.status;
    if ((status === 422 || status === 429) && event.detail.xhr.getResponseHeader("HX-Retarget")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  function pickerDialog() {
    return document.getElementById("studio-picker");
  }

  // The gallery picker: open once its list has arrived and settled (htmx makes the new
  // results answer to a pick only then: opened at the swap, a quick Enter followed the
  // result's link to a new page); close once a pick has replaced its input slot, or on "Close".
  document.addEventListener("htmx:afterSettle", function (event) {
    var dialog = pickerDialog();
    if (!dialog) return;
    var target = event.detail.target;
    if (target && target.id === "studio-picker-body" && !dialog.open) {
      dialog.showModal();
    }
  });

  // Closed by a pick, the dialog would give focus back to its opener, which the pick has
  // replaced: focus goes to the new slot's "Pick from the gallery" instead.
  document.addEventListener("htmx:afterSettle", function (event) {
    var dialog = pickerDialog();
    var elt = event.detail.elt;
    if (dialog && dialog.open && elt && elt.classList && elt.classList.contains("input-slot")) {
      dialog.close();
      var opener = elt.querySelector("[id$='-pick']");
      if (opener) opener.focus();
    }
  });

  // The estimate's container stays in place (it is a live region): only its content is
  // swapped, and not at all when the new figures say the same as the ones shown.
  function sameEstimate(estimate, html) {
    var next = document.createElement("template");
    next.innerHTML = html;
    var words = function (node) { return node.textContent.replace(/\s+/g, " ").trim(); };
    var affordable = function (node) {
      var figures = node.querySelector("[data-affordable]");
      return figures && figures.getAttribute("data-affordable");
    };
    return words(next.content) === words(estimate) && affordable(next.content) === affordable(estimate);
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "studio-estimate" && event.detail.shouldSwap &&
        sameEstimate(target, event.detail.serverResponse || "")) {
      event.detail.shouldSwap = false;
    }
  });

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    var fragment = event.detail.fragment;
    if (!target || target.id !== "studio-estimate" || !fragment) return;
    var holder = document.createElement("div");
    holder.appendChild(fragment.cloneNode(true));
    var inner = holder.firstElementChild && holder.firstElementChild.id === "studio-estimate" ? holder.firstElementChild : holder;
    if (sameEstimate(target, inner.innerHTML)) event.detail.shouldSwap = false;
  });

  // A refused submit (422): focus goes to the first invalid field, or to the errors above the form.
  document.addEventListener("htmx:afterSettle", function (event) {
    var xhr = event.detail.xhr;
    var form = studioForm();
    if (!form || !xhr || (xhr.status !== 422 && xhr.status !== 429) || xhr.kilnErrorFocused) return;
    if (!event.detail.elt || !form.contains(event.detail.elt) && event.detail.elt !== form) return;
    xhr.kilnErrorFocused = true;
    window.kilnFocusFirstError(form);
  });

  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest("[data-picker-close]");
    var dialog = pickerDialog();
    if (!dialog) return;
    if (close || event.target === dialog) {
      dialog.close();
    }
  });

  // The current mode tab follows its radio button at once (the fieldset swap follows).
  document.addEventListener("change", function (event) {
    var radio = event.target;
    if (!radio.matches || !radio.matches(".op-tab input[type=radio]")) return;
    radio.closest(".op-tabs").querySelectorAll(".op-tab").forEach(function (tab) {
      tab.classList.toggle("is-current", tab.contains(radio));
    });
  });

  // ---------------------------------------------------------------------------
  // What the page shows from the form's state: the chosen file names next to each
  // "Upload" button, a counter under each field with a limit, Generate on or off.

  function fileNames(input) {
    return Array.prototype.map.call(input.files || [], function (f) { return f.name; });
  }

  function showUploads(root) {
    root.querySelectorAll(".upload-button input[type=file]").forEach(function (input) {
      var names = fileNames(input);
      input.closest(".upload-button").querySelector("span").textContent = names.length ? names.join(", ") : "Upload";
    });
  }

  var NUMBER = new Intl.NumberFormat("en-US");

  // Characters as the server counts them: code points of the trimmed text (a browser
  // already gives line breaks as one character; the form counts them so too).
  function characters(text) {
    return Array.from(text.trim()).length;
  }

  // A field's limit is never a `maxlength` (a browser cuts a paste at it without a word):
  // the counter says how far over it is, and the server refuses the text with a message.
  function showCount(counter) {
    var field = document.getElementById(counter.getAttribute("data-count-for"));
    if (!field) return;
    var limit = parseInt(counter.getAttribute("data-limit"), 10);
    var count = characters(field.value);
    var over = count > limit;
    counter.textContent = NUMBER.format(count) + " / " + NUMBER.format(limit) + " characters" +
      (over ? ": " + NUMBER.format(count - limit) + " too many" : "");
    counter.classList.toggle("is-over", over);
    if (over) {
      field.setAttribute("aria-invalid", "true");
    } else if (!field.closest(".has-error")) {
      field.removeAttribute("aria-invalid");
    }
  }

  function showCounts(root) {
    root.querySelectorAll(".char-count[data-count-for]").forEach(showCount);
  }

  // Generate is off while the estimate says the member cannot pay for it (the estimate
  // says why and whom to ask), and while a submit is out (htmx's hx-disabled-elt).
  function showGenerate() {
    var form = studioForm();
    var estimate = document.getElementById("studio-estimate");
    var button = form && form.querySelector(".studio-submit");
    if (!button || !estimate) return;
    var figures = estimate.querySelector("[data-affordable]");
    var short = !!figures && figures.getAttribute("data-affordable") === "false";
    if (short) {
      button.disabled = true;
      button.setAttribute("aria-describedby", "credit-help");
    } else if (!form.classList.contains("htmx-request")) {
      button.disabled = false;
      button.removeAttribute("aria-describedby");
    }
  }

  document.addEventListener("input", function (event) {
    var field = event.target;
    if (!field.id) return;
    var counter = document.querySelector('.char-count[data-count-for="' + CSS.escape(field.id) + '"]');
    if (counter) showCount(counter);
  });

  document.addEventListener("htmx:load", function (event) {
    var root = event.detail.elt;
    if (!root || !root.querySelectorAll) return;
    showCounts(root);
    showUploads(root);
    showGenerate();
  });

  // Ctrl+Enter (Cmd+Enter on a Mac) anywhere in the form generates, as Generate does.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || event.altKey || event.isComposing) return;
    var form = event.target.closest && event.target.closest("#studio-form");
    if (!form) return;
    event.preventDefault();
    var button = form.querySelector(".studio-submit");
    if (button && !button.disabled) form.requestSubmit(button);
  });

  // ---------------------------------------------------------------------------
  // The draft: the form as the member left it (model, mode, prompt, parameters,
  // files picked from the gallery, compare ticks), in this browser's localStorage
  // under the member's membership (one per team and person; signing out forgets
  // it, see kiln.js). It is written at every change and given back
  //
  // - on load: a reload, or coming back later (a remix or "Use as ..." link fills
  //   the form itself instead, and becomes the draft);
  // - after every swap of the fields (another model or mode, a submit, a form sent
  //   back with errors): what was typed while the request was out would be lost
  //   to the answer, rendered from the values sent; it is put back.
  //
  // A chosen file cannot be given back after a reload (no page can fill a file
  // input); its name is, with a note to choose it again. Swaps keep the file
  // input itself (hx-preserve), so uploads survive everything but a reload.

  var NOT_KEPT = /^(csrfmiddlewaretoken|idempotency_key)$/;
  // Values the server renders (what the fields are, the picked files' thumbnails,
  // the remix): given back by asking the server for the fields, never set here.
  // (The template a mode renders is one: its variables are fields the server draws.)
  var SERVER_SIDE = /^(model|operation|remix_of|template)$|_media$/;
  var TEXT = ["prompt", "negative_prompt", "compare_models"];

  // Requests whose answer re-renders the fields, from their start until their answer has
  // settled (htmx sets up the new fields only then): {xhr, restore, edited, swapped}.
  var pending = [];
  var restoring = null; // the restore request about to start
  var lost = {};        // per input role: the names of files chosen before the page was reloaded

  function store() {
    try {
      return window.localStorage;
    } catch (e) {
      return null;
    }
  }

  function readDraft(form) {
    var storage = store();
    if (!storage || !form) return null;
    try {
      var draft = JSON.parse(storage.getItem(form.getAttribute("data-draft-key")) || "null");
      return draft && draft.v === 1 && draft.fields ? draft : null;
    } catch (e) {
      return null;
    }
  }

  function writeDraft(form, draft) {
    var storage = store();
    if (!storage) return;
    draft.v = 1;
    draft.lost = lost;
    try {
      storage.setItem(form.getAttribute("data-draft-key"), JSON.stringify(draft));
    } catch (e) {
      // Storage full or refused: the form works as before, without a draft.
    }
  }

  function valueOf(form, name) {
    var value;
    form.querySelectorAll('[name="' + CSS.escape(name) + '"]').forEach(function (el) {
      if (el.type === "checkbox") {
        if (el.hasAttribute("value")) {  // one of several (compare): the list of ticked ones
          value = value || [];
          if (el.checked) value.push(el.value);
        } else {                         // a yes/no parameter
          value = el.checked;
        }
      } else if (el.type === "radio") {
        if (el.checked) value = el.value;
      } else if (el.multiple && el.tagName === "SELECT") {
        value = Array.prototype.filter.call(el.options, function (o) { return o.selected; })
          .map(function (o) { return o.value; });
      } else {
        value = el.value;
      }
    });
    return value;
  }

  function collect(form) {
    var fields = {};
    var uploads = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || NOT_KEPT.test(el.name) || el.name in fields) return;
      if (el.type === "file") {
        uploads[el.name] = fileNames(el);
      } else if (el.type !== "submit" && el.type !== "button") {
        fields[el.name] = valueOf(form, el.name);
      }
    });
    return {fields: fields, uploads: uploads};
  }

  function inFlight() {
    return pending.length > 0;
  }

  function pendingFor(event) {
    return pending.filter(function (entry) { return entry.xhr === event.detail.xhr; })[0];
  }

  // Keep the form as it is now. While the fields are being re-rendered, only the field
  // the member touched is written (the rest of the page belongs to the old fields).
  function save(form, touched) {
    if (touched && inFlight()) {
      var draft = readDraft(form) || {fields: {}, uploads: {}};
      if (touched.type === "file") {
        draft.uploads = draft.uploads || {};
        draft.uploads[touched.name] = fileNames(touched);
      } else {
        draft.fields[touched.name] = valueOf(form, touched.name);
      }
      pending.forEach(function (entry) { entry.edited[touched.name] = true; });
      writeDraft(form, draft);
      return;
    }
    writeDraft(form, collect(form));
  }

  function apply(form, fields, names) {
    names.forEach(function (name) {
      if (SERVER_SIDE.test(name) || NOT_KEPT.test(name) || !(name in fields)) return;
      var value = fields[name];
      form.querySelectorAll('[name="' + CSS.escape(name) + '"]').forEach(function (el) {
        if (el.type === "file") return;
        if (el.type === "checkbox") {
          el.checked = Array.isArray(value) ? value.indexOf(el.value) >= 0 : value === true;
        } else if (el.type === "radio") {
          el.checked = el.value === value;
        } else if (el.tagName === "SELECT") {
          // Only a value the list still offers (an unknown one would leave it blank).
          Array.prototype.forEach.call(el.options, function (o) {
            if (el.multiple && Array.isArray(value)) o.selected = value.indexOf(o.value) >= 0;
            else if (o.value === value) el.value = value;
          });
        } else if (typeof value === "string") {
          el.value = value;
        }
      });
    });
    var compare = form.querySelector("details.compare");
    if (compare && compare.querySelector("input:checked")) compare.open = true;
  }

  // A note in each input slot whose file could not come back after a reload.
  function showLost(form) {
    form.querySelectorAll(".slot-lost").forEach(function (note) { note.remove(); });
    Object.keys(lost).forEach(function (role) {
      var slot = document.getElementById("slot-" + role);
      var input = slot && slot.querySelector('input[type=file][name="' + CSS.escape(role) + '"]');
      if (!input) return;
      if (fileNames(input).length) {
        delete lost[role];
        return;
      }
      var note = document.createElement("p");
      note.className = "slot-lost";
      note.setAttribute("role", "status");
      var names = document.createElement("strong");
      names.textContent = lost[role].join(", ");
      note.append(names, " was chosen here before the page reloaded. A browser cannot keep a chosen file " +
        "across a reload, so it is not attached: upload it again or pick it from the gallery. ");
      var dismiss = document.createElement("button");
      dismiss.type = "button";
      dismiss.className = "link";
      dismiss.setAttribute("data-lost-dismiss", role);
      dismiss.textContent = "Dismiss";
      note.append(dismiss);
      slot.querySelector(".slot-actions").after(note);
    });
  }

  // After the values changed without the member typing them: counters, upload names,
  // lost files, the estimate (it listens to "change" on the form), the draft.
  function settle(form, estimate) {
    showCounts(form);
    showUploads(form);
    showLost(form);
    showGenerate();
    if (estimate) htmx.trigger(form, "change");
    save(form);
  }

  function currentOperation(form) {
    return valueOf(form, "operation") || "";
  }

  function hasModel(select, value) {
    return Array.prototype.some.call(select.options, function (o) { return o.value === value; });
  }

  // Give the draft back. A link naming a model (?model=) keeps that model and takes what
  // fits of the draft, as a model switch would; otherwise the draft's model comes back.
  function restore(form, draft) {
    var fields = draft.fields;
    var select = form.querySelector("#studio-model");
    var query = new URLSearchParams(window.location.search);
    var rendered = {model: select.value, operation: currentOperation(form)};
    var model = query.get("model") || !hasModel(select, fields.model) ? rendered.model : fields.model;
    var same = model === fields.model;
    var operation = same && fields.operation && !(query.get("model") && query.get("operation"))
      ? fields.operation : rendered.operation;
    var names = same ? Object.keys(fields) : TEXT;
    apply(form, fields, names);
    var serverSide = Object.keys(fields).some(function (name) {
      return /_media$|^(remix_of|template)$/.test(name) && (fields[name] || "") !== (valueOf(form, name) || "");
    });
    if (model === rendered.model && operation === rendered.operation && !serverSide) {
      settle(form, true);
      return;
    }
    // Ask for the fields of the draft's model and mode, with its values (picked files
    // and the remix are drawn by the server); then put the draft's own values back.
    select.value = model;
    var values = Object.assign({}, collect(form).fields, fields,
                               {model: model, operation: operation, idempotency_key: valueOf(form, "idempotency_key")});
    Object.keys(values).forEach(function (name) {
      if (typeof values[name] === "boolean") values[name] = values[name] ? "on" : "";
      if (values[name] === undefined || values[name] === "") delete values[name];
    });
    values.restore = "1";  // the address is replaced, not pushed: a reload is not a step to go back to
    restoring = {names: names};
    htmx.ajax("GET", select.getAttribute("hx-get"), {target: "#studio-fieldset", swap: "innerHTML", values: values});
    restoring = null;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = studioForm();
    var detail = event.detail;
    if (!form || !detail.xhr) return;
    var fields = detail.target && detail.target.id === "studio-fieldset";
    var submit = detail.elt === form && detail.requestConfig && detail.requestConfig.verb === "post";
    if (fields || submit) {
      pending.push({xhr: detail.xhr, restore: restoring, edited: {}, swapped: false});
      restoring = null;
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var entry = pendingFor(event);
    if (entry) entry.swapped = true;
  });

  // An answer that replaced nothing (an error, an abort): the fields are as they were.
  document.addEventListener("htmx:afterRequest", function (event) {
    var entry = pendingFor(event);
    if (entry && !entry.swapped) {
      pending = pending.filter(function (e) { return e !== entry; });
      showGenerate();
    }
  });

  // The new fields are set up: put back what was typed meanwhile (and, for a restore, the draft).
  document.addEventListener("htmx:afterSettle", function (event) {
    var form = studioForm();
    var entry = pendingFor(event);
    if (!form || !entry) return;
    pending = pending.filter(function (e) { return e !== entry; });
    var draft = readDraft(form);
    var names = Object.keys(entry.edited);
    if (entry.restore) names = names.concat(entry.restore.names);
    if (draft) apply(form, draft.fields, names);
    if (!inFlight()) settle(form, !!draft && names.length > 0);
  });

  // A pick from the gallery (or its removal) re-renders one input slot: a single-file
  // slot then holds the pick, not an upload as well.
  document.addEventListener("htmx:afterSettle", function (event) {
    var slot = event.detail.elt;
    var form = studioForm();
    if (!form || !slot || !slot.classList || !slot.classList.contains("input-slot")) return;
    var role = slot.getAttribute("data-role");
    delete lost[role];
    if (slot.getAttribute("data-max") === "1" && slot.querySelector(".slot-picked")) {
      var input = slot.querySelector('input[type=file]');
      if (input) input.value = "";
    }
    settle(form, false);
  });

  document.addEventListener("input", function (event) {
    var form = studioForm();
    if (form && form.contains(event.target) && event.target.name) save(form, event.target);
  });

  document.addEventListener("change", function (event) {
    var form = studioForm();
    var el = event.target;
    if (!form || !form.contains(el) || !el.name) return;
    if (el.type === "file") {
      delete lost[el.name];
      showUploads(el.closest(".input-slot") || form);
      showLost(form);
    }
    save(form, el);
  });

  document.addEventListener("click", function (event) {
    var dismiss = event.target.closest && event.target.closest("[data-lost-dismiss]");
    var form = studioForm();
    if (!dismiss || !form) return;
    delete lost[dismiss.getAttribute("data-lost-dismiss")];
    showLost(form);
    save(form);
  });

  // Back or forward into a page htmx kept: its form is as it was then; the draft is newer.
  document.addEventListener("htmx:historyRestore", function () {
    var form = studioForm();
    var draft = readDraft(form);
    if (form && draft) restore(form, draft);
  });

  function start() {
    var form = studioForm();
    if (!form) return;
    var draft = readDraft(form);
    if (draft) {
      lost = Object.assign({}, draft.lost);
      Object.keys(draft.uploads || {}).forEach(function (role) {
        if (draft.uploads[role].length) lost[role] = draft.uploads[role];
      });
    }
    if (form.hasAttribute("data-draft-prefilled")) {
      // The link has done its work: a reload now gives back the draft, not the link.
      lost = {};
      var select = form.querySelector("#studio-model");
      var url = window.location.pathname + "?model=" + encodeURIComponent(select.value) +
        "&operation=" + encodeURIComponent(currentOperation(form));
      window.history.replaceState(window.history.state, "", url);
      settle(form, false);
    } else if (draft) {
      restore(form, draft);
    } else {
      showLost(form);
    }
  }

  // After htmx has set the page up (its own DOMContentLoaded listener was added first).
  if (document.readyState === "complete") {
    start();
  } else {
    document.addEventListener("DOMContentLoaded", start);
  }
})();

// Recent prompts (templates/generations/studio/history.html#panel): the team's prompts,
// searched as one types (htmx); choosing one puts it in the prompt field as typing would,
// so the counter, the estimate and the draft follow.
(function () {
  "use strict";

  function panelOf(el) {
    return el.closest && el.closest("[data-prompt-history]");
  }

  function items(panel) {
    return Array.prototype.slice.call(panel.querySelectorAll(".history-item"));
  }

  function usePrompt(button) {
    var panel = panelOf(button);
    var form = document.getElementById("studio-form");
    var field = form && form.querySelector('textarea[name="prompt"]');
    if (!field) return;
    field.value = button.getAttribute("data-history-text");
    field.dispatchEvent(new Event("input", {bubbles: true}));
    field.dispatchEvent(new Event("change", {bubbles: true}));
    if (panel) panel.open = false;
    field.focus();
  }

  // The search box belongs to no form: its edits and keys stay with it (not the studio
  // form's draft, estimate or Ctrl+Enter). htmx listens on the box itself, so it still hears them.
  function keepToItself(event) {
    event.stopPropagation();
    if (event.type !== "keydown") return;
    var panel = panelOf(event.target);
    if (event.key === "Enter") {
      event.preventDefault();
    } else if (event.key === "ArrowDown" && panel && items(panel).length) {
      event.preventDefault();
      items(panel)[0].focus();
    } else if (event.key === "Escape" && panel) {
      panel.open = false;
      panel.querySelector("summary").focus();
    }
  }

  document.addEventListener("htmx:load", function (event) {
    var root = event.detail.elt;
    if (!root || !root.querySelectorAll) return;
    var boxes = root.matches && root.matches("[data-history-search]") ? [root] : root.querySelectorAll("[data-history-search]");
    Array.prototype.forEach.call(boxes, function (box) {
      if (box.kilnHistory) return;
      box.kilnHistory = true;
      ["input", "change", "keydown", "search"].forEach(function (type) { box.addEventListener(type, keepToItself); });
    });
  });

  // Opening the panel puts the cursor in its search box.
  document.addEventListener("toggle", function (event) {
    var panel = event.target;
    if (panel.matches && panel.matches("[data-prompt-history]") && panel.open) {
      var box = panel.querySelector("[data-history-search]");
      if (box) box.focus({preventScroll: true});
      panel.scrollIntoView({block: "center"});
    }
  }, true);

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".history-item");
    if (button && panelOf(button)) usePrompt(button);
  });

  // Up and down move between the search box and the prompts; Escape closes the panel.
  document.addEventListener("keydown", function (event) {
    var button = event.target.closest && event.target.closest(".history-item");
    var panel = button && panelOf(button);
    if (!panel) return;
    var list = items(panel);
    var at = list.indexOf(button);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      var next = at + (event.key === "ArrowDown" ? 1 : -1);
      if (next < 0) panel.querySelector("[data-history-search]").focus();
      else if (next < list.length) list[next].focus();
    } else if (event.key === "Escape") {
      panel.open = false;
      panel.querySelector("summary").focus();
    }
  });
})();
