/* The rider's outbox: reports kept in IndexedDB until the server has them.

   A report gets its Idempotency-Key on the phone when it is made, and keeps it on every retry, so
   however often it is sent the server stores it once. It leaves the outbox only after a 200/201.
   A refusal (4xx other than a lost login) stays for the rider to correct or delete; network errors
   and 5xx are retried when the connection returns, when a page loads, and every 30 seconds.
   Plain ES2017, no library. */
(function () {
  'use strict';
  var RW = window.RW = window.RW || {};
  var DB_NAME = 'riderwatch';
  var STORE = 'outbox';
  var RETRY_MS = 30000;

  var i18nEl = document.getElementById('rider-i18n');
  var T = i18nEl ? JSON.parse(i18nEl.textContent) : {};
  function t(key, values) {
    var text = T[key] || key;
    return text.replace(/%\((\w+)\)[sd]/g, function (_, name) {
      return values && values[name] !== undefined ? String(values[name]) : '';
    });
  }
  RW.t = t;

  // Reports are kept per user: on a shared phone nobody sends or sees another rider's reports.
  function currentUser() {
    var box = document.getElementById('offline-queue') || document.getElementById('report-form');
    return (box && box.getAttribute('data-user')) || '';
  }

  // crypto.randomUUID needs a secure context; intranet pages are often plain HTTP.
  RW.uuid4 = function () {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  };

  var dbPromise = null;
  function openDb() {
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve, reject) {
        if (!window.indexedDB) { reject(new Error('IndexedDB is not available')); return; }
        var req = indexedDB.open(DB_NAME, 1);
        req.onupgradeneeded = function () {
          var store = req.result.createObjectStore(STORE, { keyPath: 'key' });
          store.createIndex('user', 'user', { unique: false });
        };
        req.onsuccess = function () { resolve(req.result); };
        req.onerror = function () { reject(req.error); };
      });
      dbPromise.catch(function () { dbPromise = null; });
    }
    return dbPromise;
  }

  function withStore(mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var result;
        var req = work(tx.objectStore(STORE));
        if (req) { req.onsuccess = function () { result = req.result; }; }
        tx.oncomplete = function () { resolve(result); };
        tx.onerror = function () { reject(tx.error); };
        tx.onabort = function () { reject(tx.error || new Error('aborted')); };
      });
    });
  }

  var outbox = RW.outbox = {
    put: function (item) { return withStore('readwrite', function (s) { return s.put(item); }); },
    remove: function (key) { return withStore('readwrite', function (s) { return s.delete(key); }); },
    get: function (key) { return withStore('readonly', function (s) { return s.get(key); }); },
    list: function () {
      var user = currentUser();
      return withStore('readonly', function (s) { return s.index('user').getAll(user); })
        .then(function (items) { return (items || []).sort(function (a, b) { return a.created - b.created; }); })
        .catch(function () { return []; });
    }
  };

  /* One attempt. Resolves to {outcome: 'sent'|'retry'|'login'|'refused', id?, detail?}. */
  outbox.send = function (item) {
    var body = new FormData();
    Object.keys(item.fields).forEach(function (name) { body.append(name, item.fields[name]); });
    (item.photos || []).forEach(function (p, i) { body.append('photos', p.blob, p.name || 'photo-' + (i + 1) + '.jpg'); });
    return fetch('/api/v1/clues', {
      method: 'POST',
      body: body,
      credentials: 'same-origin',
      headers: {
        'Idempotency-Key': item.key, 'X-CSRF-Token': RW.csrf(), 'Accept': 'application/json',
        'Accept-Language': document.documentElement.lang
      }
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (res.status === 200 || res.status === 201) { return { outcome: 'sent', id: data.id }; }
        if (res.status === 401 || res.status === 403) { return { outcome: 'login', detail: data.localized_detail || data.detail || '' }; }
        if (res.status === 408 || res.status === 429 || res.status >= 500) { return { outcome: 'retry' }; }
        return { outcome: 'refused', detail: data.localized_detail || data.detail || data.title || String(res.status) };
      });
    }, function () { return { outcome: 'retry' }; });
  };

  /* Record the result of an attempt in the outbox: gone when sent, marked when refused. */
  outbox.settle = function (item, result) {
    if (result.outcome === 'sent') { return outbox.remove(item.key).catch(function () {}); }
    item.attempts = (item.attempts || 0) + 1;
    item.state = result.outcome === 'refused' ? 'refused' : (result.outcome === 'login' ? 'login' : 'waiting');
    item.error = result.detail || '';
    return outbox.put(item).catch(function () {});
  };

  var flushing = false;
  function flushNow() {
    return outbox.list().then(function (items) {
      var pending = items.filter(function (it) { return it.state !== 'refused'; });
      return pending.reduce(function (chain, item) {
        return chain.then(function (stop) {
          if (stop) { return true; }
          return outbox.send(item).then(function (result) {
            return outbox.settle(item, result).then(function () {
              document.dispatchEvent(new CustomEvent('rw:outbox-result', { detail: { item: item, result: result } }));
              // Without a connection or a login the rest would fail the same way: wait for the next round.
              return result.outcome === 'retry' || result.outcome === 'login';
            });
          });
        });
      }, Promise.resolve(false));
    });
  }

  outbox.flush = function () {
    if (flushing) { return Promise.resolve(); }
    flushing = true;
    // One tab at a time where the browser can say so; the key makes a double send harmless anyway.
    var run = navigator.locks && navigator.locks.request
      ? navigator.locks.request('riderwatch-outbox', flushNow)
      : flushNow();
    return Promise.resolve(run).catch(function () {}).then(function () {
      flushing = false;
      return outbox.render();
    });
  };

  function describe(item) {
    var when = new Date(item.created);
    var pad = function (n) { return (n < 10 ? '0' : '') + n; };
    var stamp = pad(when.getMonth() + 1) + '-' + pad(when.getDate()) + ' ' + pad(when.getHours()) + ':' + pad(when.getMinutes());
    return stamp + ' · ' + (item.label || item.fields.category);
  }

  outbox.render = function () {
    var box = document.getElementById('offline-queue');
    if (!box) { return Promise.resolve(); }
    return outbox.list().then(function (items) {
      var count = document.getElementById('offline-queue-count');
      var list = document.getElementById('offline-queue-list');
      box.hidden = items.length === 0;
      count.setAttribute('data-count', String(items.length));
      count.textContent = t('queue_count', { n: items.length });
      list.textContent = '';
      items.forEach(function (item) {
        var li = document.createElement('li');
        li.className = item.state || 'waiting';
        li.setAttribute('data-testid', 'offline-queue-item');
        li.setAttribute('data-state', item.state || 'waiting');
        var what = document.createElement('span');
        what.className = 'what';
        what.textContent = describe(item);
        var state = document.createElement('span');
        state.className = 'state';
        state.textContent = item.state === 'refused' ? t('queue_refused', { detail: item.error })
          : (item.state === 'login' ? t('queue_login') : t('queue_waiting'));
        what.appendChild(document.createElement('br'));
        what.appendChild(state);
        li.appendChild(what);
        if (item.state === 'refused' && RW.editReport) {
          var edit = document.createElement('button');
          edit.type = 'button';
          edit.className = 'btn small';
          edit.setAttribute('data-testid', 'offline-queue-edit');
          edit.textContent = t('edit');
          edit.addEventListener('click', function () { RW.editReport(item); });
          li.appendChild(edit);
        }
        var del = document.createElement('button');
        del.type = 'button';
        del.className = 'btn small';
        del.setAttribute('data-testid', 'offline-queue-delete');
        del.textContent = t('delete');
        del.addEventListener('click', function () {
          if (window.confirm(t('confirm_delete'))) { outbox.remove(item.key).then(outbox.render, outbox.render); }
        });
        li.appendChild(del);
        list.appendChild(li);
      });
      return items;
    });
  };

  var retry = document.getElementById('offline-queue-retry');
  if (retry) { retry.addEventListener('click', function () { outbox.flush(); }); }
  window.addEventListener('online', function () { outbox.flush(); });
  window.setInterval(function () {
    if (navigator.onLine !== false) { outbox.flush(); }
  }, RETRY_MS);
  outbox.flush();

  // Offline loading of the rider pages where the browser allows a service worker (secure contexts only).
  if ('serviceWorker' in navigator && window.isSecureContext) {
    var version = document.body.getAttribute('data-asset-version') || '';
    navigator.serviceWorker.register('/sw.js?v=' + encodeURIComponent(version), { scope: '/' }).catch(function () {});
  }
})();
