/* Controls, map and read-out of the "Clear it yourself" page (needs live.js). */
(function () {
  "use strict";
  var root = document.getElementById("tokenflow-live");
  if (!root) return;
  var L = window.tokenflowLive, DATA = L.data, fmt = L.fmt;
  var CHOICE_VALUES = { payload_direction: ["request", "both"], electricity_sector: ["commercial", "industrial"] };

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    });
    (kids || []).forEach(function (c) { e.appendChild(c); });
    return e;
  }
  function label(text, input) { return el("label", { class: "tfl-ctl" }, [el("span", { text: text }), input]); }

  var ctl = {};
  ctl.scenario = el("select", { id: "tfl-scenario" },
    Object.keys(DATA.scenarios).map(function (n) { return el("option", { value: n, text: n }); }));
  ctl.demand_scale = el("input", { id: "tfl-demand", type: "number", min: "0", step: "any", value: "1" });
  ctl.transfer_aware = el("input", { id: "tfl-ta", type: "checkbox" });
  ctl.transfer_aware.checked = true;
  ctl.bandwidth_factor = el("input", { id: "tfl-bw", type: "number", min: "0", step: "any", value: "1" });
  ctl.electricity_factor = el("input", { id: "tfl-elec", type: "number", min: "0", step: "any", value: "1" });
  Object.keys(CHOICE_VALUES).forEach(function (c) {
    ctl[c] = el("select", { id: "tfl-" + c }, CHOICE_VALUES[c].map(function (v) { return el("option", { value: v, text: v }); }));
  });
  ctl.formulation = el("select", { id: "tfl-formulation" }, [el("option", { value: "path", text: "path (default)" }),
    el("option", { value: "arc", text: "arc" })]);
  var latBox = el("div", { class: "tfl-lat" });
  var nodeSel = el("select", { id: "tfl-node" });
  var form = el("div", { class: "tfl-form" }, [
    label("network", ctl.scenario), label("demand scale s", ctl.demand_scale),
    label("transfer-aware", ctl.transfer_aware), label("link bandwidth x", ctl.bandwidth_factor),
    label("electricity price x", ctl.electricity_factor), label("payload_direction", ctl.payload_direction),
    label("electricity_sector", ctl.electricity_sector), label("formulation", ctl.formulation), latBox,
  ]);
  var status = el("div", { id: "tfl-status", class: "tfl-status", text: "loading the solver ..." });
  var svgNS = "http://www.w3.org/2000/svg";
  var svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("viewBox", "0 0 800 440");
  svg.setAttribute("id", "tfl-map");
  svg.setAttribute("style", "width:100%;max-width:800px;border:1px solid #ccc;background:#fbfbf8");
  var decomp = el("div", { id: "tfl-decomp" });
  root.appendChild(form);
  root.appendChild(status);
  root.appendChild(svg);
  root.appendChild(el("div", {}, [label("price decomposition at", nodeSel)]));
  root.appendChild(decomp);

  function buildScenarioControls() {
    var sc = DATA.scenarios[ctl.scenario.value];
    latBox.innerHTML = "";
    ctl.lat = {};
    sc.workloads.forEach(function (w) {
      var i = el("input", { id: "tfl-lat-" + w, type: "number", min: "0", step: "any",
        value: String(sc.defaults.latency_limits_ms[w]) });
      i.addEventListener("change", update);
      ctl.lat[w] = i;
      latBox.appendChild(label(w + " latency limit (ms)", i));
    });
    nodeSel.innerHTML = "";
    sc.nodes.forEach(function (n) { nodeSel.appendChild(el("option", { value: n, text: n })); });
    Object.keys(CHOICE_VALUES).forEach(function (c) { ctl[c].value = sc.defaults.choices[c]; });
  }

  function settings() {
    var sc = DATA.scenarios[ctl.scenario.value], lat = {};
    sc.workloads.forEach(function (w) { lat[w] = Number(ctl.lat[w].value); });
    return { scenario: sc.name, demand_scale: Number(ctl.demand_scale.value), transfer_aware: ctl.transfer_aware.checked,
      bandwidth_factor: Number(ctl.bandwidth_factor.value), electricity_factor: Number(ctl.electricity_factor.value),
      latency_limits_ms: lat, formulation: ctl.formulation.value,
      choices: { payload_direction: ctl.payload_direction.value, electricity_sector: ctl.electricity_sector.value } };
  }

  function project(sc) {
    var lon0 = Math.min.apply(null, sc.lon), lon1 = Math.max.apply(null, sc.lon);
    var lat0 = Math.min.apply(null, sc.lat), lat1 = Math.max.apply(null, sc.lat);
    var kx = Math.cos((lat0 + lat1) / 2 * Math.PI / 180);
    var sx = 620 / Math.max((lon1 - lon0) * kx, 1e-9), sy = 360 / Math.max(lat1 - lat0, 1e-9), s = Math.min(sx, sy);
    var f = function (i) { return [50 + (sc.lon[i] - lon0) * kx * s, 40 + (lat1 - sc.lat[i]) * s]; };
    f.height = 40 + (lat1 - lat0) * s + 60;
    return f;
  }

  function color(u) { // utilisation 0 -> grey-blue, 1 -> red
    var t = Math.max(0, Math.min(1, u));
    return "rgb(" + Math.round(120 + 135 * t) + "," + Math.round(140 - 110 * t) + "," + Math.round(180 - 150 * t) + ")";
  }

  function draw(sc, res) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var P = project(sc), wl = sc.workloads[0], H = Math.round(P.height);
    svg.setAttribute("viewBox", "0 0 800 " + H);
    function add(tag, attrs, text) {
      var e = document.createElementNS(svgNS, tag);
      Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
      if (text !== undefined) e.textContent = text;
      svg.appendChild(e);
      return e;
    }
    for (var i = 0; i < sc.au.length; i += 2) {
      var a = P(sc.au[i]), b = P(sc.av[i]);
      var u = res && res.utilization ? Math.max(res.utilization[sc.arc_ids[i]], res.utilization[sc.arc_ids[i + 1]]) : 0;
      var sat = res && res.saturated_links && (res.saturated_links.indexOf(sc.arc_ids[i]) >= 0 ||
        res.saturated_links.indexOf(sc.arc_ids[i + 1]) >= 0);
      var line = add("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: color(u),
        "stroke-width": sat ? 5 : 2.5, "stroke-dasharray": sat ? "none" : "none", class: sat ? "tfl-sat" : "tfl-link" });
      add("title", {}, sc.links[i / 2] + ": utilisation " + sc.arc_ids[i] + " " + fmt(100 * (res && res.utilization ?
        res.utilization[sc.arc_ids[i]] : 0), 3) + " %, " + sc.arc_ids[i + 1] + " " +
        fmt(100 * (res && res.utilization ? res.utilization[sc.arc_ids[i + 1]] : 0), 3) + " %" + (sat ? " (saturated)" : ""));
      line.appendChild(svg.lastChild);
      if (sat) add("text", { x: (a[0] + b[0]) / 2, y: (a[1] + b[1]) / 2 - 4, "font-size": 11, fill: "#b00",
        "text-anchor": "middle" }, "saturated");
    }
    sc.nodes.forEach(function (n, j) {
      var p = P(j), price = res && res.prices ? res.prices[n][wl] : null;
      add("circle", { cx: p[0], cy: p[1], r: 6, fill: n === nodeSel.value ? "#222" : "#2a6", stroke: "#fff" });
      add("text", { x: p[0] + 8, y: p[1] - 6, "font-size": 11 }, n);
      if (price !== null) add("text", { x: p[0] + 8, y: p[1] + 8, "font-size": 10, fill: "#333" },
        "$" + fmt(price * 1000, 4) + "/B tok");
    });
    add("text", { x: 10, y: H - 10, "font-size": 11, fill: "#555" }, "node labels: " + wl +
      " price ($ per billion tokens); links coloured by utilisation (grey 0 % -> red 100 %), thick = saturated");
  }

  function showDecomp(sc, res) {
    decomp.innerHTML = "";
    if (!res || res.infeasible) return;
    var o = sc.nodes.indexOf(nodeSel.value);
    var rows = [el("tr", {}, ["workload", "price", "processing", "compute rent", "transfer", "congestion rent",
      "via", "route"].map(function (h) { return el("th", { text: h }); }))];
    L._solveNow(settings()).then(function (full) {
      sc.workloads.forEach(function (w, k) {
        var d = L.decompose(sc, full, o, k), p = full.prices[sc.nodes[o]][w];
        var cells = [w, fmt(p, 6)].concat(d ? [fmt(d.processing, 6), fmt(d.compute_rent, 6), fmt(d.transfer, 6),
          fmt(d.congestion_rent, 6), d.via, d.path] : ["", "", "", "", "", ""]);
        rows.push(el("tr", {}, cells.map(function (c) { return el("td", { text: String(c) }); })));
      });
      decomp.appendChild(el("p", { text: "Price of a token served from " + sc.nodes[o] + " ($/M tokens) = " +
        "processing + compute rent (kWh/M tokens x the node's compute dual) + transfer + congestion rent " +
        "(GB/M tokens x the links' duals) along the cheapest route at these rents:" }));
      decomp.appendChild(el("table", { class: "tfl-table" }, rows));
    });
  }

  var seq = 0;
  function update() {
    var my = ++seq, sc = DATA.scenarios[ctl.scenario.value], st = settings();
    L.solve(st).then(function (res) {
      if (my !== seq) return;
      if (res.infeasible) {
        status.textContent = "Cannot clear above s* = " + fmt(res.max_scale, 6) + " (asked s = " + fmt(st.demand_scale, 6) +
          "); what binds: " + res.binding + ".";
        status.className = "tfl-status tfl-infeasible";
        draw(sc, null);
        decomp.innerHTML = "";
        return;
      }
      status.className = "tfl-status";
      status.textContent = "Total cost " + fmt(res.objective, 8) + " $/h; s* = " + fmt(res.max_scale, 6) +
        " (binds: " + res.binding + "); saturated links: " + (res.saturated_links.length ?
        res.saturated_links.join(", ") : "none") + ". Solved in " + fmt(res.solve_ms, 3) + " ms (" + res.n_cols +
        " columns, " + res.n_rows + " rows)." + (res.formulation === "path" ? " Path formulation, solved by " + res.how + "." :
        res.path_exact ? " Every route in use meets its latency limit: this is also the optimum of the path formulation." :
        " Not proven equal to the path formulation" + (res.path_violation ? " (a route of " +
        res.path_violation.workload + " from " + res.path_violation.origin + " takes " +
        fmt(res.path_violation.rtt_ms, 4) + " ms round trip, limit " + fmt(res.path_violation.limit_ms, 4) + " ms)" :
        "") + ": the arc formulation is a relaxation, its cost a lower bound of the path formulation's.");
      draw(sc, res);
      showDecomp(sc, res);
    }, function (err) {
      if (my !== seq) return;
      status.className = "tfl-status tfl-infeasible";
      status.textContent = "Cannot solve: " + err.message;
    });
  }

  buildScenarioControls();
  ctl.scenario.addEventListener("change", function () { buildScenarioControls(); update(); });
  ["demand_scale", "transfer_aware", "bandwidth_factor", "electricity_factor", "payload_direction",
    "electricity_sector", "formulation"].forEach(function (k) { ctl[k].addEventListener("change", update); });
  nodeSel.addEventListener("change", update);
  update();
})();
