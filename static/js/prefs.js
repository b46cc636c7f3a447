// Personal Preferences > Calendar Sync: the htmx behaviour its templates cannot declare without
// inline handlers (the Content-Security-Policy allows scripts from static files only).
(function () {
  "use strict";

  function within(element, selector) {
    return element instanceof Element && element.closest(selector) !== null;
  }

  // O8: a refused option comes back as 422 with its error message: swap it in like a success.
  // Sync now refused (429: asked a moment ago, 409: the sync cannot run) comes with its message too.
  // (htmx sets detail.elt to the swap's target here; the element that asked is requestConfig.elt.)
  var SYNC_NOW_REFUSALS = [409, 429];
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    var asker = event.detail.requestConfig ? event.detail.requestConfig.elt : event.detail.elt;
    var refusal = status === 422 || (within(asker, "#sync-now-form") && SYNC_NOW_REFUSALS.indexOf(status) >= 0);
    if (within(event.detail.elt, "#calendar-sync") && refusal) {
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

  // Sync now that got no answer (server error, network down) says so beside the button.
  function syncNowFailed(event) {
    if (!within(event.detail.elt, "#sync-now-form")) {
      return;
    }
    var message = document.getElementById("sync-now-message");
    if (message) {
      message.textContent = "The sync could not be requested. Reload the page and try again.";
      message.classList.add("refused");
      announce(message.textContent);
    }
  }
  document.addEventListener("htmx:responseError", syncNowFailed);
  document.addEventListener("htmx:sendError", syncNowFailed);

  function announce(words) {
    var announcer = document.getElementById("sync-status-announcer");
    if (announcer !== null && words) {
      announcer.textContent = words;
    }
  }

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
  document.addEventListener("htmx:afterSettle", function (event) {
    // A refused Sync now: its message is said by the same announcer (the status did not change).
    if (event.target instanceof Element && event.target.id === "sync-now-message") {
      announce(event.target.textContent.trim());
      return;
    }
    var announcer = document.getElementById("sync-status-announcer");
    var current = statusAnnouncement();
    if (announcer === null || current === null || current === announced) {
      return;
    }
    announced = current;
    announcer.textContent = current;
  });
})();
