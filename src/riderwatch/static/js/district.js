/* The district pages: areas on a map (by kind, named on hover and tap), and drawing a boundary by
   tapping its corners, or moving the corners of the saved one, which fills the form's hidden `boundary`
   field with a GeoJSON Polygon. The server checks whatever is drawn; without this script the forms still
   work for everything but drawing. */
(function () {
  'use strict';
  var L = window.L;
  if (!L || !window.RW) { return; }
  var STYLES = {
    jurisdictions: { color: '#455a64', weight: 2, dashArray: '6 4', fill: false },
    communities: { color: '#1565c0', weight: 2, fillOpacity: 0.06 },
    grids: { color: '#2e7d32', weight: 1, dashArray: '3 3', fillOpacity: 0.04 },
    zones: { color: '#ef6c00', weight: 2, fillOpacity: 0.12 },
    preview: { color: '#6a1b9a', weight: 3, fillOpacity: 0.18 },
    rider: { radius: 6, color: '#ffffff', weight: 2, fillColor: '#c62828', fillOpacity: 0.9 }
  };
  var ORDER = ['jurisdictions', 'communities', 'zones', 'grids', 'preview', 'rider'];

  function areasOf(box) {
    try { return JSON.parse(box.getAttribute('data-areas') || '{}'); } catch (e) { return {}; }
  }

  function draw(box) {
    var map = RW.baseMap(L, box);
    var data = areasOf(box);
    var features = (data.features || []).slice().sort(function (a, b) {
      return ORDER.indexOf(a.properties.kind) - ORDER.indexOf(b.properties.kind);
    });
    var layer = L.geoJSON({ type: 'FeatureCollection', features: features }, {
      style: function (f) { return STYLES[f.properties.kind] || STYLES.preview; },
      // Points (riders on duty, in an alert's preview) as dots, not pin images.
      pointToLayer: function (f, latlng) { return L.circleMarker(latlng, STYLES[f.properties.kind] || STYLES.rider); },
      onEachFeature: function (f, l) {
        var code = f.properties.code ? ' (' + f.properties.code + ')' : '';
        l.bindTooltip(f.properties.name + code, { sticky: true });
      }
    }).addTo(map);
    // Zoom to the highlighted areas (the file's, the one being edited) if there are any, else to all.
    var bounds = L.latLngBounds([]);
    layer.eachLayer(function (l) { if (l.feature.properties.kind === 'preview') { bounds.extend(l.getBounds()); } });
    if (!bounds.isValid()) { bounds = layer.getBounds(); }
    if (bounds.isValid()) { map.fitBounds(bounds, { padding: [12, 12] }); } else { map.setView([25.43, 119.01], 13); }
    var input = box.getAttribute('data-draw-input');
    if (input) { drawing(map, box, document.getElementById(input)); }
    var lat = document.getElementById(box.getAttribute('data-pick-lat') || '');
    var lon = document.getElementById(box.getAttribute('data-pick-lon') || '');
    if (lat && lon) { picking(map, lat, lon); }
    return map;
  }

  function drawing(map, box, field) {
    var tools = document.querySelector('.draw-tools[data-for="' + box.id + '"]');
    if (!tools || !field) { return; }
    var start = tools.querySelector('[data-draw="start"]');
    var edit = tools.querySelector('[data-draw="edit"]');
    var undo = tools.querySelector('[data-draw="undo"]');
    var clear = tools.querySelector('[data-draw="clear"]');
    var help = tools.querySelector('.draw-help');
    var points = [];
    var shape = null;
    var handles = [];
    var active = false;

    // The shape drawn so far and the form's field; called on every move of a corner.
    function reshape() {
      if (shape) { map.removeLayer(shape); shape = null; }
      if (points.length >= 2) {
        shape = L.polygon(points, { color: '#d81b60', weight: 3, fillOpacity: 0.15 }).addTo(map);
      } else if (points.length === 1) {
        shape = L.circleMarker(points[0], { radius: 5, color: '#d81b60' }).addTo(map);
      }
      undo.disabled = clear.disabled = points.length === 0;
      if (points.length >= 3) {
        var ring = points.map(function (p) { return [Number(p.lng.toFixed(6)), Number(p.lat.toFixed(6))]; });
        ring.push(ring[0]);
        field.value = JSON.stringify({ type: 'Polygon', coordinates: [ring] });
      } else {
        field.value = '';
      }
    }
    // A handle on each corner, to be dragged (by finger or mouse) while drawing or editing.
    function update() {
      reshape();
      handles.forEach(function (h) { map.removeLayer(h); });
      handles = [];
      if (!active) { return; }
      points.forEach(function (point, i) {
        var handle = L.marker(point, {
          draggable: true,
          keyboard: false,
          icon: L.divIcon({ className: 'vertex-handle', iconSize: [18, 18] })
        }).addTo(map);
        handle.on('drag', function (e) { points[i] = e.target.getLatLng(); reshape(); });
        handles.push(handle);
      });
    }
    function activate(on) {
      active = on;
      box.classList.toggle('drawing', active);
      help.hidden = !active;
      start.setAttribute('aria-pressed', active ? 'true' : 'false');
      update();
    }
    start.addEventListener('click', function () { activate(!active); });
    if (edit) {
      // The boundary saved now (the page's highlighted area), its corners ready to be moved.
      var current = (areasOf(box).features || []).filter(function (f) {
        return f.properties.kind === 'preview' && f.geometry && f.geometry.type === 'Polygon';
      })[0];
      if (!current) {
        edit.hidden = true;
      } else {
        edit.addEventListener('click', function () {
          var ring = current.geometry.coordinates[0].slice(0, -1);
          points = ring.map(function (c) { return L.latLng(c[1], c[0]); });
          activate(true);
        });
      }
    }
    map.on('click', function (e) { if (active) { points.push(e.latlng); update(); } });
    undo.addEventListener('click', function () { points.pop(); update(); });
    clear.addEventListener('click', function () { points = []; update(); });
  }

  // A map that fills two inputs with the place tapped (the routing tester), and shows it.
  function picking(map, lat, lon) {
    var marker = null;
    function show() {
      var at = [Number(lat.value), Number(lon.value)];
      if (!lat.value || !lon.value || isNaN(at[0]) || isNaN(at[1])) { return; }
      if (marker) { marker.setLatLng(at); } else { marker = L.circleMarker(at, { radius: 7, color: '#d81b60', weight: 3 }).addTo(map); }
    }
    map.on('click', function (e) {
      lat.value = e.latlng.lat.toFixed(6);
      lon.value = e.latlng.lng.toFixed(6);
      show();
    });
    show();
  }

  function whenVisible(box) {
    // A map inside a closed <details> has no size: draw it when it opens.
    var details = box.closest('details');
    if (details && !details.open) {
      details.addEventListener('toggle', function once() {
        if (details.open) { details.removeEventListener('toggle', once); draw(box); }
      });
      return;
    }
    draw(box);
  }

  document.querySelectorAll('.district-map').forEach(whenVisible);
})();
