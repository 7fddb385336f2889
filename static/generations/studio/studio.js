// Kiln studio: the little htmx does not do by itself. Loaded with `defer`; CSP-clean
// (no inline handlers, no eval).
(function () {
  "use strict";

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

  // The gallery picker: open once its list has arrived; close once a pick
  // has replaced its input slot, or on "Close".
  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = pickerDialog();
    if (!dialog) return;
    var target = event.detail.target;
    if (target && target.id === "studio-picker-body" && !dialog.open) {
      dialog.showModal();
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var dialog = pickerDialog();
    var elt = event.detail.elt;
    if (dialog && dialog.open && elt && elt.classList && elt.classList.contains("input-slot")) {
      dialog.close();
    }
  });

  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest("[data-picker-close]");
    var dialog = pickerDialog();
    if (!dialog) return;
    if (close || event.target === dialog) {
      dialog.close();
    }
  });

  // Show the chosen file names next to an "Upload" button.
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches(".upload-button input[type=file]")) return;
    var label = input.closest(".upload-button").querySelector("span");
    var names = Array.prototype.map.call(input.files, function (f) { return f.name; });
    label.textContent = names.length ? names.join(", ") : "Upload";
  });

  // The current mode tab follows its radio button at once (the fieldset swap follows).
  document.addEventListener("change", function (event) {
    var radio = event.target;
    if (!radio.matches || !radio.matches(".op-tab input[type=radio]")) return;
    radio.closest(".op-tabs").querySelectorAll(".op-tab").forEach(function (tab) {
      tab.classList.toggle("is-current", tab.contains(radio));
    });
  });
})();
