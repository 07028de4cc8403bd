// hydra-ledger report: plain JavaScript, no libraries, no network. Data is columnar JSON
// in #ledger-data; the table renders one page of rows at a time so that thousands of runs
// stay responsive; plots draw on <canvas> (many lines) or build small SVGs (few points).
"use strict";
(function () {
  var D = JSON.parse(document.getElementById("ledger-data").textContent);
  var N = D.count, COLS = D.columns, KIND = D.kinds, DATA = D.data;
  var PAGE = 100;
  var state = { sortCol: "started_at", sortDir: -1, filter: "", page: 0, selected: null, rows: [], showFolded: false };
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
  // What was swept leads: status, the swept keys, the summary, then the rest. The config keys
  // that vary only because a group choice changed (folded) are shown on request.
  var SWEPT = D.swept, FOLDED = D.folded || [];
  var SUMMARY = COLS.filter(function (c) { return c.indexOf("summary.") === 0; });
  function shownColumns() {
    var all = ["status"].concat(SWEPT, state.showFolded ? FOLDED : [], SUMMARY,
                                ["run_id", "started_at", "duration_s", "tags"]);
    return all.filter(function (c, i) { return COLS.indexOf(c) >= 0 && all.indexOf(c) === i; });
  }
  var SHOWN = shownColumns();
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
  function sizeCanvas(canvas, W, H) {
    // drawn in CSS pixels, sharp on high-density screens
    var dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    canvas.style.width = W + "px"; canvas.style.height = H + "px";
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    return ctx;
  }

  function fitText(node, text, max, hover) {
    // the longest start of text (with an ellipsis) no wider than max pixels, measured; on hover, the whole
    node.textContent = text;
    if (max > 0 && node.getComputedTextLength() > max) {
      var lo = 0, hi = text.length - 1;
      while (lo < hi) {
        var mid = (lo + hi + 1) >> 1;
        node.textContent = text.slice(0, mid) + "\u2026";
        if (node.getComputedTextLength() <= max) lo = mid; else hi = mid - 1;
      }
      node.textContent = lo ? text.slice(0, lo) + "\u2026" : "";
    } else if (max <= 0) {
      node.textContent = "";
    }
    node.appendChild(svg("title", {}, hover || text));
  }

  function distinct(name) {
    var seen = {};
    DATA[name].forEach(function (v) { seen[fmt(v)] = 1; });
    return Object.keys(seen).length;
  }

  function runLabel(r) {
    var parts = SWEPT.map(function (k) { return short(k) + "=" + fmt(DATA[k][r]); });
    return parts.length ? parts.join(" ") : String(DATA.run_id[r]);
  }

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

  var MAX_AXES = 8;  // swept keys drawn: a handful; the metric makes one more

  function drawParcoords() {
    // lines on a canvas (thousands of runs); axes and labels in an SVG layer over it, each label
    // measured and cut to its axis' slot, so that no two labels overlap
    var canvas = $("parcoords"), layer = $("pc-axes");
    var W = Math.max(320, $("pc-box").clientWidth), H = 340, pad = { t: 40, b: 14 };
    var ctx = sizeCanvas(canvas, W, H);
    layer.setAttribute("width", W); layer.setAttribute("height", H);
    layer.textContent = "";
    var metric = $("pc-metric").value;
    var keys = SWEPT.slice(0, MAX_AXES).concat(metric ? [metric] : []);
    $("pc-note").textContent = SWEPT.length > MAX_AXES ? "The first " + MAX_AXES + " of " + SWEPT.length +
      " swept keys." : "";
    if (keys.length < 2) {
      layer.appendChild(svg("text", { x: 12, y: H / 2 }, "Fewer than two swept keys: nothing to draw."));
      return;
    }
    var rows = state.rows;
    var axes = keys.map(function (k) { return axisOf(k, rows); });
    var slot = W / keys.length, h = H - pad.t - pad.b;
    function X(a) { return slot * (a + 0.5); }
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
        var x = X(a), y = pad.t + h - p * h;
        if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
      }
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    axes.forEach(function (axis, a) {
      var x = X(a), g = svg("g", { "class": "axis", "data-key": axis.name });
      layer.appendChild(g);
      g.appendChild(svg("line", { x1: x, y1: pad.t, x2: x, y2: pad.t + h }));
      var title = svg("text", { x: x, y: 16, "text-anchor": "middle", "class": "title" });
      g.appendChild(title);
      fitText(title, short(axis.name), slot - 12, axis.name);
      // tick labels right of the axis, within its slot; one per 13 px at most
      var ticks = axis.ticks.map(function (tk) { return [pad.t + h - tk[0] * h, tk[1]]; })
        .sort(function (p, q) { return p[0] - q[0]; });
      var last = -Infinity;
      ticks.forEach(function (tk) {
        if (tk[0] - last < 13) return;
        last = tk[0];
        var label = svg("text", { x: x + 5, y: tk[0] + 4, "class": "tick" });
        g.appendChild(label);
        fitText(label, String(tk[1]), slot - 16);
      });
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
    function X(p) { return pad.l + 12 + p * (w - 24); }  // inset: the first value off the y axis and its labels
    function Y(v) { return pad.t + h - (v - lo) / (hi - lo) * h; }
    var root = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, id: "mvk-svg" });
    root.appendChild(svg("line", { x1: pad.l, y1: pad.t + h, x2: pad.l + w, y2: pad.t + h, stroke: "#888" }));
    root.appendChild(svg("line", { x1: pad.l, y1: pad.t, x2: pad.l, y2: pad.t + h, stroke: "#888" }));
    box.appendChild(root);  // in the page, so that labels can be measured
    var right = -Infinity;  // tick labels left to right; one that would touch the previous is left out
    axis.ticks.forEach(function (tk) {
      var label = svg("text", { x: X(tk[0]), y: pad.t + h + 14, "text-anchor": "middle" }, tk[1]);
      root.appendChild(label);
      var half = label.getComputedTextLength() / 2;
      if (X(tk[0]) - half < right + 4) root.removeChild(label); else right = X(tk[0]) + half;
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
  }

  var CURVE_NAMES = (function () {
    var names = {};
    for (var id in D.curves) for (var m in D.curves[id]) names[m] = 1;
    return Object.keys(names).sort();
  })();

  var HOVER = [];  // the drawn curves in pixels: [{row, colour, points: [[x, y, step, value]]}]

  function drawCurves() {
    var canvas = $("curves");
    var W = Math.max(280, $("curve-box").clientWidth), H = 320, pad = { l: 56, r: 12, t: 12, b: 30 };
    var ctx = sizeCanvas(canvas, W, H);
    $("curve-tip").hidden = true;
    $("curve-legend").textContent = "";
    HOVER = [];
    var metric = $("curve-metric").value, by = $("curve-colour").value;
    var ids = DATA.run_id, selectedId = state.selected === null ? null : ids[state.selected];
    var drawn = [];
    for (var i = 0; i < state.rows.length && drawn.length < 400; i++) {
      var c = D.curves[ids[state.rows[i]]];
      if (c && c[metric] && ids[state.rows[i]] !== selectedId) drawn.push({ row: state.rows[i], points: c[metric] });
    }
    var more = state.rows.length > 400;
    // the selected run is drawn last, on top
    if (selectedId && D.curves[selectedId] && D.curves[selectedId][metric]) {
      drawn.push({ row: state.selected, points: D.curves[selectedId][metric], selected: true });
    }
    $("curve-note").textContent = drawn.length ? drawn.length + " curves" + (more ? " (the first 400 listed)" : "") : "No per-step metrics logged (hydra_ledger.log_metrics).";
    if (!drawn.length) return;
    // colours: one per value of the colour-by key (with a legend entry each), or one per run
    var values = [];
    if (by) {
      drawn.forEach(function (d) { var v = fmt(DATA[by][d.row]); if (values.indexOf(v) < 0) values.push(v); });
      values.sort();
    }
    drawn.forEach(function (d, k) {
      d.colour = d.selected ? "#d62728" : PALETTE[(by ? values.indexOf(fmt(DATA[by][d.row])) : k) % PALETTE.length];
    });
    var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    drawn.forEach(function (d) { d.points.forEach(function (p) {
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
    drawn.forEach(function (d) {
      ctx.strokeStyle = d.colour;
      ctx.globalAlpha = d.selected ? 1 : drawn.length > 50 ? 0.3 : 0.8;
      ctx.lineWidth = d.selected ? 2.5 : 1;
      ctx.beginPath();
      var px = d.points.map(function (p) { return [X(p[0]), Y(p[1]), p[0], p[1]]; });
      px.forEach(function (p, i) { if (i) ctx.lineTo(p[0], p[1]); else ctx.moveTo(p[0], p[1]); });
      ctx.stroke();
      HOVER.push({ row: d.row, colour: d.colour, points: px });
    });
    ctx.globalAlpha = 1;
    var items = by ? values.map(function (v, k) { return [PALETTE[k % PALETTE.length], short(by) + "=" + v]; })
                   : drawn.filter(function (d) { return !d.selected; }).slice(0, 12)
                       .map(function (d) { return [d.colour, runLabel(d.row)]; });
    var runs = drawn.filter(function (d) { return !d.selected; }).length;
    if (!by && runs > 12) items.push(["transparent", "and " + (runs - 12) + " more runs"]);
    if (selectedId !== null && drawn[drawn.length - 1].selected) items.push(["#d62728", "selected: " + runLabel(state.selected)]);
    var legend = $("curve-legend");
    items.forEach(function (it) {
      var item = el("span", { "class": "legend-item" });
      var swatch = el("i");
      swatch.style.background = it[0];
      item.appendChild(swatch);
      item.appendChild(el("span", {}, it[1]));
      legend.appendChild(item);
    });
  }

  function hoverCurves(e) {
    // the point nearest the pointer: its run, step and value
    var tip = $("curve-tip"), box = $("curves").getBoundingClientRect();
    var mx = e.clientX - box.left, my = e.clientY - box.top, best = null, bestD = Infinity;
    HOVER.forEach(function (c) {
      c.points.forEach(function (p) {
        var d = (p[0] - mx) * (p[0] - mx) + (p[1] - my) * (p[1] - my);
        if (d < bestD) { bestD = d; best = [c, p]; }
      });
    });
    if (!best) { tip.hidden = true; return; }
    var c = best[0], p = best[1];
    tip.textContent = "";
    var swatch = el("i");
    swatch.style.cssText = "display:inline-block;width:10px;height:10px;margin-right:5px;background:" + c.colour;
    tip.appendChild(swatch);
    tip.appendChild(document.createTextNode(DATA.run_id[c.row] + "  " + runLabel(c.row) + "  step " + fmt(p[2]) +
                                            ": " + $("curve-metric").value + " = " + fmt(p[3])));
    tip.hidden = false;
    var left = p[0] + 12;
    if (left + tip.offsetWidth > box.width) left = Math.max(0, p[0] - 12 - tip.offsetWidth);
    tip.style.left = left + "px";
    tip.style.top = Math.max(0, p[1] - tip.offsetHeight - 6) + "px";
  }

  // importance: computed when the report was written (hydra_ledger.load.importance), over all its runs
  var IMP = D.importance || { note: "", metrics: {} };

  function drawImportance() {
    var table = $("imp-table"), note = $("imp-note"), metric = $("imp-metric").value;
    table.textContent = "";
    var r = IMP.metrics[metric];
    if (!r) { note.textContent = IMP.note || ""; return; }
    if (r.error) { note.textContent = r.error; return; }
    r.importances.forEach(function (row) {
      var tr = el("tr"), bar = el("td", { "class": "bar" }), fill = el("i");
      fill.style.width = (Math.max(0, Math.min(1, row.importance)) * 100).toFixed(1) + "%";
      bar.appendChild(fill);
      tr.appendChild(el("td", { title: row.key }, short(row.key)));
      tr.appendChild(el("td", { "class": "num" }, row.importance.toFixed(3)));
      tr.appendChild(bar);
      table.appendChild(tr);
    });
    note.textContent = (r.label ? r.label + " importance" : "Importance") + " over " + r.runs + " of " + r.total +
      " runs (completed, with a finite " + short(metric) + ")" + (r.note ? "; " + r.note : "") +
      (r.constant.length ? "; constant in these runs: " + r.constant.map(short).join(", ") : "");
  }

  function drawPlots() {
    drawParcoords();
    drawMetricVsKey();
    drawCurves();
    drawImportance();
  }

  // -- start ------------------------------------------------------------------------------
  $("title").textContent = D.title;
  // metric vs key: x is the swept key with the most values (not a seed: seeds are averaged
  // over), numeric first; the series another swept key, with the fewest values
  var keys = SWEPT.filter(function (k) { return !/seed/i.test(k); });
  var numeric = function (k) { return DATA[k].every(function (v) { return v === null || isNum(v); }); };
  var byValues = keys.slice().sort(function (a, b) {
    return distinct(b) - distinct(a) || numeric(b) - numeric(a) || keys.indexOf(a) - keys.indexOf(b);
  });
  var xKey = byValues[0] || SWEPT[0];
  var seriesKey = keys.filter(function (k) { return k !== xKey && distinct(k) <= PALETTE.length; })
    .sort(function (a, b) { return distinct(a) - distinct(b) || keys.indexOf(a) - keys.indexOf(b); })[0] || "";
  fillSelect("pc-metric", D.metrics, D.metrics[0], "(none)");
  fillSelect("mk-metric", D.metrics, D.metrics[0]);
  fillSelect("mk-key", SWEPT.concat(FOLDED), xKey);
  fillSelect("mk-series", SWEPT.concat(FOLDED), seriesKey, "(none)");
  fillSelect("curve-colour", SWEPT.concat(FOLDED), seriesKey || (xKey && distinct(xKey) <= PALETTE.length ? xKey : ""),
             "(each run)");
  fillSelect("curve-metric", CURVE_NAMES, CURVE_NAMES[0]);
  var IMP_METRICS = Object.keys(IMP.metrics);
  fillSelect("imp-metric", IMP_METRICS, IMP_METRICS[0]);
  $("imp-choose").hidden = !IMP_METRICS.length;
  $("curves").addEventListener("mousemove", hoverCurves);
  $("curves").addEventListener("mouseleave", function () { $("curve-tip").hidden = true; });
  if (FOLDED.length) {
    $("folded-label").textContent = "also show the " + FOLDED.length + " config keys that vary but were not swept";
    $("show-folded").addEventListener("change", function (e) {
      state.showFolded = e.target.checked;
      SHOWN = shownColumns();
      renderHead();
      renderBody();
    });
  } else {
    $("folded-toggle").hidden = true;
  }
  var resized = null;
  window.addEventListener("resize", function () { clearTimeout(resized); resized = setTimeout(drawPlots, 150); });
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
