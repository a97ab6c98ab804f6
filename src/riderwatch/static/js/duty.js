/* The rider's duty pages: consent, duty and devices through /api/v1/me (the forms post to the page
   routes when this script is missing); while on duty and the page is open, the phone's positions go
   to /api/v1/tracking/pings in batches, kept in localStorage while there is no connection; a duty
   switch tapped without a connection is kept too and sent with the moment of the tap; and the
   small map of "my data". Plain ES2017, no library (Leaflet only for the map). */
(function () {
  'use strict';
  var el = function (id) { return document.getElementById(id); };
  var i18n = el('duty-i18n');
  var T = i18n ? JSON.parse(i18n.textContent) : {};
  function t(key, values) {
    return (T[key] || key).replace(/%\((\w+)\)[sd]/g, function (_, name) {
      return values && values[name] !== undefined ? String(values[name]) : '';
    });
  }
  var statusBox = el('duty-status');
  function show(text, kind) { window.RW.showMessage(statusBox, text, kind); }

  function api(method, url, body) {
    return window.RW.api(method, url, body, { login: t('login'), network: t('network') });
  }

  /* --- positions queued on the phone, per user (a shared phone never sends another rider's) --- */
  var sharing = el('sharing');
  var userId = (i18n && i18n.getAttribute('data-user')) || '';
  var QUEUE_KEY = 'rw-pings-' + userId;
  var MAX_QUEUE = 5000;
  var MAX_AGE_MS = 47 * 3600 * 1000;  // the server refuses positions older than 48 hours
  var BATCH = 500;
  var SEND_EVERY = 10;                // positions; a timer sends the rest
  var MIN_GAP_MS = 10000;             // one position per 10 s is enough for coverage, and spares the battery
  var FLUSH_MS = 30000;

  function readQueue() {
    try {
      var list = JSON.parse(localStorage.getItem(QUEUE_KEY) || '[]');
      var oldest = Date.now() - MAX_AGE_MS;
      return Array.isArray(list) ? list.filter(function (p) { return Date.parse(p.ts) > oldest; }) : [];
    } catch (e) { return []; }
  }
  function writeQueue(list) {
    try { localStorage.setItem(QUEUE_KEY, JSON.stringify(list.slice(-MAX_QUEUE))); } catch (e) { /* storage full or off: memory only */ }
  }
  var queue = readQueue();
  function clearQueue() {
    queue = [];
    try { localStorage.removeItem(QUEUE_KEY); } catch (e) { /* nothing kept */ }
  }

  // The shift's start: a fix from before it (a phone's cached position) would be refused anyway.
  var shiftStart = sharing ? Date.parse(sharing.getAttribute('data-since')) || 0 : 0;
  var sent = 0;
  var sending = null;
  var stopped = false;

  function renderSharing() {
    if (!sharing) { return; }
    el('sharing-waiting').textContent = String(queue.length);
    el('sharing-waiting').setAttribute('data-count', String(queue.length));
    el('sharing-sent').textContent = String(sent);
    el('sharing-sent').setAttribute('data-count', String(sent));
  }

  /* Send what is queued; resolves when done (also when it failed: the positions stay queued). */
  function flush() {
    if (sending) { return sending; }
    if (!queue.length || stopped) { return Promise.resolve(); }
    var batch = queue.slice(0, BATCH);
    sending = api('POST', '/api/v1/tracking/pings', { pings: batch }).then(function (result) {
      // Accepted and refused alike leave the queue: a refused position would be refused again.
      queue = queue.slice(batch.length);
      writeQueue(queue);
      sent += result.accepted;
      var refused = result.rejections || [];
      // Refused for consent or duty although taken in this shift: the shift has ended elsewhere.
      var fatal = refused.filter(function (r) {
        return (r.reason === 'no_consent' || r.reason === 'off_duty') && shiftStart && Date.parse(batch[r.index].ts) >= shiftStart;
      });
      if (fatal.length) {
        stop(t('stopped', { detail: fatal[0].detail }));
      } else if (refused.length) {
        var reasons = refused.map(function (r) { return r.reason; }).filter(function (r, i, all) { return all.indexOf(r) === i; });
        show(t('rejected', { n: refused.length, reasons: reasons.join(', ') }), 'warn');
      }
    }, function (error) {
      if (error.status === 0 || error.status >= 500) {
        sharing && sharing.setAttribute('data-state', 'offline');
        show(t('offline'), 'warn');
      } else if (error.status === 401 || error.status === 403) {
        stop(error.message);
      } else {
        // A batch the server cannot read would block every later one.
        queue = queue.slice(batch.length);
        writeQueue(queue);
        show(t('refused', { detail: error.message }), 'error');
      }
    }).then(function () {
      sending = null;
      renderSharing();
    });
    return sending;
  }

  var watchId = null;
  function stop(message) {
    stopped = true;
    if (watchId !== null) { navigator.geolocation.clearWatch(watchId); watchId = null; }
    if (sharing) { sharing.setAttribute('data-state', 'stopped'); }
    show(message, 'error');
  }

  function startSharing() {
    var note = el('sharing-note');
    renderSharing();
    if (!('geolocation' in navigator) || !window.isSecureContext) {
      sharing.setAttribute('data-state', 'unavailable');
      note.textContent = t('unavailable');
      note.className = 'msg msg-warn';
      flush();
      return;
    }
    note.textContent = t('locating');
    var lastTaken = 0;
    watchId = navigator.geolocation.watchPosition(function (pos) {
      var now = Date.now();
      var taken = pos.timestamp || now;
      if (stopped || now - lastTaken < MIN_GAP_MS || taken < shiftStart) { return; }
      lastTaken = now;
      var c = pos.coords;
      var ping = { ts: new Date(taken).toISOString(), lat: c.latitude, lon: c.longitude };
      if (isFinite(c.accuracy) && c.accuracy >= 0) { ping.accuracy_m = Math.min(c.accuracy, 100000); }
      if (c.speed !== null && isFinite(c.speed) && c.speed >= 0) { ping.speed_mps = c.speed; }
      if (c.heading !== null && isFinite(c.heading) && c.heading >= 0 && c.heading <= 360) { ping.heading = c.heading; }
      queue.push(ping);
      writeQueue(queue);
      sharing.setAttribute('data-state', 'sharing');
      note.textContent = t('sharing');
      note.className = '';
      el('sharing-last').textContent = t('position', {
        time: new Date(taken).toLocaleTimeString(), acc: Math.round(c.accuracy)
      });
      renderSharing();
      if (queue.length >= SEND_EVERY) { flush(); }
    }, function (err) {
      if (err.code === 1) {
        sharing.setAttribute('data-state', 'denied');
        note.textContent = t('denied');
        note.className = 'msg msg-warn';
      }
    }, { enableHighAccuracy: true, maximumAge: 5000, timeout: 60000 });
    setInterval(flush, FLUSH_MS);
    window.addEventListener('online', flush);
    document.addEventListener('visibilitychange', function () { if (document.hidden) { flush(); } });
    flush();
  }

  /* --- duty switches tapped without a connection: kept on the phone with the moment of the tap and
     sent in order (PUT /api/v1/me/duty with "at") once it is back, so a shift begins and ends when
     the rider said, not when the network returned --- */
  var SWITCH_KEY = 'rw-duty-' + userId;
  var dutyForm = el('duty-form');
  var dutyState = dutyForm && document.querySelector('[data-testid="duty-state"]');

  function readSwitches() {
    try {
      var list = JSON.parse(localStorage.getItem(SWITCH_KEY) || '[]');
      return Array.isArray(list) ? list.filter(function (s) { return typeof s.on === 'boolean' && s.at; }) : [];
    } catch (e) { return []; }
  }
  function writeSwitches() {
    try {
      if (switches.length) { localStorage.setItem(SWITCH_KEY, JSON.stringify(switches)); } else { localStorage.removeItem(SWITCH_KEY); }
    } catch (e) { /* storage full or off: memory only */ }
  }
  var switches = readSwitches();

  /* The phone's time with its offset, e.g. 2026-11-29T09:05:03.120+08:00. */
  function isoWithOffset(ms) {
    var d = new Date(ms);
    var pad = function (n, width) { return String(n).padStart(width || 2, '0'); };
    var offset = -d.getTimezoneOffset();
    var abs = Math.abs(offset);
    return pad(d.getFullYear(), 4) + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) +
      'T' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' + pad(d.getMilliseconds(), 3) +
      (offset < 0 ? '-' : '+') + pad(Math.floor(abs / 60)) + ':' + pad(abs % 60);
  }

  /* The duty card as it will be once the waiting switches reach the server. */
  function renderSwitch(on, at) {
    if (!dutyForm) { return; }
    dutyForm.elements.namedItem('on_duty').value = on ? 'no' : 'yes';
    var button = el('duty-toggle');
    button.textContent = on ? t('go_off') : t('go_on');
    button.classList.toggle('primary', !on);
    if (dutyState) {
      dutyState.setAttribute('data-on-duty', on ? '1' : '0');
      dutyState.setAttribute('data-pending', '1');
      dutyState.querySelector('.duty-text').textContent = on ? t('on_since', { time: new Date(at).toLocaleTimeString() }) : t('off');
    }
  }

  function queueSwitch(on, tapped) {
    switches.push({ on: on, at: isoWithOffset(tapped) });
    writeSwitches();
    renderSwitch(on, tapped);
    if (!on && watchId !== null) {
      // Off duty from the tap: no more positions (those taken before it are still sent).
      navigator.geolocation.clearWatch(watchId);
      watchId = null;
      sharing.setAttribute('data-state', 'stopped');
    }
    show(t('switch_queued'), 'warn');
    return null;  // stay on the page
  }

  /* Send the waiting switches, oldest first; true when the server has answered them all. */
  var sendingSwitches = null;
  function sendSwitches() {
    if (sendingSwitches) { return sendingSwitches; }
    if (!switches.length) { return Promise.resolve(true); }
    var next = switches[0];
    sendingSwitches = api('PUT', '/api/v1/me/duty', { on_duty: next.on, at: next.at }).then(function () {
      return true;
    }, function (error) {
      if (error.status === 0 || error.status >= 500 || error.status === 401) {
        if (error.status === 401) { show(error.message, 'error'); }
        return false;  // kept: sent when the phone is back online, or after logging in again
      }
      // Refused (too old, before the consent, …): it would be refused again.
      refusedSwitch = t('refused', { detail: error.message });
      return true;
    }).then(function (answered) {
      if (answered) {
        switches = switches.slice(1);
        writeSwitches();
      }
      sendingSwitches = null;
      return answered && switches.length ? sendSwitches() : answered;
    });
    return sendingSwitches;
  }
  var refusedSwitch = '';

  function sendSwitchesThenReload() {
    if (!switches.length) { return; }
    refusedSwitch = '';
    var last = switches[switches.length - 1];
    sendSwitches().then(function (done) {
      if (!done || !dutyForm) { return; }
      if (refusedSwitch) {
        // Show the refusal; reload to see what the server holds.
        show(refusedSwitch, 'error');
        dutyState && dutyState.removeAttribute('data-pending');
        return;
      }
      window.location.assign('/duty?done=' + (last.on ? 'on' : 'off'));
    });
  }

  if (switches.length) {
    var waiting = switches[switches.length - 1];
    renderSwitch(waiting.on, Date.parse(waiting.at));
  }
  if (sharing && !(switches.length && !switches[switches.length - 1].on)) { startSharing(); } else if (queue.length) {
    // Positions taken on duty before the page was closed: still valid, they fall inside that shift.
    flush();
  }
  sendSwitchesThenReload();
  window.addEventListener('online', sendSwitchesThenReload);
  setInterval(sendSwitchesThenReload, FLUSH_MS);

  /* --- the forms, through the JSON API --- */
  function valueOf(form, name) {
    var field = form.elements.namedItem(name);
    return field ? field.value : '';
  }

  var ACTIONS = {
    consent: function (form) {
      if (!form.elements.namedItem('agree').checked) { return Promise.reject(new Error(t('need_agree'))); }
      return api('PUT', '/api/v1/me/location-consent', { granted: true, text_version: valueOf(form, 'text_version') })
        .then(function () { return '/duty?done=consent'; });
    },
    duty: function (form) {
      var on = valueOf(form, 'on_duty') === 'yes';
      var tapped = Date.now();
      // Behind switches still waiting for a connection: this one waits too, in order.
      if (switches.length) { return Promise.resolve(queueSwitch(on, tapped)); }
      // Positions taken during the shift go first: after it ends they would be refused.
      var before = on ? Promise.resolve() : flush();
      return before.then(function () {
        return api('PUT', '/api/v1/me/duty', { on_duty: on });
      }).then(function () { return '/duty?done=' + (on ? 'on' : 'off'); }, function (error) {
        if (error.status !== 0) { throw error; }
        return queueSwitch(on, tapped);  // no connection: sent later, dated with the tap
      });
    },
    withdraw: function () {
      return api('PUT', '/api/v1/me/location-consent', { granted: false }).then(function (state) {
        clearQueue();  // the server has deleted the positions; keep none on the phone either
        switches = [];
        writeSwitches();
        return '/duty?done=withdrawn&deleted=' + encodeURIComponent(state.deleted_positions);
      });
    },
    device: function (form) {
      // Without an id of the rider's own, RiderWatch issues one (long and random: hard to guess).
      var body = {};
      var id = valueOf(form, 'device_id').trim();
      var label = valueOf(form, 'label').trim();
      if (id) { body.device_id = id; }
      if (label) { body.label = label; }
      return api('POST', '/api/v1/me/devices', body).then(function (device) {
        return '/duty?done=device&device=' + encodeURIComponent(device.device_id) + '#devices';
      });
    },
    'device-remove': function (form) {
      var id = form.getAttribute('data-device-id');
      return api('DELETE', '/api/v1/me/devices/' + encodeURIComponent(id)).then(function () { return '/duty?done=device-removed'; });
    }
  };

  Array.prototype.forEach.call(document.querySelectorAll('form[data-api]'), function (form) {
    var action = ACTIONS[form.getAttribute('data-api')];
    if (!action || !window.fetch) { return; }
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var buttons = form.querySelectorAll('button');
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
      show(t('working'), '');
      action(form).then(function (next) {
        if (next) {
          window.location.assign(next);
        } else {
          Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
        }
      }, function (error) {
        show(error.status === undefined ? error.message : t('refused', { detail: error.message }), 'error');
        Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
      });
    });
  });

  /* --- "my data": the last positions on a small map, without tiles unless a tile server is set --- */
  var mapEl = el('my-data-map');
  if (mapEl && window.L) {
    var L = window.L;
    var points = [];
    try { points = JSON.parse(el(mapEl.getAttribute('data-points')).textContent); } catch (e) { points = []; }
    var map = window.RW.baseMap(L, mapEl);
    var latlngs = points.map(function (p) { return [p.lat, p.lon]; });
    var line = L.polyline(latlngs, { color: '#0b4f8a', weight: 2, opacity: 0.7 }).addTo(map);
    points.forEach(function (p, i) {
      var last = i === points.length - 1;
      var tip = document.createElement('span');
      tip.textContent = p.ts;
      L.circleMarker([p.lat, p.lon], {
        radius: last ? 7 : 4, color: last ? '#b3261e' : '#0b4f8a', weight: 2,
        fillColor: last ? '#ef5350' : '#90caf9', fillOpacity: 0.9, className: 'my-point'
      }).bindTooltip(tip).addTo(map);
    });
    if (latlngs.length > 1) { map.fitBounds(line.getBounds().pad(0.2)); } else if (latlngs.length) { map.setView(latlngs[0], 16); }
  }
})();
