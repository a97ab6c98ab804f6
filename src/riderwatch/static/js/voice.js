/* Satisfaction over the months, drawn with Chart.js (served by RiderWatch) from the figures in the page;
   the same figures are in the table, so nothing depends on this script. */
(function () {
  'use strict';
  var Chart = window.Chart;
  var data = document.getElementById('voice-data');
  var words = document.getElementById('voice-words');
  if (!Chart || !data || !words) { return; }
  var months = JSON.parse(data.textContent);
  var text = JSON.parse(words.textContent);
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;
  var labels = months.map(function (m) { return m.month; });
  var rating = document.getElementById('chart-rating');
  if (rating) {
    new Chart(rating, {
      type: 'line',
      data: { labels: labels, datasets: [{ label: text.rating, data: months.map(function (m) { return m.rating; }),
        borderColor: '#2e7d32', spanGaps: true, tension: 0.2 }] },
      options: { plugins: { legend: { display: false } }, scales: { y: { min: 1, max: 5 } } }
    });
  }
  var counts = document.getElementById('chart-feedback');
  if (counts) {
    new Chart(counts, {
      type: 'bar',
      data: { labels: labels, datasets: [
        { label: text.received, data: months.map(function (m) { return m.received; }), backgroundColor: '#90caf9' },
        { label: text.answered, data: months.map(function (m) { return m.answered; }), backgroundColor: '#1565c0' },
        { label: text.visits, data: months.map(function (m) { return m.visits; }), backgroundColor: '#ef6c00' }
      ] },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
})();
