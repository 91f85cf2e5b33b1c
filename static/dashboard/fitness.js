// The node page's fitness chart: uPlot (static/vendor/uplot) over the series the server put
// in #fitness-data. The table beside it says the same in words and works without JavaScript.
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("fitness-chart");
    var data = document.getElementById("fitness-data");
    if (!holder || !data || typeof uPlot === "undefined") return;
    var series = JSON.parse(data.textContent);
    if (!series.time.length) return;
    var style = getComputedStyle(document.documentElement);
    var colour = function (name) { return style.getPropertyValue(name).trim() || "#888"; };
    var text = colour("--text");
    var axis = { stroke: text, grid: { stroke: colour("--border") }, ticks: { stroke: colour("--border") } };
    var options = {
      width: Math.min(holder.clientWidth || 640, 900),
      height: 220,
      series: [
        {},
        { label: "direct", stroke: colour("--accent"), width: 2, points: { show: true } },
        { label: "attributed", stroke: colour("--trial"), width: 2, dash: [6, 4], points: { show: true } },
      ],
      axes: [axis, Object.assign({ label: "final score" }, axis)],
    };
    holder.textContent = "";
    new uPlot(options, [series.time, series.direct, series.attributed], holder);
    holder.setAttribute("data-drawn", "true");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
