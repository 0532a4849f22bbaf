// The session page's live figures; inlined by session.html, allowed by its hash (CSP).
(function () {
  "use strict";
  var url = location.pathname + ".json" + location.search;
  var last = document.getElementById("state").getAttribute("data-state");
  function pad(n) { return ("00" + n).slice(-3); }
  // Mirrors strom.units.format_sat: whole sats, or three decimals (floored) when not whole.
  function sat(m) {
    var whole = Math.floor(m / 1000), rest = m % 1000;
    return whole.toLocaleString("en") + (rest ? "." + pad(rest) : "") + " sat";
  }
  // Mirrors strom.units.format_kwh: three decimals of kWh.
  function kwh(wh) { return Math.floor(wh / 1000) + "." + pad(wh % 1000) + " kWh"; }
  // Mirrors lnurl_server.pages.format_duration.
  function duration(s) {
    var m = Math.floor(Math.max(s, 0) / 60);
    if (m === 0) { return "under 1 min"; }
    return m < 60 ? m + " min" : Math.floor(m / 60) + " h " + ("0" + m % 60).slice(-2) + " min";
  }
  function put(id, text) { var el = document.getElementById(id); if (el) { el.textContent = text; } }
  // For the browser tests: the same formatting as the server's, checked value by value.
  window.stromFormat = {sat: sat, kwh: kwh, duration: duration};
  put("liveness", "Updates live.");
  var done = false;
  function show(s) {
    if (done || !s) { return; }
    if (s.state !== last) { done = true; location.reload(); return; }
    put("energy", kwh(s.energy_wh));
    put("cost", sat(s.consumed_msat));
    put("paid", sat(s.paid_msat));
    put("refundable", sat(s.refundable_msat));
    put("elapsed", duration(s.elapsed_s));
    var used = s.paid_msat > 0 ? Math.min(100, Math.floor(s.consumed_msat * 100 / s.paid_msat)) : 0;
    put("used", String(used));
    var bar = document.getElementById("bar");
    if (bar) { bar.value = used; }
  }
  // Polling is the fallback when the live stream cannot be had (a proxy without websockets).
  var timer = null;
  function poll() {
    if (timer !== null || done) { return; }
    timer = setInterval(function () {
      fetch(url, {cache: "no-store"}).then(function (r) {
        if (r.status === 404) { clearInterval(timer); return null; }
        return r.ok ? r.json() : null;
      }).then(show).catch(function () {});
    }, 2000);
  }
  // The live stream of this session only, opened with the secret of this page's link.
  var secret = new URLSearchParams(location.search).get("secret") || "";
  var id = location.pathname.split("/").pop();
  try {
    var ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/api/v1/ws");
    ws.onopen = function () {
      ws.send(JSON.stringify({type: "session", session_id: id, secret: secret}));
    };
    ws.onmessage = function (m) {
      var d = JSON.parse(m.data);
      show(d.type === "ready" ? d.session : (d.type === "session" ? d : null));
    };
    ws.onclose = poll;
  } catch (e) {
    poll();
  }
})();
