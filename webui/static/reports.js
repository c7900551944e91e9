/* LineBox reports: draws the charts described by the page's <script type="application/json"
   id="report-data"> block with uPlot (vendored). No inline script: the CSP forbids it. */
(function () {
  "use strict";
  var COLOURS = ["#1e88e5", "#43a047", "#e53935", "#8e24aa", "#fb8c00", "#00897b", "#6d4c41", "#3949ab"];

  function width(el) { return Math.max(260, Math.floor(el.getBoundingClientRect().width)); }

  function chart(host, spec) {
    var fig = document.createElement("figure");
    fig.className = "chart";
    fig.id = "chart-" + spec.id;
    fig.setAttribute("data-series", spec.series.length);
    var cap = document.createElement("figcaption");
    cap.textContent = spec.title + " (" + spec.unit + ")";
    fig.appendChild(cap);
    host.appendChild(fig);
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    var series = [{}].concat(spec.series.map(function (s, i) {
      var c = COLOURS[i % COLOURS.length];
      return {label: s.label, stroke: c, width: 2, spanGaps: false, points: {show: spec.x.length <= 48, size: 6}};
    }));
    var opts = {
      width: width(host), height: 220, series: series,
      scales: {x: {time: true}, y: spec.unit === "%" ? {range: [0, 100]} : {range: function (u, lo, hi) { return [0, Math.max(1, hi * 1.1)]; }}},
      axes: [{}, {label: spec.unit, size: 50}],
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); }
    };
    var plot = new uPlot(opts, data, fig);
    fig.setAttribute("data-drawn", "1");
    return {plot: plot, host: host};
  }

  function draw() {
    var block = document.getElementById("report-data");
    var host = document.getElementById("charts");
    if (!block || !host || typeof uPlot === "undefined") return;
    var specs = JSON.parse(block.textContent || "[]");
    var made = specs.map(function (s) { return chart(host, s); });
    host.setAttribute("data-charts", made.length);
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        made.forEach(function (m) { m.plot.setSize({width: width(m.host), height: 220}); });
      }, 150);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
