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
