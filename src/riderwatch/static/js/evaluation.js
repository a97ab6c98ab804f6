/* A month's evaluation charts, drawn with Chart.js (served by RiderWatch) from the figures in the page.
   The same results are in the page as a table, so nothing depends on this script. */
(function () {
  'use strict';
  var Chart = window.Chart;
  var data = document.getElementById('evaluation-data');
  var words = document.getElementById('evaluation-words');
  if (!Chart || !data || !words) { return; }
  var charts = JSON.parse(data.textContent);
  var text = JSON.parse(words.textContent);
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.legend.display = false;

  // [[band, riders], …] in order, lowest scores first.
  var bands = charts.distribution.map(function (pair) { return pair[0]; });
  var distribution = document.getElementById('chart-distribution');
  if (distribution) {
    new Chart(distribution, {
      type: 'bar',
      data: { labels: bands, datasets: [{ label: text.riders, data: charts.distribution.map(function (pair) { return pair[1]; }),
        backgroundColor: '#1565c0' }] },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
  var names = Object.keys(charts.contributions).sort(function (a, b) {
    return charts.contributions[b] - charts.contributions[a];
  });
  var contributions = document.getElementById('chart-contributions');
  if (contributions) {
    new Chart(contributions, {
      type: 'bar',
      data: { labels: names, datasets: [{ label: text.points, data: names.map(function (n) { return charts.contributions[n]; }),
        backgroundColor: '#2e7d32' }] },
      options: { indexAxis: 'y', scales: { x: { beginAtZero: true } } }
    });
  }
})();
