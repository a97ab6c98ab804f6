/* Service worker for the rider pages: they and their files load without a connection.
   Served at /sw.js (scope /) by the app; registered as /sw.js?v=<asset version>, so a new release
   installs a new worker with a fresh cache. Pages: network first, cached copy when offline.
   Static files: versioned URLs, so cache first. Nothing else is touched (POSTs go straight out). */
'use strict';
var VERSION = new URL(self.location.href).searchParams.get('v') || 'dev';
var CACHE = 'rw-' + VERSION;
var PAGES = ['/report', '/my/reports'];
var NETWORK_FIRST = ['/report', '/my/reports', '/api/v1/areas'];
var ASSETS = [
  '/static/css/app.css',
  '/static/js/app.js',
  '/static/js/queue.js',
  '/static/js/report.js',
  '/static/vendor/leaflet/leaflet.js',
  '/static/vendor/leaflet/leaflet.css'
].map(function (path) { return path + '?v=' + VERSION; });

self.addEventListener('install', function (event) {
  event.waitUntil(
    caches.open(CACHE)
      .then(function (cache) { return cache.addAll(ASSETS); })
      .then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener('activate', function (event) {
  event.waitUntil(
    caches.keys().then(function (keys) {
      return Promise.all(keys.filter(function (key) {
        return key.indexOf('rw-') === 0 && key !== CACHE;
      }).map(function (key) { return caches.delete(key); }));
    }).then(function () { return self.clients.claim(); })
  );
});

function networkFirst(request, cacheKey) {
  return fetch(request).then(function (response) {
    // Only a real page for the logged-in rider is worth keeping; never a redirect to the login page.
    if (response.ok && !response.redirected && response.type === 'basic') {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { cache.put(cacheKey, copy); });
    }
    return response;
  }).catch(function () {
    return caches.match(cacheKey).then(function (hit) { return hit || Response.error(); });
  });
}

function cacheFirst(request) {
  return caches.match(request).then(function (hit) {
    return hit || fetch(request).then(function (response) {
      if (response.ok) {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
      }
      return response;
    });
  });
}

self.addEventListener('fetch', function (event) {
  var request = event.request;
  if (request.method !== 'GET') { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (url.pathname.indexOf('/static/') === 0) {
    event.respondWith(cacheFirst(request));
  } else if (NETWORK_FIRST.indexOf(url.pathname) !== -1 && (request.mode === 'navigate' || PAGES.indexOf(url.pathname) === -1)) {
    event.respondWith(networkFirst(request, url.pathname));
  }
});
