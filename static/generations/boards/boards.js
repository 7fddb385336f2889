// Kiln boards: a card's "Add to board…" swaps the picker into its ⋯ menu (htmx, innerHTML of
// .menu); when the menu closes, its actions come back, so it opens as a menu again next time.
// Loaded with `defer` on every page; no inline scripts (CSP).
(function () {
  "use strict";
  if (window.kilnBoards) return;
  window.kilnBoards = true;

  // Keep the menu's own markup before htmx replaces it with the picker.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var link = event.detail.elt;
    if (!link || !link.hasAttribute || !link.hasAttribute("data-board-picker")) return;
    var menu = link.closest(".menu");
    if (menu && !menu.kilnActions) menu.kilnActions = menu.innerHTML;
  });

  // A board made from a card or the bar (the answer's HX-Trigger) joins the gallery's Board
  // filter and the bar's list of names, so it can be picked at once.
  document.addEventListener("kiln:boardCreated", function (event) {
    var board = event.detail || {};
    var select = document.getElementById("board-filter-select");
    if (select && !select.querySelector('option[value="' + board.id + '"]')) {
      var option = document.createElement("option");
      option.value = board.id;
      option.textContent = board.name;
      select.appendChild(option);
    }
    var names = document.getElementById("board-names");
    if (names) {
      var name = document.createElement("option");
      name.value = board.name;
      names.appendChild(name);
    }
  });

  // <details> "toggle" does not bubble: listen in the capture phase.
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.matches || !details.matches("details.card-menu") || details.open) return;
    var menu = details.querySelector(".menu");
    if (!menu || !menu.kilnActions || !menu.querySelector(".board-picker")) return;
    menu.innerHTML = menu.kilnActions;
    menu.kilnActions = null;
    if (window.htmx) window.htmx.process(menu);
  }, true);
})();
