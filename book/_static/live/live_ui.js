/* Controls, map and read-out of the "Clear it yourself" page (needs live.js). */
(function () {
  "use strict";
  var root = document.getElementById("tokenflow-live");
  if (!root) return;
  var L = window.tokenflowLive, DATA = L.data;
  var WIDTH = 676; // the book's text column (px): the map is drawn at the size it is shown

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    });
    (kids || []).forEach(function (c) { e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function words(id) { return String(id).replace(/_/g, " "); }
  function label(text, input, title) {
    var l = el("label", { class: "tfl-ctl" }, [el("span", { text: text }), input]);
    if (title) l.title = title;
    return l;
  }
  function num(id, value) { return el("input", { id: id, type: "number", min: "0", step: "any", value: String(value) }); }

  /* ------------------------------------------------------------------ controls */
  var ctl = {};
  ctl.scenario = el("select", { id: "tfl-scenario" }, Object.keys(DATA.scenarios).map(function (n) {
    return el("option", { value: n, text: n + " (" + DATA.scenarios[n].nodes.length + " metros)" });
  }));
  ctl.demand_scale = num("tfl-demand", DATA.case_scale); // the paper's case
  ctl.transfer_aware = el("input", { id: "tfl-ta", type: "checkbox" });
  ctl.transfer_aware.checked = true;
  ctl.bandwidth_factor = num("tfl-bw", 1);
  ctl.electricity_factor = num("tfl-elec", 1);
  ctl.formulation = el("select", { id: "tfl-formulation" }, [el("option", { value: "path", text: "path (default)" }),
    el("option", { value: "arc", text: "arc" })]);
  var choiceBox = el("div", { class: "tfl-row" });
  Object.keys(DATA.choices).forEach(function (c) {
    ctl[c] = el("select", { id: "tfl-" + c }, DATA.choices[c].map(function (v, i) {
      var o = el("option", { value: v, text: words(v) + (i === 0 ? " (default)" : "") });
      o.title = DATA.choice_docs[c][v];
      return o;
    }));
    choiceBox.appendChild(label(words(c), ctl[c], DATA.choice_docs[c][DATA.choices[c][0]]));
  });
  var latBox = el("div", { class: "tfl-row" });
  var market = el("div", { class: "tfl-row" }, [
    label("network", ctl.scenario), label("demand scale s (x base)", ctl.demand_scale),
    label("link bandwidth (x)", ctl.bandwidth_factor), label("electricity price (x)", ctl.electricity_factor),
    label("transfer-aware", ctl.transfer_aware), label("formulation", ctl.formulation)]);
  var form = el("div", { class: "tfl-form" }, [
    el("fieldset", {}, [el("legend", { text: "Market" }), market]),
    el("fieldset", {}, [el("legend", { text: "Modelling choices" }), choiceBox]),
    el("fieldset", {}, [el("legend", { text: "Latency limits (round trip, ms)" }), latBox])]);

  /* ------------------------------------------------------------------ result area */
  var status = el("div", { id: "tfl-status", class: "tfl-status", role: "status", text: "loading the solver ..." });
  var svgNS = "http://www.w3.org/2000/svg";
  var svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("id", "tfl-map");
  svg.setAttribute("class", "tfl-map");
  var legend = el("p", { class: "tfl-legend" });
  var nodeSel = el("select", { id: "tfl-node" });
  var decompHead = el("div", { class: "tfl-decomp-head" }, [label("price decomposition for tokens from", nodeSel)]);
  var decomp = el("div", { id: "tfl-decomp" });
  var result = el("div", { id: "tfl-result" }, [status, svg, legend, decompHead, decomp]);
  root.appendChild(form);
  root.appendChild(result);

  function buildScenarioControls() {
    var sc = DATA.scenarios[ctl.scenario.value];
    latBox.innerHTML = "";
    ctl.lat = {};
    sc.workloads.forEach(function (w) {
      var i = num("tfl-lat-" + w, sc.defaults.latency_limits_ms[w]);
      i.addEventListener("change", update);
      ctl.lat[w] = i;
      latBox.appendChild(label(DATA.workload_labels[w] || words(w), i));
    });
    nodeSel.innerHTML = "";
    sc.nodes.forEach(function (n, j) { nodeSel.appendChild(el("option", { value: n, text: sc.short_names[j] })); });
    Object.keys(DATA.choices).forEach(function (c) { ctl[c].value = sc.defaults.choices[c]; });
  }

  /* a number field: empty = null (refused by the solver's checks, not read as 0) */
  function value(input) { var t = input.value.trim(); return t === "" ? null : Number(t); }

  function settings() {
    var sc = DATA.scenarios[ctl.scenario.value], lat = {}, ch = {};
    sc.workloads.forEach(function (w) { lat[w] = value(ctl.lat[w]); });
    Object.keys(DATA.choices).forEach(function (c) { ch[c] = ctl[c].value; });
    return { scenario: sc.name, demand_scale: value(ctl.demand_scale), transfer_aware: ctl.transfer_aware.checked,
      bandwidth_factor: value(ctl.bandwidth_factor), electricity_factor: value(ctl.electricity_factor),
      latency_limits_ms: lat, formulation: ctl.formulation.value, choices: ch };
  }

  /* ------------------------------------------------------------------ number formats */
  // $ per billion tokens: two decimals from 0.1 up, else two significant digits; below the
  // solver's tolerance (1e-9 of the price) 0
  function money(x, ref) {
    if (x === null || x === undefined || !isFinite(x)) return "";
    var v = 1000 * x;
    if (Math.abs(x) <= 1e-9 * Math.max(Math.abs(ref || 0), 1e-12)) return "0";
    if (Math.abs(v) >= 100) return v.toFixed(1);
    if (Math.abs(v) >= 0.1) return v.toFixed(2);
    var s = v.toPrecision(2);
    return s.indexOf("e") >= 0 ? v.toExponential(1) : s;
  }
  function sig(x, n) { // n significant digits, thousands separated, no exponent for ordinary sizes
    if (!isFinite(x)) return String(x);
    if (x !== 0 && (Math.abs(x) < 1e-4 || Math.abs(x) >= 1e15)) return x.toExponential(n - 1);
    var d = Math.max(0, n - 1 - Math.floor(Math.log10(Math.abs(x) || 1)));
    return x.toLocaleString("en-US", { minimumFractionDigits: 0, maximumFractionDigits: Math.min(d, 20) });
  }
  function linkName(sc, id) {
    var ab = id.split("->");
    return sc.short_names[sc.nodes.indexOf(ab[0])] + " \u2192 " + sc.short_names[sc.nodes.indexOf(ab[1])];
  }

  /* ------------------------------------------------------------------ map */
  function project(sc) {
    var lon0 = Math.min.apply(null, sc.lon), lon1 = Math.max.apply(null, sc.lon);
    var lat0 = Math.min.apply(null, sc.lat), lat1 = Math.max.apply(null, sc.lat);
    var kx = Math.cos((lat0 + lat1) / 2 * Math.PI / 180), mx = 70, my = 36;
    var s = Math.min((WIDTH - 2 * mx) / Math.max((lon1 - lon0) * kx, 1e-9), 300 / Math.max(lat1 - lat0, 1e-9));
    var h = Math.max((lat1 - lat0) * s + 2 * my, 240), y0 = (h - (lat1 - lat0) * s) / 2;
    var x0 = (WIDTH - (lon1 - lon0) * kx * s) / 2;
    var f = function (i) { return [x0 + (sc.lon[i] - lon0) * kx * s, y0 + (lat1 - sc.lat[i]) * s]; };
    f.height = Math.round(h);
    return f;
  }

  function color(u) { // utilisation 0 -> grey-blue, 1 -> red
    var t = Math.max(0, Math.min(1, u));
    return "rgb(" + Math.round(120 + 135 * t) + "," + Math.round(140 - 110 * t) + "," + Math.round(180 - 150 * t) + ")";
  }

  function overlap(a, b) {
    var w = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x), h = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
    return w > 0 && h > 0 ? w * h : 0;
  }
  function segHitsBox(p, q, b) { // does segment pq cross box b (sampled: the map is small)
    for (var t = 0.05; t < 1; t += 0.05) {
      var x = p[0] + (q[0] - p[0]) * t, y = p[1] + (q[1] - p[1]) * t;
      if (x > b.x && x < b.x + b.w && y > b.y && y < b.y + b.h) return true;
    }
    return false;
  }

  /* Labels placed greedily, each at the candidate position (8 directions, 3 distances)
   * that overlaps no label or marker placed before it, stays on the map and crosses the
   * fewest links; a label away from its node gets a leader line. */
  function placeLabels(sc, P, groups, H) {
    var N = sc.nodes.length, boxes = [], marks = [], segs = [], i;
    for (i = 0; i < N; i++) { var p = P(i); marks.push({ x: p[0] - 7, y: p[1] - 7, w: 14, h: 14 }); }
    for (i = 0; i < sc.au.length; i += 2) segs.push([P(sc.au[i]), P(sc.av[i])]);
    var order = sc.nodes.map(function (_, j) { return j; });
    // crowded nodes first: they have the fewest good places
    var crowd = order.map(function (j) {
      var p = P(j), c = 0;
      for (var m = 0; m < N; m++) { var q = P(m); if (m !== j && Math.hypot(p[0] - q[0], p[1] - q[1]) < 120) c++; }
      return c;
    });
    order.sort(function (a, b) { return crowd[b] - crowd[a] || a - b; });
    order.forEach(function (j) {
      var g = groups[j], bb = g.getBBox(), w = bb.width + 2, h = bb.height, p = P(j), best = null;
      [9, 22, 38].forEach(function (r, ri) {
        [[1, 0], [-1, 0], [0, -1], [0, 1], [1, -1], [1, 1], [-1, -1], [-1, 1]].forEach(function (d, di) {
          var x = d[0] > 0 ? p[0] + r : d[0] < 0 ? p[0] - r - w : p[0] - w / 2;
          var y = d[1] > 0 ? p[1] + r * 0.7 : d[1] < 0 ? p[1] - r * 0.7 - h : p[1] - h / 2;
          var box = { x: x, y: y, w: w, h: h }, cost = ri * 5 + di * 0.1;
          boxes.forEach(function (b) { var o = overlap(box, b); if (o > 0) cost += 1000 + o; });
          marks.forEach(function (b) { if (overlap(box, b)) cost += 800; });
          if (x < 2 || y < 2 || x + w > WIDTH - 2 || y + h > H - 2) cost += 5000;
          segs.forEach(function (s) { if (segHitsBox(s[0], s[1], box)) cost += 3; });
          if (best === null || cost < best.cost) best = { cost: cost, box: box, r: r };
        });
      });
      boxes.push(best.box);
      g.setAttribute("transform", "translate(" + (best.box.x - bb.x + 1) + "," + (best.box.y - bb.y) + ")");
      if (best.r > 9) {
        var cx = Math.max(best.box.x, Math.min(p[0], best.box.x + best.box.w));
        var cy = Math.max(best.box.y, Math.min(p[1], best.box.y + best.box.h));
        var ln = document.createElementNS(svgNS, "line");
        [["x1", p[0]], ["y1", p[1]], ["x2", cx], ["y2", cy], ["stroke", "#999"], ["stroke-width", 0.8],
          ["class", "tfl-leader"]].forEach(function (a) { ln.setAttribute(a[0], a[1]); });
        svg.insertBefore(ln, svg.firstChild);
      }
    });
  }

  function draw(sc, res) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.style.display = "";
    var P = project(sc), wl = sc.workloads[0], H = P.height;
    svg.setAttribute("viewBox", "0 0 " + WIDTH + " " + H);
    svg.setAttribute("width", WIDTH);
    svg.setAttribute("height", H);
    function add(tag, attrs, text, parent) {
      var e = document.createElementNS(svgNS, tag);
      Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
      if (text !== undefined) e.textContent = text;
      (parent || svg).appendChild(e);
      return e;
    }
    var util = res && res.utilization, sat = (res && res.saturated_links) || [];
    for (var i = 0; i < sc.au.length; i += 2) {
      var a = P(sc.au[i]), b = P(sc.av[i]), f = sc.arc_ids[i], r = sc.arc_ids[i + 1];
      var u = util ? Math.max(util[f], util[r]) : 0, s = sat.indexOf(f) >= 0 || sat.indexOf(r) >= 0;
      var line = add("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: util ? color(u) : "#bbb",
        "stroke-width": s ? 5 : 2.5, class: s ? "tfl-sat" : "tfl-link" });
      add("title", {}, linkName(sc, f) + ": " + (util ? sig(100 * util[f], 3) + " %, back " +
        sig(100 * util[r], 3) + " %" + (s ? " (saturated)" : "") : "not solved"), line);
    }
    var groups = [];
    sc.nodes.forEach(function (n, j) {
      var p = P(j), price = res && res.prices ? res.prices[n][wl] : null;
      add("circle", { cx: p[0], cy: p[1], r: 6, fill: n === nodeSel.value ? "#222" : "#2a6", stroke: "#fff",
        class: "tfl-node" });
      var g = add("g", { class: "tfl-label" });
      add("text", { x: 0, y: 0, "font-size": 12, fill: "#111" }, sc.short_names[j], g);
      if (price !== null) add("text", { x: 0, y: 13, "font-size": 11, fill: "#444" }, "$" + money(price, price), g);
      groups.push(g);
    });
    placeLabels(sc, P, groups, H);
    legend.textContent = res && res.prices ? "Under each metro: the " + (DATA.workload_labels[wl] || wl) +
      " price in $ per billion tokens. Links coloured by the larger utilisation of their two directions " +
      "(grey 0 % to red 100 %); thick = saturated. Hover a link for its utilisation." :
      "The network (no prices: the market does not clear at this scale).";
  }

  function clearResult() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.style.display = "none";
    legend.textContent = "";
    decomp.innerHTML = "";
    decompHead.style.display = "none";
  }

  function showDecomp(sc, res) {
    decomp.innerHTML = "";
    decompHead.style.display = "";
    var o = sc.nodes.indexOf(nodeSel.value);
    var head = ["Workload", "Price", "Processing", "Compute rent", "Transfer", "Congestion rent"];
    var rows = [el("tr", {}, head.map(function (h, j) {
      return el("th", { class: j ? "tfl-num" : "" }, j ? [h, el("br"), el("span", { class: "tfl-unit", text: "$/B tokens" })] : [h]);
    }).concat([el("th", {}, ["Route", el("br"), el("span", { class: "tfl-unit", text: "origin \u2192 served at" })])]))];
    sc.workloads.forEach(function (w, k) {
      var d = L.decompose(sc, res, o, k), p = res.prices[sc.nodes[o]][w];
      var cells = [el("td", { text: DATA.workload_labels[w] || words(w) }), el("td", { class: "tfl-num", text: money(p, p) })];
      if (d) {
        [d.processing, d.compute_rent, d.transfer, d.congestion_rent].forEach(function (x) {
          cells.push(el("td", { class: "tfl-num", text: money(x, p) }));
        });
        cells.push(el("td", { class: "tfl-route", text: d.path.map(function (n) {
          return sc.short_names[sc.nodes.indexOf(n)];
        }).join(" \u2192 ") }));
      }
      rows.push(el("tr", {}, cells));
    });
    decomp.appendChild(el("table", { class: "tfl-table", id: "tfl-decomp-table" }, [
      el("caption", { text: "Price of a token from " + sc.short_names[o] + " = processing + compute rent (energy per " +
        "token x the compute dual of the metro that serves it) + transfer + congestion rent (bytes per token x the " +
        "links' duals), along the cheapest route at the solved rents." }),
      el("tbody", {}, rows)]));
  }

  /* ------------------------------------------------------------------ solving */
  var seq = 0;
  function update() {
    var my = ++seq, sc = DATA.scenarios[ctl.scenario.value], st = settings();
    L._solveNow(st).then(function (res) {
      if (my !== seq) return;
      if (res.infeasible) {
        status.className = "tfl-status tfl-infeasible";
        status.textContent = res.unreachable ? "Cannot clear: demand with no compute within its latency limit (" +
          res.unreachable.join(", ") + ")." : "Cannot clear at s = " + sig(st.demand_scale, 4) +
          ": the largest scale that clears is s* = " + sig(res.max_scale, 4) + "; what binds: " + res.binding + ".";
        draw(sc, null);
        decomp.innerHTML = "";
        decompHead.style.display = "none";
        return;
      }
      status.className = "tfl-status";
      var how = res.formulation === "path" ? (/column/.test(res.how) ? "path formulation, by " + res.how :
        "path formulation: the arc formulation's optimum, whose routes all meet their latency limits") : res.path_exact ?
        "arc formulation; every route in use meets its latency limit, so this is also the path formulation's optimum" :
        "arc formulation, not proven equal to the path formulation (a relaxation: its cost is a lower bound)";
      status.textContent = "Total cost " + sig(res.objective, 6) + " $/h at s = " + sig(st.demand_scale, 4) +
        ". Clears up to s* = " + sig(res.max_scale, 4) + " (what binds there: " + res.binding + "). Saturated links: " +
        (res.saturated_links.length ? res.saturated_links.map(function (x) { return linkName(sc, x); }).join(", ") :
          "none") + "." + (res.first_token_priced.length ? " Demand below the solver's resolution is priced at the " +
          "cost of its first token, as tokenflow does." : "") + " Solved in " + sig(res.solve_ms, 2) + " ms (" + how + ").";
      draw(sc, res);
      showDecomp(sc, res);
    }, function (err) {
      if (my !== seq) return;
      // an invalid input: the previous result goes, the message takes its place
      clearResult();
      status.className = "tfl-status tfl-error";
      status.textContent = "Cannot solve: " + err.message;
    });
  }

  buildScenarioControls();
  ctl.scenario.addEventListener("change", function () { buildScenarioControls(); update(); });
  ["demand_scale", "transfer_aware", "bandwidth_factor", "electricity_factor", "formulation"]
    .concat(Object.keys(DATA.choices)).forEach(function (k) { ctl[k].addEventListener("change", update); });
  nodeSel.addEventListener("change", update);
  update();
})();
