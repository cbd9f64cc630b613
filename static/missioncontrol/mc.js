// Small progressive enhancements; every page works without them.
(function () {
  "use strict";
  // Copy an attempt's full id: the short id is what people read, the full
  // one is what they paste into an executor's console.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    var done = function () {
      var label = button.textContent;
      button.textContent = "copied";
      setTimeout(function () { button.textContent = label; }, 1200);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { window.prompt("Attempt id", text); });
    } else {
      window.prompt("Attempt id", text);
    }
  });
  // The board's poller skips its refresh while the operator is filling in
  // the "rerun these tasks" form (focus in it, or a reason typed), which a
  // refresh would replace.
  window.mcComposing = function () {
    var form = document.getElementById("board-rerun");
    if (!form) return false;
    var reason = form.querySelector('input[name="reason"]');
    return form.matches(":focus-within") || Boolean(reason && reason.value);
  };
  // A poller marked data-pause-while-composing skips its refresh then. A
  // listener, not an hx-trigger filter: filters are evaluated as code,
  // which the Content-Security-Policy forbids.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (elt && elt.hasAttribute("data-pause-while-composing") && window.mcComposing()) {
      event.preventDefault();
    }
  });
  // "/" focuses the board's search, as in most consoles.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.target.closest("input, textarea, select")) return;
    var search = document.getElementById("id_q");
    if (search) { event.preventDefault(); search.focus(); }
  });
})();
