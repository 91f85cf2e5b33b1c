// Shows whether a live page is following the ledger: the #stream-state badge of /alarms/,
// /trials/, /trials/<id>/ and /directives/<id>/ follows htmx's ws extension (the sections
// themselves are swapped by htmx, out of band).
(function () {
  "use strict";
  function show(state, text) {
    var badge = document.getElementById("stream-state");
    if (badge) {
      badge.dataset.stream = state;
      badge.textContent = text;
    }
  }
  document.addEventListener("htmx:wsOpen", function () { show("live", "live"); });
  document.addEventListener("htmx:wsClose", function () { show("offline", "offline"); });
})();
