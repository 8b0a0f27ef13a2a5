// Live template preview: post the form to the preview endpoint as the user types and swap
// in the server-rendered fragments (the preview and each field's checks) by element id.
(function () {
  "use strict";
  var form = document.getElementById("template-form");
  if (!form || !form.dataset.preview) return;
  var timer = null;
  var seq = 0;
  function refresh() {
    var mine = ++seq;
    fetch(form.dataset.preview, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        if (mine !== seq) return; // an older answer arriving late
        var doc = new DOMParser().parseFromString(html, "text/html");
        doc.querySelectorAll("[data-swap]").forEach(function (fresh) {
          var old = document.getElementById(fresh.id);
          if (old) old.replaceWith(document.importNode(fresh, true));
        });
        form.dataset.previewed = String(mine);
      })
      .catch(function () { /* keep the last preview; saving re-checks on the server */ });
  }
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
})();
