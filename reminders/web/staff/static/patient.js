// The patient pages: a text's length as it is typed, a template previewed when chosen, and
// send buttons that cannot be pressed twice. Everything works without this script too.
(function () {
  "use strict";
  var GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var GSM_EXT = "\f^{}\\[~]|€";

  // How many SMS segments a text takes (GSM-7 or UCS-2), packed as the server counts them.
  function segments(text) {
    var chars = Array.from(text);
    var gsm = chars.every(function (c) { return GSM.indexOf(c) >= 0 || GSM_EXT.indexOf(c) >= 0; });
    var costs = chars.map(function (c) {
      if (gsm) { return GSM_EXT.indexOf(c) >= 0 ? 2 : 1; }
      return c.codePointAt(0) > 0xffff ? 2 : 1;
    });
    var total = costs.reduce(function (a, b) { return a + b; }, 0);
    if (total === 0) { return 0; }
    var single = gsm ? 160 : 70, multi = gsm ? 153 : 67;
    if (total <= single) { return 1; }
    var count = 1, used = 0;
    costs.forEach(function (cost) {
      if (used + cost > multi) { count += 1; used = 0; }
      used += cost;
    });
    return count;
  }

  document.querySelectorAll("textarea[data-counter]").forEach(function (area) {
    var out = document.getElementById(area.getAttribute("data-counter"));
    if (!out) { return; }
    var words = out.getAttribute("data-words") || "{chars} characters, {segments} text message(s)";
    function update() {
      var text = area.value;
      out.textContent = text ? words.replace("{chars}", Array.from(text).length)
        .replace("{segments}", segments(text)) : "";
    }
    area.addEventListener("input", update);
    update();
  });

  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.value && select.form) { select.form.submit(); }
    });
  });

  document.querySelectorAll("form.send").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        window.setTimeout(function () { button.disabled = true; }, 0);
      });
    });
  });
})();
