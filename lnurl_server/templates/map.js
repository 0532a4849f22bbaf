// The network map (/map): chargers' kind-30522 status events read from nostr relays, drawn on
// a Web Mercator tile map. Inlined by map.html, allowed by its hash (CSP). Plain WebSocket and
// JSON (REQ / EVENT / EOSE); signatures are not checked here, the relays check them.
(function () {
  "use strict";
  var settings = JSON.parse(document.getElementById("map-settings").textContent);
  var operator = {};
  settings.operator.forEach(function (key) { operator[key] = true; });
  var TILE = 256, MIN_ZOOM = 2, MAX_ZOOM = 18;
  var box = document.getElementById("map");
  var tilesLayer = document.getElementById("tiles");
  var markersLayer = document.getElementById("markers");
  var list = document.getElementById("chargers");
  var detail = document.getElementById("detail");
  var count = document.getElementById("map-count");
  var onlyOperator = document.getElementById("only-operator");
  var chargers = {};  // "pubkey:d" -> the charger read from its newest status event
  var view = {lat: 51.0, lon: 10.0, zoom: 4};
  var moved = false;  // the person panned or zoomed: stop fitting the view to the chargers
  var selected = null;
  var connected = 0;

  // --- numbers, as the server's pages write them ------------------------------------------
  function pad(n) { return ("00" + n).slice(-3); }
  // Mirrors strom_core.units.format_sat: whole sats, or three decimals (floored) when not whole.
  function sat(m) {
    var whole = Math.floor(m / 1000), rest = m % 1000;
    return whole.toLocaleString("en") + (rest ? "." + pad(rest) : "") + " sat";
  }
  function kw(w) { return (w / 1000).toLocaleString("en", {maximumFractionDigits: 1}) + " kW"; }

  // --- geohash and Web Mercator -----------------------------------------------------------
  var BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz";
  function decodeGeohash(hash) {
    var lat = [-90, 90], lon = [-180, 180], even = true;
    for (var i = 0; i < hash.length; i++) {
      var value = BASE32.indexOf(hash.charAt(i));
      if (value < 0) { return null; }
      for (var bit = 4; bit >= 0; bit--) {
        var range = even ? lon : lat, mid = (range[0] + range[1]) / 2;
        if ((value >> bit) & 1) { range[0] = mid; } else { range[1] = mid; }
        even = !even;
      }
    }
    return {lat: (lat[0] + lat[1]) / 2, lon: (lon[0] + lon[1]) / 2};
  }
  function world(lat, lon, zoom) {  // pixel of the whole world at this zoom
    var size = TILE * Math.pow(2, zoom);
    var s = Math.sin(Math.max(-85.05, Math.min(85.05, lat)) * Math.PI / 180);
    return {x: (lon + 180) / 360 * size,
            y: (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * size};
  }
  function unworld(x, y, zoom) {
    var size = TILE * Math.pow(2, zoom);
    var n = Math.PI - 2 * Math.PI * y / size;
    return {lat: 180 / Math.PI * Math.atan(Math.sinh(n)), lon: x / size * 360 - 180};
  }
  function origin() {  // world pixel of the box's top-left corner
    var c = world(view.lat, view.lon, view.zoom);
    return {x: c.x - box.clientWidth / 2, y: c.y - box.clientHeight / 2};
  }

  // --- reading status events --------------------------------------------------------------
  function tag(event, name) {
    for (var i = 0; i < event.tags.length; i++) {
      if (event.tags[i][0] === name) { return event.tags[i]; }
    }
    return null;
  }
  function value(event, name) { var t = tag(event, name); return t ? String(t[1]) : ""; }
  function webLink(url) { return /^https?:\/\/[^\s]+$/.test(url) ? url : ""; }
  function parse(event) {
    if (!event || event.kind !== settings.kind || !Array.isArray(event.tags)) { return null; }
    var d = value(event, "d"), lud16 = value(event, "lud16").toLowerCase();
    var cell = "";
    event.tags.forEach(function (t) {
      if (t[0] === "g" && typeof t[1] === "string" && t[1].length > cell.length) { cell = t[1]; }
    });
    var where = decodeGeohash(cell.toLowerCase());
    var expires = parseInt(value(event, "expiration"), 10);
    if (!d || !where || !cell || (expires && expires * 1000 < Date.now())) { return null; }
    var prices = {kWh: null, min: 0, session: 0};  // no kWh tag: no energy price now
    var fiat = {};  // per -> "0.39 EUR": a price written in fiat (price_fiat tags)
    var connectors = [];
    event.tags.forEach(function (t) {
      if (t[0] === "price" && t[2] === "msat" && t[3] in prices) {
        prices[t[3]] = parseInt(t[1], 10) || 0;
      } else if (t[0] === "price_fiat" && t[3] in prices && /^[0-9]+(\.[0-9]+)?$/.test(t[1]) &&
                 /^[A-Z]{3}$/.test(t[2])) {
        fiat[t[3]] = t[1] + " " + t[2];
      } else if (t[0] === "connector" && t.length >= 5) {
        connectors.push({id: t[1], type: t[2], power: parseInt(t[3], 10) || 0, state: t[4]});
      }
    });
    return {
      key: event.pubkey + ":" + d, pubkey: event.pubkey, id: d, createdAt: event.created_at,
      name: value(event, "name") || d, address: value(event, "location"),
      status: value(event, "status") || "unavailable", lat: where.lat, lon: where.lon,
      connectors: connectors, prices: prices, fiat: fiat, page: webLink(value(event, "r")),
      lud16: /^[a-z0-9._-]+@[a-z0-9.-]+(:[0-9]+)?$/.test(lud16) ? lud16 : "",
      mine: operator[event.pubkey] === true
    };
  }
  function receive(event) {
    var charger = parse(event);
    if (!charger) { return; }
    var known = chargers[charger.key];
    if (known && known.createdAt > charger.createdAt) { return; }  // an older version
    chargers[charger.key] = charger;
    if (!moved) { fit(); }
    draw();
  }

  // --- relays -----------------------------------------------------------------------------
  function follow(url, wait) {
    var socket;
    try { socket = new WebSocket(url); } catch (e) { return; }
    var up = false;
    socket.onopen = function () {
      up = true; connected += 1; wait = 1000; drawCount();
      socket.send(JSON.stringify(["REQ", "map", {kinds: [settings.kind], "#t": ["ev-charging"]}]));
    };
    socket.onmessage = function (message) {
      var data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      if (Array.isArray(data) && data[0] === "EVENT") { receive(data[2]); }
    };
    socket.onclose = function () {
      if (up) { connected -= 1; drawCount(); }
      setTimeout(function () { follow(url, Math.min(wait * 2, 60000)); }, wait);
    };
  }

  // --- drawing ----------------------------------------------------------------------------
  function shown() {
    return Object.keys(chargers).map(function (k) { return chargers[k]; }).filter(function (c) {
      return !onlyOperator.checked || c.mine;
    }).sort(function (a, b) { return a.name.localeCompare(b.name); });
  }
  function fit() {
    var all = shown();
    if (!all.length) { return; }
    var lats = all.map(function (c) { return c.lat; }), lons = all.map(function (c) { return c.lon; });
    var south = Math.min.apply(null, lats), north = Math.max.apply(null, lats);
    var west = Math.min.apply(null, lons), east = Math.max.apply(null, lons);
    var zoom = MAX_ZOOM - 2;
    for (; zoom > MIN_ZOOM; zoom--) {
      var a = world(north, west, zoom), b = world(south, east, zoom);
      if (b.x - a.x < box.clientWidth - 80 && b.y - a.y < box.clientHeight - 80) { break; }
    }
    var mid = unworld((world(north, west, zoom).x + world(south, east, zoom).x) / 2,
                      (world(north, west, zoom).y + world(south, east, zoom).y) / 2, zoom);
    view = {lat: mid.lat, lon: mid.lon, zoom: zoom};
  }
  // Tiles stay in place while the map pans: only the ones that come into view are fetched, and a
  // tile that failed (no tile server reachable) is not asked for again at every redraw.
  var shownTiles = {}, failedTiles = {};
  function drawTiles() {
    if (!settings.tiles) { return; }
    var o = origin(), n = Math.pow(2, view.zoom), wanted = {};
    for (var ty = Math.floor(o.y / TILE); ty * TILE < o.y + box.clientHeight; ty++) {
      for (var tx = Math.floor(o.x / TILE); tx * TILE < o.x + box.clientWidth; tx++) {
        if (ty < 0 || ty >= n) { continue; }
        var src = settings.tiles.replace("{z}", view.zoom)
          .replace("{x}", ((tx % n) + n) % n).replace("{y}", ty);
        var key = view.zoom + "/" + tx + "/" + ty;
        if (failedTiles[src]) { continue; }
        var img = shownTiles[key];
        if (!img) {
          img = document.createElement("img");
          img.alt = "";
          img.onerror = function () {  // no tiles: the plain background stays
            failedTiles[this.dataset.src] = true;
            this.remove();
          };
          img.dataset.src = src;
          img.src = src;
          tilesLayer.appendChild(img);
        }
        img.style.left = (tx * TILE - o.x) + "px";
        img.style.top = (ty * TILE - o.y) + "px";
        wanted[key] = img;
      }
    }
    for (var old in shownTiles) {
      if (!wanted[old]) { shownTiles[old].remove(); }
    }
    shownTiles = wanted;
  }
  function drawMarkers(all) {
    markersLayer.textContent = "";
    var o = origin();
    all.forEach(function (c) {
      var p = world(c.lat, c.lon, view.zoom);
      var marker = document.createElement("button");
      marker.type = "button";
      marker.className = "marker" + (selected === c.key ? " selected" : "");
      marker.setAttribute("aria-label", c.name + ": " + c.status);
      marker.dataset.key = c.key;
      marker.dataset.pubkey = c.pubkey;
      marker.dataset.charger = c.id;
      marker.dataset.status = c.status;
      marker.dataset.mine = String(c.mine);
      marker.dataset.lat = c.lat.toFixed(6);
      marker.dataset.lon = c.lon.toFixed(6);
      marker.style.left = (p.x - o.x) + "px";
      marker.style.top = (p.y - o.y) + "px";
      marker.appendChild(document.createElement("span"));
      marker.onclick = function (e) { e.stopPropagation(); select(c.key); };
      markersLayer.appendChild(marker);
    });
  }
  function drawList(all) {
    list.textContent = "";
    all.forEach(function (c) {
      var item = document.createElement("li"), button = document.createElement("button");
      button.type = "button";
      button.dataset.key = c.key;
      var name = document.createElement("span");
      name.textContent = c.name;
      var state = document.createElement("span");
      state.className = "state state-" + c.status;
      state.textContent = c.status;
      button.appendChild(name);
      button.appendChild(state);
      button.onclick = function () { select(c.key); };
      item.appendChild(button);
      list.appendChild(item);
    });
  }
  function element(kind, text, className) {
    var el = document.createElement(kind);
    el.textContent = text;
    if (className) { el.className = className; }
    return el;
  }
  function drawDetail() {
    var c = selected && chargers[selected];
    if (!c || (onlyOperator.checked && !c.mine)) { detail.hidden = true; return; }
    detail.textContent = "";
    detail.dataset.key = c.key;
    detail.appendChild(element("h2", c.name));
    if (c.address) { detail.appendChild(element("p", c.address, "muted")); }
    // A price written in fiat is shown as written, with its sats at the rate of the event
    // when it carries them (no sat tag: no fresh rate, which is not free).
    function part(per, unit) {
      var sats = c.prices[per];
      if (c.fiat[per]) {
        return c.fiat[per] + unit + (sats === null || (per !== "kWh" && !sats) ? "" :
          " (about " + sat(sats) + ")");
      }
      return sats ? sat(sats) + unit : "";
    }
    var price = c.fiat.kWh || c.prices.kWh !== null ? part("kWh", "/kWh") || sat(0) + "/kWh" :
      "energy price not known now";
    [["min", "/min"], ["session", " per session"]].forEach(function (p) {
      var text = part(p[0], p[1]);
      if (text) { price += " + " + text; }
    });
    detail.appendChild(element("p", price, "price-line"));
    var plugs = document.createElement("ul");
    plugs.className = "connectors-list";
    c.connectors.forEach(function (k) {
      var row = document.createElement("li");
      row.dataset.connector = k.id;
      row.appendChild(element("span", k.id + " · " + k.type + " · " + kw(k.power)));
      row.appendChild(element("span", k.state, "state state-" + k.state));
      plugs.appendChild(row);
    });
    detail.appendChild(plugs);
    if (c.page) {
      var free = c.connectors.some(function (k) { return k.state === "available"; });
      var pay = element("a", free ? "Pay and charge" : "Charger page (no connector free now)",
                        "pay");
      pay.href = c.page;
      pay.id = "pay";
      detail.appendChild(pay);
    }
    if (c.lud16) {
      var zap = element("a", "⚡ " + c.lud16, "small");
      zap.href = "lightning:" + c.lud16;
      zap.id = "lud16";
      detail.appendChild(zap);
    }
    detail.hidden = false;
  }
  function drawCount() {
    var all = shown();
    count.textContent = all.length + (all.length === 1 ? " charger" : " chargers") + " · " +
      connected + " of " + settings.relays.length + " relays connected";
  }
  function draw() {
    var all = shown();
    box.dataset.lat = view.lat.toFixed(6);
    box.dataset.lon = view.lon.toFixed(6);
    box.dataset.zoom = String(view.zoom);
    drawTiles();
    drawMarkers(all);
    drawList(all);
    drawDetail();
    drawCount();
  }
  function select(key) {
    selected = key;
    draw();
    detail.scrollIntoView({block: "nearest"});
  }

  // --- moving the map ---------------------------------------------------------------------
  function zoomBy(step) {
    view.zoom = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, view.zoom + step));
    moved = true;
    draw();
  }
  document.getElementById("zoom-in").onclick = function (e) { e.stopPropagation(); zoomBy(1); };
  document.getElementById("zoom-out").onclick = function (e) { e.stopPropagation(); zoomBy(-1); };
  box.addEventListener("wheel", function (e) { e.preventDefault(); zoomBy(e.deltaY < 0 ? 1 : -1); },
                       {passive: false});
  var drag = null;
  box.addEventListener("pointerdown", function (e) {
    if (e.target.closest("button")) { return; }
    drag = {x: e.clientX, y: e.clientY, start: world(view.lat, view.lon, view.zoom)};
    box.classList.add("dragging");
  });
  window.addEventListener("pointermove", function (e) {
    if (!drag) { return; }
    var centre = unworld(drag.start.x - (e.clientX - drag.x), drag.start.y - (e.clientY - drag.y),
                         view.zoom);
    view.lat = centre.lat;
    view.lon = centre.lon;
    moved = true;
    draw();
  });
  window.addEventListener("pointerup", function () { drag = null; box.classList.remove("dragging"); });
  window.addEventListener("resize", draw);
  onlyOperator.onchange = function () { if (!moved) { fit(); } draw(); };
  if (settings.tiles) {
    document.getElementById("attribution").textContent =
      settings.tiles.indexOf("openstreetmap.org") >= 0 ? "© OpenStreetMap contributors" :
      "Map tiles: " + settings.tiles.split("/")[2];
  }
  draw();
  settings.relays.forEach(function (url) { follow(url, 1000); });
}());
