/* The trace view of telemetry_asserts.html_report. Builds every element with textContent (never
   innerHTML), so values from the code under test stay text. Waterfalls draw only the rows in view
   (virtual rows) and subtrees collapse, so traces of tens of thousands of spans stay responsive. */
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("telemetry-data").textContent);
  const ROW = 22, MAX_VIEW = 560, OVERSCAN = 10;
  const app = document.getElementById("app");

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function add(parent, tag, cls, text) { const e = el(tag, cls, text); parent.appendChild(e); return e; }
  function fmtDur(ns) {
    if (ns >= 1e9) return (ns / 1e9).toFixed(2) + " s";
    if (ns >= 1e6) return (ns / 1e6).toFixed(1) + " ms";
    return (ns / 1e3).toFixed(0) + " µs";
  }
  function niceStep(span) {
    const raw = Math.max(span, 1) / 6, p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
    return 10 * p;
  }
  function attrTable(parent, attrs, cls) {
    const t = add(parent, "table", cls || "attrs");
    for (const [k, v, type] of attrs) {
      const tr = add(t, "tr");
      tr.dataset.key = k;
      add(tr, "th", "key", k);
      add(tr, "td", "value", v);
      add(tr, "td", "type muted", type);
    }
    return t;
  }

  // ---- index of every span: "trace:span" -> [trace index, row index]
  const where = new Map();
  DATA.traces.forEach((tr, ti) => tr.spans.forEach((s, ri) => where.set(tr.id + ":" + s.id, [ti, ri])));
  const views = [];
  let selected = null;

  function spanLabel(key) {
    const w = where.get(key);
    return w ? DATA.traces[w[0]].spans[w[1]].n : null;
  }
  function jumpButton(key, text) {
    const b = el("button", "jump", text || spanLabel(key) || key);
    b.dataset.target = key;
    b.addEventListener("click", () => select(key));
    return b;
  }

  // ---- layout
  const main = add(app, "main");
  const detail = add(app, "aside");
  detail.id = "detail";
  add(detail, "p", "muted", "Click a span for its attributes, events, exceptions, links and logs.");

  const head = add(main, "header");
  add(head, "h1", null, DATA.title);
  if (DATA.subtitle) add(head, "p", "muted", DATA.subtitle);
  if (DATA.verdict) {
    const v = DATA.verdict, p = add(head, "p");
    const badge = add(p, "span", "verdict " + (v.passed ? "passed" : "failed"), v.passed ? "PASSED" : "FAILED");
    badge.id = "verdict";
    p.appendChild(document.createTextNode(" " + (v.n - v.failed) + " of " + v.n + " checks passed" +
      (v.score ? ", score " + v.score : "") + " · contract " + v.contract + (v.name ? " (" + v.name + ")" : "")));
  }
  const c = DATA.counts;
  add(head, "p", "muted", c.spans + " spans in " + DATA.traces.length + " trace(s), " + c.metrics +
    " metric points, " + c.logs + " log records" +
    (c.spans_shown < c.spans ? " (first " + c.spans_shown + " spans shown)" : ""));

  // ---- free sections (e.g. a grader's checks) and contract checks
  function sideBySide(parent, expected, actualNode) {
    const g = add(parent, "div", "side-by-side");
    const a = add(g, "div", "expected");
    add(a, "h4", null, "expected");
    add(a, "pre", null, expected);
    const b = add(g, "div", "actual");
    add(b, "h4", null, "recorded");
    b.appendChild(actualNode);
    return g;
  }
  if (DATA.sections.length) {
    const sec = add(main, "section");
    sec.id = "sections";
    for (const s of DATA.sections) {
      const box = add(sec, "div", "check " + s.status);
      const h = add(box, "div");
      add(h, "span", "icon", s.status === "passed" ? "✓ " : s.status === "info" ? "• " : "✗ ");
      add(h, "strong", null, s.title);
      if (s.points) add(h, "span", "muted", " " + s.points);
      if (s.text) add(box, "pre", null, s.text);
      if (s.feedback) add(box, "p", "feedback", "what to do: " + s.feedback);
      if (s.expected || s.actual) {
        const pre = el("pre", null, s.actual || "(nothing)");
        sideBySide(box, s.expected || "(nothing stated)", pre);
      }
    }
  }
  if (DATA.checks) {
    const sec = add(main, "section");
    sec.id = "checks";
    add(sec, "h2", null, "Checks");
    const passed = DATA.checks.filter((ch) => ch.status === "passed");
    const fold = passed.length ? el("details", "passed-checks") : null;
    if (fold) add(fold, "summary", "muted", passed.length + " check(s) passed");
    for (const ch of DATA.checks.filter((ch) => ch.status !== "passed").concat(passed)) {
      const box = add(ch.status === "passed" ? fold : sec, "div", "check " + ch.status);
      box.dataset.check = ch.id;
      const h = add(box, "div");
      add(h, "span", "icon", ch.status === "passed" ? "✓ " : ch.status === "error" ? "! " : "✗ ");
      add(h, "strong", null, ch.id);
      if (ch.points) add(h, "span", "muted", " [" + ch.points + "]");
      add(h, "span", null, " " + ch.title);
      if (ch.status === "passed") continue;
      if (ch.spans.length) {
        const p = add(box, "p", null, "on: ");
        for (const k of ch.spans.slice(0, 20)) p.appendChild(jumpButton(k));
      }
      if (ch.pairs !== undefined) {
        if (!ch.pairs.length) sideBySide(box, ch.expected, el("pre", null, "(no trace with this root recorded)"));
        for (const pair of ch.pairs) {
          const list = el("div", "recorded-tree");
          for (const [text, key, note] of pair.act) {
            const line = add(list, "div", "tree-line" + (note ? " extra" : ""), text);
            if (note) line.title = note;
            line.addEventListener("click", () => select(key));
          }
          const g = sideBySide(box, "", list), exp = g.querySelector(".expected pre");
          for (const [text, note] of pair.exp) {
            const line = add(exp, "div", "tree-line" + (note ? " missing" : ""), text);
            if (note) add(line, "span", "note", "  ← " + note);
          }
        }
      }
      if (ch.pairs !== undefined && ch.pairs.length) {  // both trees are drawn above: the message folds
        const lines = ch.msg.split("\n"), fold = add(box, "details", "full-message");
        add(fold, "summary", "divergence", (lines.find((l) => l.includes("does not match")) || lines[0]).trim());
        add(fold, "pre", "message", ch.msg);
      } else add(box, "pre", "message", ch.msg);
      if (ch.feedback) add(box, "p", "feedback", "feedback: " + ch.feedback);
    }
    if (fold) sec.appendChild(fold);
  }

  // ---- waterfalls
  const tracesSec = add(main, "section");
  tracesSec.id = "traces";
  add(tracesSec, "h2", null, "Traces");
  const legend = add(tracesSec, "p", "legend muted");
  for (const [k, colour] of [["INTERNAL", "#0969da"], ["SERVER", "#1a7f37"], ["CLIENT", "#8250df"],
    ["PRODUCER", "#bc4c00"], ["CONSUMER", "#1b7c83"], ["ERROR", "#cf222e"]]) {
    const s = add(legend, "span");
    add(s, "i").style.background = colour;
    s.appendChild(document.createTextNode(k));
  }
  add(legend, "span", null, "| tick = event · ✗ = contract violation · ! = exception · ⤳ / dashed line = link");
  if (!DATA.traces.length) add(tracesSec, "p", "muted", "(no spans recorded)");

  function TraceView(tr, ti) {
    const n = tr.spans.length, spans = tr.spans;
    this.tr = tr; this.ti = ti;
    this.end = new Int32Array(n);
    for (let i = n - 1; i >= 0; i--) {
      this.end[i] = Math.max(this.end[i], i + 1);
      const p = spans[i].p;
      if (p >= 0) this.end[p] = Math.max(this.end[p], this.end[i]);
    }
    this.collapsed = new Uint8Array(n);
    this.total = Math.max(tr.dur, 1);
    const box = add(tracesSec, "details", "trace");
    box.dataset.traceId = tr.id;
    box.open = ti < 5 || tr.marked > 0;
    const sum = add(box, "summary", null, tr.root + " · " + fmtDur(tr.dur) + " · " + n + " spans" +
      (tr.errors ? " · " + tr.errors + " error(s)" : "") + (tr.marked ? " · " + tr.marked + " violation(s)" : "") +
      " · trace " + tr.id);
    sum.dataset.traceId = tr.id;
    const bar = add(box, "div", "toolbar");
    add(bar, "button", null, "collapse all").addEventListener("click", () => this.setAll(1));
    add(bar, "button", null, "expand all").addEventListener("click", () => this.setAll(0));
    const axis = add(box, "div", "axis");
    add(axis, "div", "name-head", "span");
    const ticks = add(axis, "div", "ticks");
    const step = niceStep(this.total);
    for (let t = 0; t <= this.total; t += step) {
      const s = add(ticks, "span", null, fmtDur(t));
      s.style.left = (t * 100 / this.total) + "%";
    }
    this.viewport = add(box, "div", "viewport");
    this.canvas = add(this.viewport, "div", "canvas");
    this.svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    this.svg.setAttribute("class", "links");
    this.rows = el("div", "rows");
    this.canvas.appendChild(this.rows);
    this.canvas.appendChild(this.svg);
    this.pending = false;
    this.viewport.addEventListener("scroll", () => this.schedule());
    box.addEventListener("toggle", () => this.render());
    this.layout();
  }
  TraceView.prototype.layout = function () {
    const vis = [], rowOf = new Int32Array(this.tr.spans.length).fill(-1);
    for (let i = 0; i < this.tr.spans.length;) {
      rowOf[i] = vis.length;
      vis.push(i);
      i = this.collapsed[i] ? this.end[i] : i + 1;
    }
    this.vis = vis; this.rowOf = rowOf;
    this.canvas.style.height = (vis.length * ROW) + "px";
    this.viewport.style.height = Math.min(vis.length * ROW, MAX_VIEW) + "px";
    this.render();
  };
  TraceView.prototype.setAll = function (value) {
    const s = this.tr.spans;
    for (let i = 0; i < s.length; i++) this.collapsed[i] = value && this.end[i] > i + 1 && s[i].p >= 0 ? 1 : 0;
    this.viewport.scrollTop = 0;
    this.layout();
  };
  TraceView.prototype.schedule = function () {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  };
  TraceView.prototype.render = function () {
    const h = this.viewport.clientHeight || Math.min(this.vis.length * ROW, MAX_VIEW);
    const first = Math.max(0, Math.floor(this.viewport.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(this.vis.length, Math.ceil((this.viewport.scrollTop + h) / ROW) + OVERSCAN);
    const frag = document.createDocumentFragment();
    for (let v = first; v < last; v++) frag.appendChild(this.row(this.vis[v], v));
    this.rows.replaceChildren(frag);
    this.drawLinks(first, last);
  };
  TraceView.prototype.row = function (i, v) {
    const s = this.tr.spans[i], key = this.tr.id + ":" + s.id;
    const r = el("div", "span-row" + (s.st === "ERROR" ? " error" : "") + (s.m ? " violation" : "") +
      (selected === key ? " selected" : ""));
    r.style.top = (v * ROW) + "px";
    r.dataset.spanId = s.id;
    r.dataset.traceId = this.tr.id;
    r.dataset.depth = s.d;
    const name = add(r, "div", "name-cell");
    name.style.paddingLeft = (4 + s.d * 14) + "px";
    const hasKids = this.end[i] > i + 1;
    const t = add(name, "span", "toggle", hasKids ? (this.collapsed[i] ? "▸" : "▾") : "");
    if (hasKids) {
      t.addEventListener("click", (e) => { e.stopPropagation(); this.collapsed[i] ^= 1; this.layout(); });
      if (this.collapsed[i]) t.title = (this.end[i] - i - 1) + " spans hidden";
    }
    add(name, "span", "span-name", s.n);
    if (s.m) add(name, "span", "violation-mark", "✗").title = s.m;
    if (s.ev && s.ev.some((e) => e[0] === "exception")) add(name, "span", "exc-mark", "!").title = "exception recorded";
    if (s.ln && s.ln.length) {
      add(name, "span", "link-mark", "⤳").title = s.ln.map((l) => "link to " + (spanLabel(l[0]) || "a span not recorded here")).join("\n");
    }
    const cell = add(r, "div", "time-cell");
    const b = add(cell, "div", "bar k-" + s.k + " s-" + s.st);
    const left = s.s * 100 / this.total, width = s.e * 100 / this.total;
    b.style.left = left + "%";
    b.style.width = width + "%";
    b.title = s.n + " · " + fmtDur(s.e);
    for (const ev of s.ev || []) {
      const tk = add(cell, "div", "tick");
      tk.style.left = Math.min(100, Math.max(0, ev[1] * 100 / this.total)) + "%";
      tk.title = ev[0];
    }
    const d = add(cell, "span", "dur", fmtDur(s.e));
    if (left + width > 85) { d.style.right = (100 - left) + "%"; d.style.paddingRight = "4px"; }
    else d.style.left = (left + width) + "%";
    r.addEventListener("click", () => select(key));
    return r;
  };
  TraceView.prototype.drawLinks = function (first, last) {
    const svg = this.svg, NS = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    svg.style.left = getComputedStyle(document.documentElement).getPropertyValue("--name").trim() || "340px";
    svg.setAttribute("width", "100%");
    svg.setAttribute("height", String(this.vis.length * ROW));
    svg.style.width = "calc(100% - " + svg.style.left + ")";
    let drawn = 0;
    for (let v = first; v < last && drawn < 500; v++) {
      const s = this.tr.spans[this.vis[v]];
      for (const [target] of s.ln || []) {
        const w = where.get(target);
        if (!w || w[0] !== this.ti) continue;
        const tv = this.rowOf[w[1]];
        if (tv < 0) continue;
        const ts = this.tr.spans[w[1]], line = document.createElementNS(NS, "line");
        line.setAttribute("x1", (s.s * 100 / this.total) + "%");
        line.setAttribute("y1", String(v * ROW + ROW / 2));
        line.setAttribute("x2", ((ts.s + ts.e) * 100 / this.total) + "%");
        line.setAttribute("y2", String(tv * ROW + ROW / 2));
        line.dataset.from = s.id;
        line.dataset.to = ts.id;
        svg.appendChild(line);
        drawn++;
      }
    }
  };
  TraceView.prototype.reveal = function (i) {
    let changed = false;
    for (let p = this.tr.spans[i].p; p >= 0; p = this.tr.spans[p].p) {
      if (this.collapsed[p]) { this.collapsed[p] = 0; changed = true; }
    }
    if (changed) this.layout();
    const v = this.rowOf[i], vp = this.viewport;
    if (v * ROW < vp.scrollTop || (v + 1) * ROW > vp.scrollTop + vp.clientHeight) vp.scrollTop = Math.max(0, v * ROW - vp.clientHeight / 2);
  };
  DATA.traces.forEach((tr, ti) => views.push(new TraceView(tr, ti)));

  // ---- selection and the detail panel
  function select(key) {
    const w = where.get(key);
    if (!w) return;
    selected = key;
    const view = views[w[0]];
    const box = view.viewport.parentElement;
    if (!box.open) box.open = true;
    view.reveal(w[1]);
    views.forEach((vw) => vw.render());
    const row = view.rows.querySelector('.span-row[data-span-id="' + view.tr.spans[w[1]].id + '"]');
    if (row && row.scrollIntoView) row.scrollIntoView({ block: "nearest" });
    showDetail(view.tr, view.tr.spans[w[1]]);
  }
  function showDetail(tr, s) {
    detail.replaceChildren();
    const h = add(detail, "h3", "detail-name", s.n);
    h.dataset.spanId = s.id;
    if (s.m) add(detail, "div", "mark-box", s.m);
    const info = [["trace id", tr.id], ["span id", s.id], ["kind", s.k],
      ["status", s.st + (s.sd ? ": " + s.sd : "")], ["start", "+" + fmtDur(s.s)], ["duration", fmtDur(s.e)]];
    if (s.p >= 0) info.splice(2, 0, ["parent", tr.spans[s.p].n]);
    if (s.svc) info.push(["service", s.svc]);
    const t = add(detail, "table", "span-info");
    for (const [k, v] of info) { const row = add(t, "tr"); add(row, "th", null, k); add(row, "td", null, v); }
    add(detail, "h4", null, "attributes (" + (s.a ? s.a.length : 0) + ")");
    if (s.a) attrTable(detail, s.a, "attrs span-attributes");
    const events = (s.ev || []).filter((e) => e[0] !== "exception");
    const excs = (s.ev || []).filter((e) => e[0] === "exception");
    if (excs.length) {
      add(detail, "h4", null, "exceptions");
      for (const e of excs) {
        const box = add(detail, "div", "exception");
        const get = (k) => { const f = e[2].find((a) => a[0] === k); return f ? f[1] : ""; };
        add(box, "div", "mark-box", get("exception.type") + ": " + get("exception.message"));
        if (get("exception.stacktrace")) add(box, "pre", "stacktrace", get("exception.stacktrace"));
      }
    }
    if (events.length) {
      add(detail, "h4", null, "events");
      const et = add(detail, "table", "events");
      for (const e of events) {
        const row = add(et, "tr");
        add(row, "td", null, "+" + fmtDur(e[1]));
        add(row, "td", "event-name", e[0]);
        attrTable(add(row, "td"), e[2]);
      }
    }
    if (s.ln && s.ln.length) {
      add(detail, "h4", null, "links");
      const ul = add(detail, "ul", "links");
      for (const [target, attrs] of s.ln) {
        const li = add(ul, "li");
        if (where.has(target)) li.appendChild(jumpButton(target, "→ " + spanLabel(target)));
        else add(li, "span", "muted", "→ a span not recorded here (" + target + ")");
        if (attrs.length) attrTable(li, attrs);
      }
    }
    if (s.lg && s.lg.length) {
      add(detail, "h4", null, "logs (" + s.lg.length + ")");
      const lt = add(detail, "table", "logs");
      for (const li of s.lg) {
        const r = DATA.logs[li], row = add(lt, "tr");
        add(row, "td", "sev-" + r.sev, r.sev);
        const body = add(row, "td", "log-body", r.b);
        if (r.a) attrTable(body, r.a);
      }
    }
  }

  // ---- lint findings, metrics, logs
  if (DATA.lint) {
    const sec = add(main, "section");
    sec.id = "lint";
    add(sec, "h2", null, "Lint findings (" + DATA.lint.length + ")");
    if (!DATA.lint.length) add(sec, "p", "muted", "no findings");
    const t = add(sec, "table");
    for (const f of DATA.lint) {
      const row = add(t, "tr", "finding");
      add(row, "td", "sev-" + f.sev, f.sev);
      add(row, "td", null, f.rule);
      const w = add(row, "td");
      if (f.spans.length) for (const k of f.spans.slice(0, 5)) w.appendChild(jumpButton(k, f.where));
      else w.textContent = f.where;
      add(row, "td", null, f.msg);
    }
  }
  const msec = add(main, "section");
  msec.id = "metrics";
  add(msec, "h2", null, "Metrics (" + c.metrics + " points)");
  if (!DATA.metrics.length) add(msec, "p", "muted", "(no metric points recorded)");
  for (const m of DATA.metrics) {
    const h = add(msec, "h3", "metric-name", m.name);
    add(h, "span", "muted", " " + m.kind + (m.unit ? ", unit " + m.unit : ""));
    if (m.desc) add(msec, "p", "muted", m.desc);
    const t = add(msec, "table", "points");
    t.dataset.metric = m.name;
    for (const p of m.points) {
      const row = add(t, "tr");
      add(row, "td", "point-attrs", p.a.map((a) => a[0] + "=" + a[1]).join(", ") || "{}");
      const v = add(row, "td", "point-value");
      if (p.v !== undefined) { v.textContent = p.v; continue; }
      v.textContent = "count " + p.count + " · sum " + p.sum + (p.min !== null ? " · min " + p.min : "") +
        (p.max !== null ? " · max " + p.max : "");
      if (p.buckets) {
        const hist = add(v, "div", "hist");
        const top = Math.max(1, ...p.buckets.map((b) => b[1]));
        for (const [label, count] of p.buckets) {
          add(hist, "span", null, label);
          const wrap = add(hist, "span");
          add(wrap, "div", "hbar").style.width = (count * 100 / top) + "%";
          add(hist, "span", "bucket-count", count);
        }
      }
    }
  }
  const lsec = add(main, "section");
  lsec.id = "logs";
  add(lsec, "h2", null, "Logs (" + c.logs + ")");
  if (!DATA.logs.length) add(lsec, "p", "muted", "(no log records)");
  const lt = add(lsec, "table");
  for (const r of DATA.logs) {
    const row = add(lt, "tr", "log");
    add(row, "td", "sev-" + r.sev, r.sev);
    const body = add(row, "td", "log-body", r.b);
    if (r.a) attrTable(body, r.a);
    const w = add(row, "td");
    if (r.span && where.has(r.span)) w.appendChild(jumpButton(r.span));
    else add(w, "span", "muted", r.span ? "(span not recorded)" : "(no span)");
  }
  window.telemetryReport = { select: select, views: views, ready: true, readyMs: performance.now() };
  document.body.dataset.ready = "1";
})();
