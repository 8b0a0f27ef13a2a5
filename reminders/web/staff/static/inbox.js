// The live inbox (issue 14). Every 2 s the page asks /staff/inbox/updates what changed since
// its cursor (polling: why, in reminders/web/staff/inbox_live.py). When the list changed, the
// server sends it rendered again and only the list is swapped: the selected item and its note
// box are never touched; ticked boxes, open day groups and focus are kept. A new urgent item
// shows a "New urgent item" notice (role=alert), updates the tab title and plays a short tone
// (Web Audio; silently skipped when the browser blocks sound).
//
// The clock runs in a dedicated worker (this same file) when it can: a background tab's
// timers are slowed down by the browser, a worker's much less.
(function () {
  "use strict";
  if (typeof document === "undefined") {
    // Inside the worker: a steady tick, nothing else.
    self.onmessage = function (e) {
      setInterval(function () { self.postMessage("tick"); }, Number(e.data) || 2000);
    };
    return;
  }
  var root = document.getElementById("inbox-live");
  if (!root) return;
  var POLL_MS = 2000;
  var list = document.getElementById("inbox-list");
  var count = document.getElementById("inbox-count");
  var alertBox = document.getElementById("inbox-alert");
  var statusBox = document.getElementById("inbox-status");
  var selected = document.getElementById("selected-item");
  var cursor = root.dataset.cursor || "";
  var knownUrgent = {};
  (root.dataset.urgentIds || "").split(",").forEach(function (id) { if (id) knownUrgent[id] = true; });
  var busy = false;
  var stopped = false;
  var failures = 0;
  var worker = null;
  var ticker = null;
  root.dataset.polls = "0";
  root.dataset.beeps = "0";

  function setStatus(text) { if (statusBox) statusBox.textContent = text || ""; }

  function updatesUrl() {
    var params = new URLSearchParams(location.search);
    params.delete("bulk");
    params.delete("kept");
    params.set("since", cursor);
    return root.dataset.updates + "?" + params.toString();
  }

  function poll() {
    if (busy || stopped) return;
    busy = true;
    fetch(updatesUrl(), {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    })
      .then(function (r) {
        if (r.status === 401) { stop(root.dataset.signedOut); return null; }
        if (!r.ok) return Promise.reject(r.status);
        return r.json();
      })
      .then(function (data) {
        if (!data) return;
        failures = 0;
        setStatus("");
        apply(data);
      })
      .catch(function () {
        failures += 1;
        if (failures >= 3) setStatus(root.dataset.offline);
      })
      .then(function () {
        busy = false;
        root.dataset.polls = String(Number(root.dataset.polls) + 1);
      });
  }

  function apply(data) {
    cursor = data.cursor;
    root.dataset.cursor = cursor;
    if (typeof data.list_html === "string") swap(data.list_html);
    if (count) count.textContent = data.count_text;
    document.title = data.title;
    if (data.urgent) urgentNotice(data.urgent);
    if (data.selected && selected) selectedNotice(data.selected);
  }

  // --- the list -------------------------------------------------------------------------------
  function focusKey(el) {
    var group = el.closest("[data-key]");
    return [el.tagName, el.getAttribute("name"), el.getAttribute("value"), el.getAttribute("href"),
      group ? group.getAttribute("data-key") : "", el.textContent.trim()].join("|");
  }

  function swap(html) {
    var ticked = {};
    var open = {};
    var before = {};
    list.querySelectorAll("input[type=checkbox]").forEach(function (box) {
      if (box.checked) ticked[box.value] = true;
    });
    list.querySelectorAll("details[data-key]").forEach(function (d) {
      if (d.open) open[d.getAttribute("data-key")] = true;
    });
    list.querySelectorAll("[data-id]").forEach(function (el) { before[el.getAttribute("data-id")] = true; });
    var active = document.activeElement;
    var focused = active && list.contains(active) ? focusKey(active) : null;

    list.innerHTML = html; // rendered (and escaped) by the server, like the page itself

    // A box stays ticked only if the item is unchanged (same message count): one that a new
    // message joined must be read again before it is acknowledged.
    list.querySelectorAll("input[type=checkbox]").forEach(function (box) {
      if (ticked[box.value]) box.checked = true;
    });
    list.querySelectorAll("details[data-key]").forEach(function (d) {
      if (open[d.getAttribute("data-key")]) d.open = true;
    });
    list.querySelectorAll("li[data-id]").forEach(function (el) {
      if (!before[el.getAttribute("data-id")]) el.classList.add("fresh");
    });
    if (focused) {
      var again = Array.prototype.find.call(
        list.querySelectorAll("a, input, button, summary"),
        function (el) { return focusKey(el) === focused; });
      if (again) again.focus();
    }
    updateBulk();
  }

  function updateBulk() {
    var form = document.getElementById("bulk-ack");
    if (!form) return;
    var n = document.querySelectorAll("input[type=checkbox][form=bulk-ack]:checked").length;
    form.hidden = n === 0;
    var label = form.querySelector(".bulk-count");
    if (label) {
      label.textContent = n === 1 ? root.dataset.oneSelected : root.dataset.nSelected.replace("{n}", n);
    }
  }

  list.addEventListener("change", function (e) {
    if (e.target && e.target.matches("input[type=checkbox]")) updateBulk();
  });

  // --- notices --------------------------------------------------------------------------------
  function urgentNotice(items) {
    var fresh = items.filter(function (u) { return !knownUrgent[u.id]; });
    knownUrgent = {};
    items.forEach(function (u) { knownUrgent[u.id] = true; });
    if (!fresh.length) return;
    alertBox.textContent = "";
    var strong = document.createElement("strong");
    strong.textContent = root.dataset.newUrgent + ": ";
    alertBox.appendChild(strong);
    fresh.forEach(function (u, i) {
      if (i) alertBox.appendChild(document.createTextNode("; "));
      var a = document.createElement("a");
      a.href = u.href;
      a.textContent = u.text;
      alertBox.appendChild(a);
    });
    var dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "dismiss";
    dismiss.textContent = root.dataset.dismiss;
    dismiss.addEventListener("click", function () { alertBox.textContent = ""; });
    alertBox.appendChild(dismiss);
    beep();
  }

  function selectedNotice(info) {
    if (String(info.id) !== selected.dataset.id) return;
    var fresh = document.getElementById("selected-new");
    var done = document.getElementById("selected-done");
    if (fresh && info.messages > Number(selected.dataset.seen)) fresh.hidden = false;
    if (done && info.acknowledged && selected.dataset.acked !== "1") done.hidden = false;
  }

  // --- sound ----------------------------------------------------------------------------------
  var audio = null;
  function audioContext() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    if (!audio) audio = new Context();
    if (audio.state === "suspended" && audio.resume) {
      var resumed = audio.resume();
      if (resumed && resumed.catch) resumed.catch(function () {});
    }
    return audio;
  }
  function unlock() { try { audioContext(); } catch (e) { /* no sound here */ } }
  document.addEventListener("pointerdown", unlock, { once: true, capture: true });
  document.addEventListener("keydown", unlock, { once: true, capture: true });

  function beep() {
    root.dataset.beeps = String(Number(root.dataset.beeps) + 1);
    try {
      var ctx = audioContext();
      if (!ctx) return;
      var start = ctx.currentTime + 0.02;
      [880, 660].forEach(function (freq, i) {
        var at = start + i * 0.22;
        var osc = ctx.createOscillator();
        var gain = ctx.createGain();
        osc.type = "sine";
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, at);
        gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.2);
        osc.connect(gain);
        gain.connect(ctx.destination);
        osc.start(at);
        osc.stop(at + 0.21);
      });
    } catch (e) {
      // Sound blocked or unavailable: the notice and the tab title still say it.
    }
  }

  // --- the clock ------------------------------------------------------------------------------
  function stop(text) {
    stopped = true;
    setStatus(text);
    if (worker) worker.terminate();
    if (ticker) clearInterval(ticker);
  }
  function plainTimer() {
    if (!ticker && !stopped) ticker = setInterval(poll, POLL_MS);
  }
  function start() {
    try {
      worker = new Worker(root.dataset.worker);
      worker.onmessage = poll;
      worker.onerror = function () { worker.terminate(); worker = null; plainTimer(); };
      worker.postMessage(POLL_MS);
    } catch (e) {
      worker = null;
      plainTimer();
    }
  }
  document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });
  updateBulk();
  if (selected && window.matchMedia && window.matchMedia("(max-width: 700px)").matches) {
    document.getElementById("item").scrollIntoView();
  }
  start();
})();
