/* Leaflets: on the rider's form, the place from the phone (or the station's, by choice); on the overview,
   the counts per cell on a map (Leaflet; the areas are drawn even without a tile server). */
(function () {
  'use strict';
  function readJson(id) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }
  var words = readJson('leaflet-words') || {};

  var form = document.getElementById('leaflet-form');
  if (form) {
    var lat = document.getElementById('leaflet-lat');
    var lon = document.getElementById('leaflet-lon');
    var status = document.getElementById('leaflet-place');
    var useStation = document.getElementById('leaflet-use-station');
    var stationLat = form.getAttribute('data-station-lat');
    var stationLon = form.getAttribute('data-station-lon');
    var offerStation = function () {
      status.textContent = words.denied || '';
      status.className = 'msg msg-warn';
      if (stationLat && stationLon) { useStation.hidden = false; }
    };
    useStation.addEventListener('click', function () {
      lat.value = stationLat;
      lon.value = stationLon;
      status.textContent = words.station || '';
      status.className = 'msg msg-info';
      useStation.hidden = true;
    });
    if (navigator.geolocation) {
      navigator.geolocation.getCurrentPosition(function (pos) {
        lat.value = pos.coords.latitude.toFixed(6);
        lon.value = pos.coords.longitude.toFixed(6);
        status.textContent = (words.found || '').replace('%(m)d', Math.round(pos.coords.accuracy || 0));
        status.className = 'msg msg-success';
      }, offerStation, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    } else {
      offerStation();
    }
  }

  var box = document.getElementById('leaflets-map');
  if (box && window.L && window.RW) {
    var L = window.L;
    var map = window.RW.baseMap(L, box);
    var areas = L.geoJSON(readJson(box.getAttribute('data-areas')) || { type: 'FeatureCollection', features: [] }, {
      style: function () { return { color: '#0b4f8a', weight: 1, fillOpacity: 0.03 }; }
    }).addTo(map);
    var cells = readJson(box.getAttribute('data-cells')) || { type: 'FeatureCollection', features: [] };
    var most = cells.features.reduce(function (m, f) { return Math.max(m, f.properties.count); }, 1);
    var layer = L.geoJSON(cells, {
      style: function (f) {
        return { color: '#2e7d32', weight: 1, fillColor: '#2e7d32', fillOpacity: 0.15 + 0.6 * f.properties.count / most };
      },
      onEachFeature: function (f, l) { l.bindTooltip(f.properties.count + ' ' + (words.leaflets || '')); }
    }).addTo(map);
    if (layer.getLayers().length) { map.fitBounds(layer.getBounds().pad(0.2)); }
    else if (areas.getLayers().length) { map.fitBounds(areas.getBounds()); }
    else { map.setView([25.43, 119.01], 12); }
  }
})();
