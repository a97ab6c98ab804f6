/* Every page: housekeeping that needs no library. */
(function () {
  'use strict';
  // The login page is where one person's session ends and another's may begin on a shared phone:
  // drop the offline copies of the previous user's pages (the report outbox is kept per user).
  if (document.body.classList.contains('page-login') && window.caches && caches.keys) {
    caches.keys().then(function (keys) {
      keys.forEach(function (key) {
        if (key.indexOf('rw-') === 0) { caches.delete(key); }
      });
    }).catch(function () { /* no cache storage: nothing to clear */ });
  }
  // A button with data-print prints the page (inline handlers are not allowed by the pages' CSP).
  document.addEventListener('click', function (event) {
    var target = event.target && event.target.closest && event.target.closest('[data-print]');
    if (target) { window.print(); }
  });
  // A file field with data-max-bytes refuses a file over the limit before it is sent (the server refuses it
  // too, but only after a phone has spent its data sending it); data-too-large says so in the page's language.
  document.addEventListener('change', function (event) {
    var input = event.target;
    if (!input || input.type !== 'file' || !input.getAttribute('data-max-bytes')) { return; }
    var max = parseInt(input.getAttribute('data-max-bytes'), 10);
    var big = Array.prototype.some.call(input.files || [], function (file) { return file.size > max; });
    input.setCustomValidity(big ? (input.getAttribute('data-too-large') || 'too large') : '');
    if (big) { input.reportValidity(); }
  });
  // A form with data-confirm asks before it is sent (its text is in the page's language).
  document.addEventListener('submit', function (event) {
    var question = event.target.getAttribute && event.target.getAttribute('data-confirm');
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
})();

/* Shared by the page scripts (deferred scripts run in order, and this one comes first). */
(function () {
  'use strict';
  var RW = window.RW = window.RW || {};

  /* A Leaflet map in `box` with the station's tile server, if one is configured (its URL and credit are
     read from `source`'s data-tile-url and data-tile-attribution, `box` by default); without one the map
     shows its layers on a plain background (class no-tiles), so nothing is fetched from outside. */
  RW.baseMap = function (L, box, source) {
    var from = source || box;
    var map = L.map(box, { zoomControl: false });
    // The zoom buttons' hints in the page's language (Leaflet's own are English).
    L.control.zoom({
      zoomInTitle: document.body.getAttribute('data-zoom-in') || 'Zoom in',
      zoomOutTitle: document.body.getAttribute('data-zoom-out') || 'Zoom out'
    }).addTo(map);
    // Plain-text credit: the default prefix links to an outside site.
    map.attributionControl.setPrefix('Leaflet');
    var tiles = from.getAttribute('data-tile-url');
    if (tiles) {
      var credit = (from.getAttribute('data-tile-attribution') || '').replace(/[&<>"']/g, '');
      L.tileLayer(tiles, { maxZoom: 19, attribution: credit }).addTo(map);
    } else {
      box.classList.add('no-tiles');
    }
    return map;
  };

  RW.csrf = function () { return document.body.getAttribute('data-csrf') || ''; };

  /* Times on the command centre's maps are in the programme's time zone (the server's setting, on
     <body data-tz>), as are the times the server writes into pages, whatever zone the browser is
     set to. Riders' own pages keep the phone's time. */
  var zoneFormat = null;
  function zoneParts(date) {
    if (!zoneFormat) {
      zoneFormat = new Intl.DateTimeFormat('en-US', {
        timeZone: document.body.getAttribute('data-tz') || undefined, hourCycle: 'h23',
        year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit'
      });
    }
    var out = {};
    zoneFormat.formatToParts(date).forEach(function (part) { out[part.type] = part.value; });
    return out;
  }
  /* 'YYYY-MM-DDTHH:MM' in the programme's zone: the value of a datetime-local input. */
  RW.zoneInput = function (date) {
    var p = zoneParts(date);
    return p.year + '-' + p.month + '-' + p.day + 'T' + p.hour + ':' + p.minute;
  };
  RW.zoneText = function (date) { return RW.zoneInput(date).replace('T', ' '); };
  /* The moment a wall-clock 'YYYY-MM-DDTHH:MM' in the programme's zone names (Invalid Date if none). */
  RW.fromZoneInput = function (value) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(value || '');
    if (!m) { return new Date(NaN); }
    var wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    var guess = wall;
    // The zone's offset at the guess, then once more at the result, in case an offset change lies between.
    for (var i = 0; i < 2; i++) {
      var p = zoneParts(new Date(guess));
      guess = wall - (Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - guess);
    }
    return new Date(guess);
  };

  /* Show a message in a status box (or hide the box when there is no text). */
  RW.showMessage = function (box, text, kind) {
    if (!box) { return; }
    box.hidden = !text;
    box.className = 'msg' + (kind ? ' msg-' + kind : '');
    box.setAttribute('data-kind', kind || 'info');
    box.textContent = text || '';
  };

  /* One JSON call to the API with the session's CSRF token; a refusal becomes an Error carrying the
     problem's detail in the page's language (`words.login` for 401, `words.network` when the server
     cannot be reached). */
  RW.api = function (method, url, body, words) {
    var headers = {
      'Accept': 'application/json', 'X-CSRF-Token': RW.csrf(), 'Accept-Language': document.documentElement.lang
    };
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; }
    return fetch(url, {
      method: method, credentials: 'same-origin', headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (res) {
      if (res.status === 204) { return null; }
      return res.json().catch(function () { return null; }).then(function (data) {
        if (res.ok) { return data; }
        var error = new Error(res.status === 401 ? words.login : (data && (data.localized_detail || data.detail || data.title)) || String(res.status));
        error.status = res.status;
        throw error;
      });
    }, function () {
      var error = new Error(words.network);
      error.status = 0;
      throw error;
    });
  };
})();
