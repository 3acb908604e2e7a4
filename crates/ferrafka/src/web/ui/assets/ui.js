// Live updates: every few seconds, fetch the current page again and swap its <main> in place.
// Paused while the tab is hidden or a form field has focus (a half-typed offset survives).
(function () {
  "use strict";
  var INTERVAL_MS = 5000;
  function refresh() {
    if (document.hidden) return;
    var active = document.activeElement;
    if (active && active.closest && active.closest("main form")) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Ferrafka-Refresh": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var next = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        var current = document.querySelector("main");
        if (next && current) current.replaceWith(next);
      })
      .catch(function () { /* the next tick tries again */ });
  }
  window.setInterval(refresh, INTERVAL_MS);
})();

// Write forms with data-confirm ask before sending (stop a process, republish elsewhere).
document.addEventListener("submit", function (event) {
  "use strict";
  var form = event.target;
  var question = form && form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});
