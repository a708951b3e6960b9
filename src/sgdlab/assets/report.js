/* sgdlab report.html: the curve explorer (uPlot) and sortable, filterable tables.
   Reads the study's histories from <script id="sgdlab-data" type="application/json">. */
(function () {
  "use strict";
  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"];
  var AXES = ["cost", "ce_outside", "activation", "output", "init", "momentum", "l2"];
  var PANEL_AXES = ["cost", "ce_outside", "output", "momentum", "l2", "activation"];
  var METRICS = {val_acc: "validation accuracy", train_acc: "training accuracy", train_loss: "training loss"};

  function uniq(xs) { var s = []; xs.forEach(function (x) { if (s.indexOf(x) < 0) s.push(x); }); return s; }
  function cellKey(r) { return [r.mode, r.cost, r.ce_outside, r.activation, r.output, r.init, r.momentum, r.l2].join("|"); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function valueText(axis, v) {
    if (axis === "output") return v === "same" ? "out = hidden" : v + " out";
    if (axis === "momentum") return "m " + v;
    if (axis === "l2") return "l2 " + v;
    return String(v);
  }

  function explorer(root, D) {
    var runs = D.runs || [];
    if (!runs.length) return;
    var selected = {}, best = {};
    (D.cells || []).forEach(function (c) { selected[cellKey(c)] = c.selected; best[cellKey(c)] = c.best; });
    var pickers = {};
    var controls = el("div", {"class": "pickers"});
    function picker(name, label, options) {
      var wrap = el("label", {}, label + " ");
      var sel = el("select", {"id": "pick-" + name, "data-axis": name});
      options.forEach(function (o) { sel.appendChild(el("option", {"value": String(o[0])}, o[1])); });
      sel.addEventListener("change", render);
      wrap.appendChild(sel);
      controls.appendChild(wrap);
      pickers[name] = sel;
    }
    var modes = uniq(runs.map(function (r) { return r.mode; }));
    picker("mode", "mode", modes.map(function (m) { return [m, m]; }));
    AXES.forEach(function (a) {
      var vals = uniq(runs.map(function (r) { return r[a]; }));
      if (vals.length > 1) picker(a, a, [["*", "all"]].concat(vals.map(function (v) { return [v, valueText(a, v)]; })));
    });
    var lrs = uniq(runs.map(function (r) { return r.lr; })).sort(function (a, b) { return b - a; });
    picker("lr", "lr", [["selected", "selected per cell"]].concat(lrs.map(function (v) { return [v, String(v)]; })));
    var seeds = uniq(runs.map(function (r) { return r.seed; })).sort(function (a, b) { return a - b; });
    picker("seed", "seed", [["mean", "mean over seeds"]].concat(seeds.map(function (v) { return [v, String(v)]; })));
    picker("metric", "metric", Object.keys(METRICS).map(function (k) { return [k, METRICS[k]]; }));
    root.appendChild(controls);
    var grid = el("div", {"class": "multiples", "id": "explorer-panels"});
    root.appendChild(grid);
    var plots = [], renders = 0;

    function render() {
      plots.forEach(function (p) { p.destroy(); });
      plots = [];
      grid.innerHTML = "";
      var mode = pickers.mode.value, metric = pickers.metric.value;
      var mine = runs.filter(function (r) {
        if (r.mode !== mode) return false;
        return AXES.every(function (a) { return !pickers[a] || pickers[a].value === "*" || String(r[a]) === pickers[a].value; });
      });
      var panels = {}, order = [];
      mine.forEach(function (r) {
        var k = PANEL_AXES.map(function (a) { return r[a]; }).join("|");
        if (!panels[k]) { panels[k] = []; order.push(k); }
        panels[k].push(r);
      });
      var nSeries = 0;
      order.forEach(function (k) {
        var rs = panels[k], first = rs[0];
        var inits = uniq(rs.map(function (r) { return r.init; }));
        var epochs = 0;
        rs.forEach(function (r) { epochs = Math.max(epochs, (r[metric] || []).length); });
        var xs = [];
        for (var e = 1; e <= epochs; e++) xs.push(e);
        var data = [xs], series = [{label: "epoch"}];
        inits.forEach(function (init, ci) {
          var cell = rs.filter(function (r) { return r.init === init; });
          var key = cellKey(cell[0]);
          var sel = selected[key];
          var lr = pickers.lr.value === "selected" ? (sel === null || sel === undefined ? best[key] : sel) : Number(pickers.lr.value);
          var at = cell.filter(function (r) { return r.lr === lr; });
          if (pickers.seed.value !== "mean") at = at.filter(function (r) { return String(r.seed) === pickers.seed.value; });
          if (!at.length) return;
          var ys = xs.map(function (_, i) {
            var s = 0, n = 0;
            at.forEach(function (r) { var v = (r[metric] || [])[i]; if (v !== null && v !== undefined && isFinite(v)) { s += v; n++; } });
            return n ? s / n : null;
          });
          var dead = pickers.lr.value === "selected" && sel === null;
          data.push(ys);
          series.push({label: init + " (lr " + lr + (dead ? ", at chance" : "") + ")", stroke: COLORS[ci % COLORS.length],
                       width: 1.6, dash: dead ? [6, 4] : undefined});
          nSeries++;
        });
        var box = el("div", {"class": "panel"});
        box.appendChild(el("div", {"class": "panel-title"},
          [first.cost + (first.ce_outside && first.ce_outside !== "clip" ? " (" + first.ce_outside + ")" : ""),
           first.activation + " hidden", valueText("output", first.output)]
            .concat(first.momentum ? ["m " + first.momentum] : []).concat(first.l2 ? ["l2 " + first.l2] : []).join(", ")));
        grid.appendChild(box);
        if (data.length < 2) { box.appendChild(el("p", {"class": "note"}, "no run at this lr / seed")); return; }
        var acc = metric !== "train_loss";
        plots.push(new uPlot({width: 330, height: 210, series: series,
          scales: {x: {time: false}, y: acc ? {range: [0, 1]} : {}},
          axes: [{label: "epoch", size: 30}, {size: 42}], legend: {show: true}}, data, box));
      });
      renders++;
      root.setAttribute("data-renders", String(renders));
      root.setAttribute("data-series", String(nSeries));
    }
    render();
  }

  function sortable(table) {
    var tbody = table.tBodies[0], ths = table.tHead.rows[0].cells;
    function key(row, k) {
      var t = row.cells[k].textContent.trim(), x = parseFloat(t);
      return isNaN(x) ? t : x;
    }
    Array.prototype.forEach.call(ths, function (th, k) {
      th.addEventListener("click", function () {
        var asc = !th.classList.contains("sorted-asc");
        Array.prototype.forEach.call(ths, function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
        th.classList.add(asc ? "sorted-asc" : "sorted-desc");
        var rows = Array.prototype.slice.call(tbody.rows);
        rows.sort(function (a, b) {
          var x = key(a, k), y = key(b, k), c;
          if (typeof x === "number" && typeof y === "number") c = x - y;
          else if (typeof x === "number") c = -1;
          else if (typeof y === "number") c = 1;
          else c = x.localeCompare(y);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { tbody.appendChild(r); });
      });
    });
    var tools = table.parentNode.previousElementSibling;
    var input = tools && tools.querySelector("input.table-filter");
    var count = tools && tools.querySelector(".table-count");
    function filter() {
      var terms = input.value.toLowerCase().split(/\s+/).filter(Boolean), shown = 0;
      Array.prototype.forEach.call(tbody.rows, function (r) {
        var text = r.textContent.toLowerCase();
        var ok = terms.every(function (t) { return text.indexOf(t) >= 0; });
        r.style.display = ok ? "" : "none";
        if (ok) shown++;
      });
      count.textContent = shown + " of " + tbody.rows.length + " rows";
    }
    if (input) { input.addEventListener("input", filter); filter(); }
  }

  var node = document.getElementById("sgdlab-data");
  var D = node ? JSON.parse(node.textContent) : {};
  var root = document.getElementById("explorer");
  if (root && typeof uPlot !== "undefined") explorer(root, D);
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), sortable);
})();
