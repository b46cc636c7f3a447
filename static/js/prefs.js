// Personal Preferences > Calendar Sync: the htmx behaviour its templates cannot declare without
// inline handlers (the Content-Security-Policy allows scripts from static files only).
(function () {
  "use strict";

  function within(element, selector) {
    return element instanceof Element && element.closest(selector) !== null;
  }

  // O8: a refused option comes back as 422 with its error message: swap it in like a success.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (within(event.detail.elt, "#calendar-sync") && event.detail.xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // An option that could not be saved at all (server error, network down) says so. A status
  // poll that fails is not a lost change: it stops quietly and the next page load shows the state.
  function saveFailed(event) {
    if (!within(event.detail.elt, "#calendar-sync form.option")) {
      return;
    }
    var notice = document.getElementById("save-failed");
    if (notice) {
      notice.hidden = false;
    }
  }
  document.addEventListener("htmx:responseError", saveFailed);
  document.addEventListener("htmx:sendError", saveFailed);

  // R9: the status fragment replaces itself every 2 seconds while a sync runs. It is no live region
  // (screen readers would read all of it each time); the announcer says its data-announce only
  // when that changed: a new phase or new counts, not every poll.
  function statusAnnouncement() {
    var status = document.getElementById("sync-status");
    return status === null ? null : status.getAttribute("data-announce");
  }
  var announced = null;
  document.addEventListener("DOMContentLoaded", function () {
    announced = statusAnnouncement();  // the page itself is read anyway
  });
  document.addEventListener("htmx:afterSettle", function () {
    var announcer = document.getElementById("sync-status-announcer");
    var current = statusAnnouncement();
    if (announcer === null || current === null || current === announced) {
      return;
    }
    announced = current;
    announcer.textContent = current;
  });
})();
