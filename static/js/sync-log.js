// Personal Preferences > Calendar Sync > Sync log (D2): after htmx swaps in a search's or another
// page's runs, screen readers hear how many runs there are, and a page link's focus (gone with the
// old runs) moves to the new runs' heading. No inline handlers: the CSP allows static scripts only.
(function () {
  "use strict";

  document.addEventListener("htmx:afterSettle", function (event) {
    var runs = event.target;
    if (!(runs instanceof Element) || runs.id !== "sync-log-runs") {
      return;
    }
    var announcer = document.getElementById("sync-log-announcer");
    if (announcer !== null) {
      announcer.textContent = runs.getAttribute("data-announce") || "";
    }
    var source = event.detail.elt;
    if (source instanceof Element && source.closest(".pagination") !== null) {
      var heading = document.getElementById("sync-log-summary");
      if (heading !== null) {
        heading.focus();
      }
    }
  });
})();
