/* The rider's report form: photos, place (GPS, a tap on the map, or typed coordinates), time, and
   sending through the outbox (queue.js), so a report made without a connection is never lost. */
(function () {
  'use strict';
  var RW = window.RW;
  var form = document.getElementById('report-form');
  if (!form || !RW || !RW.outbox) { return; }
  var t = RW.t;
  var maxPhotos = parseInt(form.getAttribute('data-max-photos'), 10) || 6;
  var maxBytes = parseInt(form.getAttribute('data-max-photo-bytes'), 10) || 8 * 1024 * 1024;
  var el = function (id) { return document.getElementById(id); };
  var statusBox = el('report-status');
  var locationStatus = el('location-status');
  var noPlaceText = locationStatus.textContent;
  var latInput = el('report-lat');
  var lonInput = el('report-lon');
  var photoInput = el('report-photos');
  var previews = el('report-photo-previews');
  var photos = [];          // {blob, name}
  var replacing = null;     // key of a refused report being corrected
  var map = null;
  var mapMarker = null;

  function show(text, kind) {
    statusBox.hidden = !text;
    statusBox.className = 'msg' + (kind ? ' msg-' + kind : '');
    statusBox.setAttribute('data-kind', kind || 'info');
    statusBox.textContent = text || '';
    if (text) { statusBox.scrollIntoView({ block: 'nearest' }); }
  }

  /* --- time seen: the phone's local time, sent as an ISO instant --- */
  function localInputValue(date) {
    return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  }
  function resetTime() {
    var now = new Date();
    el('report-observed-at').value = localInputValue(now);
    el('report-observed-at').max = localInputValue(new Date(now.getTime() + 10 * 60000));
  }

  /* --- photos --- */
  function renderPhotos() {
    previews.textContent = '';
    photos.forEach(function (photo, index) {
      var li = document.createElement('li');
      var img = document.createElement('img');
      img.alt = photo.name;
      img.src = URL.createObjectURL(photo.blob);
      img.onload = function () { URL.revokeObjectURL(img.src); };
      var remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = '×';
      remove.setAttribute('aria-label', t('remove_photo'));
      remove.setAttribute('data-testid', 'report-photo-remove');
      remove.addEventListener('click', function () { photos.splice(index, 1); renderPhotos(); });
      li.appendChild(img);
      li.appendChild(remove);
      previews.appendChild(li);
    });
  }
  photoInput.addEventListener('change', function () {
    var problems = [];
    Array.prototype.forEach.call(photoInput.files, function (file) {
      if (photos.length >= maxPhotos) { problems.push(t('too_many_photos', { n: maxPhotos })); return; }
      if (file.size > maxBytes) {
        problems.push(t('photo_too_large', { name: file.name, mb: Math.floor(maxBytes / 1048576) }));
        return;
      }
      photos.push({ blob: file, name: file.name });
    });
    // Cleared so the camera can be opened again for the next photo; the files are kept above.
    photoInput.value = '';
    renderPhotos();
    show(problems.filter(function (p, i) { return problems.indexOf(p) === i; }).join(' '), problems.length ? 'error' : '');
  });

  /* --- place --- */
  function setPlace(lat, lon, message) {
    latInput.value = lat.toFixed(6);
    lonInput.value = lon.toFixed(6);
    locationStatus.textContent = message;
    locationStatus.setAttribute('data-located', '1');
    if (map) {
      if (mapMarker) { mapMarker.setLatLng([lat, lon]); } else { mapMarker = window.L.marker([lat, lon]).addTo(map); }
    }
  }

  function locate() {
    if (!('geolocation' in navigator) || !window.isSecureContext) {
      locationStatus.textContent = t('location_unavailable');
      el('manual-coordinates').open = true;
      return;
    }
    locationStatus.textContent = t('locating');
    navigator.geolocation.getCurrentPosition(function (pos) {
      var c = pos.coords;
      setPlace(c.latitude, c.longitude, t('located', {
        lat: c.latitude.toFixed(5), lon: c.longitude.toFixed(5), acc: Math.round(c.accuracy)
      }));
    }, function (err) {
      locationStatus.textContent = t('location_failed', { detail: err.message || String(err.code) });
      el('manual-coordinates').open = true;
    }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
  }
  el('locate-button').addEventListener('click', locate);

  function loadLeaflet() {
    if (window.L) { return Promise.resolve(window.L); }
    return new Promise(function (resolve, reject) {
      var css = document.createElement('link');
      css.rel = 'stylesheet';
      css.href = form.getAttribute('data-leaflet-css');
      document.head.appendChild(css);
      var script = document.createElement('script');
      script.src = form.getAttribute('data-leaflet-js');
      script.onload = function () { resolve(window.L); };
      script.onerror = reject;
      document.head.appendChild(script);
    });
  }

  function openMap() {
    var box = el('report-map');
    box.hidden = false;
    if (map) { map.invalidateSize(); return; }
    loadLeaflet().then(function (L) {
      map = window.RW.baseMap(L, box, form);
      var lat = parseFloat(latInput.value);
      var lon = parseFloat(lonInput.value);
      var located = isFinite(lat) && isFinite(lon);
      if (located) { map.setView([lat, lon], 16); mapMarker = L.marker([lat, lon]).addTo(map); }
      else { map.setView([0, 0], 2); }
      fetch('/api/v1/areas', { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
        .then(function (res) { return res.ok ? res.json() : null; })
        .then(function (areas) {
          if (!areas || !areas.features || !areas.features.length) { return; }
          var layer = L.geoJSON(areas, { style: { color: '#0b4f8a', weight: 1, fillOpacity: 0.04 }, interactive: false }).addTo(map);
          if (!located && !mapMarker) { map.fitBounds(layer.getBounds()); }
        })
        .catch(function () { /* offline: the map still takes a tap */ });
      map.on('click', function (ev) {
        setPlace(ev.latlng.lat, ev.latlng.lng, t('map_picked', { lat: ev.latlng.lat.toFixed(5), lon: ev.latlng.lng.toFixed(5) }));
      });
    }).catch(function () {
      box.hidden = true;
      show(t('map_failed'), 'error');
      el('manual-coordinates').open = true;
    });
  }
  el('pick-on-map-button').addEventListener('click', openMap);

  function typedPlace() {
    var lat = parseFloat(latInput.value.replace(',', '.'));
    var lon = parseFloat(lonInput.value.replace(',', '.'));
    if (isFinite(lat) && isFinite(lon)) {
      locationStatus.textContent = t('typed', { lat: lat, lon: lon });
      if (map) {
        if (mapMarker) { mapMarker.setLatLng([lat, lon]); } else { mapMarker = window.L.marker([lat, lon]).addTo(map); }
      }
    }
  }
  latInput.addEventListener('change', typedPlace);
  lonInput.addEventListener('change', typedPlace);

  /* --- building, checking and sending a report --- */
  function collect() {
    var category = el('report-category');
    var observed = el('report-observed-at').value;
    var lat = parseFloat(latInput.value.replace(',', '.'));
    var lon = parseFloat(lonInput.value.replace(',', '.'));
    if (!category.value) { return { error: t('need_category') }; }
    if (!latInput.value || !lonInput.value) { return { error: t('need_location') }; }
    if (!isFinite(lat) || !isFinite(lon) || lat < -90 || lat > 90 || lon < -180 || lon > 180) {
      return { error: t('bad_coordinates') };
    }
    if (!observed) { return { error: t('need_time') }; }
    var seen = new Date(observed);
    if (isNaN(seen.getTime())) { return { error: t('need_time') }; }
    if (seen.getTime() > Date.now() + 10 * 60000) { return { error: t('future_time') }; }
    var built = {
      item: {
        key: RW.uuid4(),
        user: form.getAttribute('data-user'),
        created: Date.now(),
        label: category.options[category.selectedIndex].text,
        state: 'waiting',
        attempts: 0,
        fields: {
          category: category.value,
          description: el('report-description').value,
          lat: String(lat),
          lon: String(lon),
          address: el('report-address').value,
          observed_at: seen.toISOString(),
          anonymous: el('report-anonymous').checked ? 'true' : 'false',
          urgent: el('report-urgent').checked ? 'true' : 'false'
        },
        photos: photos.slice()
      }
    };
    // A sighting answers the alert the page was opened from (the next report is an ordinary one).
    if (form.getAttribute('data-alert')) { built.item.fields.alert_id = form.getAttribute('data-alert'); }
    return built;
  }

  function clearForm() {
    form.reset();
    form.removeAttribute('data-alert');
    photos = [];
    renderPhotos();
    latInput.value = '';
    lonInput.value = '';
    locationStatus.removeAttribute('data-located');
    locationStatus.textContent = noPlaceText;
    if (mapMarker) { mapMarker.remove(); mapMarker = null; }
    resetTime();
    replacing = null;
  }

  /* Put a refused report back into the form; sending it again replaces the stored one. */
  RW.editReport = function (item) {
    var f = item.fields;
    el('report-category').value = f.category;
    el('report-description').value = f.description || '';
    el('report-address').value = f.address || '';
    latInput.value = f.lat;
    lonInput.value = f.lon;
    el('report-observed-at').value = localInputValue(new Date(f.observed_at));
    el('report-anonymous').checked = f.anonymous === 'true';
    el('report-urgent').checked = f.urgent === 'true';
    photos = (item.photos || []).slice();
    renderPhotos();
    replacing = item.key;
    show(t('editing') + (item.error ? ' ' + item.error : ''), 'warn');
    form.scrollIntoView({ block: 'start' });
  };

  var submitting = false;
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (submitting) { return; }
    var built = collect();
    if (built.error) { show(built.error, 'error'); return; }
    var item = built.item;
    var previous = replacing;
    submitting = true;
    el('report-submit').disabled = true;
    show(t('sending'), '');
    // Kept before the first attempt, so closing the page mid-send cannot lose the report.
    RW.outbox.put(item).then(function () { return true; }, function () { return false; }).then(function (kept) {
      var drop = previous ? RW.outbox.remove(previous).catch(function () {}) : Promise.resolve();
      return drop.then(function () {
        if (navigator.onLine === false && kept) { return { outcome: 'retry' }; }
        return RW.outbox.send(item);
      }).then(function (result) {
        var settled = kept ? RW.outbox.settle(item, result) : Promise.resolve();
        return settled.then(function () {
          if (result.outcome === 'sent') {
            show(t('sent', { id: result.id }), 'success');
            clearForm();
          } else if (result.outcome === 'refused') {
            show(t('refused', { detail: result.detail }), 'error');
            replacing = kept ? item.key : null;
          } else if (!kept) {
            show(t('not_saved'), 'error');
          } else if (result.outcome === 'login') {
            show(t('login_needed'), 'warn');
            clearForm();
          } else {
            show(t('saved_offline'), 'warn');
            clearForm();
          }
        });
      });
    }).catch(function () {
      show(t('not_saved'), 'error');
    }).then(function () {
      submitting = false;
      el('report-submit').disabled = false;
      RW.outbox.render();
    });
  });

  // A report kept offline is sent later by the outbox: replace "kept on this phone" with the news,
  // or the rider believes it is still waiting (and may report it again).
  document.addEventListener('rw:outbox-result', function (ev) {
    var result = ev.detail && ev.detail.result;
    if (result && result.outcome === 'sent') { show(t('sent', { id: result.id }), 'success'); }
  });

  resetTime();
  locate();
})();
