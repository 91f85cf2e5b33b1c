// The node page's events, live: follows /ws/events/ for this subtree from the ledger seq the
// page was rendered at and puts each new event at the top of the table (keeping 50 rows).
// Without JavaScript the table is the latest events as of the page's load.
(function () {
  "use strict";
  var MAX_ROWS = 50;
  var section = document.getElementById("node-events");
  var badge = document.getElementById("node-events-live");
  if (!section || !badge || !window.WebSocket) { return; }
  var body = section.querySelector("tbody");
  var since = section.dataset.since;

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function add(event) {
    var empty = body.querySelector(".empty-row");
    if (empty) { empty.remove(); }
    var row = document.createElement("tr");
    row.dataset.seq = String(event.seq);
    var link = document.createElement("a");
    link.href = section.dataset.ledger + "?seq=" + event.seq + "#seq-" + event.seq;
    link.textContent = String(event.seq);
    cell(row, "", "number").appendChild(link);
    cell(row, event.kind);
    cell(row, event.node_id || "");
    cell(row, event.actor.length > 40 ? event.actor.slice(0, 39) + "…" : event.actor);
    var when = document.createElement("time");
    when.dateTime = event.created_at;
    when.textContent = event.created_at.replace("T", " ").slice(0, 19);
    cell(row, "").appendChild(when);
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > MAX_ROWS) { body.deleteRow(body.rows.length - 1); }
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/events/?node=" +
      encodeURIComponent(section.dataset.nodeId) + "&since=" + encodeURIComponent(since));
    socket.onopen = function () { badge.dataset.stream = "live"; badge.textContent = "live"; };
    socket.onmessage = function (message) {
      var event = JSON.parse(message.data);
      since = String(event.seq);
      add(event);
    };
    socket.onclose = function (closed) {
      badge.dataset.stream = "offline";
      badge.textContent = "offline";
      if ([4400, 4401, 4403, 4404].indexOf(closed.code) < 0) { window.setTimeout(connect, 2000); }
    };
  }
  connect();
})();
