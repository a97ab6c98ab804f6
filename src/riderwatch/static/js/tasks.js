/* Patrol task pages: the targets of a task on a map (cells coloured passed / not passed, check-in
   points as circles of their radius), the publish form's map (tap to add a check-in point line), and
   the rider's list ordered from the phone's position (asked once, not stored). Every page works
   without this script; without a configured tile server the maps have a plain background, so nothing
   is fetched from outside the intranet. Plain ES2017, Leaflet only. */
(function () {
  'use strict';
  var el = function (id) { return document.getElementById(id); };
  function readJson(id) {
    try { return JSON.parse(el(id).textContent); } catch (e) { return null; }
  }
  var T = readJson('tasks-i18n') || {};
  function t(key, values) {
    return (T[key] || key).replace(/%\((\w+)\)[sd]/g, function (_, name) {
      return values && values[name] !== undefined ? String(values[name]) : '';
    });
  }
  function localText(iso) { return window.RW.zoneText(new Date(iso)); }
  // Names are people's own text: set as text, never as HTML.
  function textBox(lines) {
    var box = document.createElement('div');
    lines.forEach(function (line, i) {
      if (i) { box.appendChild(document.createElement('br')); }
      box.appendChild(document.createTextNode(line));
    });
    return box;
  }

  var STYLE = {
    passed: { color: '#1b5e20', weight: 2, fillColor: '#43a047', fillOpacity: 0.55 },
    open: { color: '#e65100', weight: 2, dashArray: '5 4', fillColor: '#ffe0b2', fillOpacity: 0.35 }
  };

  function baseMap(box) { return window.RW.baseMap(L, box); }


  // A circle's own getBounds needs a map with a view; before the first fit, its centre and radius do.
  function boundsOf(group) {
    var bounds = L.latLngBounds([]);
    group.eachLayer(function (layer) {
      bounds.extend(layer instanceof L.Circle ? layer.getLatLng().toBounds(2 * layer.getRadius()) : layer.getBounds());
    });
    return bounds;
  }

  function fitTo(map, group, fallback) {
    if (group.getLayers().length) {
      map.fitBounds(boundsOf(group).pad(0.2), { maxZoom: 17 });
    } else if (fallback && fallback.getLayers().length) {
      map.fitBounds(fallback.getBounds());
    } else {
      map.setView([0, 0], 2);
    }
  }

  /* --- a task's targets: the command centre's detail and the rider's own task --- */
  function targetPopup(p, mine) {
    var lines = [p.h3 ? t('cell', { h3: p.h3 }) : (p.name || t('point', { n: p.seq + 1 }))];
    if (p.radius_m) { lines.push(t('radius', { n: Math.round(p.radius_m) })); }
    if (!p.passed) { lines.push(t('not_passed')); }
    else { lines.push(mine ? t('you_passed') : t('passed_by', { n: p.passed_by })); }
    if (p.first_pass_at) { lines.push(t('first_pass', { time: localText(p.first_pass_at) })); }
    return textBox(lines);
  }

  function drawTargets(box) {
    var data = readJson(box.getAttribute('data-task-map')) || { features: [] };
    var mine = box.getAttribute('data-mine') === '1';
    var map = baseMap(box);
    var group = L.featureGroup().addTo(map);
    var passed = 0;
    data.features.forEach(function (f) {
      var p = f.properties;
      var state = p.passed ? 'passed' : 'open';
      if (p.passed) { passed += 1; }
      var style = Object.assign({ className: 'target target-' + state }, STYLE[state]);
      var layer;
      if (f.geometry.type === 'Point') {
        var c = f.geometry.coordinates;
        layer = L.circle([c[1], c[0]], Object.assign({ radius: p.radius_m }, style));
      } else {
        layer = L.geoJSON(f, { style: function () { return style; } });
      }
      layer.bindPopup(targetPopup(p, mine)).addTo(group);
    });
    fitTo(map, group, null);
    box.setAttribute('data-drawn', String(data.features.length));
    box.setAttribute('data-drawn-passed', String(passed));
  }

  /* --- the publish form: areas, the cells given, and check-in points from the text box --- */
  function parsePoints(text, fallbackRadius) {
    var points = [];
    text.split(/\r?\n/).forEach(function (line) {
      var parts = line.replace(/，/g, ',').split(',');
      if (parts.length < 2) { return; }
      var lat = parseFloat(parts[0]), lon = parseFloat(parts[1]);
      var radius = parts.length > 2 && parts[2].trim() ? parseFloat(parts[2]) : fallbackRadius;
      if (!isFinite(lat) || !isFinite(lon) || !isFinite(radius)) { return; }
      points.push({ lat: lat, lon: lon, radius: radius, name: parts.slice(3).join(',').trim() });
    });
    return points;
  }

  function publishForm(box) {
    var map = baseMap(box);
    var areas = readJson(box.getAttribute('data-areas')) || { type: 'FeatureCollection', features: [] };
    var outline = L.geoJSON(areas, {
      interactive: false,
      style: function (f) { return { color: f.properties.kind === 'grid' ? '#607d8b' : '#0b4f8a', weight: f.properties.kind === 'grid' ? 1 : 2, fillOpacity: 0.03 }; }
    }).addTo(map);
    var chosen = L.geoJSON(null, { interactive: false, style: { color: '#0b4f8a', weight: 3, fill: false } }).addTo(map);
    var cells = L.geoJSON(readJson(box.getAttribute('data-cells')), {
      interactive: false, style: Object.assign({ className: 'target target-open' }, STYLE.open)
    }).addTo(map);
    var circles = L.featureGroup().addTo(map);
    var textarea = el('task-checkpoints');
    var radiusInput = el('task-click-radius');
    var area = el('task-area');

    function radius() {
      var r = parseFloat(radiusInput.value);
      return isFinite(r) && r > 0 ? r : 100;
    }
    function drawPoints() {
      circles.clearLayers();
      parsePoints(textarea.value, radius()).forEach(function (p) {
        L.circle([p.lat, p.lon], Object.assign({ radius: p.radius, interactive: false, className: 'target target-point' }, STYLE.open))
          .addTo(circles);
      });
      box.setAttribute('data-points', String(circles.getLayers().length));
    }
    function showArea() {
      chosen.clearLayers();
      var value = area.value;
      var kind = value.split(':')[0];
      var code = value.slice(kind.length + 1);
      areas.features.forEach(function (f) {
        if (f.properties.kind === kind && f.properties.code === code) { chosen.addData(f); }
      });
      if (chosen.getLayers().length) { map.fitBounds(chosen.getBounds()); }
    }

    map.on('click', function (ev) {
      var line = ev.latlng.lat.toFixed(6) + ', ' + ev.latlng.lng.toFixed(6) + ', ' + Math.round(radius()) + ', ';
      var text = textarea.value.replace(/\s+$/, '');
      textarea.value = (text ? text + '\n' : '') + line;
      var radio = document.querySelector('input[name="target"][value="checkpoints"]');
      if (radio) { radio.checked = true; }
      drawPoints();
    });
    textarea.addEventListener('input', drawPoints);
    area.addEventListener('change', function () {
      var radio = document.querySelector('input[name="target"][value="area"]');
      if (radio && area.value) { radio.checked = true; }
      showArea();
    });
    Array.prototype.forEach.call(document.querySelectorAll('.js-only'), function (node) { node.hidden = false; });
    drawPoints();
    if (area.value) { showArea(); }
    fitTo(map, cells.getLayers().length ? cells : circles, outline);
    box.setAttribute('data-ready', '1');
  }

  /* --- the rider's list: nearest first from where the phone is now --- */
  function distanceText(m) {
    if (m === null || m === undefined) { return ''; }
    return m < 1000 ? t('m_away', { n: Math.round(m) }) : t('km_away', { n: (m / 1000).toFixed(1) });
  }

  function orderByPosition(list) {
    if (!navigator.geolocation || !window.RW || !list.querySelector('[data-task-id]')) { return; }
    var note = el('tasks-order');
    navigator.geolocation.getCurrentPosition(function (pos) {
      var q = '?lat=' + pos.coords.latitude.toFixed(6) + '&lon=' + pos.coords.longitude.toFixed(6);
      window.RW.api('GET', '/api/v1/me/tasks' + q, undefined, { login: t('login'), network: t('network') })
        .then(function (data) {
          data.open.forEach(function (task) {
            var card = list.querySelector('[data-task-id="' + task.id + '"]');
            if (!card) { return; }
            card.querySelector('[data-testid="my-task-distance"]').textContent = distanceText(task.distance_m);
            list.appendChild(card);  // in the answer's order: nearest first
          });
          note.textContent = t('from_here');
          note.setAttribute('data-from', data.distance_from);
        }, function () { /* the server's order stays */ });
    }, function () {
      if (note.getAttribute('data-from') === 'none') { return; }
      note.textContent = t('no_position');
    }, { timeout: 15000, maximumAge: 60000 });
  }

  if (window.L) {
    Array.prototype.forEach.call(document.querySelectorAll('[data-task-map]'), drawTargets);
    if (el('task-form-map')) { publishForm(el('task-form-map')); }
  }
  if (el('open-task-list')) { orderByPosition(el('open-task-list')); }
})();
