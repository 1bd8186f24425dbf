// The set-up form's one guard that needs the browser (issue 17): a settings-discovery
// answer that arrives after the user started typing in a server field leaves that
// field's part of the form alone. Fields typed before the lookup was sent are the
// server's to respect (it never fills them); this covers the ones typed meanwhile.
(function () {
  "use strict";
  var TYPED = "data-ie-typed";

  document.addEventListener("input", function (event) {
    var field = event.target;
    if (field.name && field.name !== "email" && field.closest && field.closest("form")) {
      field.setAttribute(TYPED, "1");
    }
  }, true);

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.target.id !== "mb-discovery") return;
    var form = event.target.closest("form");
    form.querySelectorAll("[" + TYPED + "]").forEach(function (field) {
      field.removeAttribute(TYPED);
    });
  });

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var part = event.detail.fragment && event.detail.fragment.firstElementChild;
    if (part && part.hasAttribute("data-ie-discovered") &&
        event.detail.target.querySelector("[" + TYPED + "]")) {
      event.detail.shouldSwap = false;
    }
  });
})();
