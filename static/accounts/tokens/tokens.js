// API tokens page: the page that shows a new token is a POST's answer. Make the history
// entry a plain GET of the same address, so a reload shows the list (without the token)
// instead of sending the form again and making a second token. And choosing a date
// picks "On a date".
(function () {
  "use strict";
  if (document.getElementById("token-secret") && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.pathname);
  }
  document.addEventListener("input", function (event) {
    if (event.target.name !== "expires_on") return;
    var radio = document.querySelector('input[name="expiry"][value="date"]');
    if (radio && event.target.value) radio.checked = true;
  });
})();
