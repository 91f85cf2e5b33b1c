// Keeps the overview's tree current: follows /ws/events/ from the ledger seq the page was
// rendered at and, when an event that changes the picture lands (a pause, a resume, a genome
// patch, a trial starting or ending), fetches the tree again through htmx (the same /tree/
// fragment the "+N" buttons use), keeping the subtrees the operator opened. Any event also
// refreshes the side panel (/panel/: directives, alarms, trials, budgets, the runtime), at
// most once a second. Without JavaScript the page is complete as served; a reload shows the same.
(function () {
  "use strict";
  var REDRAW_KINDS = {
    algedonic_subtree_paused: true,
    algedonic_subtree_resumed: true,
    genome_patch_applied: true,
    genome_rolled_back: true,
    trial_started: true,
    trial_promoted: true,
    trial_pruned: true,
    trial_rejected: true,
    trial_rolled_back: true
  };
  var figure = document.getElementById("org-tree");
  var live = document.getElementById("overview-live");
  if (!figure || !live || !window.WebSocket) { return; }
  var since = live.dataset.since, root = live.dataset.root, pending = null, panelPending = null;

  function refreshPanel() {
    panelPending = null;
    if (!document.getElementById("overview-side")) { return; }
    htmx.ajax("GET", live.dataset.panel, { target: "#overview-side", swap: "outerHTML" });
  }

  function redraw() {
    pending = null;
    var tree = document.getElementById("org-tree");
    if (!tree) { return; }
    htmx.ajax("GET", live.dataset.fragment + window.location.search, {
      target: "#org-tree", swap: "outerHTML"
    });
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + window.location.host + "/ws/events/?node=" + encodeURIComponent(root) +
      "&since=" + encodeURIComponent(since);
    var socket = new WebSocket(url);
    socket.onopen = function () { live.dataset.stream = "live"; live.textContent = "live"; };
    socket.onmessage = function (message) {
      var event = JSON.parse(message.data);
      since = String(event.seq);
      if (REDRAW_KINDS[event.kind] && pending === null) {
        pending = window.setTimeout(redraw, 250); // one redraw for a burst of events
      }
      if (panelPending === null) {
        panelPending = window.setTimeout(refreshPanel, 1000);
      }
    };
    socket.onclose = function (closed) {
      live.dataset.stream = "offline";
      live.textContent = "offline";
      // 4401/4403/4404/4400 will not get better by retrying; anything else resumes from since.
      if ([4400, 4401, 4403, 4404].indexOf(closed.code) < 0) {
        window.setTimeout(connect, 2000);
      }
    };
  }
  connect();
})();
