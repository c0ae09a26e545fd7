/* "Clear it yourself": the tokenflow market re-cleared in the browser with HiGHS (WebAssembly).
 *
 * The LP is the package's arc formulation (tokenflow/arc.py), rebuilt from the numbers
 * tools/export_live.py exports (live_data.js) exactly as tools/export_live.py::arc_lp does:
 * columns = arc flows then processing, rows = balance, compute, bandwidth; rows scaled as
 * tokenflow.model.row_scales; same HiGHS options as tokenflow.solver.  Prices are the duals
 * of the balance rows that hold each (node, workload)'s demand (tokenflow.clearing.engine.Market._duals),
 * compute rent mu = -dual, congestion rent rho = -dual.  Nothing is fetched: the wasm is
 * inlined (highs-wasm.js) and the data is a script.
 *
 * Test hook: window.tokenflowLive.solve(settings) -> Promise of
 *   {objective, prices: {node: {workload: $/M tokens}}, saturated_links: [...], max_scale, ...}
 *   or {infeasible: true, max_scale, binding}.
 */
(function () {
  "use strict";
  var DATA = window.TOKENFLOW_LIVE_DATA;
  var HIGHS_OPTIONS = {
    output_flag: false, log_to_console: false, random_seed: 0, // single-threaded build: no "threads"
    dual_feasibility_tolerance: 1e-9, primal_feasibility_tolerance: 1e-9,
  };
  var SAT_TOL = 1e-6; // MarketResult.saturated_links
  var highsPromise = null;
  var LIMITS = {};

  function b64ToBytes(b64) {
    var bin = atob(b64), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function loadHighs() {
    if (!highsPromise) {
      var bytes = b64ToBytes(window.HIGHS_WASM_B64);
      // the inlined binary, instantiated here: nothing is fetched (file:// pages cannot fetch)
      highsPromise = window.Module({
        instantiateWasm: function (imports, done) {
          WebAssembly.instantiate(bytes, imports).then(function (r) { done(r.instance, r.module); });
          return {};
        },
      });
    }
    return highsPromise;
  }

  /* Python's repr of a JSON-like value, so that messages read as tokenflow's (ScenarioError). */
  function pyRepr(v) {
    if (v === null || v === undefined) return "None";
    if (v === true) return "True";
    if (v === false) return "False";
    if (typeof v === "number") {
      if (isNaN(v)) return "nan";
      if (!isFinite(v)) return v > 0 ? "inf" : "-inf";
      if (Number.isInteger(v) && Math.abs(v) < 1e21) return BigInt(v).toString(); // arrives in Python as int
      var m = v.toExponential().match(/^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/), e = Number(m[4]);
      var digits = m[2] + (m[3] || "");
      if (e < -4 || e >= 16) {
        var ex = Math.abs(e) < 10 ? "0" + Math.abs(e) : String(Math.abs(e));
        return m[1] + m[2] + (m[3] ? "." + m[3] : "") + "e" + (e < 0 ? "-" : "+") + ex;
      }
      var s;
      if (e < 0) s = "0." + "0".repeat(-e - 1) + digits;
      else if (digits.length <= e + 1) s = digits + "0".repeat(e + 1 - digits.length) + ".0";
      else s = digits.slice(0, e + 1) + "." + digits.slice(e + 1);
      return m[1] + s;
    }
    if (typeof v === "string") {
      var q = v.indexOf("'") >= 0 && v.indexOf('"') < 0 ? '"' : "'";
      return q + v.replace(/[\\\n\r\t]|[\x00-\x1f\x7f]/g, function (c) {
        return { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" }[c] ||
          "\\x" + ("0" + c.charCodeAt(0).toString(16)).slice(-2);
      }).split(q).join(q === "'" ? "\\'" : q) + q;
    }
    if (Array.isArray(v)) return "[" + v.map(pyRepr).join(", ") + "]";
    if (typeof v === "object") {
      return "{" + Object.keys(v).map(function (k) { return pyRepr(k) + ": " + pyRepr(v[k]); }).join(", ") + "}";
    }
    return String(v);
  }
  function pyTypeName(v) {
    if (v === null || v === undefined) return "NoneType";
    if (Array.isArray(v)) return "list";
    if (typeof v === "string") return "str";
    if (typeof v === "boolean") return "bool";
    if (typeof v === "number") return Number.isInteger(v) && Math.abs(v) < 1e21 ? "int" : "float";
    return "dict";
  }
  function cut(s, n) { return s.length > n ? s.slice(0, n) : s; } // Python's {x!r:.60}
  function isMapping(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }
  function has(obj, k) { return Object.prototype.hasOwnProperty.call(obj, k); }

  /* The ScenarioError of tokenflow: one problem alone, several as a list. */
  function SettingsError(problems) {
    var msg = problems.length === 1 ? problems[0] : problems.length + " problems:\n" +
      problems.map(function (p) { return "  - " + p; }).join("\n");
    var e = new Error(msg);
    e.name = "ScenarioError"; e.problems = problems;
    return e;
  }

  /* tokenflow.inputs.check_bool / check_number / per_workload / check_formulation and
   * tokenflow.scenario.check_choices, message for message (tools/export_live.py::check_settings). */
  function checkBool(v, name) {
    if (typeof v === "boolean") return v;
    throw SettingsError([name + ": expected True or False, got " + pyRepr(v)]);
  }
  function checkNumber(v, name, unit, allowZero) {
    if (typeof v !== "number") throw SettingsError([name + ": expected a number of " + unit + ", got " + pyRepr(v)]);
    if (!isFinite(v) || v < 0 || (v === 0 && !allowZero)) {
      throw SettingsError([name + ": must be " + (allowZero ? "a finite non-negative" : "a finite positive") +
        " number of " + unit + ", got " + pyRepr(v)]);
    }
    return v;
  }
  function perWorkload(sc, values, name, unit) {
    if (values === null || values === undefined) return {};
    if (!isMapping(values)) {
      throw SettingsError([name + ": expected a mapping workload -> " + unit + " (workloads: " + sc.workloads.join(", ") +
        "), got " + pyTypeName(values) + " " + cut(pyRepr(values), 60)]);
    }
    var out = {}, problems = [];
    Object.keys(values).forEach(function (k) {
      if (sc.workloads.indexOf(k) < 0) {
        problems.push(name + ": unknown workload " + pyRepr(k) + " (workloads: " + sc.workloads.join(", ") + ")");
        return;
      }
      try { out[k] = checkNumber(values[k], name + "." + k, unit, true); } catch (e) { problems.push(e.message); }
    });
    if (problems.length) throw SettingsError(problems);
    return out;
  }
  function checkFormulation(f) {
    if (f !== "path" && f !== "arc") throw SettingsError(["formulation: must be one of path, arc, got " + pyRepr(f)]);
    return f;
  }
  function checkChoices(choices) {
    var C = DATA.choices, names = Object.keys(C);
    if (!isMapping(choices)) {
      throw SettingsError(["choices: must be a mapping of choice name to value; choices are " +
        names.map(function (k) { return k + ": " + C[k].join(", "); }).join("; ")]);
    }
    var problems = [];
    Object.keys(choices).forEach(function (k) {
      var v = choices[k];
      if (!has(C, k)) problems.push("choices: unknown modelling choice " + pyRepr(k) + "; choices are " + names.join(", "));
      else if (typeof v !== "string" || C[k].indexOf(v) < 0) {
        problems.push("choices." + k + ": " + pyRepr(v) + " is not allowed; allowed values: " + C[k].join(", ") +
          " (default " + C[k][0] + ")");
      }
    });
    if (problems.length) throw SettingsError(problems);
    return choices;
  }

  /* The settings checked (every problem listed) with the scenario's defaults filled in; a
   * missing or undefined key takes its default.  Same rules, order and messages as
   * tools/export_live.py::check_settings, which calls tokenflow's own checks. */
  function validate(settings) {
    var KEYS = DATA.setting_keys, s = settings === undefined || settings === null ? {} : settings;
    if (!isMapping(s)) {
      throw SettingsError(["settings: expected a mapping of setting name to value (keys: " + KEYS.join(", ") +
        "), got " + cut(pyRepr(s), 60)]);
    }
    var given = new Map(); // a Map: a "__proto__" key is a key like any other
    Object.keys(s).forEach(function (k) { if (s[k] !== undefined) given.set(k, s[k]); });
    var problems = Array.from(given.keys()).filter(function (k) { return KEYS.indexOf(k) < 0; }).map(function (k) {
      return "settings: unknown key " + pyRepr(k) + " (keys: " + KEYS.join(", ") + ")";
    });
    var name = given.has("scenario") ? given.get("scenario") : "us5";
    if (typeof name !== "string" || !has(DATA.scenarios, name)) {
      problems.push("scenario: unknown scenario " + cut(pyRepr(name), 60) + ": the page has " +
        Object.keys(DATA.scenarios).join(", "));
      throw SettingsError(problems);
    }
    var sc = DATA.scenarios[name], d = sc.defaults, out = { scenario: name };
    function run(key, check, dflt) {
      try { out[key] = given.has(key) ? check(given.get(key)) : dflt; } catch (e) {
        if (!e.problems) throw e;
        problems.push.apply(problems, e.problems);
      }
    }
    run("formulation", checkFormulation, "path");
    run("transfer_aware", function (v) { return checkBool(v, "transfer_aware"); }, d.transfer_aware);
    run("latency_limits_ms", function (v) { return perWorkload(sc, v, "latency_limits_ms", "ms"); }, {});
    run("choices", checkChoices, {});
    run("demand_scale", function (v) { return checkNumber(v, "demand_scale", "(multiplier)", true); }, d.demand_scale);
    ["bandwidth_factor", "electricity_factor"].forEach(function (k) {
      run(k, function (v) { return checkNumber(v, k, "(multiplier)", false); }, d[k]);
    });
    if (problems.length) throw SettingsError(problems);
    out.latency_limits_ms = Object.assign({}, d.latency_limits_ms, out.latency_limits_ms);
    out.choices = Object.assign({}, d.choices, out.choices);
    return { sc: sc, st: out };
  }

  function variantKey(ta, ch) {
    return ["ta=" + (ta ? 1 : 0)].concat(Object.keys(DATA.choices).map(function (c) { return c + "=" + ch[c]; }))
      .join("|");
  }

  /* The arrays of one variant (the export stores each distinct array once, in a pool). */
  var VARIANTS = new Map();
  function variantOf(sc, st) {
    var key = sc.name + "#" + variantKey(st.transfer_aware, st.choices);
    if (!VARIANTS.has(key)) {
      var ref = sc.variants[variantKey(st.transfer_aware, st.choices)], v = {};
      Object.keys(ref).forEach(function (f) { v[f] = sc.pool[f][ref[f]]; });
      VARIANTS.set(key, v);
    }
    return VARIANTS.get(key);
  }

  /* Commodities and their allowed arcs and nodes: tokenflow.arc.ArcStructure's rules. */
  function structure(sc, latMs, hasCap) {
    var N = sc.nodes.length, K = sc.workloads.length, A = sc.au.length, tol = sc.lat_tol;
    var dist = sc.dist.map(function (r) { return r.map(function (v) { return v === null ? Infinity : v; }); });
    var com = [], k, o, n, a;
    for (k = 0; k < K; k++) {
      var agg = true;
      for (o = 0; o < N && agg; o++) for (n = 0; n < N; n++) {
        if (hasCap[n] && isFinite(dist[o][n]) && !(2 * dist[o][n] <= latMs[k] + tol)) { agg = false; break; }
      }
      if (agg) com.push([k, -1]); else for (o = 0; o < N; o++) com.push([k, o]);
    }
    var f_c = [], f_a = [], y_c = [], y_n = [], r_c = [], r_n = [];
    com.forEach(function (c, ci) {
      var kk = c[0], oo = c[1], arcs = [], nodes = [];
      if (oo < 0) {
        for (a = 0; a < A; a++) arcs.push(a);
        for (n = 0; n < N; n++) nodes.push(n);
      } else {
        var d = dist[oo];
        for (a = 0; a < A; a++) if (2 * (d[sc.au[a]] + sc.arc_latency_ms[a]) <= latMs[kk] + tol) arcs.push(a);
        for (n = 0; n < N; n++) if (2 * d[n] <= latMs[kk] + tol) nodes.push(n);
      }
      arcs.forEach(function (x) { f_c.push(ci); f_a.push(x); });
      nodes.forEach(function (x) { if (hasCap[x]) { y_c.push(ci); y_n.push(x); } });
      nodes.forEach(function (x) { r_c.push(ci); r_n.push(x); });
    });
    var rowOf = com.map(function () { return new Array(N).fill(-1); });
    for (var i = 0; i < r_c.length; i++) rowOf[r_c[i]][r_n[i]] = i;
    var cidx = {};
    com.forEach(function (c, ci) { cidx[c[0] + "," + c[1]] = ci; });
    var originRow = [];
    for (n = 0; n < N; n++) {
      originRow.push([]);
      for (k = 0; k < K; k++) {
        var ci = cidx[k + ",-1"] !== undefined ? cidx[k + ",-1"] : cidx[k + "," + n];
        originRow[n].push(rowOf[ci][n]);
      }
    }
    return { com: com, f_c: f_c, f_a: f_a, y_c: y_c, y_n: y_n, nb: r_c.length, rowOf: rowOf, originRow: originRow,
      dist: dist };
  }

  /* The arc LP (tools/export_live.py::arc_lp, line for line). */
  function arcLP(sc, st, maxScale) {
    var v = variantOf(sc, st);
    var N = sc.nodes.length, K = sc.workloads.length, L = sc.au.length;
    var cap = v.capacity_kw, hasCap = cap.map(function (c) { return c > 0; });
    var latMs = sc.workloads.map(function (w) { return Number(st.latency_limits_ms[w]); });
    var s = structure(sc, latMs, hasCap);
    var k_f = s.f_c.map(function (c) { return s.com[c][0]; });
    var k_y = s.y_c.map(function (c) { return s.com[c][0]; });
    var fwd = v.fwd_gb, rev = v.rev_gb, g = v.intensity;
    var nb = s.nb, nf = s.f_c.length, ny = s.y_c.length, B = nb + N, i, a, k;
    var rhs = new Float64Array(nb), dmax = 0;
    for (var n = 0; n < N; n++) for (k = 0; k < K; k++) {
      rhs[s.originRow[n][k]] = v.base_demand[n * K + k];
      dmax = Math.max(dmax, v.base_demand[n * K + k]);
    }
    dmax = dmax || 1.0;
    var starts = [0], idx = [], val = [], cost = [];
    function push(rows, vals) {
      for (var j = 0; j < rows.length; j++) { idx.push(rows[j]); val.push(vals[j]); }
      starts.push(idx.length);
    }
    if (maxScale) {
      var rr = [], vv = [];
      for (i = 0; i < nb; i++) if (rhs[i] !== 0) { rr.push(i); vv.push(-rhs[i] / dmax); }
      push(rr, vv); cost.push(-1.0 / dmax);
    }
    var hasRev = rev.some(function (x) { return x !== 0; });
    for (i = 0; i < nf; i++) {
      a = s.f_a[i]; k = k_f[i];
      var c = s.f_c[i];
      var ent = [[s.rowOf[c][sc.au[a]], 1.0], [s.rowOf[c][sc.av[a]], -1.0], [B + a, fwd[k]]];
      if (hasRev) ent.push([B + (a ^ 1), rev[k]]);
      ent.sort(function (x, y) { return x[0] - y[0]; });
      push(ent.map(function (e) { return e[0]; }), ent.map(function (e) { return e[1]; }));
      cost.push(maxScale ? 0 : fwd[k] * sc.arc_cost[a] + rev[k] * sc.arc_cost[a ^ 1]);
    }
    for (i = 0; i < ny; i++) {
      var yn = s.y_n[i], ky = k_y[i];
      push([s.rowOf[s.y_c[i]][yn], nb + yn], [1.0, g[ky]]);
      cost.push(maxScale ? 0 : v.energy_cost[yn * K + ky] * st.electricity_factor + v.other_cost[yn * K + ky]);
    }
    var gmax = Math.max.apply(null, g), wmax = Math.max.apply(null, fwd.concat(rev));
    if (!(wmax > 0)) wmax = 1.0;
    var rowScale = new Float64Array(nb + N + L), rowLb = new Float64Array(nb + N + L),
      rowUb = new Float64Array(nb + N + L);
    for (i = 0; i < nb; i++) {
      rowScale[i] = 1.0;
      rowLb[i] = rowUb[i] = maxScale ? 0 : st.demand_scale * rhs[i];
    }
    for (i = 0; i < N; i++) { rowScale[nb + i] = 1.0 / gmax; rowLb[nb + i] = -Infinity; rowUb[nb + i] = cap[i]; }
    for (i = 0; i < L; i++) {
      rowScale[B + i] = 1.0 / wmax; rowLb[B + i] = -Infinity;
      rowUb[B + i] = sc.arc_capacity_gbh[i] * st.bandwidth_factor;
    }
    s.k_f = k_f; s.k_y = k_y; s.fwd = fwd; s.rev = rev; s.v = v; s.dmax = dmax; s.rhs = rhs; s.hasCap = hasCap;
    s.latMs = latMs;
    return { cost: cost, starts: starts, idx: idx, val: val, rowLb: rowLb, rowUb: rowUb, rowScale: rowScale,
      nRows: nb + N + L, nCols: cost.length, s: s };
  }

  /* Solve with HiGHS (rows scaled as LiveLP does); duals returned in unscaled rows' terms. */
  function runLP(highs, lp) {
    var data = new Float64Array(lp.val.length);
    for (var j = 0; j < lp.val.length; j++) data[j] = lp.val[j] * lp.rowScale[lp.idx[j]];
    var inf = highs.infinity;
    var lb = new Float64Array(lp.nRows), ub = new Float64Array(lp.nRows);
    for (var i = 0; i < lp.nRows; i++) {
      lb[i] = isFinite(lp.rowLb[i]) ? lp.rowLb[i] * lp.rowScale[i] : -inf;
      ub[i] = isFinite(lp.rowUb[i]) ? lp.rowUb[i] * lp.rowScale[i] : inf;
    }
    var model = highs.createModel({
      numCols: lp.nCols, numRows: lp.nRows, colCost: new Float64Array(lp.cost),
      colLower: new Float64Array(lp.nCols), colUpper: new Float64Array(lp.nCols).fill(inf),
      rowLower: lb, rowUpper: ub,
      matrix: { format: "csc", numRows: lp.nRows, numCols: lp.nCols, starts: new Int32Array(lp.starts),
        indices: new Int32Array(lp.idx), values: data },
    });
    try {
      model.options.set(HIGHS_OPTIONS);
      model.run();
      var status = model.getModelStatus(), ms = highs.constants.modelStatus;
      if (status === ms.optimal) {
        var sol = model.getSolution();
        var y = new Float64Array(lp.nRows);
        for (i = 0; i < lp.nRows; i++) y[i] = sol.rowDual[i] * lp.rowScale[i];
        return { status: "optimal", x: Float64Array.from(sol.colValue), y: y, objective: model.getObjectiveValue() };
      }
      if (status === ms.infeasible || status === ms.unboundedOrInfeasible) return { status: "infeasible" };
      return { status: "status " + status };
    } finally {
      model.dispose();
    }
  }

  /* s* and what binds (tokenflow.clearing.engine.Market.scale_limit). */
  function scaleLimit(highs, sc, st, formulation) {
    var lp = arcLP(sc, st, true), s = lp.s, v = s.v, N = sc.nodes.length, K = sc.workloads.length;
    var load = 0, capSum = 0;
    for (var n = 0; n < N; n++) {
      capSum += v.capacity_kw[n];
      for (var k = 0; k < K; k++) load += v.base_demand[n * K + k] * v.intensity[k];
    }
    var agg = load > 0 ? capSum / load : Infinity;
    if (!(load > 0)) return { max_scale: Infinity, binding: "no demand", nodes: [], links: [] };
    var r = runLP(highs, lp);
    if (r.status !== "optimal") throw new Error("max-scale LP ended with " + r.status);
    var sStar = r.x[0] / s.dmax, nb = s.nb, y = r.y, how = "arc";
    if (formulation === "path" && !pathCertificate(sc, lp, r.x, 1, sStar).path_exact) {
      var cg = pathCG(highs, sc, st, true);
      sStar = cg.r.x[0] / cg.lp.dmax; y = cg.r.y; nb = N * K; how = "path column generation";
    } else if (formulation === "path") how = "arc, certified path-feasible";
    var nodes = [], links = [];
    for (n = 0; n < N; n++) if (-y[nb + n] > 1e-9) nodes.push(sc.nodes[n]);
    for (var a = 0; a < sc.au.length; a++) if (-y[nb + N + a] > 1e-9) links.push(sc.arc_ids[a]);
    var binding;
    if (sStar >= agg * (1 - 1e-6)) binding = "aggregate compute capacity (" + fmt(capSum / 1000, 6) + " MW of AI compute)";
    else if (links.length) binding = "bandwidth on links " + links.join(", ") +
      (nodes.length ? " (with compute at " + nodes.join(", ") + ")" : "");
    else binding = "compute reachable within latency limits: nodes " + nodes.join(", ") +
      " are full while aggregate capacity would allow s = " + fmt(agg, 6);
    return { max_scale: sStar, binding: binding, nodes: nodes, links: links, aggregate: agg, how: how };
  }

  function fmt(x, sig) { return Number(x).toPrecision(sig || 4).replace(/\.?0+$/, "").replace(/\.?0+e/, "e"); }

  /* Demand with no compute inside its latency limit: tokenflow raises ScenarioError. */
  function unreachable(sc, st, s) {
    var out = [], N = sc.nodes.length, K = sc.workloads.length;
    for (var o = 0; o < N; o++) for (var k = 0; k < K; k++) {
      if (!(s.v.base_demand[o * K + k] > 0)) continue;
      var ok = false;
      for (var n = 0; n < N; n++) if (s.hasCap[n] && 2 * s.dist[o][n] <= s.latMs[k] + sc.lat_tol) ok = true;
      if (!ok) out.push(sc.workloads[k] + " at " + sc.nodes[o]);
    }
    return out;
  }

  /* ---------------------------------------------------------------- path formulation
   * tokenflow's default LP (tokenflow/model.py path_lp): one column per (route, workload),
   * routes whose round trip meets the workload's limit, found by exact column generation
   * (tokenflow/routes.py price: cheapest admissible route per (origin, workload) at the
   * current rents, label setting with latency as the resource). */
  function Heap() { this.a = []; }
  Heap.prototype.push = function (x) {
    var a = this.a, i = a.length;
    a.push(x);
    while (i > 0) {
      var p = (i - 1) >> 1;
      if (a[p][0] < x[0] || (a[p][0] === x[0] && a[p][1] <= x[1])) break;
      a[i] = a[p]; i = p;
    }
    a[i] = x;
  };
  Heap.prototype.pop = function () {
    var a = this.a, top = a[0], last = a.pop();
    if (a.length) {
      var i = 0, n = a.length;
      for (;;) {
        var l = 2 * i + 1, r = l + 1, m = i;
        var less = function (x, y) { return x[0] < y[0] || (x[0] === y[0] && x[1] < y[1]); };
        if (l < n && less(a[l], m === i ? last : a[m])) m = l;
        if (r < n && less(a[r], m === i ? last : a[m])) m = r;
        if (m === i) break;
        a[i] = a[m]; i = m;
      }
      a[i] = last;
    }
    return top;
  };

  /* Cheapest route from o to every node within one-way latency half + tol: {node: [cost, arcs]}. */
  function rcsp(sc, out, o, length, half) {
    var N = sc.nodes.length, tol = sc.lat_tol, bestLat = new Float64Array(N).fill(Infinity);
    var labNode = [o], labArc = [-1], labParent = [-1], heap = new Heap(), found = {};
    heap.push([0, 0, 0]);
    while (heap.a.length) {
      var h = heap.pop(), c = h[0], lt = h[1], id = h[2], v = labNode[id];
      if (lt >= bestLat[v]) continue;
      bestLat[v] = lt;
      if (!found[v]) {
        var arcs = [], x = id;
        while (labArc[x] >= 0) { arcs.push(labArc[x]); x = labParent[x]; }
        found[v] = [c, arcs.reverse()];
      }
      out[v].forEach(function (a) {
        var w = sc.av[a];
        if (w === o) return;
        var nl = lt + sc.arc_latency_ms[a];
        if (nl > half + tol / 2 || nl >= bestLat[w]) return;
        labNode.push(w); labArc.push(a); labParent.push(id);
        heap.push([c + length[a], nl, labNode.length - 1]);
      });
    }
    return found;
  }

  function outArcs(sc) {
    var out = sc.nodes.map(function () { return []; });
    sc.au.forEach(function (u, a) { out[u].push(a); });
    return out;
  }

  /* Best admissible (processing node, route) for every origin of workload k at rents mu, rho. */
  function pricePaths(sc, st, v, k, mu, rho, withCosts, out) {
    var N = sc.nodes.length, K = sc.workloads.length, L = sc.au.length, ef = st.electricity_factor;
    var fwd = v.fwd_gb[k], rev = v.rev_gb[k], len = new Float64Array(L), a, n;
    for (a = 0; a < L; a++) {
      var e1 = (withCosts ? sc.arc_cost[a] : 0) + Math.max(rho[a], 0);
      var e2 = (withCosts ? sc.arc_cost[a ^ 1] : 0) + Math.max(rho[a ^ 1], 0);
      len[a] = fwd * e1 + rev * e2;
    }
    var half = Number(st.latency_limits_ms[sc.workloads[k]]) / 2, best = [];
    for (var o = 0; o < N; o++) {
      var f = rcsp(sc, out, o, len, half), b = null;
      for (n = 0; n < N; n++) {
        if (!(v.capacity_kw[n] > 0) || !f[n]) continue;
        var pc = withCosts ? v.energy_cost[n * K + k] * ef + v.other_cost[n * K + k] : 0;
        var tot = pc + v.intensity[k] * mu[n] + f[n][0];
        if (b === null || tot < b.total) b = { n: n, arcs: f[n][1], total: tot, length: f[n][0], proc: pc };
      }
      best.push(b);
    }
    return best;
  }

  function pathLP(sc, st, v, cols, maxScale) {
    var N = sc.nodes.length, K = sc.workloads.length, L = sc.au.length, D = N * K, ef = st.electricity_factor;
    var hasRev = v.rev_gb.some(function (x) { return x !== 0; });
    var starts = [0], idx = [], val = [], cost = [], j, dmax = Math.max.apply(null, v.base_demand) || 1.0;
    function push(ent) {
      var rows = Object.keys(ent).map(Number).sort(function (x, y) { return x - y; });
      rows.forEach(function (r) { idx.push(r); val.push(ent[r]); });
      starts.push(idx.length);
    }
    var rcost = cols.map(function (c) {
      var t = 0;
      c.arcs.forEach(function (a) { t += v.fwd_gb[c.k] * sc.arc_cost[a] + v.rev_gb[c.k] * sc.arc_cost[a ^ 1]; });
      return v.energy_cost[c.n * K + c.k] * ef + v.other_cost[c.n * K + c.k] + t;
    });
    var nAux;
    if (maxScale) {
      var ent = {};
      for (j = 0; j < D; j++) if (v.base_demand[j] !== 0) ent[j] = -v.base_demand[j] / dmax;
      push(ent); cost.push(-1.0 / dmax); nAux = 1;
    } else {
      var pen = 1e3 * (1 + Math.max.apply(null, rcost.map(Math.abs).concat([0])));
      for (j = 0; j < D; j++) { var e = {}; e[j] = 1; push(e); cost.push(pen); }
      nAux = D;
    }
    cols.forEach(function (c, i) {
      var e = {};
      e[c.o * K + c.k] = 1; e[D + c.n] = v.intensity[c.k];
      c.arcs.forEach(function (a) {
        e[D + N + a] = (e[D + N + a] || 0) + v.fwd_gb[c.k];
        if (hasRev) e[D + N + (a ^ 1)] = (e[D + N + (a ^ 1)] || 0) + v.rev_gb[c.k];
      });
      push(e); cost.push(maxScale ? 0 : rcost[i]);
    });
    var gmax = Math.max.apply(null, v.intensity), wmax = Math.max.apply(null, v.fwd_gb.concat(v.rev_gb));
    if (!(wmax > 0)) wmax = 1.0;
    var R = D + N + L, rowScale = new Float64Array(R), rowLb = new Float64Array(R), rowUb = new Float64Array(R);
    for (j = 0; j < D; j++) { rowScale[j] = 1; rowLb[j] = rowUb[j] = maxScale ? 0 : st.demand_scale * v.base_demand[j]; }
    for (j = 0; j < N; j++) { rowScale[D + j] = 1 / gmax; rowLb[D + j] = -Infinity; rowUb[D + j] = v.capacity_kw[j]; }
    for (j = 0; j < L; j++) {
      rowScale[D + N + j] = 1 / wmax; rowLb[D + N + j] = -Infinity;
      rowUb[D + N + j] = sc.arc_capacity_gbh[j] * st.bandwidth_factor;
    }
    return { cost: cost, starts: starts, idx: idx, val: val, rowLb: rowLb, rowUb: rowUb, rowScale: rowScale,
      nRows: R, nCols: cost.length, nAux: nAux, dmax: dmax };
  }

  /* Column generation; returns {lp, r, cols, lam, mu, rho, rounds}. */
  function pathCG(highs, sc, st, maxScale) {
    var v = variantOf(sc, st);
    var N = sc.nodes.length, K = sc.workloads.length, L = sc.au.length, D = N * K, out = outArcs(sc);
    var cols = [], have = {}, k, o;
    function add(o, n, arcs, k) {
      var key = o + ":" + k + ":" + n + ":" + arcs.join(",");
      if (have[key]) return false;
      have[key] = true; cols.push({ o: o, n: n, arcs: arcs, k: k }); return true;
    }
    var zeroMu = new Float64Array(N), zeroRho = new Float64Array(L);
    for (k = 0; k < K; k++) {
      for (o = 0; o < N; o++) if (v.capacity_kw[o] > 0) add(o, o, [], k);
      pricePaths(sc, st, v, k, zeroMu, zeroRho, true, out).forEach(function (b, o) { if (b) add(o, b.n, b.arcs, k); });
    }
    for (var round = 1; round <= 300; round++) {
      var lp = pathLP(sc, st, v, cols, maxScale), r = runLP(highs, lp);
      if (r.status !== "optimal") throw new Error("path LP ended with " + r.status);
      var lam = r.y.slice(0, D), mu = [], rho = [], added = 0;
      for (var n = 0; n < N; n++) mu.push(-r.y[D + n]);
      for (var a = 0; a < L; a++) rho.push(-r.y[D + N + a]);
      for (k = 0; k < K; k++) {
        pricePaths(sc, st, v, k, mu, rho, !maxScale, out).forEach(function (b, o) {
          if (!b) return;
          var l = lam[o * K + k];
          if (b.total - l < -1e-9 * Math.max(1, Math.abs(l)) && add(o, b.n, b.arcs, k)) added++;
        });
      }
      if (!added) return { lp: lp, r: r, cols: cols, lam: lam, mu: mu, rho: rho, rounds: round, v: v };
    }
    throw new Error("column generation did not converge in 300 rounds");
  }

  /* Is the arc optimum also an optimum of the path formulation (tokenflow's default)?  The
   * arc LP is a relaxation of the path LP (every admissible route is a walk inside its
   * latency ball), so if its flows decompose into routes that each meet their workload's
   * round-trip limit, they are path-feasible at the same cost: the two optima coincide.
   * Greedy flow decomposition per commodity (supply = demand at its origins, sinks =
   * processing); a cycle is cancelled.  Sufficient, not necessary: false = "not proven". */
  function pathCertificate(sc, lp, xAll, off, scale) {
    var s = lp.s, N = sc.nodes.length, K = sc.workloads.length, nf = s.f_c.length, tol = sc.lat_tol;
    var x = xAll.slice(off);
    var worst = null, ok = true;
    s.com.forEach(function (c, ci) {
      var k = c[0], out = [], y = new Float64Array(N), sup = new Float64Array(N), i, n, total = 0;
      for (n = 0; n < N; n++) out.push([]);
      for (i = 0; i < nf; i++) if (s.f_c[i] === ci && x[i] > 0) out[sc.au[s.f_a[i]]].push({ a: s.f_a[i], f: x[i] });
      for (i = 0; i < s.y_c.length; i++) if (s.y_c[i] === ci && x[nf + i] > 0) y[s.y_n[i]] += x[nf + i];
      for (n = 0; n < N; n++) {
        if (c[1] >= 0 && n !== c[1]) continue;
        sup[n] = scale * s.v.base_demand[n * K + k];
        total += sup[n];
      }
      var eps = 1e-9 * Math.max(total, 1e-300);
      for (var src = 0; src < N; src++) {
        var guard = 0;
        while (sup[src] > eps && guard++ < 10000) {
          var path = [], seen = {}, u = src;
          seen[u] = 0;
          while (!(y[u] > eps)) {
            var e = out[u].find(function (q) { return q.f > eps; });
            if (!e) break;
            path.push(e);
            u = sc.av[e.a];
            if (seen[u] !== undefined) { // cancel the cycle
              var cyc = path.slice(seen[u]), m = Math.min.apply(null, cyc.map(function (q) { return q.f; }));
              cyc.forEach(function (q) { q.f -= m; });
              path = path.slice(0, seen[u]);
              Object.keys(seen).forEach(function (key) { if (seen[key] > path.length) delete seen[key]; });
              continue;
            }
            seen[u] = path.length;
          }
          if (!(y[u] > eps)) { ok = false; break; } // flow that does not decompose (numerical)
          var b = Math.min(sup[src], y[u]);
          path.forEach(function (q) { b = Math.min(b, q.f); });
          path.forEach(function (q) { q.f -= b; });
          y[u] -= b; sup[src] -= b;
          var rtt = 2 * path.reduce(function (acc, q) { return acc + sc.arc_latency_ms[q.a]; }, 0);
          var lim = s.latMs[k];
          if (rtt > lim + tol) {
            ok = false;
            if (!worst || rtt - lim > worst.excess) {
              worst = { workload: sc.workloads[k], origin: sc.nodes[src], rtt_ms: rtt, limit_ms: lim, excess: rtt - lim };
            }
          }
        }
        if (guard >= 10000) ok = false;
      }
    });
    return { path_exact: ok, violation: worst };
  }

  function solveNow(highs, settings) {
    var ok = validate(settings), sc = ok.sc, st = ok.st, formulation = st.formulation;
    var t0 = performance.now();
    var lp = arcLP(sc, st, false), s = lp.s;
    var N = sc.nodes.length, K = sc.workloads.length, L = sc.au.length;
    var bad = unreachable(sc, st, s);
    if (bad.length) {
      return { infeasible: true, unreachable: bad, max_scale: 0, binding: "unreachable demand: " + bad.join(", "),
        solve_ms: performance.now() - t0, settings: st };
    }
    // s* does not depend on demand_scale or electricity_factor: cached per the rest
    var key = JSON.stringify([formulation, sc.name, st.transfer_aware, st.choices, s.latMs, st.bandwidth_factor]);
    var lim = LIMITS[key] || (LIMITS[key] = scaleLimit(highs, sc, st, formulation));
    var out = { max_scale: lim.max_scale, binding: lim.binding, settings: st, formulation: formulation,
      max_scale_how: lim.how };
    var load = 0, capSum = 0;
    for (var n = 0; n < N; n++) {
      capSum += s.v.capacity_kw[n];
      for (var k = 0; k < K; k++) load += s.v.base_demand[n * K + k] * s.v.intensity[k];
    }
    if (st.demand_scale * load > capSum * (1 + 1e-9) || st.demand_scale > lim.max_scale * (1 + 1e-9)) {
      out.infeasible = true;
      out.solve_ms = performance.now() - t0;
      return out;
    }
    var r = runLP(highs, lp);
    if (r.status === "infeasible") {
      out.infeasible = true; out.solve_ms = performance.now() - t0; return out;
    }
    if (r.status !== "optimal") throw new Error("HiGHS ended with " + r.status);
    var nb = s.nb, nf = s.f_c.length, i;
    var prices = {}, mu = [], rho = [], objective = r.objective, how = "arc", a;
    var loadA = new Float64Array(L), proc = [];
    for (n = 0; n < N; n++) proc.push(new Array(K).fill(0));
    var cert = pathCertificate(sc, lp, r.x, 0, st.demand_scale), cg = null;
    if (formulation === "path" && !cert.path_exact) {
      // the arc optimum uses a route beyond its limit: solve the path formulation itself
      cg = pathCG(highs, sc, st, false);
      var D = N * K, unserved = 0, total = 0;
      for (i = 0; i < D; i++) { unserved += Math.max(cg.r.x[i], 0); total += st.demand_scale * cg.v.base_demand[i]; }
      if (unserved > 1e-9 * Math.max(1, total)) {
        out.infeasible = true; out.solve_ms = performance.now() - t0; return out;
      }
      objective = cg.r.objective; mu = cg.mu; rho = cg.rho; how = "path column generation (" + cg.rounds + " rounds)";
      for (n = 0; n < N; n++) {
        prices[sc.nodes[n]] = {};
        for (k = 0; k < K; k++) prices[sc.nodes[n]][sc.workloads[k]] = cg.lam[n * K + k];
      }
      cg.cols.forEach(function (c, j) {
        var f = Math.max(cg.r.x[cg.lp.nAux + j], 0);
        proc[c.n][c.k] += f;
        c.arcs.forEach(function (a) { loadA[a] += f * cg.v.fwd_gb[c.k]; loadA[a ^ 1] += f * cg.v.rev_gb[c.k]; });
      });
    } else {
      if (formulation === "path") how = "arc, certified path-feasible";
      for (n = 0; n < N; n++) {
        prices[sc.nodes[n]] = {};
        for (k = 0; k < K; k++) prices[sc.nodes[n]][sc.workloads[k]] = r.y[s.originRow[n][k]];
        mu.push(-r.y[nb + n]);
      }
      for (a = 0; a < L; a++) rho.push(-r.y[nb + N + a]);
      // link loads as the model counts traffic (results._flows): fwd on the arc, rev on its opposite
      for (i = 0; i < nf; i++) {
        var f = Math.max(r.x[i], 0), aa = s.f_a[i], kk = s.k_f[i];
        loadA[aa] += f * s.fwd[kk];
        loadA[aa ^ 1] += f * s.rev[kk];
      }
      for (i = 0; i < s.y_c.length; i++) proc[s.y_n[i]][s.k_y[i]] += Math.max(r.x[nf + i], 0);
    }
    // demand below the solver's resolution: the dual is not unique there; priced as tokenflow
    // does (clearing/rules.first_token_prices), at the marginal cost of the first token
    var firstToken = [];
    for (n = 0; n < N; n++) for (k = 0; k < K; k++) {
      if (!(st.demand_scale * s.v.base_demand[n * K + k] < DATA.demand_resolution)) continue;
      var ft = cheapestRoute(sc, st, s, mu, rho, n, k, formulation);
      prices[sc.nodes[n]][sc.workloads[k]] = ft ? ft.total + 0.0 : NaN;
      firstToken.push(sc.workloads[k] + " at " + sc.nodes[n]);
    }
    var util = {}, sat = [];
    for (a = 0; a < L; a++) {
      var u = loadA[a] / (sc.arc_capacity_gbh[a] * st.bandwidth_factor);
      util[sc.arc_ids[a]] = u;
      if (u >= 1 - SAT_TOL) sat.push(sc.arc_ids[a]);
    }
    sat.sort();
    var usedKw = [];
    for (n = 0; n < N; n++) {
      var kw = 0;
      for (k = 0; k < K; k++) kw += proc[n][k] * s.v.intensity[k];
      usedKw.push(kw);
    }
    Object.assign(out, {
      objective: objective, prices: prices, saturated_links: sat, utilization: util, how: how,
      compute_rent: Object.fromEntries(sc.nodes.map(function (x, j) { return [x, mu[j]]; })),
      congestion_rent: Object.fromEntries(sc.arc_ids.map(function (x, j) { return [x, rho[j]]; })),
      processing: proc, compute_used_kw: usedKw, first_token_priced: firstToken, n_cols: cg ? cg.lp.nCols : lp.nCols,
      n_rows: cg ? cg.lp.nRows : lp.nRows,
      // workloads split into one commodity per origin: their latency limit binds somewhere
      path_exact: cert.path_exact, path_violation: cert.violation,
      latency_binds: sc.workloads.filter(function (w, k) {
        return s.com.some(function (c) { return c[0] === k && c[1] >= 0; });
      }),
      solve_ms: performance.now() - t0,
    });
    out._lp = lp; out._r = r; out._mu = mu; out._rho = rho;
    if (cg) out.path_exact = true;
    return out;
  }

  function solve(settings) {
    return loadHighs().then(function (highs) {
      var r = solveNow(highs, settings);
      var pub = Object.assign({}, r);
      delete pub._lp; delete pub._r; delete pub._mu; delete pub._rho;
      return pub;
    });
  }

  /* The cheapest admissible route of (origin o, workload k) at rents mu ($/kWh) and rho ($/GB)
   * and its cost split (path formulation: routes within the latency limit, exact search;
   * arc formulation: inside the commodity's latency ball, as clearing/rules._arc_cheapest). */
  function cheapestRoute(sc, st, s, mu, rho, o, k, formulation) {
    var v = s.v, K = sc.workloads.length;
    if (formulation === "path") {
      var b = pricePaths(sc, st, v, k, mu, rho, true, outArcs(sc))[o];
      if (!b) return null;
      var tr0 = 0, cg0 = 0;
      b.arcs.forEach(function (a) {
        tr0 += v.fwd_gb[k] * sc.arc_cost[a] + v.rev_gb[k] * sc.arc_cost[a ^ 1];
        cg0 += v.fwd_gb[k] * Math.max(rho[a], 0) + v.rev_gb[k] * Math.max(rho[a ^ 1], 0);
      });
      return { via: sc.nodes[b.n], processing: b.proc, compute_rent: v.intensity[k] * mu[b.n], transfer: tr0,
        congestion_rent: cg0, total: b.total, arcs: b.arcs,
        path: [sc.nodes[o]].concat(b.arcs.map(function (a) { return sc.nodes[sc.av[a]]; })) };
    }
    var N = sc.nodes.length, ci = -1;
    s.com.forEach(function (c, j) { if (c[0] === k && (c[1] === -1 || c[1] === o)) ci = j; });
    var arcs = [], nodes = [];
    s.f_c.forEach(function (c, j) { if (c === ci) arcs.push(s.f_a[j]); });
    s.y_c.forEach(function (c, j) { if (c === ci) nodes.push(s.y_n[j]); });
    var len = {}, tr = {}, cg = {};
    arcs.forEach(function (a) {
      tr[a] = s.fwd[k] * sc.arc_cost[a] + s.rev[k] * sc.arc_cost[a ^ 1];
      cg[a] = s.fwd[k] * rho[a] + s.rev[k] * rho[a ^ 1];
      len[a] = tr[a] + cg[a];
    });
    // Bellman-Ford from o over the allowed arcs (non-negative lengths, tiny graph)
    var dist = new Array(N).fill(Infinity), pred = new Array(N).fill(-1);
    dist[o] = 0;
    for (var it = 0; it < N; it++) arcs.forEach(function (a) {
      var u = sc.au[a], w = sc.av[a];
      if (dist[u] + len[a] + 1e-12 < dist[w]) { dist[w] = dist[u] + len[a]; pred[w] = a; }
    });
    var best = null;
    nodes.forEach(function (n) {
      var pc = v.energy_cost[n * K + k] * st.electricity_factor + v.other_cost[n * K + k];
      var full = pc + v.intensity[k] * mu[n] + dist[n];
      if (isFinite(full) && (best === null || full < best.full - 1e-12)) best = { n: n, full: full, pc: pc };
    });
    if (!best) return null;
    var path = [], t = 0, c = 0, x = best.n;
    while (x !== o && pred[x] >= 0) { var a = pred[x]; path.unshift(a); t += tr[a]; c += cg[a]; x = sc.au[a]; }
    return { via: sc.nodes[best.n], processing: best.pc, compute_rent: v.intensity[k] * mu[best.n],
      transfer: t, congestion_rent: c, total: best.full, arcs: path,
      path: [sc.nodes[o]].concat(path.map(function (a) { return sc.nodes[sc.av[a]]; })) };
  }

  /* Price decomposition of (node o, workload k) of a result of _solveNow: the cheapest route
   * at the solved rents; at an optimum the price equals its full cost. */
  function decompose(sc, res, o, k) {
    return cheapestRoute(sc, res.settings, res._lp.s, res._mu, res._rho, o, k, res.formulation);
  }

  window.tokenflowLive = { solve: solve, ready: function () { return loadHighs().then(function () { return true; }); },
    data: DATA, _solveNow: function (settings) { return loadHighs().then(function (h) { return solveNow(h, settings); }); },
    decompose: decompose, validate: function (s) { return validate(s).st; },
    fmt: fmt, pyRepr: pyRepr };
})();
