/* Maps of clues and areas (Leaflet). Without a configured tile server the map shows only the areas
   and clues on a plain background, so nothing is fetched from outside the intranet. */
(function () {
  'use strict';
  if (!window.L) { return; }

  var COLOURS = {
    submitted: '#1565c0', verified: '#5e35b1', dispatched: '#ef6c00', in_progress: '#c8a400',
    resolved: '#2e7d32', closed: '#546e7a', rejected: '#c62828', duplicate: '#8e24aa'
  };
  var AREA_STYLES = {
    zone: { color: '#00838f', weight: 2, dashArray: '6 4', fillOpacity: 0.03 },
    community: { color: '#0b4f8a', weight: 2, fillOpacity: 0.05 },
    grid: { color: '#607d8b', weight: 1, fillOpacity: 0.02 }
  };

  function readJson(id) {
    var el = id && document.getElementById(id);
    if (!el) { return null; }
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function baseMap(el) { return window.RW.baseMap(L, el); }


  function areaLayer(data, lang) {
    return L.geoJSON(data && data.features ? data : { type: 'FeatureCollection', features: [] }, {
      style: function (feature) { return AREA_STYLES[feature.properties.kind] || AREA_STYLES.grid; },
      onEachFeature: function (feature, layer) {
        var p = feature.properties;
        layer.bindTooltip(escapeHtml(lang === 'en' && p.name_en ? p.name_en : p.name), { sticky: true });
      }
    });
  }

  function popup(marker) {
    var box = document.createElement('div');
    var link = document.createElement('a');
    link.href = marker.url;
    link.textContent = '#' + marker.id + ' ' + marker.category;
    box.appendChild(link);
    box.appendChild(document.createElement('br'));
    box.appendChild(document.createTextNode(marker.status_label));
    return box;
  }

  function drawMarkers(layer, markers) {
    layer.clearLayers();
    (markers || []).forEach(function (m) {
      var colour = COLOURS[m.status] || '#333';
      L.circleMarker([m.lat, m.lon], {
        radius: m.urgent ? 9 : 7,
        color: m.overdue ? '#b3261e' : '#ffffff',
        weight: m.overdue ? 3 : 2,
        fillColor: colour,
        fillOpacity: 0.9
      }).bindPopup(popup(m)).addTo(layer);
    });
  }

  function fit(map, markers, areas, single) {
    if (markers.getLayers().length) {
      var b = markers.getBounds();
      if (single || b.getNorthEast().equals(b.getSouthWest())) { map.setView(b.getCenter(), 16); }
      else { map.fitBounds(b.pad(0.15)); }
    } else if (areas.getLayers().length) {
      map.fitBounds(areas.getBounds());
    } else {
      map.setView([0, 0], 2);
    }
  }

  var lang = document.documentElement.lang === 'en' ? 'en' : 'zh';
  Array.prototype.forEach.call(document.querySelectorAll('[data-map]'), function (el) {
    var map = baseMap(el);
    var areas = areaLayer(readJson(el.getAttribute('data-areas')), lang).addTo(map);
    var markers = L.layerGroup().addTo(map);
    var markerSource = el.getAttribute('data-markers');
    drawMarkers(markers, readJson(markerSource));
    fit(map, L.featureGroup(markers.getLayers()), areas, el.getAttribute('data-map') === 'clue');
    // The queue refreshes itself (htmx); redraw the clues without moving the dispatcher's view.
    document.body.addEventListener('htmx:afterSwap', function () {
      drawMarkers(markers, readJson(markerSource));
    });
  });
})();
