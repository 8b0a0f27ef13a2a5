// Live template preview: post the form to the preview endpoint as the user types and swap
// in the server-rendered fragments (the preview and each field's checks) by element id.
// Debounced (300 ms after the last keystroke), one request at a time (typing meanwhile
// sends once more when it ends), and on 429 (too many previews) it waits as told, then
// previews the latest text.
(function () {
  "use strict";
  var form = document.getElementById("template-form");
  if (!form || !form.dataset.preview) return;
  var DEBOUNCE_MS = 300;
  var timer = null;
  var seq = 0;
  var busy = false;
  var again = false;
  function later(ms) {
    clearTimeout(timer);
    timer = setTimeout(refresh, ms);
  }
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    again = false;
    var mine = ++seq;
    fetch(form.dataset.preview, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 429) {
          var wait = parseInt(r.headers.get("Retry-After") || "2", 10);
          again = false;
          later((isNaN(wait) ? 2 : wait) * 1000);
          return null;
        }
        return r.ok ? r.text() : Promise.reject(r.status);
      })
      .then(function (html) {
        if (html === null || mine !== seq) return; // throttled, or an older answer
        var doc = new DOMParser().parseFromString(html, "text/html");
        doc.querySelectorAll("[data-swap]").forEach(function (fresh) {
          var old = document.getElementById(fresh.id);
          if (old) old.replaceWith(document.importNode(fresh, true));
        });
        form.dataset.previewed = String(mine);
      })
      .catch(function () { /* keep the last preview; saving re-checks on the server */ })
      .then(function () {
        busy = false;
        if (again) later(DEBOUNCE_MS);
      });
  }
  form.addEventListener("input", function () { later(DEBOUNCE_MS); });
})();
