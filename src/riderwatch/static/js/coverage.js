/* The coverage map: H3 cells coloured by rider passes, blind cells, clue hotspots and gaps, clues and
   (for dispatchers, audited) riders on duty now, over an area and a time window; an hour-of-day chart
   and summary numbers. Everything comes from the JSON API with the session cookie and the CSRF
   header. Without a configured tile server the map has a plain background, so nothing is fetched
   from outside the intranet. Plain ES2017, Leaflet only. */
(function () {
  'use strict';
  var L = window.L;
  var form = document.getElementById('coverage-form');
  var mapEl = document.getElementById('coverage-map');
  if (!L || !form || !mapEl) { return; }

  var el = function (id) { return document.getElementById(id); };
  var T = JSON.parse(el('coverage-i18n').textContent);
  function t(key, values) {
    return (T[key] || key).replace(/%\((\w+)\)[sd]/g, function (_, name) {
      return values && values[name] !== undefined ? String(values[name]) : '';
    });
  }
  function readJson(id) {
    try { return JSON.parse(el(id).textContent); } catch (e) { return null; }
  }

  var HOUR = 3600 * 1000;
  // Passes per cell: 0, 1–2, 3–9, 10–29, 30–99, 100+ (the legend in the page says the same).
  var PASS_BREAKS = [1, 3, 10, 30, 100];
  var PASS_COLOURS = ['#ffffff', '#c7e9c0', '#74c476', '#31a354', '#006d2c', '#00441b'];
  var STATUS_COLOURS = {
    submitted: '#1565c0', verified: '#5e35b1', dispatched: '#ef6c00', in_progress: '#c8a400',
    resolved: '#2e7d32', closed: '#546e7a', rejected: '#c62828', duplicate: '#8e24aa'
  };
  // Above this many cells SVG paths get slow on a phone; canvas draws them in one element.
  var CANVAS_FROM = 3000;
  var LIVE_REFRESH_MS = 60000;
  var lang = document.documentElement.lang === 'en' ? 'en' : 'zh';
  var statusBox = el('coverage-status');
  var maxDays = parseInt(form.getAttribute('data-max-days'), 10) || 366;

  function show(text, kind) { window.RW.showMessage(statusBox, text, kind); }

  /* One call to the API; a refusal becomes an Error carrying the problem's detail. */
  function api(method, url, body) {
    return window.RW.api(method, url, body, { login: t('login'), network: t('network') });
  }

  /* --- the map and its layers --- */
  var map = window.RW.baseMap(L, mapEl);
  // Panes keep the drawing order whatever answer comes first: cells, hotspots, gaps, then points on top.
  [['rw-cells', 410], ['rw-hot', 420], ['rw-gaps', 430], ['rw-tasks', 440], ['rw-points', 450]].forEach(function (p) {
    map.createPane(p[0]).style.zIndex = String(p[1]);
  });
  var areas = readJson('areas-data') || { type: 'FeatureCollection', features: [] };
  var outline = L.geoJSON(null, { style: { color: '#0b4f8a', weight: 2, fill: false }, interactive: false }).addTo(map);
  var layers = {
    coverage: L.layerGroup(),
    blind: L.layerGroup(),
    hotspots: L.layerGroup(),
    gaps: L.layerGroup(),
    clues: L.layerGroup(),
    tasks: L.layerGroup(),
    live: L.layerGroup()
  };
  var toggles = {};
  Array.prototype.forEach.call(document.querySelectorAll('[data-layer]'), function (box) {
    var name = box.getAttribute('data-layer');
    toggles[name] = box;
    if (box.checked) { layers[name].addTo(map); }
    box.addEventListener('change', function () {
      if (box.checked) { layers[name].addTo(map); } else { layers[name].remove(); }
      if (name === 'live') { liveChanged(); }
    });
  });
  function offered(name) { return Boolean(toggles[name]); }

  var currentArea = null;

  // Ray casting over every ring (holes flip the answer back); GeoJSON positions are [lon, lat].
  function inRings(rings, lat, lon) {
    var inside = false;
    rings.forEach(function (ring) {
      for (var i = 0, j = ring.length - 1; i < ring.length; j = i, i += 1) {
        var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
        if ((yi > lat) !== (yj > lat) && lon < (xj - xi) * (lat - yi) / (yj - yi) + xi) { inside = !inside; }
      }
    });
    return inside;
  }

  function inArea(lat, lon) {
    if (!currentArea) { return true; }
    if (currentArea.type === 'Polygon') { return inRings(currentArea.coordinates, lat, lon); }
    if (currentArea.type === 'MultiPolygon') {
      return currentArea.coordinates.some(function (poly) { return inRings(poly, lat, lon); });
    }
    return true;
  }

  function fitArea(value) {
    outline.clearLayers();
    var kind = value.split(':')[0];
    var code = value.slice(kind.length + 1);
    var found = areas.features.filter(function (f) {
      return f.properties.kind === kind && f.properties.code === code;
    });
    currentArea = found.length ? found[0].geometry : null;
    if (found.length) {
      outline.addData(found[0]);
      map.fitBounds(outline.getBounds(), { padding: [10, 10] });
    } else {
      map.setView([0, 0], 2);
    }
  }

  function passClass(n) {
    var i = 0;
    while (i < PASS_BREAKS.length && n >= PASS_BREAKS[i]) { i += 1; }
    return i;
  }

  // Dispatchers may turn a hotspot or gap into a patrol task: a tap on the cell offers the link.
  var taskLink = mapEl.getAttribute('data-task-link') === '1';
  function taskPopup(feature) {
    var box = document.createElement('div');
    box.appendChild(document.createTextNode(t('cell', { h3: feature.properties.h3 })));
    box.appendChild(document.createElement('br'));
    var link = document.createElement('a');
    link.href = '/tasks/new?cells=' + encodeURIComponent(feature.properties.h3) + '&from=gaps';
    link.className = 'task-link';
    link.textContent = t('publish_task');
    box.appendChild(link);
    return box;
  }

  function cellLayer(features, pane, style, tooltip, withTaskLink) {
    var options = {
      pane: pane, style: style,
      onEachFeature: function (feature, layer) {
        layer.bindTooltip(tooltip(feature), { sticky: true });
        if (withTaskLink && taskLink) { layer.bindPopup(taskPopup(feature)); }
      }
    };
    if (features.length > CANVAS_FROM) { options.renderer = L.canvas({ pane: pane }); }
    return L.geoJSON({ type: 'FeatureCollection', features: features }, options);
  }

  function drawCoverage(data) {
    layers.coverage.clearLayers();
    layers.blind.clearLayers();
    var features = data.features || [];
    var covered = features.filter(function (f) { return f.properties.covered; });
    var blind = features.filter(function (f) { return !f.properties.covered; });
    cellLayer(covered, 'rw-cells', function (f) {
      return {
        color: '#2e5e3a', weight: 0.5, opacity: 0.6, fillColor: PASS_COLOURS[passClass(f.properties.passes)], fillOpacity: 0.65,
        className: 'cell-covered'
      };
    }, function (f) {
      var p = f.properties;
      return t('cell', { h3: p.h3 }) + '<br>' + t('passes', { n: p.passes }) + ' · ' + t('rider_hours', { n: p.riders });
    }).addTo(layers.coverage);
    cellLayer(blind, 'rw-cells', function () {
      return { color: '#c62828', weight: 1.2, dashArray: '3 3', fill: true, fillOpacity: 0, className: 'cell-blind' };
    }, function (f) {
      return t('cell', { h3: f.properties.h3 }) + '<br>' + t('blind') + ' · ' + t('passes', { n: f.properties.passes });
    }).addTo(layers.blind);
    mapEl.setAttribute('data-cells', String(features.length));
    mapEl.setAttribute('data-covered', String(covered.length));
  }

  function fixed(x, digits) { return isFinite(x) ? Number(x).toFixed(digits) : '—'; }

  function drawHotspots(data) {
    layers.hotspots.clearLayers();
    var shown = (data.features || []).filter(function (f) { return f.properties.hot || f.properties.z > 1.96; });
    cellLayer(shown, 'rw-hot', function (f) {
      var hot = f.properties.hot;
      return {
        color: hot ? '#b71c1c' : '#e65100', weight: hot ? 2 : 1, fillColor: hot ? '#d7301f' : '#fdae61',
        fillOpacity: hot ? 0.5 : 0.35, className: hot ? 'cell-hot' : 'cell-warm'
      };
    }, function (f) {
      var p = f.properties;
      return t('cell', { h3: p.h3 }) + (p.hot ? ' · ' + t('hot') : '') + '<br>' + t('clue_count', { n: p.count }) +
        '<br>' + t('z', { z: fixed(p.z, 2), p: fixed(p.p, 4) });
    }, true).addTo(layers.hotspots);
    mapEl.setAttribute('data-hot', String(shown.filter(function (f) { return f.properties.hot; }).length));
  }

  function drawGaps(data) {
    layers.gaps.clearLayers();
    cellLayer(data.features || [], 'rw-gaps', function () {
      return { color: '#6a1b9a', weight: 3, dashArray: '6 3', fill: true, fillOpacity: 0.05, className: 'cell-gap' };
    }, function (f) {
      var p = f.properties;
      return t('cell', { h3: p.h3 }) + ' · ' + t('gap') + '<br>' + t('clue_count', { n: p.count }) + '<br>' +
        t('key_hours', { covered: p.covered_hours, total: p.key_hours });
    }, true).addTo(layers.gaps);
    mapEl.setAttribute('data-gaps', String((data.features || []).length));
  }

  function popupLink(href, text, extra) {
    var box = document.createElement('div');
    var link = document.createElement('a');
    link.href = href;
    link.textContent = text;
    box.appendChild(link);
    box.appendChild(document.createElement('br'));
    box.appendChild(document.createTextNode(extra));
    return box;
  }

  function drawClues(list) {
    layers.clues.clearLayers();
    // Only the clues of the chosen area, like the cells and hotspots beside them.
    var shown = (list.items || []).filter(function (c) { return inArea(c.lat, c.lon); });
    shown.forEach(function (c) {
      L.circleMarker([c.lat, c.lon], {
        radius: 6, color: '#ffffff', weight: 2, fillColor: STATUS_COLOURS[c.status] || '#333', fillOpacity: 0.95,
        className: 'clue-marker', pane: 'rw-points'
      }).bindPopup(popupLink('/clues/' + c.id, '#' + c.id + ' ' + c.category_name, t('seen', { time: localText(new Date(c.observed_at)) })))
        .addTo(layers.clues);
    });
    mapEl.setAttribute('data-clues', String(shown.length));
  }

  /* Running patrol tasks: their cells or check-in circles, dashed, with a link to the task. */
  function drawTasks(data) {
    layers.tasks.clearLayers();
    var features = data.features || [];
    features.forEach(function (f) {
      var p = f.properties;
      var style = {
        color: '#6a1b9a', weight: 2, dashArray: '6 4', fillColor: p.passed ? '#2e7d32' : '#6a1b9a',
        fillOpacity: p.passed ? 0.35 : 0.12, pane: 'rw-tasks', className: 'task-target'
      };
      var shape = f.geometry.type === 'Point'
        ? L.circle([f.geometry.coordinates[1], f.geometry.coordinates[0]], Object.assign({ radius: p.radius_m }, style))
        : L.geoJSON(f, { style: function () { return style; }, pane: 'rw-tasks' });
      shape.bindPopup(popupLink('/tasks/' + p.task_id, p.title,
        t('task_passed', { n: p.passed_by }) + ' · ' + t('task_points', { n: p.points })));
      shape.addTo(layers.tasks);
    });
    mapEl.setAttribute('data-tasks', String(data.tasks || 0));
  }

  // Names are people's own text: set as text, never as HTML.
  function textBox(text) {
    var span = document.createElement('span');
    span.textContent = text;
    return span;
  }

  function drawLive(data) {
    layers.live.clearLayers();
    var features = data.features || [];
    features.forEach(function (f) {
      var p = f.properties;
      var c = f.geometry.coordinates;
      var name = p.display_name || p.rider;
      L.circleMarker([c[1], c[0]], {
        radius: 8, color: '#0d47a1', weight: 3, fillColor: '#ffeb3b', fillOpacity: 1, className: 'live-marker',
        pane: 'rw-points'
      }).bindTooltip(textBox(name + ' · ' + t('live_at', { time: localText(new Date(p.ts)) })))
        .addTo(layers.live);
    });
    mapEl.setAttribute('data-live', String(features.length));
    if (el('summary-live')) { el('summary-live').textContent = String(features.length); }
  }

  /* --- hour-of-day chart (plain SVG) --- */
  var chart = el('hour-chart');
  var NS = chart.namespaceURI;
  function svg(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function drawChart(profile) {
    while (chart.firstChild) { chart.removeChild(chart.firstChild); }
    var width = 480, height = 180, bottom = 24, top = 8, slot = width / 24;
    var max = Math.max.apply(null, profile.concat([1]));
    chart.appendChild(svg('line', { x1: 0, y1: height - bottom, x2: width, y2: height - bottom, class: 'axis' }));
    profile.forEach(function (n, hour) {
      var h = (height - bottom - top) * n / max;
      var bar = svg('rect', {
        x: (hour * slot + 1).toFixed(1), y: (height - bottom - h).toFixed(1), width: (slot - 2).toFixed(1),
        height: h.toFixed(1), class: 'bar', 'data-hour': hour, 'data-passes': n
      });
      bar.appendChild(svg('title', {}, t('hour_bar', { hour: hour, n: n })));
      chart.appendChild(bar);
      if (hour % 3 === 0) {
        chart.appendChild(svg('text', { x: (hour * slot + slot / 2).toFixed(1), y: height - 5, class: 'tick' }, String(hour)));
      }
    });
    chart.appendChild(svg('text', { x: 4, y: top + 14, class: 'tick max' }, String(Math.max.apply(null, profile))));
    chart.setAttribute('data-total', String(profile.reduce(function (a, b) { return a + b; }, 0)));
  }

  /* --- summary numbers --- */
  function percent(x) { return (100 * x).toFixed(1) + '%'; }
  function drawSummary(data) {
    var s = data.summary;
    el('summary-cells').textContent = String(s.cells);
    el('summary-covered').textContent = String(s.covered);
    el('summary-ratio').textContent = percent(s.coverage_ratio);
    var trend = el('summary-trend');
    var points = 100 * data.trend;
    trend.textContent = Math.abs(points) < 0.05 ? t('unchanged') :
      (points > 0 ? '▲ +' : '▼ ') + points.toFixed(1) + ' pp · ' + t('before', { ratio: percent(data.previous.coverage_ratio) });
    trend.setAttribute('data-trend', points > 0 ? 'up' : points < 0 ? 'down' : 'flat');
  }

  /* --- the window and the slider over its hours or days --- */
  var localInput = window.RW.zoneInput, localText = window.RW.zoneText;

  function preset(hours) {
    // To the end of the current hour in the programme's zone: the last pings count.
    var end = new Date(window.RW.fromZoneInput(localInput(new Date()).slice(0, 14) + '00').getTime() + HOUR);
    el('coverage-to').value = localInput(end);
    el('coverage-from').value = localInput(new Date(end.getTime() - hours * HOUR));
  }
  Array.prototype.forEach.call(form.querySelectorAll('[data-preset]'), function (button) {
    button.addEventListener('click', function () {
      preset(parseInt(button.getAttribute('data-preset'), 10));
      Array.prototype.forEach.call(form.querySelectorAll('[data-preset]'), function (b) {
        b.classList.toggle('current', b === button);
      });
      load();
    });
  });

  var slider = el('coverage-slider');
  var sliderLabel = el('coverage-slider-label');
  var current = null;  // {area, from, to, resolution, step}

  function setUpSlider(q) {
    var span = q.to - q.from;
    q.step = span <= 48 * HOUR ? HOUR : 24 * HOUR;
    slider.max = String(Math.ceil(span / q.step));
    slider.value = '0';
    sliderLabel.textContent = t('whole_window');
  }

  function slice(q, i) {
    if (!i) { return { from: q.from, to: q.to }; }
    var from = new Date(q.from.getTime() + (i - 1) * q.step);
    return { from: from, to: new Date(Math.min(from.getTime() + q.step, q.to.getTime())) };
  }

  function readQuery() {
    var area = el('coverage-area').value;
    if (!area) { return { error: t('no_area') }; }
    var from = window.RW.fromZoneInput(el('coverage-from').value);
    var to = window.RW.fromZoneInput(el('coverage-to').value);
    if (isNaN(from.getTime()) || isNaN(to.getTime()) || to <= from) { return { error: t('bad_window') }; }
    if (to - from > maxDays * 24 * HOUR) { return { error: t('too_long', { n: maxDays }) }; }
    var kind = area.split(':')[0];
    var stored = {};
    stored[kind] = area.slice(kind.length + 1);
    return { area: stored, areaValue: area, from: from, to: to, resolution: parseInt(el('coverage-resolution').value, 10) };
  }

  function body(q, window, extra) {
    var b = { area: q.area, from: window.from.toISOString(), to: window.to.toISOString(), resolution: q.resolution };
    Object.keys(extra || {}).forEach(function (k) { b[k] = extra[k]; });
    return b;
  }

  var generation = 0;
  var problems = [];
  function failed(what, error) {
    problems.push(t('failed', { what: t(what), detail: error.message }));
    show(problems.join(' '), 'error');
  }

  function loadCoverage(q, i, gen) {
    return api('POST', '/api/v1/coverage/query', body(q, slice(q, i))).then(function (data) {
      if (gen !== generation) { return; }
      drawCoverage(data);
      drawSummary(data);
      drawChart(data.hour_profile || []);
      mapEl.setAttribute('data-loaded', String(gen));
    }, function (error) { if (gen === generation) { failed('coverage', error); } });
  }

  function load() {
    var q = readQuery();
    // A new generation even for a refused query: answers still coming for the last one must not clear the message.
    if (q.error) { generation += 1; show(q.error, 'error'); return; }
    generation += 1;
    var gen = generation;
    problems = [];
    show(t('loading'), '');
    fitArea(q.areaValue);
    setUpSlider(q);
    current = q;
    var whole = slice(q, 0);
    var work = [loadCoverage(q, 0, gen)];
    if (offered('hotspots')) {
      work.push(api('POST', '/api/v1/hotspots/query', body(q, whole)).then(function (data) {
        if (gen !== generation) { return; }
        drawHotspots(data);
        el('summary-clues').textContent = String(data.summary.clues);
        el('summary-incidents').textContent = String(data.summary.incidents);
        el('summary-hot').textContent = String(data.summary.hot_cells.length);
      }, function (error) { if (gen === generation) { failed('hotspots', error); } }));
      work.push(api('POST', '/api/v1/coverage/gaps', body(q, whole)).then(function (data) {
        if (gen !== generation) { return; }
        drawGaps(data);
        el('summary-gaps').textContent = String(data.summary.gaps);
      }, function (error) { if (gen === generation) { failed('gaps', error); } }));
    }
    if (offered('tasks')) {
      work.push(api('GET', '/api/v1/tasks/map?phase=active').then(function (data) {
        if (gen === generation) { drawTasks(data); }
      }, function (error) { if (gen === generation) { failed('tasks', error); } }));
    }
    if (offered('clues')) {
      var params = '?limit=500&observed_from=' + encodeURIComponent(whole.from.toISOString()) +
        '&observed_to=' + encodeURIComponent(whole.to.toISOString());
      work.push(api('GET', '/api/v1/clues' + params).then(function (list) {
        if (gen === generation) { drawClues(list); }
      }, function (error) { if (gen === generation) { failed('clues', error); } }));
    }
    Promise.all(work).then(function () {
      if (gen === generation && !problems.length) { show('', ''); }
    });
  }

  var sliderTimer = null;
  slider.addEventListener('input', function () {
    if (!current) { return; }
    var i = parseInt(slider.value, 10) || 0;
    var w = slice(current, i);
    sliderLabel.textContent = i ? t('hours_step', { from: localText(w.from), to: localText(w.to) }) : t('whole_window');
    clearTimeout(sliderTimer);
    // Dragging passes many steps: ask only for the one the user stops at.
    sliderTimer = setTimeout(function () {
      generation += 1;
      problems = [];
      loadCoverage(current, i, generation);
    }, 250);
  });

  /* --- riders on duty now: only while the layer is on, since each look is audited --- */
  var liveTimer = null;
  function loadLive() {
    api('GET', '/api/v1/tracking/live').then(drawLive, function (error) { failed('live', error); });
  }
  function liveChanged() {
    clearInterval(liveTimer);
    liveTimer = null;
    if (toggles.live && toggles.live.checked) {
      loadLive();
      liveTimer = setInterval(function () { if (!document.hidden) { loadLive(); } }, LIVE_REFRESH_MS);
    } else {
      layers.live.clearLayers();
    }
  }

  form.addEventListener('submit', function (ev) { ev.preventDefault(); load(); });
  el('coverage-area').addEventListener('change', load);
  el('coverage-resolution').addEventListener('change', load);

  drawChart(new Array(24).fill(0));
  preset(168);
  form.querySelector('[data-preset="168"]').classList.add('current');
  if (el('coverage-area').value) { load(); } else { map.setView([0, 0], 2); }
})();
