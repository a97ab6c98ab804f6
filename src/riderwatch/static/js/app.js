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
})();

/* Shared by the page scripts (deferred scripts run in order, and this one comes first). */
(function () {
  'use strict';
  var RW = window.RW = window.RW || {};

  RW.csrf = function () { return document.body.getAttribute('data-csrf') || ''; };

  /* Show a message in a status box (or hide the box when there is no text). */
  RW.showMessage = function (box, text, kind) {
    if (!box) { return; }
    box.hidden = !text;
    box.className = 'msg' + (kind ? ' msg-' + kind : '');
    box.setAttribute('data-kind', kind || 'info');
    box.textContent = text || '';
  };

  /* One JSON call to the API with the session's CSRF token; a refusal becomes an Error carrying the
     problem's detail (`words.login` for 401, `words.network` when the server cannot be reached). */
  RW.api = function (method, url, body, words) {
    var headers = { 'Accept': 'application/json', 'X-CSRF-Token': RW.csrf() };
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; }
    return fetch(url, {
      method: method, credentials: 'same-origin', headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (res) {
      if (res.status === 204) { return null; }
      return res.json().catch(function () { return null; }).then(function (data) {
        if (res.ok) { return data; }
        var error = new Error(res.status === 401 ? words.login : (data && (data.detail || data.title)) || String(res.status));
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
