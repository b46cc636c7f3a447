/*
 * The activity form (templates/activities/form.html), enhanced. Without this file the form
 * still works: every part below posts the same names the plain form does.
 *
 * - All day: hides the start time and duration, shows the last day.
 * - Duration: the end time shows only for "Custom".
 * - Pickers (participants, deal, person, organization): an ARIA 1.2 combobox whose
 *   options htmx fetches from a scoped endpoint; chosen items are chips with hidden inputs.
 * - Guests: a tag input that validates each address and keeps the text box in step.
 */
(function () {
  "use strict";

  // Django's EmailValidator, ported (the server stays the judge): a dot-atom local part (no
  // leading, trailing or doubled dot) or a quoted one; a domain of labels with inner hyphens,
  // non-ASCII letters allowed (IDNA), a top-level label of letters; localhost; an address literal.
  var EMAIL_LOCAL = /^(?:[-!#$%&'*+\/=?^_`{}|~0-9A-Z]+(?:\.[-!#$%&'*+\/=?^_`{}|~0-9A-Z]+)*|"(?:[\x01-\x08\x0b\x0c\x0e-\x1f!#-\[\]-\x7f]|\\[\x01-\x09\x0b\x0c\x0e-\x7f])*")$/i;
  var EMAIL_DOMAIN = /^[a-z\u00a1-\uffff0-9](?:[a-z\u00a1-\uffff0-9-]{0,61}[a-z\u00a1-\uffff0-9])?(?:\.(?!-)[a-z\u00a1-\uffff0-9-]{1,63}(?<!-))*\.(?!-)(?:[a-z\u00a1-\uffff-]{2,63}|xn--[a-z0-9]{1,59})(?<!-)$/i;
  var EMAIL_LITERAL = /^\[[A-F0-9:.]+\]$/i;
  var EMAIL_MAX_LENGTH = 320;

  function isEmail(text) {
    var at = text.lastIndexOf("@");
    if (at < 0 || text.length > EMAIL_MAX_LENGTH) { return false; }
    var domain = text.slice(at + 1);
    return EMAIL_LOCAL.test(text.slice(0, at)) &&
      (domain === "localhost" || EMAIL_DOMAIN.test(domain) || EMAIL_LITERAL.test(domain));
  }

  var SEPARATORS = /[,;\s]+/;

  function announce(region, text) {
    // Clear first so that the same words twice in a row are read again.
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 30);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // --- When: all day, duration, last day ------------------------------------------------------

  function setUpWhen(form) {
    var allDay = form.querySelector("input[name=all_day]");
    var timedParts = form.querySelectorAll("[data-when=timed]");
    var allDayParts = form.querySelectorAll("[data-when=all-day]");
    var presets = form.querySelectorAll("input[name=duration_preset]");
    var customOnly = form.querySelectorAll("[data-custom-only]");

    function showWhen() {
      var isAllDay = allDay !== null && allDay.checked;
      timedParts.forEach(function (part) { part.hidden = isAllDay; });
      allDayParts.forEach(function (part) { part.hidden = !isAllDay; });
    }

    function showCustom() {
      var checked = form.querySelector("input[name=duration_preset]:checked");
      var custom = checked === null || checked.value === "custom";
      customOnly.forEach(function (part) { part.hidden = !custom; });
    }

    if (allDay !== null) { allDay.addEventListener("change", showWhen); }
    presets.forEach(function (radio) { radio.addEventListener("change", showCustom); });
    showWhen();
    showCustom();

    // Moving the first day of a multi-day item moves its last day along.
    var firstDay = form.querySelector("input[name=due_date]");
    var lastDay = form.querySelector("input[name=end_date]");
    if (firstDay === null || lastDay === null) { return; }
    var previous = firstDay.value;
    firstDay.addEventListener("change", function () {
      var before = Date.parse(previous);
      var after = Date.parse(firstDay.value);
      var end = Date.parse(lastDay.value);
      if (!isNaN(before) && !isNaN(after) && !isNaN(end)) {
        lastDay.value = new Date(end + (after - before)).toISOString().slice(0, 10);
      }
      previous = firstDay.value;
    });
  }

  // --- Pickers ------------------------------------------------------------------------------------

  function setUpPicker(root) {
    var field = root.dataset.field;
    var multiple = root.dataset.multiple === "true";
    var input = root.querySelector("[role=combobox]");
    var listbox = root.querySelector("[role=listbox]");
    var chips = root.querySelector("[data-chips]");
    var status = root.querySelector("[data-status]");
    var activeIndex = -1;
    var quiet = false;  // after a pick: ignore answers to searches sent before it

    function makeChip(value, label) {
      var chip = el("li", "chip");
      chip.dataset.value = value;
      chip.dataset.label = label;
      var hidden = el("input");
      hidden.type = "hidden";
      hidden.name = field;
      hidden.value = value;
      var remove = el("button", "chip-remove", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", "Remove " + label);
      chip.append(el("span", "chip-label", label), remove, hidden);
      return chip;
    }

    // The server drew chosen items as checkboxes (untick to remove); make them chips.
    chips.querySelectorAll(".chip").forEach(function (chip) {
      var box = chip.querySelector("input[type=checkbox]");
      if (box !== null && !box.checked) { chip.remove(); return; }
      chip.replaceWith(makeChip(chip.dataset.value, chip.dataset.label));
    });

    function options() {
      return Array.prototype.slice.call(listbox.querySelectorAll("[role=option]:not([aria-disabled=true])"));
    }

    function setActive(index) {
      var all = options();
      all.forEach(function (option) { option.setAttribute("aria-selected", "false"); });
      activeIndex = all.length ? (index + all.length) % all.length : -1;
      if (activeIndex < 0) {
        input.removeAttribute("aria-activedescendant");
        return;
      }
      var option = all[activeIndex];
      option.setAttribute("aria-selected", "true");
      input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    }

    function isOpen() { return !listbox.hidden; }

    function open() {
      listbox.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }

    function close() {
      listbox.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      activeIndex = -1;
    }

    function search() {
      quiet = false;
      input.dispatchEvent(new CustomEvent("picker-search"));
    }

    function removeChip(chip, moveFocus) {
      var label = chip.dataset.label;
      chip.remove();
      announce(status, label + " removed.");
      if (moveFocus) { input.focus(); }
    }

    function pick(option) {
      var value = option.dataset.value;
      var label = option.dataset.label;
      if (!multiple) {
        chips.querySelectorAll(".chip").forEach(function (chip) { chip.remove(); });
        // A candidate ticked after an ambiguous match would otherwise win on the server.
        root.querySelectorAll('input[name="' + field + '_pick"]').forEach(function (box) { box.checked = false; });
      }
      if (chips.querySelector('.chip[data-value="' + value + '"]') === null) {
        chips.append(makeChip(value, label));
      }
      quiet = true;
      input.dispatchEvent(new CustomEvent("htmx:abort", { bubbles: true, detail: { elt: input } }));
      input.value = "";
      close();
      listbox.replaceChildren();
      input.focus();
      announce(status, label + (multiple ? " added." : " chosen."));
    }

    input.addEventListener("keydown", function (event) {
      switch (event.key) {
        case "ArrowDown":
        case "ArrowUp":
          event.preventDefault();
          if (!isOpen()) {
            search();
          } else {
            setActive(activeIndex + (event.key === "ArrowDown" ? 1 : -1));
          }
          break;
        case "Enter":
          if (isOpen() && options().length) {
            event.preventDefault();
            pick(options()[Math.max(activeIndex, 0)]);
          } else if (input.value.trim() !== "") {
            // Don't submit half-typed text: look it up first.
            event.preventDefault();
            search();
          }
          break;
        case "Escape":
          if (isOpen()) {
            event.preventDefault();
            close();
          } else if (input.value !== "") {
            event.preventDefault();
            input.value = "";
          }
          break;
        case "Backspace":
          if (input.value === "") {
            var last = chips.querySelector(".chip:last-child");
            if (last !== null) {
              event.preventDefault();
              removeChip(last, false);
            }
          }
          break;
        case "Tab":
          close();
          break;
      }
    });
    input.addEventListener("input", function () { quiet = false; });

    input.addEventListener("blur", function () { close(); });

    // Keep the focus in the input while the mouse picks an option.
    listbox.addEventListener("mousedown", function (event) { event.preventDefault(); });
    listbox.addEventListener("click", function (event) {
      var option = event.target.closest("[role=option]");
      if (option !== null && option.getAttribute("aria-disabled") !== "true") { pick(option); }
    });

    chips.addEventListener("click", function (event) {
      var button = event.target.closest(".chip-remove");
      if (button !== null) { removeChip(button.closest(".chip"), true); }
    });
    chips.addEventListener("keydown", function (event) {
      var button = event.target.closest(".chip-remove");
      if (button !== null && (event.key === "Backspace" || event.key === "Delete")) {
        event.preventDefault();
        removeChip(button.closest(".chip"), true);
      }
    });

    // htmx swapped new options into the listbox.
    document.body.addEventListener("htmx:afterSwap", function (event) {
      if (event.detail.target !== listbox) { return; }
      if (quiet || document.activeElement !== input) {
        close();
        return;
      }
      var found = options();
      open();
      setActive(-1);
      if (found.length) {
        announce(status, found.length + (found.length === 1 ? " result" : " results") + ": use the up and down arrows, then Enter.");
      } else {
        var note = listbox.querySelector("[role=option]");
        announce(status, note !== null ? note.textContent : "No matches.");
      }
    });
  }

  // --- Guests -------------------------------------------------------------------------------------

  function setUpGuests(form) {
    var root = form.querySelector("[data-guests]");
    if (root === null) { return; }
    var textarea = root.querySelector("textarea");
    var label = root.querySelector("[data-guests-label]");
    var tagInput = root.querySelector("[data-tag-input]");
    var chips = root.querySelector("[data-chips]");
    var entry = root.querySelector("[data-entry]");
    var message = root.querySelector("[data-message]");

    tagInput.hidden = false;
    textarea.hidden = true;
    label.htmlFor = entry.id;

    function addresses() {
      return Array.prototype.map.call(chips.querySelectorAll(".chip"), function (chip) { return chip.dataset.value; });
    }

    function sync() { textarea.value = addresses().join("\n"); }

    function say(text, isError) {
      message.classList.toggle("is-error", Boolean(isError));
      if (isError) { entry.setAttribute("aria-invalid", "true"); } else { entry.removeAttribute("aria-invalid"); }
      announce(message, text);
    }

    function addChip(address, valid) {
      var chip = el("li", valid ? "chip" : "chip is-invalid");
      chip.dataset.value = address;
      var remove = el("button", "chip-remove", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", "Remove " + address);
      chip.append(el("span", "chip-label", address));
      if (!valid) { chip.append(el("span", "chip-note", "not a valid address")); }
      chip.append(remove);
      chips.append(chip);
    }

    // Returns whether everything typed was taken; what was not stays in the entry box.
    function commit() {
      var rejected = [];
      var added = [];
      var repeated = [];
      entry.value.split(SEPARATORS).forEach(function (token) {
        if (token === "") { return; }
        var known = addresses().map(function (a) { return a.toLowerCase(); });
        if (!isEmail(token)) {
          rejected.push(token);
        } else if (known.indexOf(token.toLowerCase()) >= 0) {
          repeated.push(token);
        } else {
          addChip(token, true);
          added.push(token);
        }
      });
      entry.value = rejected.join(", ");
      sync();
      if (rejected.length) {
        say(rejected.map(function (token) { return "“" + token + "” is not a valid e-mail address."; }).join(" "), true);
      } else if (repeated.length) {
        say(repeated.join(", ") + (repeated.length === 1 ? " is" : " are") + " already a guest.", false);
      } else if (added.length) {
        say(added.join(", ") + " added.", false);
      }
      return rejected.length === 0;
    }

    function removeChip(chip) {
      var address = chip.dataset.value;
      chip.remove();
      sync();
      say(address + " removed.", false);
      entry.focus();
    }

    // The server drew the addresses as chips, marking those it refused (data-invalid) after a
    // refused save: its word wins over the check here. Redrawn with their remove buttons.
    var drawn = Array.prototype.map.call(chips.querySelectorAll(".chip"), function (chip) {
      return { address: chip.dataset.value, refused: chip.hasAttribute("data-invalid") };
    });
    chips.replaceChildren();
    drawn.forEach(function (chip) { addChip(chip.address, !chip.refused && isEmail(chip.address)); });

    entry.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && entry.value.trim() === "") {
        return;  // nothing typed: Enter submits the form as anywhere else
      }
      if (event.key === "Enter" || event.key === "," || event.key === ";") {
        event.preventDefault();
        commit();
      } else if (event.key === "Backspace" && entry.value === "") {
        var last = chips.querySelector(".chip:last-child");
        if (last !== null) {
          event.preventDefault();
          removeChip(last);
        }
      } else if (event.key === "Escape" && entry.value !== "") {
        event.preventDefault();
        entry.value = "";
        say("", false);
      }
    });
    entry.addEventListener("paste", function () {
      window.setTimeout(function () { if (SEPARATORS.test(entry.value.trim())) { commit(); } }, 0);
    });
    entry.addEventListener("blur", function () {
      if (entry.value.trim() !== "") { commit(); }
    });
    chips.addEventListener("click", function (event) {
      var button = event.target.closest(".chip-remove");
      if (button !== null) { removeChip(button.closest(".chip")); }
    });

    form.addEventListener("submit", function (event) {
      if (entry.value.trim() !== "" && !commit()) {
        event.preventDefault();
        entry.focus();
      }
    });
  }

  function enhance() {
    var form = document.querySelector("[data-activity-form]");
    if (form === null) { return; }
    form.classList.add("is-enhanced");
    setUpWhen(form);
    form.querySelectorAll("[data-picker]").forEach(setUpPicker);
    setUpGuests(form);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", enhance);
  } else {
    enhance();
  }
}());
