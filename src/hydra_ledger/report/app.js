// hydra-ledger report: plain JavaScript, no libraries, no network. Data is columnar JSON
// in #ledger-data; the table renders one page of rows at a time so that thousands of runs
// stay responsive; plots draw on <canvas> (many lines) or build small SVGs (few points).
"use strict";
(function () {
  var D = JSON.parse(document.getElementById("ledger-data").textContent);
  var N = D.count, COLS = D.columns, KIND = D.kinds, DATA = D.data;
  var PAGE = 100;
  var state = { sortCol: "started_at", sortDir: -1, filter: "", page: 0, selected: null, rows: [] };
  var PALETTE = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e", "#9498a0"];

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  var SVGNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVGNS, tag);
    for (var k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(+v.toPrecision(6));
    if (typeof v === "boolean") return v ? "true" : "false";
    if (Array.isArray(v)) return v.map(fmt).join(", ");
    if (typeof v === "object") return JSON.stringify(v);
    var s = String(v);
    if (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(s)) return s.slice(0, 19).replace("T", " ");
    return s;
  }
  function tick(v) { return typeof v === "number" ? String(+v.toPrecision(3)) : fmt(v); }
  function short(name) { return name.replace(/^(cfg|summary|choice)\./, ""); }

  // -- table ------------------------------------------------------------------------------
  var SHOWN = ["run_id", "status", "started_at", "duration_s"].filter(function (c) { return COLS.indexOf(c) >= 0; })
    .concat(D.swept, D.metrics, COLS.indexOf("tags") >= 0 ? ["tags"] : []);
  var searchText = null;  // built on first text filter: one lowercase string per run

  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;   // missing values last, whatever the direction
    if (b === null || b === undefined) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a) < String(b) ? -1 : 1;
  }

  function parseFilter(text) {
    var conds = [], words = [], error = "";
    text.trim().split(/\s+/).forEach(function (tok) {
      if (!tok) return;
      var m = /^([A-Za-z_][\w.\/-]*)(<=|>=|!=|=|<|>|~)(.*)$/.exec(tok);
      if (!m) { words.push(tok.toLowerCase()); return; }
      var col = m[1];
      if (COLS.indexOf(col) < 0) {
        var alt = ["cfg.", "summary.", "choice."].map(function (p) { return p + col; })
          .filter(function (c) { return COLS.indexOf(c) >= 0; });
        if (alt.length) col = alt[0]; else { error = "unknown column " + m[1]; return; }
      }
      conds.push({ col: col, op: m[2], value: m[3] });
    });
    return { conds: conds, words: words, error: error };
  }

  function test(cond, v) {
    var want = cond.value, num = parseFloat(want);
    if (cond.op === "~") return fmt(v).toLowerCase().indexOf(want.toLowerCase()) >= 0;
    if (cond.op === "=" || cond.op === "!=") {
      var eq = isNum(v) && !isNaN(num) ? v === num : fmt(v) === want;
      if (Array.isArray(v)) eq = v.map(fmt).indexOf(want) >= 0;
      return cond.op === "=" ? eq : !eq;
    }
    if (!isNum(v) || isNaN(num)) return false;
    return cond.op === "<" ? v < num : cond.op === ">" ? v > num : cond.op === "<=" ? v <= num : v >= num;
  }

  function applyFilter() {
    var f = parseFilter(state.filter);
    $("filter-error").textContent = f.error;
    if (f.words.length && !searchText) {
      searchText = new Array(N);
      for (var i = 0; i < N; i++) {
        var parts = [];
        for (var c = 0; c < COLS.length; c++) parts.push(fmt(DATA[COLS[c]][i]));
        searchText[i] = parts.join(" ").toLowerCase();
      }
    }
    var rows = [];
    outer: for (var r = 0; r < N; r++) {
      for (var k = 0; k < f.conds.length; k++) if (!test(f.conds[k], DATA[f.conds[k].col][r])) continue outer;
      for (var w = 0; w < f.words.length; w++) if (searchText[r].indexOf(f.words[w]) < 0) continue outer;
      rows.push(r);
    }
    var col = DATA[state.sortCol], dir = state.sortDir;
    if (col) rows.sort(function (a, b) {
      var va = col[a], vb = col[b];
      if (va === null || va === undefined || vb === null || vb === undefined) return compare(va, vb) || a - b;
      return dir * compare(va, vb) || a - b;
    });
    state.rows = rows;
    state.page = Math.min(state.page, Math.max(0, Math.ceil(rows.length / PAGE) - 1));
  }

  function renderHead() {
    var tr = el("tr");
    SHOWN.forEach(function (c) {
      var th = el("th", { "data-col": c, title: c }, short(c));
      if (c === state.sortCol) th.className = state.sortDir > 0 ? "asc" : "desc";
      th.addEventListener("click", function () {
        if (state.sortCol === c) state.sortDir = -state.sortDir; else { state.sortCol = c; state.sortDir = 1; }
        refresh(false);
      });
      tr.appendChild(th);
    });
    var thead = $("runs").tHead;
    thead.textContent = "";
    thead.appendChild(tr);
  }

  function renderBody() {
    var tbody = $("runs").tBodies[0];
    var frag = document.createDocumentFragment();
    var start = state.page * PAGE, stop = Math.min(state.rows.length, start + PAGE);
    for (var i = start; i < stop; i++) {
      var r = state.rows[i];
      var tr = el("tr", { "data-row": r });
      if (r === state.selected) tr.className = "selected";
      for (var c = 0; c < SHOWN.length; c++) {
        var name = SHOWN[c], v = DATA[name][r];
        var td = el("td", {}, name === "duration_s" && isNum(v) ? v.toFixed(1) + "s" : fmt(v));
        if (KIND[name] === "number") td.className = "num";
        if (name === "status") td.className = "s-" + v;
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    tbody.textContent = "";
    tbody.appendChild(frag);
    var pages = Math.max(1, Math.ceil(state.rows.length / PAGE));
    $("page").textContent = "page " + (state.page + 1) + " of " + pages;
    $("count").textContent = state.rows.length === N ? N + " runs" : state.rows.length + " of " + N + " runs";
  }

  function refresh(plots) {
    applyFilter();
    renderHead();
    renderBody();
    if (plots !== false) drawPlots();
  }

  // -- details ----------------------------------------------------------------------------
  function select(r) {
    state.selected = r;
    renderBody();
    var box = $("details");
    box.textContent = "";
    var table = el("table");
    COLS.forEach(function (c) {
      var v = DATA[c][r];
      if (v === null || v === undefined || (Array.isArray(v) && !v.length)) return;
      var tr = el("tr");
      tr.appendChild(el("td", {}, c));
      var td = el("td");
      td.appendChild(el("pre", {}, fmt(v)));
      tr.appendChild(td);
      table.appendChild(tr);
    });
    box.appendChild(table);
    drawCurves();
  }

  // -- plots ------------------------------------------------------------------------------
  function fillSelect(id, options, chosen, none) {
    var s = $(id);
    s.textContent = "";
    if (none) s.appendChild(el("option", { value: "" }, none));
    options.forEach(function (o) { s.appendChild(el("option", { value: o }, short(o))); });
    if (chosen !== undefined && chosen !== null) s.value = chosen;
    s.addEventListener("change", drawPlots);
  }

  function axisOf(name, rows) {
    // numeric keys scale linearly; text keys are evenly spaced categories (sorted)
    var values = rows.map(function (r) { return DATA[name][r]; });
    var present = values.filter(function (v) { return v !== null && v !== undefined; });
    var numeric = present.length > 0 && present.every(isNum);
    if (numeric) {
      var lo = Math.min.apply(null, present), hi = Math.max.apply(null, present);
      var uniq = Array.from(new Set(present)).sort(function (a, b) { return a - b; });
      var log = lo > 0 && hi / lo >= 100;  // e.g. learning rates 1e-4 ... 1e-1
      var f = log ? Math.log : function (v) { return v; };
      var pos = lo === hi ? function (v) { return isNum(v) ? 0.5 : null; }
                          : function (v) { return isNum(v) ? (f(v) - f(lo)) / (f(hi) - f(lo)) : null; };
      var shown = uniq.length <= 8 ? uniq : [lo, hi];
      return { name: name, numeric: true, pos: pos,
               ticks: shown.map(function (v) { return [pos(v), tick(v)]; }) };
    }
    var cats = Array.from(new Set(present.map(fmt))).sort();
    var n = Math.max(1, cats.length - 1);
    return { name: name, numeric: false, cats: cats,
             pos: function (v) { var i = cats.indexOf(fmt(v)); return i < 0 ? null : (cats.length === 1 ? 0.5 : i / n); },
             ticks: cats.slice(0, 12).map(function (c, i) { return [cats.length === 1 ? 0.5 : i / n, c]; }) };
  }

  function colourScale(t) {
    // blue (low) -> orange (high); t in [0, 1]
    var a = [66, 105, 208], b = [239, 177, 24];
    return "rgb(" + a.map(function (x, i) { return Math.round(x + (b[i] - x) * t); }).join(",") + ")";
  }

  function drawParcoords() {
    var canvas = $("parcoords"), ctx = canvas.getContext("2d");
    var W = canvas.width, H = canvas.height, pad = { l: 50, r: 50, t: 30, b: 30 };
    ctx.clearRect(0, 0, W, H);
    var metric = $("pc-metric").value;
    var keys = D.swept.slice(0, 12).concat(metric ? [metric] : []);
    if (keys.length < 2) {
      ctx.fillStyle = "#666"; ctx.font = "13px sans-serif";
      ctx.fillText("Fewer than two swept keys: nothing to draw.", pad.l, H / 2);
      return;
    }
    var rows = state.rows;
    var axes = keys.map(function (k) { return axisOf(k, rows); });
    var step = (W - pad.l - pad.r) / (keys.length - 1), h = H - pad.t - pad.b;
    var mAxis = metric ? axes[axes.length - 1] : null;
    ctx.lineWidth = 1;
    ctx.globalAlpha = rows.length > 1000 ? 0.15 : rows.length > 100 ? 0.35 : 0.8;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      var t = mAxis ? mAxis.pos(DATA[metric][r]) : null;
      ctx.strokeStyle = t === null ? "#bbb" : colourScale(t);
      ctx.beginPath();
      var started = false;
      for (var a = 0; a < axes.length; a++) {
        var p = axes[a].pos(DATA[keys[a]][r]);
        if (p === null) { started = false; continue; }
        var x = pad.l + a * step, y = pad.t + h - p * h;
        if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
      }
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    ctx.fillStyle = "#333"; ctx.strokeStyle = "#555"; ctx.font = "11px sans-serif"; ctx.textAlign = "center";
    axes.forEach(function (axis, a) {
      var x = pad.l + a * step;
      ctx.beginPath(); ctx.moveTo(x, pad.t); ctx.lineTo(x, pad.t + h); ctx.stroke();
      ctx.fillText(short(axis.name), x, pad.t - 12);
      axis.ticks.forEach(function (tk) { ctx.fillText(tk[1], x, pad.t + h - tk[0] * h + 4); });
    });
  }

  function drawMetricVsKey() {
    var box = $("metric-vs-key");
    box.textContent = "";
    var metric = $("mk-metric").value, key = $("mk-key").value, series = $("mk-series").value;
    if (!metric || !key) { box.appendChild(el("p", { "class": "note" }, "Needs a swept key and a numeric summary value.")); return; }
    var rows = state.rows.filter(function (r) { return isNum(DATA[metric][r]); });
    var axis = axisOf(key, rows);
    var groups = {};  // series -> x label -> values
    rows.forEach(function (r) {
      var s = series ? fmt(DATA[series][r]) : "all";
      var x = fmt(DATA[key][r]);
      ((groups[s] = groups[s] || {})[x] = groups[s][x] || { raw: DATA[key][r], values: [] }).values.push(DATA[metric][r]);
    });
    var stats = [], lo = Infinity, hi = -Infinity;
    Object.keys(groups).sort().forEach(function (s, si) {
      var pts = Object.keys(groups[s]).map(function (x) {
        var g = groups[s][x], n = g.values.length;
        var mean = g.values.reduce(function (a, b) { return a + b; }, 0) / n;
        var sd = n > 1 ? Math.sqrt(g.values.reduce(function (a, b) { return a + (b - mean) * (b - mean); }, 0) / (n - 1)) : 0;
        lo = Math.min(lo, mean - sd); hi = Math.max(hi, mean + sd);
        return { x: axis.pos(g.raw), label: x, mean: mean, sd: sd, n: n };
      }).filter(function (p) { return p.x !== null; }).sort(function (a, b) { return a.x - b.x; });
      stats.push({ name: s, colour: PALETTE[si % PALETTE.length], points: pts });
    });
    if (!isFinite(lo)) { box.appendChild(el("p", { "class": "note" }, "No values to plot.")); return; }
    if (lo === hi) { lo -= 1; hi += 1; }
    var W = 540, H = 300, pad = { l: 60, r: 110, t: 12, b: 40 }, w = W - pad.l - pad.r, h = H - pad.t - pad.b;
    function X(p) { return pad.l + p * w; }
    function Y(v) { return pad.t + h - (v - lo) / (hi - lo) * h; }
    var root = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, id: "mvk-svg" });
    root.appendChild(svg("line", { x1: pad.l, y1: pad.t + h, x2: pad.l + w, y2: pad.t + h, stroke: "#888" }));
    root.appendChild(svg("line", { x1: pad.l, y1: pad.t, x2: pad.l, y2: pad.t + h, stroke: "#888" }));
    axis.ticks.forEach(function (tk) {
      root.appendChild(svg("text", { x: X(tk[0]), y: pad.t + h + 14, "text-anchor": "middle" }, tk[1]));
    });
    [lo, (lo + hi) / 2, hi].forEach(function (v) {
      root.appendChild(svg("text", { x: pad.l - 6, y: Y(v) + 4, "text-anchor": "end" }, tick(v)));
    });
    root.appendChild(svg("text", { x: pad.l + w / 2, y: H - 6, "text-anchor": "middle" }, short(key)));
    root.appendChild(svg("text", { x: 12, y: pad.t + h / 2, transform: "rotate(-90 12 " + (pad.t + h / 2) + ")",
                                   "text-anchor": "middle" }, short(metric)));
    stats.forEach(function (s, si) {
      var d = s.points.map(function (p, i) { return (i ? "L" : "M") + X(p.x).toFixed(1) + " " + Y(p.mean).toFixed(1); }).join(" ");
      if (s.points.length > 1) root.appendChild(svg("path", { d: d, fill: "none", stroke: s.colour, "stroke-width": 1.5 }));
      s.points.forEach(function (p) {
        root.appendChild(svg("line", { x1: X(p.x), x2: X(p.x), y1: Y(p.mean - p.sd), y2: Y(p.mean + p.sd), stroke: s.colour }));
        var dot = svg("circle", { cx: X(p.x), cy: Y(p.mean), r: 3.5, fill: s.colour, "class": "mean" });
        dot.appendChild(svg("title", {}, s.name + " " + short(key) + "=" + p.label + ": " + fmt(p.mean) + " ± " + fmt(p.sd) + " (n=" + p.n + ")"));
        root.appendChild(dot);
      });
      if (series) {
        root.appendChild(svg("rect", { x: W - pad.r + 10, y: pad.t + si * 16, width: 10, height: 10, fill: s.colour }));
        root.appendChild(svg("text", { x: W - pad.r + 24, y: pad.t + si * 16 + 9 }, s.name));
      }
    });
    box.appendChild(root);
  }

  var CURVE_NAMES = (function () {
    var names = {};
    for (var id in D.curves) for (var m in D.curves[id]) names[m] = 1;
    return Object.keys(names).sort();
  })();

  function drawCurves() {
    var canvas = $("curves"), ctx = canvas.getContext("2d");
    var W = canvas.width, H = canvas.height, pad = { l: 56, r: 12, t: 12, b: 30 };
    ctx.clearRect(0, 0, W, H);
    var metric = $("curve-metric").value;
    var ids = DATA.run_id, selectedId = state.selected === null ? null : ids[state.selected];
    var drawn = [];
    for (var i = 0; i < state.rows.length && drawn.length < 400; i++) {
      var c = D.curves[ids[state.rows[i]]];
      if (c && c[metric]) drawn.push([ids[state.rows[i]], c[metric]]);
    }
    drawn = drawn.filter(function (d) { return d[0] !== selectedId; });  // the selected run is drawn last, on top
    if (selectedId && D.curves[selectedId] && D.curves[selectedId][metric]) drawn.push([selectedId, D.curves[selectedId][metric]]);
    $("curve-note").textContent = drawn.length ? drawn.length + " curves" + (state.rows.length > 400 ? " (the first 400 listed)" : "") : "No per-step metrics logged (hydra_ledger.log_metrics).";
    if (!drawn.length) return;
    var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    drawn.forEach(function (d) { d[1].forEach(function (p) {
      x0 = Math.min(x0, p[0]); x1 = Math.max(x1, p[0]); y0 = Math.min(y0, p[1]); y1 = Math.max(y1, p[1]);
    }); });
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    if (y0 === y1) { y0 -= 1; y1 += 1; }
    var w = W - pad.l - pad.r, h = H - pad.t - pad.b;
    function X(v) { return pad.l + (v - x0) / (x1 - x0) * w; }
    function Y(v) { return pad.t + h - (v - y0) / (y1 - y0) * h; }
    ctx.strokeStyle = "#888"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(pad.l, pad.t); ctx.lineTo(pad.l, pad.t + h); ctx.lineTo(pad.l + w, pad.t + h); ctx.stroke();
    ctx.fillStyle = "#333"; ctx.font = "11px sans-serif";
    ctx.textAlign = "right"; ctx.fillText(tick(y1), pad.l - 4, pad.t + 8); ctx.fillText(tick(y0), pad.l - 4, pad.t + h);
    ctx.textAlign = "center"; ctx.fillText(fmt(x0), pad.l, H - 12); ctx.fillText(fmt(x1), pad.l + w, H - 12);
    ctx.fillText("step", pad.l + w / 2, H - 4);
    drawn.forEach(function (d, k) {
      var chosen = d[0] === selectedId;
      ctx.strokeStyle = chosen ? "#d62728" : PALETTE[k % PALETTE.length];
      ctx.globalAlpha = chosen ? 1 : drawn.length > 50 ? 0.3 : 0.8;
      ctx.lineWidth = chosen ? 2.5 : 1;
      ctx.beginPath();
      d[1].forEach(function (p, i) { if (i) ctx.lineTo(X(p[0]), Y(p[1])); else ctx.moveTo(X(p[0]), Y(p[1])); });
      ctx.stroke();
    });
    ctx.globalAlpha = 1;
  }

  function drawPlots() {
    drawParcoords();
    drawMetricVsKey();
    drawCurves();
  }

  // -- start ------------------------------------------------------------------------------
  $("title").textContent = D.title;
  var seedLike = D.swept.filter(function (k) { return /seed/i.test(k); });
  var keys = D.swept.filter(function (k) { return seedLike.indexOf(k) < 0; });
  fillSelect("pc-metric", D.metrics, D.metrics[0], "(none)");
  fillSelect("mk-metric", D.metrics, D.metrics[0]);
  var numericKeys = keys.filter(function (k) { return DATA[k].every(function (v) { return v === null || isNum(v); }); });
  var xKey = numericKeys[0] || keys[0] || D.swept[0];
  var seriesKey = keys.filter(function (k) { return k !== xKey && numericKeys.indexOf(k) < 0; })[0] || "";
  fillSelect("mk-key", D.swept, xKey);
  fillSelect("mk-series", D.swept, seriesKey, "(none)");
  fillSelect("curve-metric", CURVE_NAMES, CURVE_NAMES[0]);
  var timer = null;
  $("filter").addEventListener("input", function (e) {
    clearTimeout(timer);
    var value = e.target.value;
    timer = setTimeout(function () { state.filter = value; state.page = 0; refresh(); }, 120);
  });
  $("prev").addEventListener("click", function () { if (state.page > 0) { state.page--; renderBody(); } });
  $("next").addEventListener("click", function () {
    if ((state.page + 1) * PAGE < state.rows.length) { state.page++; renderBody(); }
  });
  $("runs").tBodies[0].addEventListener("click", function (e) {
    var tr = e.target.closest("tr");
    if (tr) select(+tr.getAttribute("data-row"));
  });
  refresh();
  document.body.setAttribute("data-ready", "1");
})();
