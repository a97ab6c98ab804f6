/* The dashboard's charts, drawn with Chart.js (served by RiderWatch) from the figures in the page. The
   same figures are in the page as numbers and tables, so nothing depends on this script. */
(function () {
  'use strict';
  var Chart = window.Chart;
  var data = document.getElementById('figures-data');
  var words = document.getElementById('figures-words');
  if (!Chart || !data || !words) { return; }
  var figures = JSON.parse(data.textContent);
  var text = JSON.parse(words.textContent);
  var COLOURS = ['#1565c0', '#2e7d32', '#ef6c00', '#6a1b9a', '#c62828', '#00838f', '#6d4c41', '#455a64', '#ad1457'];
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.legend.display = false;

  function bars(id, labels, values, options) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    var horizontal = options && options.horizontal;
    new Chart(canvas, {
      type: 'bar',
      data: { labels: labels, datasets: [{ label: text.clues, data: values, backgroundColor: COLOURS }] },
      options: { indexAxis: horizontal ? 'y' : 'x', scales: { x: { ticks: { precision: 0 } }, y: { ticks: { precision: 0 } } } }
    });
  }

  var days = Object.keys(figures.clues.by_day);
  var canvas = document.getElementById('chart-days');
  if (canvas) {
    new Chart(canvas, {
      type: 'line',
      data: { labels: days, datasets: [{ label: text.clues, data: days.map(function (d) { return figures.clues.by_day[d]; }),
        borderColor: COLOURS[0], backgroundColor: 'rgba(21, 101, 192, 0.15)', fill: true, tension: 0.2 }] },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
  var statuses = Object.keys(figures.clues.by_status);
  bars('chart-status', statuses.map(function (s) { return text.status[s] || s; }),
    statuses.map(function (s) { return figures.clues.by_status[s]; }));
  // The page's JSON comes with its keys sorted: order the bars by count, largest first.
  function largestFirst(counts) {
    return Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a]; });
  }
  var categories = largestFirst(figures.clues.by_category);
  bars('chart-category', categories, categories.map(function (k) { return figures.clues.by_category[k]; }), { horizontal: true });
  var communities = largestFirst(figures.clues.by_community);
  bars('chart-community', communities, communities.map(function (k) { return figures.clues.by_community[k]; }), { horizontal: true });
  var stations = Object.keys(figures.riders.by_station);
  var stationCanvas = document.getElementById('chart-stations');
  if (stationCanvas) {
    new Chart(stationCanvas, {
      type: 'bar',
      data: { labels: stations, datasets: [
        { label: text.members, data: stations.map(function (s) { return figures.riders.by_station[s].members; }), backgroundColor: '#90caf9' },
        { label: text.active, data: stations.map(function (s) { return figures.riders.by_station[s].active; }), backgroundColor: '#1565c0' }
      ] },
      options: { indexAxis: 'y', plugins: { legend: { display: true } }, scales: { x: { ticks: { precision: 0 } } } }
    });
  }
})();
