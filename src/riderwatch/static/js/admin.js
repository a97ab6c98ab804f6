/* The administrator's pages: copy a new key, and offer only the links that fit the chosen role. */
(function () {
  'use strict';

  // Copying: the button appears only where the browser can copy (the key stays selectable anyway).
  document.querySelectorAll('[data-copy]').forEach(function (button) {
    var field = document.getElementById(button.getAttribute('data-copy'));
    if (!field) { return; }
    field.addEventListener('focus', function () { field.select(); });
    if (!navigator.clipboard || !window.isSecureContext) { return; }
    button.hidden = false;
    button.addEventListener('click', function () {
      navigator.clipboard.writeText(field.value).then(function () {
        button.textContent = button.getAttribute('data-copied');
      }).catch(function () { field.select(); });
    });
  });

  // The new-user form holds every kind of link; show those the selected role can have. The server
  // refuses the others in any case, so without this script the form still works.
  var role = document.querySelector('[data-link-role]');
  if (role) {
    var fields = document.querySelectorAll('.link-field[data-roles]');
    var update = function () {
      fields.forEach(function (field) {
        var fits = field.getAttribute('data-roles').split(' ').indexOf(role.value) !== -1;
        field.hidden = !fits;
        field.querySelectorAll('select').forEach(function (select) {
          select.disabled = !fits;
        });
      });
    };
    role.addEventListener('change', update);
    update();
  }
})();
