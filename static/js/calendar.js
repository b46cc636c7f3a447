// The week view's hour grid opens at the hour the server chose (data-scroll-hour, usually 7:00);
// every hour stays reachable by scrolling. Runs on page load and after each htmx swap.
(function () {
  "use strict";
  var LABEL_ROOM = 10; // pixels above the hour line, so its label is not under the header

  function scrollWeeks(root) {
    var weeks = root.querySelectorAll ? root.querySelectorAll("[data-scroll-hour]") : [];
    Array.prototype.forEach.call(weeks, function (week) {
      var scroller = week.querySelector(".wk-scroll");
      var header = week.querySelector(".wk-top");
      var day = week.querySelector(".wk-day");
      var hour = parseInt(week.getAttribute("data-scroll-hour"), 10);
      if (!scroller || !header || !day || isNaN(hour)) {
        return;
      }
      // The day headers and the all-day row stick to the top: bring the hour right under them,
      // with room for its label.
      var dayBox = day.getBoundingClientRect();
      var hourTop = dayBox.top + (dayBox.height * hour) / 24;
      scroller.scrollTop += hourTop - header.getBoundingClientRect().bottom - LABEL_ROOM;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    scrollWeeks(document);
  });
  // Again once every stylesheet has loaded: before that the grid's rows may not have their final
  // height. Idempotent: a grid already in place moves by nothing.
  window.addEventListener("load", function () {
    scrollWeeks(document);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    scrollWeeks(event.target);
  });
  document.addEventListener("htmx:historyRestore", function () {
    scrollWeeks(document);
  });
})();
