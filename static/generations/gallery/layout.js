// Kiln gallery layout: the card size (grid density) and the filters that fold away on a phone.
// Loaded in <head> WITHOUT defer on the gallery page: the remembered card size is set on
// <html> before the grid is drawn, so the page does not jump. The rest waits for the page.
(function () {
  "use strict";
  if (window.kilnGalleryLayout) return;
  window.kilnGalleryLayout = true;

  var KEY = "kiln:card-size";
  var SIZES = ["small", "medium", "large"];
  var root = document.documentElement;
  root.classList.add("js");  // kiln.js adds it too, later: the folded filters must not flash open

  function stored() {
    try {
      var size = window.localStorage.getItem(KEY);
      return SIZES.indexOf(size) >= 0 ? size : "medium";
    } catch (e) {
      return "medium";
    }
  }

  function apply(size) {
    if (size === "medium") root.removeAttribute("data-card-size");
    else root.setAttribute("data-card-size", size);
  }

  apply(stored());

  function showChoice() {
    var size = stored();
    document.querySelectorAll("input[data-card-size]").forEach(function (input) {
      input.checked = input.value === size;
    });
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[data-card-size]") || !input.checked) return;
    try {
      window.localStorage.setItem(KEY, input.value);
    } catch (e) {
      // No storage: the size holds until the page is left.
    }
    apply(input.value);
  });

  // "Filters" on a phone: show or fold the row (CSS hides the button on wider screens).
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-filters-toggle]");
    if (!button) return;
    var form = button.closest("form");
    var open = !form.classList.contains("is-open");
    form.classList.toggle("is-open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });

  // The address a filtered view gets names only the filters in force (as the server's own
  // links do), not every empty field of the form.
  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt || !elt.hasAttribute || !elt.hasAttribute("data-live-filters")) return;
    var params = event.detail.parameters;
    Array.from(new Set(Object.keys(params))).forEach(function (name) {
      if (params[name] === "") delete params[name];
    });
  });

  // A filter the server refuses (a bad date) answers 400 with the results saying why: show it.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    var elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (xhr && xhr.status === 400 && elt && elt.hasAttribute && elt.hasAttribute("data-live-filters")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // The answer to a live filter lists what it refused (#gallery-error-<name>): each control is
  // marked invalid and described by its reason, or no longer so, as the page's own render does.
  function markRefused() {
    var form = document.querySelector("form[data-live-filters]");
    if (!form) return;
    Array.prototype.forEach.call(form.elements, function (control) {
      if (!control.name || control.type === "hidden" || control.type === "submit") return;
      var error = document.getElementById("gallery-error-" + control.name);
      if (error) {
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", error.id);
      } else if (control.hasAttribute("aria-invalid")) {
        control.removeAttribute("aria-invalid");
        control.removeAttribute("aria-describedby");
      }
    });
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    var elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-live-filters")) markRefused();
  });

  // Back or forward to a page htmx kept: the choice shown follows the size in force.
  document.addEventListener("htmx:historyRestore", showChoice);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showChoice);
  else showChoice();
})();
