/* sgdlab lab: the page. Plain JavaScript, no build step; charts by uPlot (vendored).
   Everything shown comes from the lab's JSON API and its Server-Sent Event streams;
   text from the server is always set as text, never parsed as HTML. */
"use strict";
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const COLORS = { A: "#1f6fb4", B: "#d6452b" };
  const LAYER_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  const DIAG_INFO = {
    grad_w_mean: "weight gradient (mean over the epoch)", grad_w_last: "weight gradient (last minibatch)",
    grad_b_mean: "bias gradient (mean over the epoch)", grad_b_last: "bias gradient (last minibatch)",
    weight_norm: "weight norm", update_ratio: "update / weight ratio", saturated: "saturated units (share)",
    dead_units: "dead units (share)", dead_rows: "dead rows (share)", clipped: "clipped outputs (share)",
  };
  const EPOCH_STEPS = [1, 2, 5, 10, 20, 50, 100];  // whole epochs on the x axes
  const LOG_METRICS = /^(grad_|weight_norm|update_ratio)/;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }
  const pct = (x) => (x == null ? "–" : (100 * x).toFixed(2) + " %");
  const num = (x) => (x == null ? "–" : Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(2) : x.toFixed(4));

  async function api(path, body) {
    const opts = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    const r = await fetch(path, opts);
    let data = {};
    try { data = await r.json(); } catch (e) { data = { error: "the lab answered " + r.status }; }
    return { ok: r.ok, status: r.status, data };
  }

  /* ------------------------------------------------------------------ the form */

  let schema = null;
  async function buildForm() {
    const { data } = await api("/api/schema");
    schema = data;
    const box = $("#fields");
    for (const f of data.fields) {
      let input;
      if (f.choices) {
        input = el("select", { name: f.name, id: "f-" + f.name });
        for (const c of f.choices) input.append(el("option", { value: c, text: c }));
        input.value = f.default;
      } else {
        input = el("input", { name: f.name, id: "f-" + f.name, type: "text", value: String(f.default) });
      }
      // a long help is cut to its first clause on the page; the whole text is the tooltip
      const short = f.help.length > 90 && f.help.indexOf(": ") > 0 ? f.help.slice(0, f.help.indexOf(": ")) + " …" : f.help;
      box.append(el("label", { for: "f-" + f.name, title: f.help }, f.name.replace("_", " "), el("span", { text: short }), input));
    }
    $("#limits").textContent = "Limits of this lab: " + data.limits.text + ".";
    $("#store-path").textContent = data.store;
  }

  function formValues() {
    const out = {};
    for (const f of schema.fields) out[f.name] = $("#f-" + f.name).value;
    return out;
  }

  /* ------------------------------------------------------------------ runs and charts */

  const slots = { A: null, B: null };
  const METRICS = ["train_loss", "train_acc", "val_loss", "val_acc"];

  function newRun(label, job) {
    const r = { label, job, status: "queued", epochs: [], diag: {}, diagCharts: {}, es: null, stored: false, total: null };
    for (const m of METRICS) r[m] = [];
    return r;
  }

  function place(run) {
    const keep = $("#compare").checked;
    if (!keep) {
      for (const s of ["A", "B"]) drop(slots[s]);
      slots.A = run; slots.B = null;
    } else if (!slots.A) {
      slots.A = run;
    } else if (!slots.B) {
      slots.B = run;
    } else {
      drop(slots.A);
      slots.A = slots.B; slots.B = run;
    }
    redrawAll();
  }

  function drop(run) {
    if (!run) return;
    if (run.es) { run.es.close(); run.es = null; }
    if (run.job && (run.status === "queued" || run.status === "running")) api("/api/runs/" + run.job + "/cancel", {});
    for (const c of Object.values(run.diagCharts)) c.destroy();
    run.diagCharts = {};
  }

  const charts = { loss: null, acc: null };
  function makeChart(target, kind) {
    const series = [{ label: "epoch" }];
    for (const s of ["A", "B"]) {
      const r = slots[s];
      if (!r) continue;
      const m = kind === "acc" ? ["train_acc", "val_acc"] : ["train_loss", "val_loss"];
      series.push({ label: s + " train", stroke: COLORS[s], width: 1.5, dash: [6, 4], value: (u, v) => (v == null ? "–" : v.toFixed(4)) });
      series.push({ label: s + " val", stroke: COLORS[s], width: 2, value: (u, v) => (v == null ? "–" : v.toFixed(4)) });
    }
    const opts = {
      width: 460, height: 240, series,
      scales: { x: { time: false }, y: kind === "acc" ? { range: [0, 1] } : {} },
      axes: [{ label: "epoch", incrs: EPOCH_STEPS }, {}],
      legend: { live: false },
    };
    target.textContent = "";
    return new uPlot(opts, chartData(kind), target);
  }

  function chartData(kind) {
    const n = Math.max(1, ...["A", "B"].map((s) => (slots[s] ? slots[s].epochs.length : 0)));
    const xs = Array.from({ length: n }, (_, i) => i + 1);
    const data = [xs];
    const m = kind === "acc" ? ["train_acc", "val_acc"] : ["train_loss", "val_loss"];
    for (const s of ["A", "B"]) {
      const r = slots[s];
      if (!r) continue;
      for (const k of m) data.push(xs.map((_, i) => (i < r[k].length ? r[k][i] : null)));
    }
    return data;
  }

  function redrawCharts() {
    for (const k of ["loss", "acc"]) {
      if (charts[k]) charts[k].destroy();
      charts[k] = makeChart($("#" + k + "-chart"), k);
    }
    updatePoints();
  }

  function updateCharts() {
    charts.loss.setData(chartData("loss"));
    charts.acc.setData(chartData("acc"));
    updatePoints();
  }

  function updatePoints() {
    const latest = slots.B || slots.A;
    $("#acc-chart").dataset.points = latest ? String(latest.epochs.length) : "0";
    $("#acc-chart").dataset.series = String(charts.acc ? charts.acc.series.length - 1 : 0);
  }

  function redrawAll() {
    $("#empty-hint").hidden = !!slots.A;
    redrawCharts();
    for (const s of ["A", "B"]) renderCard(s);
  }

  /* ------------------------------------------------------------------ one run's card */

  function renderCard(s) {
    const card = $("#card-" + s), r = slots[s];
    card.textContent = "";
    card.hidden = !r;
    if (!r) return;
    for (const c of Object.values(r.diagCharts)) c.destroy();
    r.diagCharts = {};
    card.append(el("h3", { text: s + ": " + r.label }),
      el("div", { class: "status" }),
      el("div", { class: "differs muted small" }),
      el("h4", { class: "weights-title", text: "First layer's weights, one image per unit" }),
      el("div", { class: "weights" }),
      el("h4", { class: "diag-title", text: "Per layer, per epoch" }),
      el("div", { class: "diag" }),
      el("div", { class: "end" }));
    $(".weights-title", card).hidden = true;
    $(".diag-title", card).hidden = true;
    updateCard(s);
    if (r.weights) drawWeights(card, r.weights);
    if (r.end) drawEnd(card, r);
  }

  function updateCard(s) {
    const card = $("#card-" + s), r = slots[s];
    if (!r) return;
    const st = $(".status", card);
    let text;
    if (r.stored) text = "stored run: " + r.status;
    else if (r.status === "queued") text = r.position > 0 ? "queued: " + r.position + " training(s) ahead" : "starting…";
    else if (r.status === "running") text = "epoch " + r.epochs.length + " / " + r.total + "  ·  val acc " + pct(r.val_acc[r.val_acc.length - 1]);
    else text = r.status + (r.detail ? ": " + r.detail : "");
    st.textContent = text;
    st.classList.toggle("bad", ["diverged", "failed", "chance"].includes(r.status));
    card.dataset.status = r.status;
    const other = slots[s === "A" ? "B" : "A"];
    $(".differs", card).textContent = differs(r, other, s === "A" ? "B" : "A");
    card.dataset.epochs = String(r.epochs.length);
    drawDiagnostics(card, r);
  }

  // What sets this run apart from the other one on the axes (the one thing a student changed).
  function differs(r, other, otherSlot) {
    if (!r.config || !other || !other.config) return "";
    const keys = Object.keys(r.config).filter((k) => JSON.stringify(r.config[k]) !== JSON.stringify(other.config[k]));
    if (!keys.length) return "same settings as " + otherSlot;
    return "differs from " + otherSlot + ": " + keys.map((k) => k + " " + r.config[k] + " (" + otherSlot + ": " + other.config[k] + ")").join(", ");
  }

  function drawWeights(card, w) {
    const box = $(".weights", card);
    if (!w) { box.textContent = ""; return; }
    $(".weights-title", card).hidden = false;
    $(".weights-title", card).textContent = "First layer's weights, one 8x8 image per unit (" + w.images.length + " of " + w.units +
      "; red > 0 > blue, |w| up to " + num(w.scale) + (w.nonfinite ? "; " + w.nonfinite + " non-finite" : "") + ")";
    while (box.children.length < w.images.length) box.append(el("canvas", { width: w.cols, height: w.rows }));
    w.images.forEach((img, i) => {
      const cv = box.children[i], ctx = cv.getContext("2d"), id = ctx.createImageData(w.cols, w.rows);
      img.forEach((v, j) => {
        const t = Math.min(1, Math.abs(v) / 127), o = j * 4, fade = Math.round(255 * (1 - t));
        if (v >= 0) { id.data[o] = 255; id.data[o + 1] = fade; id.data[o + 2] = fade; }
        else { id.data[o] = fade; id.data[o + 1] = fade; id.data[o + 2] = 255; }
        id.data[o + 3] = 255;
      });
      ctx.putImageData(id, 0, 0);
    });
  }

  function drawDiagnostics(card, r) {
    const names = Object.keys(r.diag);
    const box = $(".diag", card);
    if (!names.length) return;
    $(".diag-title", card).hidden = false;
    $(".diag-title", card).textContent = "Per layer, per epoch (epoch 0: the initial weights; log10 where marked)";
    for (const name of names) {
      const rows = r.diag[name];
      const layers = rows.length ? rows[0].length : 0;
      const log = LOG_METRICS.test(name);
      const xs = rows.map((_, i) => i);
      const data = [xs];
      for (let l = 0; l < layers; l++) {
        data.push(rows.map((row) => {
          const v = row[l];
          if (v == null) return null;
          return log ? (v > 0 ? Math.log10(v) : null) : v;
        }));
      }
      let chart = r.diagCharts[name];
      if (chart && chart.series.length !== layers + 1) { chart.destroy(); chart = null; }
      if (!chart) {
        const holder = el("div", { class: "mini", "data-metric": name });
        box.append(holder);
        const series = [{ label: "epoch" }];
        for (let l = 0; l < layers; l++) series.push({ label: "layer " + (l + 1), stroke: LAYER_COLORS[l % LAYER_COLORS.length], width: 1.5 });
        chart = new uPlot({
          title: (DIAG_INFO[name] || name) + (log ? " (log10)" : ""), width: 200, height: 150, series,
          scales: { x: { time: false } }, legend: { show: false }, axes: [{ size: 24, incrs: EPOCH_STEPS }, { size: 40 }],
        }, data, holder);
        r.diagCharts[name] = chart;
      } else {
        chart.setData(data);
      }
    }
  }

  function drawEnd(card, r) {
    const box = $(".end", card), e = r.end;
    box.textContent = "";
    if (e.final && e.final.test_acc != null) {
      box.append(el("p", { class: "final", text: "after " + e.final.epochs + " epochs: train " + pct(e.final.train_acc) + ", validation " + pct(e.final.val_acc) + ", test " + pct(e.final.test_acc) }));
    }
    if (e.diagnosis) box.append(el("p", { class: "diagnosis", text: e.diagnosis }));
    if (e.confusion) {
      box.append(el("h4", { text: "Confusion matrix on the test set (rows: true class, columns: predicted)" }));
      const t = el("table", { class: "confusion" });
      const head = el("tr", {}, el("th", { text: "" }));
      r.classes.forEach((c) => head.append(el("th", { text: c })));
      t.append(head);
      e.confusion.forEach((row, i) => {
        const tr = el("tr", {}, el("th", { text: r.classes[i] }));
        const total = row.reduce((a, b) => a + b, 0) || 1;
        row.forEach((v, j) => {
          const td = el("td", { text: String(v) });
          const a = v / total;
          if (v) td.style.background = i === j ? "rgba(44,160,44," + (0.15 + 0.6 * a).toFixed(2) + ")" : "rgba(214,69,43," + (0.15 + 0.85 * a).toFixed(2) + ")";
          tr.append(td);
        });
        t.append(tr);
      });
      box.append(t);
    }
    if (e.misclassified && e.misclassified.length) {
      box.append(el("h4", { text: "Misclassified test images (" + e.misclassified.length + " of " + e.n_misclassified + ")" }));
      const m = el("div", { class: "missed" });
      for (const x of e.misclassified) {
        const cv = el("canvas", { width: e.cols, height: e.rows }), ctx = cv.getContext("2d"), id = ctx.createImageData(e.cols, e.rows);
        x.pixels.forEach((v, j) => { const g = 255 - v; id.data.set([g, g, g, 255], j * 4); });
        ctx.putImageData(id, 0, 0);
        m.append(el("figure", {}, cv, el("figcaption", { text: x.true + " → " + x.predicted })));
      }
      box.append(m);
    }
  }

  /* ------------------------------------------------------------------ following a job */

  function slotOf(run) { return slots.A === run ? "A" : slots.B === run ? "B" : null; }

  function follow(run) {
    const es = new EventSource("/api/runs/" + run.job + "/events");
    run.es = es;
    es.onmessage = (msg) => {
      const e = JSON.parse(msg.data);
      const s = slotOf(run);
      if (e.type === "queued") {
        run.position = e.position;
      } else if (e.type === "start") {
        run.status = "running"; run.total = e.epochs; run.classes = e.classes; run.weights = e.weights; run.config = e.config;
        run.epochs = []; for (const m of METRICS) run[m] = []; run.diag = {};
        if (s) { drawWeights($("#card-" + s), e.weights); const o = s === "A" ? "B" : "A"; if (slots[o]) updateCard(o); }
      } else if (e.type === "epoch") {
        run.epochs.push(e.epoch);
        for (const m of METRICS) run[m].push(e[m]);
        addDiag(run, e);
        run.weights = e.weights;
        if (s) { drawWeights($("#card-" + s), e.weights); updateCharts(); }
      } else if (e.type === "end") {
        es.close(); run.es = null;
        addDiag(run, e);
        run.status = e.status;
        run.detail = e.reason || e.error || (e.diverged_epoch ? "at epoch " + e.diverged_epoch : "");
        run.end = e;
        if (e.weights) run.weights = e.weights;
        if (s) { drawEnd($("#card-" + s), run); if (e.weights) drawWeights($("#card-" + s), e.weights); }
        updateStop();
        pollQueue();
      }
      if (s) updateCard(s);
    };
    es.onerror = () => {
      if (run.es && es.readyState === EventSource.CLOSED) { run.status = "lost"; run.detail = "the lab stopped answering"; const s = slotOf(run); if (s) updateCard(s); updateStop(); }
    };
  }

  function addDiag(run, e) {
    if (!e.diagnostics) return;
    for (const [name, rows] of Object.entries(e.diagnostics)) {
      const have = run.diag[name] || (run.diag[name] = []);
      rows.forEach((row, i) => { have[e.diag_from + i] = row; });
    }
  }

  function live() { return ["A", "B"].map((s) => slots[s]).filter((r) => r && !r.stored && (r.status === "queued" || r.status === "running")); }
  function updateStop() { $("#stop").disabled = live().length === 0; }

  async function train(ev) {
    ev.preventDefault();
    const err = $("#form-error");
    err.textContent = "";
    const { ok, data } = await api("/api/runs", formValues());
    if (!ok) { err.textContent = data.error || "the lab refused the run"; return; }
    const run = newRun(data.label, data.id);
    run.position = data.position;
    place(run);
    follow(run);
    updateStop();
    pollQueue();
  }

  async function stop() {
    for (const r of live()) await api("/api/runs/" + r.job + "/cancel", {});
  }

  /* ------------------------------------------------------------------ studies */

  let studyES = null, currentStudy = null, storedRun = null, allRuns = [];
  const storedCharts = { loss: null, acc: null };

  function fmtEta(s) {
    if (s == null) return "–";
    if (s < 90) return Math.round(s) + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  async function loadStudies() {
    const { data } = await api("/api/studies");
    const body = $("#studies-table tbody");
    body.textContent = "";
    if (!data.studies.length) body.append(el("tr", {}, el("td", { colspan: "6", class: "muted", text: "no studies under " + data.store })));
    for (const s of data.studies) {
      const tr = el("tr", { "data-study": s.name });
      tr.append(el("td", { text: s.name }));
      if (s.error) { tr.append(el("td", { colspan: "5", class: "error", text: s.error })); body.append(tr); continue; }
      tr.append(el("td", { text: s.state }), el("td", { text: s.done + " / " + s.total }), el("td", { text: fmtEta(s.eta_s) }));
      const rep = el("td");
      if (s.report) rep.append(el("a", { href: "/studies/" + encodeURIComponent(s.name) + "/report.html", target: "_blank", rel: "noopener", text: "report.html" }));
      else rep.append(el("span", { class: "muted", text: "not rendered" }));
      tr.append(rep, el("td", {}, el("button", { type: "button", text: "open", onclick: () => openStudy(s.name) })));
      body.append(tr);
    }
  }

  function showProgress(p) {
    const box = $("#study-progress");
    box.textContent = "";
    if (p.error) { box.append(el("p", { class: "error", text: p.error })); return; }
    const bar = el("div", { class: "bar" }, el("div"));
    bar.firstChild.style.width = (100 * p.done / Math.max(1, p.total)).toFixed(1) + "%";
    const counts = Object.entries(p.counts || {}).map(([k, v]) => v + " " + k).join(", ");
    box.append(bar, el("p", { class: "progress-line", text: p.state + ": " + p.done + " / " + p.total + " runs" + (counts ? " (" + counts + ")" : "") + (p.eta_s != null ? ", about " + fmtEta(p.eta_s) + " left" : "") }));
    box.dataset.done = String(p.done);
    const tb = $("#answers tbody");
    tb.textContent = "";
    for (const a of p.answers || []) {
      tb.append(el("tr", {}, el("td", { text: a.mode }), el("td", { text: a.cell }), el("td", { text: String(a.lr) }),
        el("td", { text: pct(a.val_mean) + (a.val_std != null && a.seeds > 1 ? " ± " + (100 * a.val_std).toFixed(2) : "") }), el("td", { text: String(a.seeds) })));
    }
  }

  async function openStudy(name) {
    if (studyES) { studyES.close(); studyES = null; }
    currentStudy = name;
    $("#study-view").hidden = false;
    $("#stored-run").hidden = true;
    $("#study-title").textContent = name;
    studyES = new EventSource("/api/studies/" + encodeURIComponent(name) + "/events");
    let lastDone = -1;
    studyES.onmessage = (msg) => {
      const p = JSON.parse(msg.data);
      showProgress(p);
      if (p.done !== lastDone) { lastDone = p.done; loadRuns(name); }
    };
    studyES.addEventListener("close", () => { studyES.close(); studyES = null; loadStudies(); });
  }

  async function loadRuns(name) {
    const { ok, data } = await api("/api/studies/" + encodeURIComponent(name) + "/runs");
    if (!ok || name !== currentStudy) return;
    allRuns = data.runs;
    renderRuns();
  }

  function renderRuns() {
    const words = $("#run-filter").value.toLowerCase().split(/\s+/).filter(Boolean);
    const body = $("#runs-table tbody");
    body.textContent = "";
    const rows = allRuns.filter((r) => {
      const hay = [r.mode, r.cost, r.activation, r.output, r.init, String(r.lr), "seed" + r.seed, r.status].join(" ").toLowerCase();
      return words.every((w) => hay.includes(w));
    });
    for (const r of rows.slice(0, 300)) {
      body.append(el("tr", { "data-key": r.key, onclick: () => openRun(r.key) },
        ...[r.mode, r.cost, r.activation, r.output, r.init, String(r.lr), String(r.seed), r.status, pct(r.val_acc), pct(r.test_acc)].map((t) => el("td", { text: t }))));
    }
    $("#run-count").textContent = rows.length + " of " + allRuns.length + " runs" + (rows.length > 300 ? " (first 300 shown)" : "");
  }

  async function openRun(key) {
    const { ok, data } = await api("/api/studies/" + encodeURIComponent(currentStudy) + "/runs/" + encodeURIComponent(key));
    if (!ok) return;
    storedRun = { study: currentStudy, ...data };
    const c = data.config;
    $("#stored-title").textContent = data.mode + ": " + c.activation + "/" + (c.output === "same" ? c.activation : c.output) + " + " + c.cost + ", " + c.init + ", lr " + c.lr + ", seed " + c.seed + " (" + data.status + (data.engine ? ", " + data.engine + " engine" : "") + ")";
    $("#stored-run").hidden = false;
    const h = data.history, xs = h.val_acc.map((_, i) => i + 1);
    for (const [k, target, m] of [["loss", "#stored-loss", ["train_loss", "val_loss"]], ["acc", "#stored-acc", ["train_acc", "val_acc"]]]) {
      if (storedCharts[k]) storedCharts[k].destroy();
      $(target).textContent = "";
      storedCharts[k] = new uPlot({
        width: 460, height: 220, scales: { x: { time: false }, y: k === "acc" ? { range: [0, 1] } : {} },
        series: [{ label: "epoch" }, { label: "train", stroke: COLORS.A, dash: [6, 4] }, { label: "val", stroke: COLORS.A, width: 2 }],
        axes: [{ label: "epoch", incrs: EPOCH_STEPS }, {}],
      }, [xs, h[m[0]], h[m[1]]], $(target));
    }
  }

  async function rerun() {
    if (!storedRun) return;
    const { ok, data } = await api("/api/studies/" + encodeURIComponent(storedRun.study) + "/runs/" + encodeURIComponent(storedRun.key) + "/rerun", {});
    if (!ok) { $("#stored-title").textContent = data.error; return; }
    const stored = newRun("stored " + storedRun.study + "/" + storedRun.key.slice(0, 12), null);
    stored.stored = true; stored.status = storedRun.status; stored.config = storedRun.config;
    for (const m of METRICS) stored[m] = storedRun.history[m].slice();
    stored.epochs = stored.val_acc.map((_, i) => i + 1);
    stored.diag = storedRun.diagnostics || {};
    for (const s of ["A", "B"]) drop(slots[s]);
    slots.A = stored; slots.B = null;
    const live = newRun(data.label, data.id);
    live.position = data.position;
    slots.B = live;
    showTab("train");
    redrawAll();
    follow(live);
    updateStop();
  }

  /* ------------------------------------------------------------------ tabs and start */

  function showTab(name) {
    for (const b of document.querySelectorAll("nav .tab")) b.classList.toggle("active", b.dataset.tab === name);
    $("#tab-train").hidden = name !== "train";
    $("#tab-studies").hidden = name !== "studies";
    if (name === "studies") loadStudies();
  }

  async function pollQueue() {
    const { ok, data } = await api("/api/queue");
    if (!ok) return;
    const running = data.jobs.filter((j) => j.state === "running").length, queued = data.jobs.filter((j) => j.state === "queued").length;
    $("#queue-line").textContent = "lab: " + running + " training, " + queued + " waiting";
  }

  document.addEventListener("DOMContentLoaded", async () => {
    for (const b of document.querySelectorAll("nav .tab")) b.addEventListener("click", () => showTab(b.dataset.tab));
    $("#train-form").addEventListener("submit", train);
    $("#stop").addEventListener("click", stop);
    $("#run-filter").addEventListener("input", renderRuns);
    $("#rerun").addEventListener("click", rerun);
    await buildForm();
    redrawCharts();
    pollQueue();
    setInterval(pollQueue, 3000);
    window.sgdlabLab = { slots, charts };  // for a look from the browser's console (and the tests)
    document.body.dataset.ready = "1";
  });
})();
