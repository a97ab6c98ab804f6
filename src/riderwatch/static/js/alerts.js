/* A rider's alerts page: new alerts arrive on the live stream while the page is open. The phone
   vibrates and beeps (where the browser allows), and the page shows the new alert. EventSource
   reconnects by itself after a dropped connection and resumes after the last event it had. */
(function () {
  'use strict';
  // The sender's board of an alert: acknowledgements and sightings arrive on their stream; the board
  // shows them as they come.
  var board = document.querySelector('[data-live-board]');
  if (board && window.EventSource) {
    var ids = (board.getAttribute('data-live-board') || '').split(' ');
    var feed = new EventSource('/api/v1/alerts/stream');
    var mine = function (event) {
      try { return ids.indexOf(String(JSON.parse(event.data).alert_id)) !== -1; } catch (e) { return false; }
    };
    var refresh = function (event) { if (mine(event)) { feed.close(); window.location.reload(); } };
    feed.addEventListener('receipt', refresh);
    feed.addEventListener('sighting', refresh);
  }
  var live = document.getElementById('alert-live');
  if (!live || !window.EventSource) { return; }

  function beep() {
    try {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) { return; }
      var ctx = new Context();
      var tone = ctx.createOscillator();
      var gain = ctx.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.2;
      tone.connect(gain);
      gain.connect(ctx.destination);
      tone.start();
      tone.stop(ctx.currentTime + 0.4);
    } catch (e) { /* no sound allowed before a tap: the vibration and the page still show it */ }
  }

  var stream = new EventSource('/api/v1/alerts/stream');
  stream.addEventListener('ready', function () { live.setAttribute('data-state', 'on'); });
  stream.addEventListener('alert', function () {
    if (navigator.vibrate) { navigator.vibrate([300, 100, 300]); }
    beep();
    stream.close();
    window.location.reload();
  });
  stream.onerror = function () { live.setAttribute('data-state', 'reconnecting'); };
})();
