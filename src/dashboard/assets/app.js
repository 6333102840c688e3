// cellc dashboard: the page's script. One HTML shell serves every view; this script routes on
// the URL's path, fetches the view's JSON from /api/..., renders it, and fetches again (re-rendering
// in place) whenever the server announces a change over /events. No framework, no build step.
'use strict';

(() => {
  // ---------------------------------------------------------------------------------------------
  // Formatting helpers: escaping, numbers, times.

  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  /** Text made safe for HTML (element content and quoted attributes). */
  const esc = (s) => (s == null ? '' : String(s)).replace(/[&<>"']/g, (c) => ESC[c]);
  const $ = (sel, root = document) => root.querySelector(sel);
  const enc = encodeURIComponent;
  const DASH = '<span class="muted">–</span>';

  /** A measurement with `p` significant digits; non-finite values arrive as the strings "NaN"/"inf". */
  function num(x, p = 4) {
    if (x == null || x === '') return DASH;
    if (typeof x !== 'number') return esc(x);
    if (!Number.isFinite(x)) return esc(String(x));
    if (x === 0) return '0';
    const a = Math.abs(x);
    if (a >= 1e6 || a < 1e-4) return x.toExponential(p - 1).replace('e+', 'e');
    if (a >= 10 ** p) return Math.round(x).toLocaleString('en-US');
    return x.toPrecision(p);
  }
  /** A count with thousands separators. */
  /** num() as plain text (titles, chart labels). */
  const numT = (x, p = 4) => (x == null ? '–' : num(x, p).replace(/<[^>]*>/g, ''));
  const int = (x) => (x == null ? DASH : typeof x === 'number' ? x.toLocaleString('en-US') : esc(x));
  const pct = (x) => (typeof x === 'number' && Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : DASH);
  const pval = (p) => (typeof p !== 'number' ? DASH : p < 0.001 ? '&lt; 0.001' : p.toPrecision(2));
  /** mean ± half width. */
  const pm = (mean, hw) => `${num(mean)}${hw == null ? '' : ` <span class="pm">± ${num(hw, 2)}</span>`}`;

  /** A duration in seconds: "0.13 s", "42 s", "1:05", "2:03:04". */
  function dur(s) {
    if (typeof s !== 'number' || !Number.isFinite(s)) return DASH;
    if (s < 0) return 'expired';
    if (s < 1) return `${s.toFixed(2)} s`;
    if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
    const t = Math.round(s), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = String(t % 60).padStart(2, '0');
    return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
  }

  // The server's clock may differ from ours: the overview's `now_ms` tells by how much.
  let skew = 0;
  const serverNow = () => Date.now() + skew;
  function agoText(ms) {
    const s = Math.max(0, (serverNow() - ms) / 1000);
    if (s < 60) return `${Math.round(s)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${(s / 3600).toFixed(s < 36000 ? 1 : 0)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  }
  /** "3 s ago" that keeps itself current (see the ticker below); full date on hover. */
  function ago(ms) {
    if (typeof ms !== 'number') return DASH;
    return `<span class="ago" data-ms="${ms}" title="${esc(new Date(ms).toLocaleString())}">${agoText(ms)}</span>`;
  }
  setInterval(() => {
    for (const el of document.querySelectorAll('.ago[data-ms]')) el.textContent = agoText(Number(el.dataset.ms));
  }, 5000);

  /** A coloured word: run states, experiment states, candidate statuses, verdicts, outcomes. */
  function badge(word) {
    if (word == null || word === '') return DASH;
    const w = String(word);
    const cls = /^(ok|done|scored|confirmed|better|alive)/.test(w) ? 'good'
      : /^(failed|diverged|contradicted|worse|dropped|gone|unreadable)/.test(w) ? 'bad'
        : /^(leased|running|being|in flight)/.test(w) ? 'run'
          : /^(queued|waiting|stopped early)/.test(w) ? 'wait' : 'neutral';
    return `<span class="badge ${cls}">${esc(w)}</span>`;
  }

  const clip = (s, n) => (s && s.length > n ? `${s.slice(0, n - 1)}…` : s || '');
  /** A long text cut short, the whole of it on hover. */
  const clipped = (s, n) => (s ? `<span title="${esc(s)}">${esc(clip(s, n))}</span>` : DASH);

  // Links to the views.
  const expHref = (name) => `/experiments/${enc(name)}`;
  const cellHref = (name, id) => `/experiments/${enc(name)}/cells/${enc(id)}`;
  const runHref = (id) => `/runs/${enc(id)}`;
  const link = (href, text) => `<a href="${esc(href)}">${esc(text)}</a>`;
  const runLink = (id) => link(runHref(id), `#${id}`);

  // ---------------------------------------------------------------------------------------------
  // Fetching: never throws, never logs; the caller shows what went wrong.

  /** {ok, status, data} or {ok: false, status, error}. */
  async function getJSON(path) {
    let res;
    try {
      res = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    } catch (e) {
      return { ok: false, status: 0, error: 'the dashboard server cannot be reached' };
    }
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) return { ok: false, status: res.status, error: (body && body.error) || `${res.status} ${res.statusText}` };
    if (body == null) return { ok: false, status: res.status, error: 'the server sent something that is not JSON' };
    return { ok: true, status: res.status, data: body };
  }

  // ---------------------------------------------------------------------------------------------
  // Tables: built as one HTML string (fast for long lists), capped, with a "show all" button.

  /**
   * cols: [{h: header html, f: row => cell html, c: class}]. opts: {id, limit, all (shown in
   * full?), empty (text when no rows), rowClass(row)}.
   */
  function table(cols, rows, opts = {}) {
    if (!rows.length && opts.empty) return `<p class="muted empty" ${opts.id ? `id="${opts.id}-empty"` : ''}>${esc(opts.empty)}</p>`;
    const limit = opts.all || !opts.limit ? rows.length : opts.limit;
    const shown = rows.length > limit ? rows.slice(0, limit) : rows;
    const head = cols.map((c) => `<th${c.c ? ` class="${c.c}"` : ''}${c.t ? ` title="${esc(c.t)}"` : ''}>${c.h}</th>`).join('');
    const body = shown.map((r) => {
      const cls = opts.rowClass ? opts.rowClass(r) : '';
      return `<tr${cls ? ` class="${cls}"` : ''}>${cols.map((c) => `<td${c.c ? ` class="${c.c}"` : ''}>${c.f(r)}</td>`).join('')}</tr>`;
    }).join('');
    let more = '';
    if (rows.length > limit) {
      more = `<p class="more">showing ${int(limit)} of ${int(rows.length)} <button type="button" data-more="${opts.id}">show all ${int(rows.length)}</button></p>`;
    } else if (opts.all && opts.limit && rows.length > opts.limit) {
      more = `<p class="more"><button type="button" data-less="${opts.id}">show the first ${int(opts.limit)}</button></p>`;
    }
    return `<div class="scroll"><table${opts.id ? ` id="${opts.id}"` : ''}><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>${more}`;
  }

  /** Sets an element's HTML only when it changed (keeps focus, selection and open <details>). */
  function fill(id, html) {
    const el = document.getElementById(id);
    if (el && el.dataset.html !== html) {
      el.innerHTML = html;
      el.dataset.html = html;
    }
    return el;
  }

  /** Statistic tiles: [[label, value html, title?]]. */
  const tiles = (items) => `<div class="tiles">${items.map(([k, v, t]) =>
    `<div class="tile"${t ? ` title="${esc(t)}"` : ''}><div class="v">${v}</div><div class="k">${esc(k)}</div></div>`).join('')}</div>`;

  /** A progress bar: done of total, failed in red. */
  function bar(done, total, failed = 0) {
    const w = (x) => (total > 0 ? Math.min(100, (100 * x) / total) : 0).toFixed(1);
    return `<span class="bar" title="${done} of ${total} done${failed ? `, ${failed} failed` : ''}"><span class="ok" style="width:${w(done - failed)}%"></span><span class="fail" style="width:${w(failed)}%"></span></span> <span class="bar-text">${int(done)}/${int(total)}</span>`;
  }

  // ---------------------------------------------------------------------------------------------
  // SVG pieces: interval plots (confirmations, paired differences) and the family tree.

  /** A shared domain for interval plots: every low/high and the reference line, padded. */
  function domain(pairs, ref) {
    let lo = ref, hi = ref;
    for (const [a, b] of pairs) {
      if (Number.isFinite(a)) lo = Math.min(lo, a);
      if (Number.isFinite(b)) hi = Math.max(hi, b);
    }
    const pad = (hi - lo || Math.abs(ref) || 1) * 0.08;
    return [lo - pad, hi + pad];
  }

  /** One interval [lo, hi] with a dot at mid, on domain dom, with a dashed line at ref. */
  function intervalSvg(lo, hi, mid, dom, ref, cls, w = 240, h = 22) {
    const x = (v) => (((v - dom[0]) / (dom[1] - dom[0])) * (w - 12) + 6).toFixed(1);
    const y = h / 2;
    let s = `<svg class="interval ${cls}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img">`;
    s += `<title>${esc(`[${numT(lo)}, ${numT(hi)}], centre ${numT(mid)}`)}</title>`;
    s += `<line class="ref" x1="${x(ref)}" x2="${x(ref)}" y1="1" y2="${h - 1}"/>`;
    if (Number.isFinite(lo) && Number.isFinite(hi)) {
      s += `<line class="iv" x1="${x(lo)}" x2="${x(hi)}" y1="${y}" y2="${y}"/>`;
      s += `<line class="iv" x1="${x(lo)}" x2="${x(lo)}" y1="${y - 5}" y2="${y + 5}"/><line class="iv" x1="${x(hi)}" x2="${x(hi)}" y1="${y - 5}" y2="${y + 5}"/>`;
    }
    if (Number.isFinite(mid)) s += `<circle class="mid" cx="${x(mid)}" cy="${y}" r="3.5"/>`;
    return `${s}</svg>`;
  }

  /** The scale under an interval column: the domain's ends and the reference line. */
  function intervalAxis(dom, ref, w = 240, h = 16) {
    const x = (v) => (((v - dom[0]) / (dom[1] - dom[0])) * (w - 12) + 6).toFixed(1);
    return `<svg class="interval-axis" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">` +
      `<text x="2" y="12">${esc(short(+dom[0].toPrecision(2)))}</text>` +
      (x(ref) > 40 && x(ref) < w - 40 ? `<text x="${x(ref)}" y="12" text-anchor="middle">${esc(short(ref))}</text>` : '') +
      `<text x="${w - 2}" y="12" text-anchor="end">${esc(short(+dom[1].toPrecision(2)))}</text></svg>`;
  }

  /** The family tree: nodes [{id, name, detail, mutation, parent (index), best}], parents first. */
  function treeSvg(nodes, search) {
    if (!nodes.length) return '<p class="muted">no candidates yet</p>';
    const BW = 150, BH = 40, GAP = 230, ROW = 54, PAD = 12;
    const kids = nodes.map(() => []), depth = [], row = [];
    nodes.forEach((n, i) => {
      const p = n.parent;
      depth[i] = p == null || p >= i ? 0 : depth[p] + 1;
      if (p != null && p < i) kids[p].push(i);
    });
    let next = 0;
    const place = (i) => {
      if (!kids[i].length) { row[i] = next++; return; }
      kids[i].forEach(place);
      row[i] = (row[kids[i][0]] + row[kids[i][kids[i].length - 1]]) / 2;
    };
    nodes.forEach((n, i) => { if (n.parent == null || n.parent >= i) place(i); });
    const X = (i) => PAD + depth[i] * (BW + GAP), Y = (i) => PAD + row[i] * ROW;
    const width = PAD * 2 + (Math.max(...depth) + 1) * (BW + GAP) - GAP, height = PAD * 2 + next * ROW - (ROW - BH);
    let edges = '', boxes = '';
    nodes.forEach((n, i) => {
      const p = n.parent;
      if (p != null && p < i) {
        const x1 = X(p) + BW, y1 = Y(p) + BH / 2, x2 = X(i), y2 = Y(i) + BH / 2, mx = (x1 + x2) / 2;
        const label = n.mutation ? clip(n.mutation, 30) : '';
        edges += `<g class="edge"><title>${esc(n.mutation || '(no mutation)')}</title>` +
          `<path d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 2},${y2}"/>` +
          // The label sits where the curve is not: above it for a child level with or above its
          // parent, below it for a child lower down.
          (label ? `<text x="${x2 - 8}" y="${y2 > y1 ? y2 + 14 : y2 - 6}" text-anchor="end">${esc(label)}</text>` : '') + '</g>';
      }
      const box = `<rect x="${X(i)}" y="${Y(i)}" width="${BW}" height="${BH}" rx="5"/>` +
        `<text class="name" x="${X(i) + 10}" y="${Y(i) + 17}">${esc(clip(n.name, 18))}</text>` +
        `<text class="detail" x="${X(i) + 10}" y="${Y(i) + 32}">${esc(clip(n.detail || '', 22))}</text>`;
      const tip = `<title>${esc(`${n.name}${n.detail ? `: ${n.detail}` : ''}${n.best ? ' (best)' : ''}`)}</title>`;
      boxes += n.id != null
        ? `<a class="node${n.best ? ' best' : ''}" href="${esc(cellHref(search, n.id))}">${tip}${box}</a>`
        : `<g class="node${n.best ? ' best' : ''}">${tip}${box}</g>`;
    });
    return `<svg id="tree-svg" class="tree" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="family tree of the best cells">${edges}${boxes}</svg>`;
  }

  // ---------------------------------------------------------------------------------------------
  // Charts (uPlot): a group of charts that share the x range (zoom one, all follow), keep the
  // user's zoom when new data arrives, zoom on the mouse wheel and reset on double-click.

  const COLOURS = ['#1f6fd1', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
  const alpha = (hex, a) => `${hex}${Math.round(a * 255).toString(16).padStart(2, '0')}`;
  let syncKeys = 0;

  /** The first and last x of a chart's data. */
  function fullX(u) {
    const xs = u.data[0];
    return xs && xs.length ? [xs[0], xs[xs.length - 1]] : null;
  }

  /** Wheel zoom on x around the pointer (a uPlot plugin). */
  function wheelZoom(factor = 0.8) {
    return {
      hooks: {
        ready: (u) => {
          u.over.addEventListener('wheel', (e) => {
            const full = fullX(u);
            if (!full || full[1] <= full[0]) return;
            e.preventDefault();
            const rect = u.over.getBoundingClientRect();
            const at = u.posToVal(e.clientX - rect.left, 'x');
            const { min, max } = u.scales.x;
            const f = e.deltaY < 0 ? factor : 1 / factor;
            let lo = at - (at - min) * f, hi = at + (max - at) * f;
            const span = Math.min(hi - lo, full[1] - full[0]);
            if (lo < full[0]) { lo = full[0]; hi = lo + span; }
            if (hi > full[1]) { hi = full[1]; lo = hi - span; }
            u.setScale('x', { min: lo, max: hi });
          }, { passive: false });
        },
      },
    };
  }

  /** The shown x range, on the chart's container (data-x-min, data-x-max): for tests and tools. */
  function mark(u) {
    const el = u.root.parentElement;
    if (el && u.scales.x.min != null) {
      el.dataset.xMin = String(+u.scales.x.min.toPrecision(6));
      el.dataset.xMax = String(+u.scales.x.max.toPrecision(6));
    }
  }

  class ChartGroup {
    constructor() {
      this.charts = [];
      this.range = null; // the user's x zoom, or null: everything
      this.quiet = false; // true while we set scales ourselves
      this.key = `sync${++syncKeys}`;
    }

    /** A uPlot chart in `el`; opts are uPlot options without size, cursor and x scale. */
    add(el, opts, data, height = 240) {
      const group = this;
      const o = Object.assign({}, opts, {
        width: Math.max(280, el.clientWidth || 400),
        height,
        cursor: { sync: { key: this.key }, drag: { x: true, y: false } },
        scales: Object.assign({ x: { time: false } }, opts.scales || {}),
        plugins: [wheelZoom()].concat(opts.plugins || []),
        hooks: Object.assign({}, opts.hooks || {}, { setScale: [(u, key) => { if (key === 'x') { mark(u); group.scaled(u); } }] }),
      });
      this.quiet = true;
      const u = new uPlot(o, data, el);
      if (this.range) u.setScale('x', this.range);
      this.quiet = false;
      this.charts.push(u);
      return u;
    }

    /** A chart's x scale changed: remember the zoom and apply it to the others. */
    scaled(u) {
      if (this.quiet) return;
      const { min, max } = u.scales.x;
      const full = fullX(u);
      const eps = full ? (full[1] - full[0]) * 1e-9 : 0;
      this.range = !full || (min <= full[0] + eps && max >= full[1] - eps) ? null : { min, max };
      this.quiet = true;
      for (const c of this.charts) if (c !== u) c.setScale('x', { min, max });
      this.quiet = false;
    }

    /** New data for chart i, keeping the zoom (the y axes rescale to what is visible). */
    update(i, data) {
      const u = this.charts[i];
      if (!u) return;
      this.quiet = true;
      u.setData(data);
      if (this.range) u.setScale('x', this.range);
      this.quiet = false;
    }

    resize() {
      for (const u of this.charts) {
        const w = u.root.parentElement ? u.root.parentElement.clientWidth : 0;
        if (w > 0 && Math.abs(w - u.width) > 2) u.setSize({ width: Math.max(280, w), height: u.height });
      }
    }

    destroy() {
      for (const u of this.charts) u.destroy();
      this.charts = [];
    }
  }

  /** A number as chart data: strings ("NaN", "inf") and nulls become gaps. */
  const yv = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const legendValue = (u, v) => numT(v);
  /** Short numbers for axis ticks: no trailing zeros. */
  const short = (v) => (v == null ? '' : Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-4) ? v.toExponential(1).replace('e+', 'e') : String(+v.toPrecision(4)));
  const tickValues = (u, vals) => vals.map(short);

  /** A log scale's range and ticks that suit values within one decade (a constant learning rate). */
  const logRange = (u, min, max) => (min == null || !(min > 0) ? [1e-4, 1] : [min / 2, max * 2]);
  function logSplits(u, axis, min, max) {
    const out = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= min && v <= max) out.push(v);
      }
    }
    return out.length > 6 ? out.filter((v) => Math.abs(Math.log10(v) % 1) < 1e-9) : out;
  }

  // ---------------------------------------------------------------------------------------------
  // Live updates and the header's indicator.

  const live = { es: null, version: null };
  function setLive(state, text) {
    const el = $('#live');
    if (!el) return;
    el.className = state;
    el.title = `live updates: ${text}`;
    $('#live-text').textContent = state === 'open' ? 'live' : state === 'down' ? 'offline' : 'connecting';
  }
  function connect() {
    if (typeof EventSource === 'undefined') { setLive('down', 'not supported by this browser'); return; }
    const es = new EventSource('/events');
    live.es = es;
    es.addEventListener('open', () => setLive('open', 'connected'));
    es.addEventListener('change', (e) => {
      setLive('open', `connected, store version ${e.data}`);
      live.version = e.data;
      onChange();
    });
    es.addEventListener('error', () => {
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. the server answered with an error): try again ourselves.
        setLive('down', 'disconnected; retrying');
        if (live.es === es) setTimeout(connect, 3000);
      } else {
        setLive('down', 'disconnected; reconnecting');
      }
    });
  }

  // Changes come up to a few times a second while workers report; the page redraws at most
  // every MIN_GAP_MS (the last change always gets its redraw) and not at all while hidden, so a
  // dashboard left open takes next to no CPU from the workers on the same machine.
  const MIN_GAP_MS = 2000;
  let lastRedraw = 0;
  let pendingRedraw = null;
  let missedWhileHidden = false;
  function onChange() {
    if (document.hidden) { missedWhileHidden = true; return; }
    const wait = lastRedraw + MIN_GAP_MS - Date.now();
    if (wait > 0) {
      if (!pendingRedraw) pendingRedraw = setTimeout(() => { pendingRedraw = null; onChange(); }, wait);
      return;
    }
    lastRedraw = Date.now();
    refresh();
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && missedWhileHidden) { missedWhileHidden = false; onChange(); }
  });

  // ---------------------------------------------------------------------------------------------
  // Views and the router. A view is {refresh(): Promise, destroy()}; refresh fetches its JSON and
  // renders in place. Refreshes never overlap; a change during one runs another after it.

  const main = () => $('#main');
  let view = null;
  let busy = false, again = false;

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      do {
        again = false;
        const v = view;
        if (!v) break;
        try {
          await v.refresh();
        } catch (e) {
          // A bug in a renderer: say so on the page rather than in the console.
          if (v === view) fail(`could not show this view: ${e && e.message ? e.message : e}`);
        }
      } while (again);
    } finally {
      busy = false;
    }
  }

  /** The main area shows only a message (a failed fetch, a missing run). */
  function fail(text, status) {
    const m = main();
    const what = status === 404 ? '<h1>Not found</h1>' : '<h1>Cannot show this view</h1>';
    m.innerHTML = `${what}<p id="not-found" class="error-text">${esc(text)}</p><p><a href="/">Back to the overview.</a></p>`;
    if (view) view.failed = true;
  }

  function setTitle(t) { document.title = t ? `${t} · cellc dashboard` : 'cellc dashboard'; }

  const ROUTES = [
    [/^\/$/, () => overviewView()],
    [/^\/experiments\/([^/]+)$/, (m) => experimentView(decodeURIComponent(m[1]))],
    [/^\/experiments\/([^/]+)\/cells\/([^/]+)$/, (m) => cellView(decodeURIComponent(m[1]), decodeURIComponent(m[2]))],
    [/^\/runs\/([^/]+)$/, (m) => runView(decodeURIComponent(m[1]))],
  ];
  const isAppPath = (path) => ROUTES.some(([re]) => re.test(path));

  /** Shows the view for the current URL (a new one: state is per page). */
  function route() {
    if (view) view.destroy();
    const path = location.pathname.replace(/(.)\/+$/, '$1');
    const hit = ROUTES.map(([re, make]) => [path.match(re), make]).find(([m]) => m);
    main().innerHTML = '<p class="muted">Loading…</p>';
    view = hit ? hit[1](hit[0]) : { refresh: async () => fail(`no page at ${path}`, 404), destroy() {} };
    refresh();
  }

  function navigate(url) {
    history.pushState(null, '', url);
    route();
    window.scrollTo(0, 0);
  }

  // Internal links navigate without reloading; real hrefs stay for middle-click and new tabs.
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target.closest && e.target.closest('a');
    if (!a || a.hasAttribute('download')) return;
    const target = a.getAttribute('target');
    if (target && target !== '_self') return;
    const href = a.getAttribute('href') || a.getAttribute('xlink:href');
    if (!href || href.startsWith('#')) return;
    const url = new URL(href, location.href);
    if (url.origin !== location.origin || !isAppPath(url.pathname.replace(/(.)\/+$/, '$1'))) return;
    e.preventDefault();
    navigate(url.pathname + url.search + url.hash);
  });
  window.addEventListener('popstate', route);

  // "show all" / "show fewer" buttons under long tables: the view redraws from what it has.
  document.addEventListener('click', (e) => {
    const b = e.target.closest && e.target.closest('button[data-more], button[data-less]');
    if (!b || !view || !view.shown) return;
    if (b.dataset.more) view.shown.add(b.dataset.more); else view.shown.delete(b.dataset.less);
    if (view.redraw) view.redraw();
  });

  /**
   * The common shape of a view: fetch `api`, then `draw(data, v)`; `first` is true on the first
   * draw (build the skeleton), later draws update it in place.
   */
  function jsonView(api, draw, extra = {}) {
    const v = Object.assign({ alive: true, data: null, drawn: false, shown: new Set() }, extra);
    v.refresh = async () => {
      const r = await getJSON(api);
      if (!v.alive) return;
      if (!r.ok) {
        // Keep what is shown when a later fetch fails (the server restarting); say so on top.
        if (v.drawn && r.status !== 404) { note(`could not refresh: ${r.error}`); return; }
        fail(r.error, r.status);
        v.drawn = false;
        return;
      }
      note('');
      v.data = r.data;
      v.redraw();
    };
    v.redraw = () => {
      if (!v.data || !v.alive) return;
      const first = !v.drawn;
      v.drawn = true;
      draw(v.data, v, first);
    };
    v.destroy = () => {
      v.alive = false;
      if (extra.destroy) extra.destroy.call(v);
    };
    return v;
  }

  /** A line under the header for a transient problem ('' hides it). */
  function note(text) {
    let el = $('#note');
    if (!text) { if (el) el.remove(); return; }
    if (!el) {
      el = document.createElement('p');
      el.id = 'note';
      el.className = 'note';
      main().prepend(el);
    }
    el.textContent = text;
  }

  // ---------------------------------------------------------------------------------------------
  // Overview: experiments, runs in flight, workers, errors, the latest results.

  function overviewView() {
    setTitle('');
    return jsonView('/api/overview', (d, v, first) => {
      if (typeof d.now_ms === 'number') skew = d.now_ms - Date.now();
      if (d.store) $('#store').textContent = d.store;
      if (first) {
        main().innerHTML = `
          <h1>Overview</h1>
          <div id="ov-store-error"></div>
          <div id="ov-tiles"></div>
          <section><h2>Experiments</h2><div id="ov-experiments"></div></section>
          <section><h2>Runs in flight</h2><div id="ov-in-flight"></div></section>
          <section><h2>Latest results</h2><div id="ov-recent"></div></section>
          <section><h2>Errors and retried runs</h2><div id="ov-errors"></div></section>
          <section><h2>Workers</h2><div id="ov-workers"></div></section>`;
      }
      const kinds = new Map(d.experiments.map((e) => [e.name, e.kind]));
      const candidate = (r) => (kinds.get(r.experiment) === 'search' && r.candidate_id != null
        ? link(cellHref(r.experiment, r.candidate_id), r.candidate) : esc(r.candidate));
      const exp = (r) => link(expHref(r.experiment), r.experiment);
      // The last read of the store failed: what is shown is from before.
      fill('ov-store-error', d.store_error
        ? `<p class="note error-text">cannot read the store right now (showing what was read before): ${esc(d.store_error)}</p>` : '');
      const alive = d.workers.filter((w) => w.alive).length;
      const total = d.experiments.reduce((a, e) => [a[0] + e.runs, a[1] + e.done, a[2] + e.queued], [0, 0, 0]);
      fill('ov-tiles', tiles([
        ['experiments', int(d.experiments.length)],
        ['runs done', `${int(total[1])}<small> / ${int(total[0])}</small>`],
        ['in flight', int(d.in_flight.length)],
        ['queued', int(total[2])],
        ['workers alive', `${int(alive)}<small> / ${int(d.workers.length)}</small>`],
        ['errors', int(d.errors.length)],
      ]));
      fill('ov-experiments', table([
        { h: 'experiment', f: (e) => link(expHref(e.name), e.name) },
        { h: 'kind', f: (e) => esc(e.kind) },
        { h: 'state', f: (e) => badge(e.state) },
        { h: 'progress', f: (e) => bar(e.done, e.runs, e.failed), c: 'nowrap' },
        { h: 'in flight', f: (e) => int(e.in_flight), c: 'num' },
        { h: 'queued', f: (e) => int(e.queued), c: 'num' },
        { h: 'failed', f: (e) => (e.failed ? `<span class="bad-text">${int(e.failed)}</span>` : '0'), c: 'num' },
        { h: 'candidates', f: (e) => int(e.candidates), c: 'num' },
        { h: 'created', f: (e) => ago(e.created_ms) },
      ], d.experiments.slice().sort((a, b) => (b.created_ms || 0) - (a.created_ms || 0)), { id: 'experiments', limit: 100, all: v.shown.has('experiments'), empty: 'no experiments in this store yet' }));
      fill('ov-in-flight', table([
        { h: 'run', f: (r) => runLink(r.run) },
        { h: 'experiment', f: exp },
        { h: 'candidate', f: candidate },
        { h: 'task', f: (r) => esc(r.task) },
        { h: 'stage', f: (r) => esc(r.stage) },
        { h: 'worker', f: (r) => `<span class="mono small">${esc(r.worker)}</span>` },
        { h: 'elapsed', f: (r) => dur(r.elapsed_s), c: 'num' },
        { h: 'step', f: (r) => int(r.step), c: 'num' },
        { h: 'validations', f: (r) => int(r.validations), c: 'num' },
        { h: 'last valid', f: (r) => num(r.valid), c: 'num' },
        { h: 'lease left', f: (r) => dur(r.lease_left_s), c: 'num' },
      ], d.in_flight, { id: 'in-flight', limit: 50, all: v.shown.has('in-flight'), empty: 'nothing is being trained right now' }));
      fill('ov-recent', table([
        { h: 'run', f: (r) => runLink(r.run) },
        { h: 'experiment', f: exp },
        { h: 'candidate', f: candidate },
        { h: 'task', f: (r) => esc(r.task) },
        { h: 'stage', f: (r) => esc(r.stage) },
        { h: 'valid', f: (r) => num(r.valid), c: 'num' },
        { h: 'test', f: (r) => num(r.test), c: 'num' },
        { h: 'outcome', f: (r) => badge(r.outcome) },
        { h: 'steps', f: (r) => int(r.steps), c: 'num' },
        { h: 'time', f: (r) => dur(r.seconds), c: 'num' },
        { h: 'finished', f: (r) => ago(r.finished_ms) },
      ], d.recent, { id: 'recent-runs', empty: 'no run has finished yet' }));
      fill('ov-errors', table([
        { h: 'run', f: (r) => runLink(r.run) },
        { h: 'experiment', f: exp },
        { h: 'candidate', f: candidate },
        { h: 'task', f: (r) => esc(r.task) },
        { h: 'stage', f: (r) => esc(r.stage) },
        { h: 'outcome', f: (r) => `<span class="bad-text">${esc(r.outcome)}</span>` },
        { h: 'when', f: (r) => (r.finished_ms ? ago(r.finished_ms) : r.worker ? `<span class="mono small">${esc(r.worker)}</span>` : DASH) },
      ], d.errors, { id: 'errors', limit: 50, all: v.shown.has('errors'), empty: 'none' }));
      fill('ov-workers', table([
        { h: 'worker', f: (w) => `<span class="mono">${esc(w.worker)}</span>` },
        { h: 'status', f: (w) => badge(w.alive ? 'alive' : 'gone') },
        { h: 'runs', f: (w) => int(w.runs), c: 'num' },
        { h: 'runs/hour', f: (w) => num(w.runs_per_hour, 3), c: 'num' },
        { h: 'busy', f: (w) => pct(w.busy), c: 'num' },
        { h: 'last heartbeat', f: (w) => (typeof w.last_seen_s === 'number' ? ago(serverNow() - w.last_seen_s * 1000) : DASH) },
      ], d.workers.slice().sort((a, b) => (b.alive - a.alive) || (a.last_seen_s - b.last_seen_s)),
      { id: 'workers', limit: 50, all: v.shown.has('workers'), empty: 'no worker has run yet', rowClass: (w) => (w.alive ? '' : 'dim') }));
    });
  }

  // ---------------------------------------------------------------------------------------------
  // An experiment: the kind (search, study, comparison) decides the view; every kind ends with its
  // runs list, fetched lazily.

  function experimentView(name) {
    setTitle(name);
    const v = jsonView(`/api/experiments/${enc(name)}`, (d, v, first) => {
      const kind = d.kind;
      if (first) v.kind = kind;
      if (kind === 'search') drawSearch(name, d, v, first);
      else if (kind === 'study') drawStudy(name, d, v, first);
      else if (kind === 'compare') drawCompare(name, d, v, first);
      else { main().innerHTML = `<h1>${esc(name)}</h1><p>This experiment is of a kind the dashboard cannot show (${esc(kind)}).</p>`; return; }
      runsSection(name, v, first, totalRuns(d));
    }, {
      destroy() { if (this.charts) this.charts.destroy(); window.removeEventListener('resize', this.onResize); },
    });
    v.onResize = () => { if (v.charts) v.charts.resize(); };
    window.addEventListener('resize', v.onResize);
    const base = v.refresh;
    v.refresh = async () => { await base(); if (v.alive && v.runsOpen && v.drawn) await loadRuns(name, v); };
    return v;
  }

  const totalRuns = (d) => (d.counts ? d.counts.jobs : d.runs) || 0;

  /** The heading of an experiment page. */
  const expHead = (name, kind, d, extra = '') =>
    `<p class="crumbs"><a href="/">overview</a> › ${esc(kind)}</p><h1>${esc(name)} ${badge(d.state)}${d.created_ms ? ` <small class="muted">created ${ago(d.created_ms)}</small>` : ''}</h1>${extra}`;

  // ---- search

  function drawSearch(name, d, v, first) {
    if (first) {
      main().innerHTML = `
        <div id="s-head"></div>
        <div id="s-tiles"></div>
        <div class="grid2">
          <section><h2>Best mutant score over time</h2><div id="score-chart" class="chart"></div><p class="hint">relative to the GRU (1.0); vertical bars: confirmed intervals. Drag or wheel to zoom, double-click to reset.</p></section>
          <section><h2>Confirmation</h2><div id="s-confirmed"></div></section>
        </div>
        <section><h2>Leaderboard</h2><div id="s-leaderboard"></div></section>
        <section><h2>Family tree of the best cells</h2><div id="tree" class="scroll tree-box"></div></section>
        <section><h2>Candidates</h2>
          <p><input id="candidates-filter" type="search" placeholder="filter candidates (name, status, why, mutation)" size="48"></p>
          <div id="s-candidates"></div></section>
        <section><details id="rounds-section"><summary>Rounds</summary><div id="s-rounds"></div></details></section>
        <section id="runs-section-wrap"></section>`;
      $('#candidates-filter').addEventListener('input', () => v.redraw());
    }
    const c = d.counts || {}, t = d.throughput || {};
    fill('s-head', expHead(name, 'search', d, `<p class="muted">tasks: ${d.tasks.map(esc).join(', ')} · <a href="#runs-section">all runs</a></p>`));
    fill('s-tiles', tiles([
      ['candidates drawn', int(c.generated), 'mutants generated'],
      ['rejected', int(c.rejected), 'did not compile or were invalid'],
      ['duplicates', int(c.duplicates)],
      ['dropped by the filter', int(c.filtered), 'failed the memorisation filter'],
      ['dropped as weak', int(c.weak), 'below the gate on the first task'],
      ['scored', int(c.evaluated)],
      ['stopped early', int(c.stopped_early)],
      ['running', int(c.running)],
      ['runs done', `${int(c.jobs_done)}<small> / ${int(c.jobs)}</small>`],
      ['best score', num(c.best)],
      ['runs / hour', num(t.runs_per_hour, 3)],
      ['scored / CPU hour', num(t.evaluated_per_cpu_hour, 3)],
      ['workers', int(t.workers), t.busy_share != null ? `busy ${pct(t.busy_share)}` : ''],
      ['wall time', dur(t.wall_seconds)],
      ['CPU time', dur(t.cpu_seconds)],
    ]));
    const byName = new Map(d.candidates.map((x) => [x.name, x.id]));
    const byId = new Map(d.candidates.map((x) => [x.id, x.name]));
    const cellLink = (cname, id = byName.get(cname)) => (id != null ? link(cellHref(name, id), cname) : esc(cname));

    // Confirmed intervals.
    const conf = d.confirmed || [];
    if (conf.length) {
      const dom = domain(conf.map((x) => [x.low, x.high]), 1);
      fill('s-confirmed', table([
        { h: 'cell', f: (x) => cellLink(x.name, x.candidate) },
        { h: 'score', f: (x) => num(x.score), c: 'num' },
        { h: 'interval', f: (x) => `[${num(x.low)}, ${num(x.high)}]`, c: 'num nowrap' },
        { h: intervalAxis(dom, 1, 160), f: (x) => intervalSvg(x.low, x.high, x.score, dom, 1, x.beats_gru ? 'good' : 'neutral', 160), c: 'plot' },
        { h: 'verdict', f: (x) => (x.beats_gru ? '<span class="badge good wrap">beats the GRU, confirmed</span>' : '<span class="badge neutral wrap">inconclusive / not better</span>') },
      ], conf, { id: 'confirmed' }) + `<p class="hint">the best cells rerun over more seeds; the interval is their score relative to the GRU${d.confirmed_at_hours != null ? `, confirmed after ${hoursText(d.confirmed_at_hours)}` : ''}.</p>`);
    } else {
      fill('s-confirmed', '<p class="muted">no confirmation yet: the best cells are confirmed over more seeds when the search ends.</p>');
    }

    // Leaderboard.
    const taskCols = [];
    d.tasks.forEach((task, i) => {
      taskCols.push({ h: `${esc(task)}<br><small>acc</small>`, f: (x) => num(x.accuracy && x.accuracy[i]), c: 'num', t: `best validation ${task}` });
      taskCols.push({ h: `${esc(task)}<br><small>rel</small>`, f: (x) => num(x.relative && x.relative[i]), c: 'num', t: `relative to the GRU on ${task}` });
    });
    fill('s-leaderboard', table([
      { h: '#', f: (x) => String(x.rank), c: 'num' },
      { h: 'cell', f: (x) => cellLink(x.name, x.id) },
      { h: 'score', f: (x) => `<b>${num(x.score)}</b>`, c: 'num' },
      ...taskCols,
      { h: 'parent', f: (x) => (x.parent ? cellLink(x.parent, x.parent_id) : DASH) },
      { h: 'mutation', f: (x) => clipped(x.mutation, 60) },
      { h: 'runs', f: (x) => int(x.runs), c: 'num' },
    ], d.leaderboard.map((x, i) => Object.assign({ rank: i + 1 }, x)),
    { id: 'leaderboard', limit: 50, all: v.shown.has('leaderboard'), empty: 'no cell has been scored yet', rowClass: (x) => (x.name === 'gru' ? 'ref' : '') }));

    fill('tree', treeSvg(d.tree || [], name));

    // Candidates, filtered.
    const q = ($('#candidates-filter').value || '').trim().toLowerCase();
    const cands = q ? d.candidates.filter((x) => `${x.name} ${x.status} ${x.why} ${x.mutation}`.toLowerCase().includes(q)) : d.candidates;
    fill('s-candidates', table([
      { h: 'id', f: (x) => String(x.id), c: 'num' },
      { h: 'cell', f: (x) => cellLink(x.name, x.id) },
      { h: 'round', f: (x) => int(x.round), c: 'num' },
      { h: 'status', f: (x) => badge(x.status) },
      { h: 'why', f: (x) => esc(x.why) },
      { h: 'score', f: (x) => num(x.score), c: 'num' },
      { h: 'parent', f: (x) => (x.parent != null ? cellLink(byId.get(x.parent) || `#${x.parent}`, x.parent) : DASH) },
      { h: 'mutation', f: (x) => clipped(x.mutation, 70) },
    ], cands, { id: 'candidates', limit: 100, all: v.shown.has('candidates'), empty: q ? 'no candidate matches' : 'no candidates yet' }));

    fill('s-rounds', table([
      { h: 'round', f: (r) => String(r.round), c: 'num' },
      { h: 'generated', f: (r) => int(r.generated), c: 'num' },
      { h: 'rejected', f: (r) => int(r.rejected), c: 'num' },
      { h: 'duplicates', f: (r) => int(r.duplicates), c: 'num' },
      { h: 'planned', f: (r) => ago(r.planned_ms) },
    ], (d.rounds || []).slice().reverse(), { id: 'rounds', limit: 50, all: v.shown.has('rounds'), empty: 'no rounds yet' }));

    scoreChart(d, v);
  }

  /** Hours as words: "42 s", "12 min", "3.5 h". */
  function hoursText(h) {
    const s = h * 3600;
    return s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${h.toFixed(1)} h`;
  }

  /** The best mutant score against time, as a step line, with the confirmed intervals drawn on. */
  function scoreChart(d, v) {
    const el = $('#score-chart');
    const hist = d.score_history || [];
    const conf = (d.confirmed || []).filter((c) => Number.isFinite(c.low) && Number.isFinite(c.high));
    const tConf = typeof d.confirmed_at_hours === 'number' && conf.length ? d.confirmed_at_hours : null;
    if (!hist.length) {
      if (v.charts) { v.charts.destroy(); v.charts = null; }
      fill('score-chart', '<p class="muted empty">no mutant has been scored yet</p>');
      return;
    }
    if (el.dataset.html) { el.innerHTML = ''; delete el.dataset.html; }
    // Seconds, minutes or hours on the x axis, whichever reads best.
    const maxH = Math.max(hist[hist.length - 1][0], tConf || 0);
    const [unit, mul] = maxH * 3600 < 120 ? ['seconds', 3600] : maxH < 2 ? ['minutes', 60] : ['hours', 1];
    const data = [hist.map((p) => p[0] * mul), hist.map((p) => yv(p[1]))];
    const key = `${unit}|${tConf}|${conf.map((c) => `${c.name}:${c.low}:${c.high}`).join(',')}`;
    if (v.charts && v.chartKey === key) { v.charts.update(0, data); return; }
    if (v.charts) v.charts.destroy();
    v.chartKey = key;
    v.charts = new ChartGroup();
    const tx = tConf != null ? tConf * mul : null;
    const drawConfirmed = (u) => {
      const ctx = u.ctx;
      ctx.save();
      // The GRU's level.
      const y1 = u.valToPos(1, 'y', true);
      ctx.strokeStyle = '#888';
      ctx.setLineDash([4, 4]);
      ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(u.bbox.left, y1); ctx.lineTo(u.bbox.left + u.bbox.width, y1); ctx.stroke();
      ctx.setLineDash([]);
      if (tx != null) {
        conf.forEach((c, i) => {
          const x = u.valToPos(tx, 'x', true) + (i - (conf.length - 1) / 2) * 14 * devicePixelRatio;
          const lo = u.valToPos(c.low, 'y', true), hi = u.valToPos(c.high, 'y', true), mid = u.valToPos(c.score, 'y', true);
          ctx.strokeStyle = c.beats_gru ? '#1a7f37' : '#c2410c';
          ctx.fillStyle = ctx.strokeStyle;
          ctx.lineWidth = 2 * devicePixelRatio;
          ctx.beginPath(); ctx.moveTo(x, lo); ctx.lineTo(x, hi);
          ctx.moveTo(x - 4 * devicePixelRatio, lo); ctx.lineTo(x + 4 * devicePixelRatio, lo);
          ctx.moveTo(x - 4 * devicePixelRatio, hi); ctx.lineTo(x + 4 * devicePixelRatio, hi); ctx.stroke();
          ctx.beginPath(); ctx.arc(x, mid, 3.5 * devicePixelRatio, 0, 2 * Math.PI); ctx.fill();
          ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
          // Names alternate above and below their bars so that neighbours do not overlap.
          ctx.textAlign = 'center';
          ctx.textBaseline = i % 2 ? 'top' : 'bottom';
          ctx.fillText(c.name, x, i % 2 ? lo + 4 * devicePixelRatio : hi - 4 * devicePixelRatio);
        });
      }
      ctx.restore();
    };
    const lows = conf.map((c) => c.low), highs = conf.map((c) => c.high);
    v.charts.add(el, {
      series: [
        { label: `${unit} since start`, value: legendValue },
        { label: 'best mutant score', stroke: COLOURS[0], width: 2, fill: alpha(COLOURS[0], 0.08), paths: uPlot.paths.stepped({ align: 1 }), points: { show: true, size: 5 }, value: legendValue },
      ],
      scales: {
        x: { time: false, range: (u, min, max) => [0, Math.max(max, tx || 0) * 1.06 || 1] },
        y: { range: (u, min, max) => {
          const lo = Math.min(min, 1, ...lows), hi = Math.max(max, 1, ...highs), pad = (hi - lo || 0.1) * 0.14;
          return [lo - pad, hi + pad];
        } },
      },
      axes: [{ label: `${unit} since start`, values: tickValues }, { label: 'score (GRU = 1)', values: tickValues, size: 56 }],
      hooks: { draw: [drawConfirmed] },
    }, data, 260);
  }

  // ---- study

  function drawStudy(name, d, v, first) {
    if (first) {
      main().innerHTML = `
        <div id="st-head"></div>
        <div id="st-stages"></div>
        <section><h2>Results beside the paper's</h2><div id="st-table"></div></section>
        <section><h2>The paper's claims</h2><div id="st-claims"></div></section>
        <section id="runs-section-wrap"></section>`;
    }
    fill('st-head', expHead(name, `study of ${d.study || 'a paper'}`, d, `<p class="muted">reproducing ${esc(d.study || 'a paper')}: ${int(d.cells.length)} cells, ${int((d.claims || []).length)} claims · <a href="#runs-section">all runs</a></p>`));
    const stages = Object.entries(d.stages || {});
    const cost = d.cost || {};
    fill('st-stages', tiles([
      ...stages.map(([s, x]) => [s, `${bar(x.done, x.runs)}`]),
      ['runs', int(d.runs)],
      ['CPU time', dur(cost.cpu_seconds)],
    ]));
    const tasks = (d.tasks || []).slice();
    for (const c of d.cells) for (const t of Object.keys(c.tasks || {})) if (!tasks.includes(t)) tasks.push(t);
    const cellCol = (t) => ({
      h: esc(t),
      f: (c) => {
        const x = c.tasks && c.tasks[t];
        if (!x) return DASH;
        const paper = x.paper != null ? `<span class="paper" title="the paper's value">paper ${num(x.paper, 3)}</span>` : '<span class="paper">paper –</span>';
        return `${pm(x.mean, x.ci95)} <span class="muted small">(${int(x.seeds)} seed${x.seeds === 1 ? '' : 's'})</span> ${paper}`;
      },
      c: 'num nowrap',
    });
    fill('st-table', table([
      { h: 'cell', f: (c) => `<b>${esc(c.cell)}</b>` },
      ...tasks.map(cellCol),
      { h: 'score', f: (c) => num(c.score), c: 'num', t: 'relative to the first cell' },
    ], d.cells, { id: 'study-table', empty: 'no results yet' }) + '<p class="hint">mean ± 95% interval over seeds; the paper\'s number in grey.</p>');
    fill('st-claims', table([
      { h: 'claim', f: (c) => esc(c.claim) },
      { h: 'task', f: (c) => esc(c.task) },
      { h: 'better', f: (c) => esc(c.better) },
      { h: 'worse', f: (c) => esc(c.worse) },
      { h: 'difference', f: (c) => (c.difference ? `${pm(c.difference.mean, c.difference.half_width)} <span class="muted small">p ${pval(c.difference.p_value)}</span>` : DASH), c: 'num nowrap' },
      { h: 'verdict', f: (c) => badge(c.verdict) },
    ], d.claims || [], { id: 'claims', empty: 'this study makes no claims', rowClass: (c) => (c.verdict === 'not tested' ? 'dim' : '') }));
  }

  // ---- comparison

  function drawCompare(name, d, v, first) {
    if (first) {
      main().innerHTML = `
        <div id="c-head"></div>
        <div id="c-tiles"></div>
        <section><h2>Cells</h2><div id="c-cells"></div></section>
        <section><h2>Paired differences</h2><div id="c-diffs"></div></section>
        <section><details id="c-config-box"><summary>Training configuration</summary><pre id="c-config"></pre></details></section>
        <section id="runs-section-wrap"></section>`;
    }
    fill('c-head', expHead(name, 'comparison', d, `<p class="muted">${esc(d.metric)} on ${esc(d.task)} (${d.higher_is_better ? 'higher' : 'lower'} is better) · <a href="#runs-section">all runs</a></p>`));
    const plan = d.plan ? Object.entries(d.plan).map(([k, x]) => `${k} ${typeof x === 'object' ? Object.entries(x).map(([a, b]) => `${a} ${b}`).join(', ') : x}`).join('; ') : '';
    fill('c-tiles', tiles([
      ['task', esc(d.task)],
      ['metric', `${esc(d.metric)} ${d.higher_is_better ? '↑' : '↓'}`],
      ['seeds', int(d.seeds), d.first_seed != null ? `from seed ${d.first_seed}` : ''],
      ['level', pct(d.level)],
      ['runs done', `${int(d.done)}<small> / ${int(d.runs)}</small>`],
      ['plan', `<small>${esc(d.plan_from || '')}</small>`, plan],
    ]));
    fill('c-cells', table([
      { h: 'cell', f: (c, i) => `<b>${esc(c.cell)}</b>` },
      { h: 'mean ± half width', f: (c) => (c.summary ? pm(c.summary.mean, c.summary.half_width) : DASH), c: 'num nowrap' },
      { h: 'n', f: (c) => int(c.summary && c.summary.n), c: 'num' },
      { h: 'per seed', f: (c) => `<span class="small">${(c.per_seed || []).map((x) => num(x)).join(', ')}</span>` },
    ], d.cells || [], { id: 'cells-summary', empty: 'no results yet' }));
    const diffs = d.differences || [];
    const dom = domain(diffs.map((x) => (x.summary ? [x.summary.mean - x.summary.half_width, x.summary.mean + x.summary.half_width] : [0, 0])), 0);
    fill('c-diffs', table([
      { h: 'difference', f: (x) => `<b>${esc(x.cell)}</b> − ${esc(x.minus)}` },
      { h: 'mean ± half width', f: (x) => (x.summary ? pm(x.summary.mean, x.summary.half_width) : DASH), c: 'num nowrap' },
      { h: 'p', f: (x) => pval(x.summary && x.summary.p_value), c: 'num' },
      { h: intervalAxis(dom, 0), f: (x) => (x.summary ? intervalSvg(x.summary.mean - x.summary.half_width, x.summary.mean + x.summary.half_width, x.summary.mean, dom, 0, x.verdict === 'better' ? 'good' : x.verdict === 'worse' ? 'bad' : 'neutral') : DASH), c: 'plot' },
      { h: 'verdict', f: (x) => badge(x.verdict) },
      { h: 'per seed', f: (x) => `<span class="small">${(x.per_seed || []).map((y) => num(y, 3)).join(', ')}</span>` },
    ], diffs, { id: 'differences', empty: 'a single cell: nothing to compare' }) +
      `<p class="hint">each cell minus ${esc(diffs[0] ? diffs[0].minus : 'the first cell')}, paired by seed, with ${pct(d.level)} intervals; the dashed line is no difference.</p>`);
    const cfg = $('#c-config');
    const text = JSON.stringify(d.config, null, 2);
    if (cfg.textContent !== text) cfg.textContent = text;
  }

  // ---- runs of an experiment (any kind): lazily fetched, with overlay checkboxes.

  function runsSection(name, v, first, total) {
    if (first) {
      const open = total <= 1000;
      $('#runs-section-wrap').innerHTML = `
        <details id="runs-section"${open ? ' open' : ''}><summary><h2>Runs <small class="muted">(${int(total)})</small></h2></summary>
          <p class="runs-tools"><input id="runs-filter" type="search" placeholder="filter runs (candidate, task, stage, outcome)" size="40">
            <button type="button" id="compare-runs" disabled>compare curves</button> <span class="muted small" id="compare-hint">tick runs to overlay their curves</span></p>
          <div id="runs-list"><p class="muted">Loading runs…</p></div></details>`;
      v.checked = new Set();
      v.runsOpen = open;
      $('#runs-section').addEventListener('toggle', (e) => {
        v.runsOpen = e.target.open;
        if (v.runsOpen) loadRuns(name, v);
      });
      $('#runs-filter').addEventListener('input', () => drawRuns(name, v));
      $('#runs-list').addEventListener('change', (e) => {
        const box = e.target.closest('input[data-run]');
        if (!box) return;
        if (box.checked) v.checked.add(box.dataset.run); else v.checked.delete(box.dataset.run);
        compareButton(v);
      });
      $('#compare-runs').addEventListener('click', () => {
        const ids = [...v.checked];
        if (ids.length) navigate(`${runHref(ids[0])}${ids.length > 1 ? `?with=${ids.slice(1).map(enc).join(',')}` : ''}`);
      });
      // (An open list is fetched by the view's refresh, right after this draw.)
    } else if (v.runsData) {
      drawRuns(name, v);
    }
  }

  function compareButton(v) {
    const b = $('#compare-runs');
    if (!b) return;
    b.disabled = v.checked.size === 0;
    $('#compare-hint').textContent = v.checked.size ? `${v.checked.size} run${v.checked.size > 1 ? 's' : ''} ticked` : 'tick runs to overlay their curves';
  }

  async function loadRuns(name, v) {
    const r = await getJSON(`/api/experiments/${enc(name)}/runs`);
    if (!v.alive || !$('#runs-list')) return;
    if (!r.ok) { fill('runs-list', `<p class="error-text">could not load the runs: ${esc(r.error)}</p>`); return; }
    v.runsData = r.data.runs.slice().sort((a, b) => b.run - a.run);
    drawRuns(name, v);
  }

  function drawRuns(name, v) {
    if (!v.runsData) return;
    const kind = v.kind;
    const q = ($('#runs-filter').value || '').trim().toLowerCase();
    const rows = q ? v.runsData.filter((r) => `#${r.run} ${r.candidate} ${r.task} ${r.stage} ${r.state} ${r.outcome}`.toLowerCase().includes(q)) : v.runsData;
    fill('runs-list', table([
      { h: 'overlay', f: (r) => `<input type="checkbox" data-run="${esc(r.run)}"${v.checked.has(String(r.run)) ? ' checked' : ''} aria-label="overlay run ${esc(r.run)}">`, c: 'center' },
      { h: 'run', f: (r) => runLink(r.run) },
      { h: 'candidate', f: (r) => (kind === 'search' ? link(cellHref(name, r.candidate_id), r.candidate) : esc(r.candidate)) },
      { h: 'task', f: (r) => esc(r.task) },
      { h: 'stage', f: (r) => esc(r.stage) },
      { h: 'state', f: (r) => badge(r.state) },
      { h: 'valid', f: (r) => num(r.valid), c: 'num' },
      { h: 'test', f: (r) => num(r.test), c: 'num' },
      { h: 'outcome', f: (r) => (r.outcome ? badge(r.outcome) : DASH) },
      { h: 'steps', f: (r) => int(r.steps), c: 'num' },
      { h: 'time', f: (r) => dur(r.seconds), c: 'num' },
      { h: 'finished', f: (r) => (r.finished_ms ? ago(r.finished_ms) : DASH) },
    ], rows, { id: 'runs', limit: 100, all: v.shown.has('runs'), empty: q ? 'no run matches' : 'no runs yet' }));
    compareButton(v);
  }

  // ---------------------------------------------------------------------------------------------
  // A candidate cell of a search: standing, per-task results, source, derivative, runs.

  function cellView(search, id) {
    setTitle(`${search} · cell ${id}`);
    return jsonView(`/api/experiments/${enc(search)}/cells/${enc(id)}`, (d, v, first) => {
      setTitle(`${d.name} · ${search}`);
      if (first) {
        main().innerHTML = `
          <div id="cell-head"></div>
          <div class="grid2">
            <section><h2>Per task</h2><div id="cell-tasks"></div></section>
            <section><h2>Mutation from the parent</h2><div id="cell-mutation"></div></section>
          </div>
          <div class="grid2">
            <section><h2>Source</h2><pre id="cell-source" class="code"></pre></section>
            <section><h2>Derivative <small class="muted">(cellc grad)</small></h2><pre id="cell-grad" class="code"></pre></section>
          </div>
          <section><h2>Runs</h2><div id="cell-runs-box"></div></section>`;
      }
      fill('cell-head', `<p class="crumbs"><a href="/">overview</a> › ${link(expHref(search), search)} › cell</p>
        <h1>${esc(d.name)} ${badge(d.status)}</h1>
        ${tiles([
    ['score', num(d.score), 'relative to the GRU'],
    ['standing', `<small>${esc(d.why)}</small>`],
    ['parent', d.parent ? link(cellHref(search, d.parent.id), d.parent.name) : '<small>none (a seed cell)</small>'],
    ['round', int(d.round)],
    ['hash', `<small class="mono">${esc(d.hash)}</small>`],
    ['runs', int((d.runs || []).length)],
  ])}`);
      fill('cell-tasks', table([
        { h: 'task', f: (t) => esc(t.task) },
        { h: 'best validation', f: (t) => num(t.best_valid), c: 'num' },
        { h: 'relative to the GRU', f: (t) => num(t.relative), c: 'num' },
      ], d.tasks || [], { id: 'cell-task-table', empty: 'no tasks' }));
      fill('cell-mutation', d.mutation ? `<ol class="mutation">${d.mutation.split('; ').map((m) => `<li>${esc(m)}</li>`).join('')}</ol>` : '<p class="muted">none: a seed cell</p>');
      const src = $('#cell-source'), grad = $('#cell-grad');
      if (src.textContent !== d.source) src.textContent = d.source || '';
      const g = d.grad != null ? d.grad : `the derivative could not be taken: ${d.grad_error || 'unknown error'}`;
      if (grad.textContent !== g) grad.textContent = g;
      grad.classList.toggle('error-text', d.grad == null);
      fill('cell-runs-box', table([
        { h: 'run', f: (r) => runLink(r.run) },
        { h: 'task', f: (r) => esc(r.task) },
        { h: 'stage', f: (r) => esc(r.stage) },
        { h: 'setting', f: (r) => int(r.setting), c: 'num' },
        { h: 'state', f: (r) => badge(r.state) },
        { h: 'valid', f: (r) => num(r.valid), c: 'num' },
        { h: 'test', f: (r) => num(r.test), c: 'num' },
        { h: 'outcome', f: (r) => (r.outcome ? badge(r.outcome) : DASH) },
      ], d.runs || [], { id: 'cell-runs', limit: 100, all: v.shown.has('cell-runs'), empty: 'no runs yet' }));
    });
  }

  // ---------------------------------------------------------------------------------------------
  // A run: identity, result or live progress, learning curves (overlaying other runs with
  // ?with=ID,ID), configuration and cell source.

  function runView(id) {
    setTitle(`run ${id}`);
    const params = new URLSearchParams(location.search);
    const others = (params.get('with') || '').split(',').map((s) => s.trim()).filter((s) => /^\d+$/.test(s) && s !== String(id));
    const v = { alive: true, id: String(id), ids: [String(id), ...new Set(others)], runs: new Map(), charts: null, chartKey: '', drawn: false };

    v.refresh = async () => {
      // A finished run never changes and a missing one is not fetched again: only the others are.
      const stale = (x) => {
        const r = v.runs.get(x);
        return !r || (r.ok ? r.data.state !== 'done' : r.status !== 404);
      };
      const ids = v.ids.filter(stale);
      if (!ids.length) return;
      const results = await Promise.all(ids.map((x) => getJSON(`/api/runs/${enc(x)}`)));
      if (!v.alive) return;
      const mine = ids[0] === v.id ? results[0] : v.runs.get(v.id);
      if (!mine.ok) {
        if (v.drawn && mine.status !== 404) { note(`could not refresh: ${mine.error}`); return; }
        fail(mine.error, mine.status);
        v.drawn = false;
        return;
      }
      note('');
      ids.forEach((x, i) => v.runs.set(x, results[i]));
      draw();
    };
    v.destroy = () => {
      v.alive = false;
      if (v.charts) v.charts.destroy();
      window.removeEventListener('resize', onResize);
    };
    const onResize = () => { if (v.charts) v.charts.resize(); };
    window.addEventListener('resize', onResize);

    /** Changes the overlaid runs: new URL (no reload), refetch. */
    function setOverlay(ids) {
      v.ids = [v.id, ...new Set(ids.filter((x) => x !== v.id))];
      const url = `${runHref(v.id)}${v.ids.length > 1 ? `?with=${v.ids.slice(1).join(',')}` : ''}`;
      history.pushState(null, '', url);
      for (const k of [...v.runs.keys()]) if (!v.ids.includes(k)) v.runs.delete(k);
      const mine = v.runs.get(v.id);
      if (mine && mine.ok) draw(); // at once: a removed run goes, an added one shows "loading"
      refresh();
    }

    function skeleton() {
      main().innerHTML = `
        <div id="run-head"></div>
        <div id="run-summary"></div>
        <section><h2>Learning curves</h2>
          <div class="overlay-bar"><div id="overlay-legend"></div>
            <form id="overlay-form" class="overlay-form"><label>overlay run # <input id="overlay-input" type="number" min="1" step="1" inputmode="numeric"></label> <button type="submit" id="overlay-add">overlay</button></form></div>
          <div id="curves" class="curves">
            <div class="curve"><h3>training loss</h3><div id="chart-train" class="chart"></div></div>
            <div class="curve"><h3 id="valid-title">validation</h3><div id="chart-valid" class="chart"></div></div>
            <div class="curve"><h3>learning rate <small class="muted">(log scale)</small></h3><div id="chart-lr" class="chart"></div></div>
          </div>
          <p class="hint" id="curves-hint">x: training step. Validation: the metric is solid (left axis), the loss dashed (right axis). Drag or mouse wheel to zoom, double-click to reset; the three charts zoom together.</p>
        </section>
        <div class="grid2">
          <section><h2>Cell source</h2><pre id="run-source" class="code"></pre></section>
          <section><h2>Configuration</h2><details id="run-config-box"><summary>training configuration (JSON)</summary><pre id="run-config" class="code"></pre></details><div id="run-extra"></div></section>
        </div>`;
      $('#overlay-form').addEventListener('submit', (e) => {
        e.preventDefault();
        const val = $('#overlay-input').value.trim();
        if (/^\d+$/.test(val) && val !== v.id && !v.ids.includes(val)) setOverlay([...v.ids.slice(1), val]);
        $('#overlay-input').value = '';
      });
      $('#overlay-legend').addEventListener('click', (e) => {
        const b = e.target.closest('button[data-remove]');
        if (b) setOverlay(v.ids.slice(1).filter((x) => x !== b.dataset.remove));
      });
    }

    function draw() {
      const d = v.runs.get(v.id).data;
      if (!v.drawn) { skeleton(); v.drawn = true; }
      setTitle(`run ${d.run} · ${d.candidate} · ${d.task}`);
      const candidate = d.kind === 'search' ? link(cellHref(d.experiment, d.candidate_id), d.candidate) : esc(d.candidate);
      fill('run-head', `<p class="crumbs"><a href="/">overview</a> › ${link(expHref(d.experiment), d.experiment)} › run</p>
        <h1>run #${esc(d.run)} ${badge(d.in_flight ? 'in flight' : d.state)}</h1>
        <p class="ident">${candidate} on <b>${esc(d.task)}</b> · stage ${esc(d.stage)} · setting ${esc(d.setting)} · seed ${esc(d.seed)} · experiment ${link(expHref(d.experiment), d.experiment)}</p>`);
      fill('run-summary', runSummary(d));
      fill('overlay-legend', legendHtml());
      const src = $('#run-source');
      if (src.textContent !== (d.cell_source || '')) src.textContent = d.cell_source || '';
      const cfg = JSON.stringify(d.config, null, 2);
      if ($('#run-config').textContent !== cfg) $('#run-config').textContent = cfg;
      fill('run-extra', `<p class="muted small">worker <span class="mono">${esc(d.worker || '–')}</span> · attempts ${int(d.attempts)} · round ${int(d.round)}</p>`);
      curves(d);
    }

    /** The result, or how far a run in flight has got. */
    function runSummary(d) {
      const r = d.result, f = d.in_flight, pts = d.points || [];
      const budget = d.config && d.config.budget && d.config.budget.steps;
      if (r) {
        return tiles([
          [`valid ${d.metric}`, num(r.valid)],
          [`test ${d.metric}`, num(r.test)],
          ['outcome', badge(r.outcome)],
          ['steps', int(r.steps)],
          ['time', dur(r.seconds), `training ${dur(r.train_seconds).replace(/<[^>]*>/g, '')}, evaluation ${dur(r.eval_seconds).replace(/<[^>]*>/g, '')}`],
          ['finished', d.finished_ms ? ago(d.finished_ms) : DASH],
        ]);
      }
      if (f) {
        const last = pts[pts.length - 1];
        return tiles([
          ['step', `${int(f.step)}${budget ? `<small> / ${int(budget)}</small>` : ''}`],
          ['validations', int(f.validations)],
          [`last valid ${d.metric}`, num(last ? last.valid : f.valid)],
          ['elapsed', dur(f.elapsed_s)],
          ['lease left', dur(f.lease_left_s)],
          ['worker', `<small class="mono">${esc(f.worker)}</small>`],
        ]) + (budget && f.step ? `<p>${bar(f.step, budget)}</p>` : '');
      }
      return tiles([['state', badge(d.state)], ['attempts', int(d.attempts)], ['steps planned', int(budget)]]);
    }

    function legendHtml() {
      return `<ul class="legend">${v.ids.map((x, i) => {
        const r = v.runs.get(x);
        const sw = `<span class="swatch" style="background:${COLOURS[i % COLOURS.length]}"></span>`;
        const rm = i > 0 ? ` <button type="button" class="remove" data-remove="${esc(x)}" title="stop overlaying run ${esc(x)}">×</button>` : '';
        if (!r) return `<li>${sw}run #${esc(x)} <span class="muted">loading…</span>${rm}</li>`;
        if (!r.ok) return `<li class="missing">${sw}run #${esc(x)}: <span class="error-text">${esc(r.error)}</span>${rm}</li>`;
        const d = r.data;
        return `<li>${sw}${runLink(d.run)} <span class="small">${esc(d.candidate)} · ${esc(d.task)} · ${esc(d.stage)} · seed ${esc(d.seed)}</span>${rm}</li>`;
      }).join('')}</ul>`;
    }

    /** The three charts; rebuilt when the overlaid runs change, else updated in place. */
    function curves(d) {
      const runs = v.ids.map((x, i) => ({ id: x, colour: COLOURS[i % COLOURS.length], r: v.runs.get(x) }))
        .filter((x) => x.r && x.r.ok && (x.r.data.points || []).length);
      const hint = $('#curves-hint');
      if (!runs.length) {
        if (v.charts) { v.charts.destroy(); v.charts = null; v.chartKey = ''; }
        for (const c of ['chart-train', 'chart-valid', 'chart-lr']) fill(c, `<p class="muted empty">${d.in_flight || d.state === 'queued' ? 'no validation yet: the curves appear with the first one' : 'this run has no validations'}</p>`);
        hint.hidden = true;
        return;
      }
      hint.hidden = false;
      const metric = d.metric || 'metric';
      $('#valid-title').innerHTML = `validation: ${esc(metric)} <small class="muted">— and loss - -</small>`;
      $('#valid-title').title = `validation ${metric} (solid lines, left axis) and validation loss (dashed lines, right axis)`;
      const tables = (pick) => uPlot.join(runs.map((x) => {
        const pts = x.r.data.points;
        return [pts.map((p) => p.step), ...pick.map((k) => pts.map((p) => yv(p[k])).map((y) => (k === 'lr' && !(y > 0) ? null : y)))];
      }));
      const train = tables(['train_loss']), valid = tables(['valid', 'valid_loss']), lr = tables(['lr']);
      const key = runs.map((x) => x.id).join(',') + metric;
      if (v.charts && v.chartKey === key) {
        v.charts.update(0, train); v.charts.update(1, valid); v.charts.update(2, lr);
        return;
      }
      const range = v.charts ? v.charts.range : null;
      if (v.charts) v.charts.destroy();
      for (const c of ['chart-train', 'chart-valid', 'chart-lr']) { const el = document.getElementById(c); el.innerHTML = ''; delete el.dataset.html; }
      v.chartKey = key;
      v.charts = new ChartGroup();
      v.charts.range = range;
      const lab = (x, what) => `#${x.id}${runs.length > 1 ? '' : ''} ${what}`;
      const line = (x, what, extra = {}) => Object.assign({ label: lab(x, what), stroke: x.colour, width: 2, spanGaps: true, points: { size: 4 }, value: legendValue }, extra);
      const xAxis = { label: 'step', values: tickValues };
      v.charts.add($('#chart-train'), {
        series: [{ label: 'step' }, ...runs.map((x) => line(x, 'train loss'))],
        axes: [xAxis, { label: 'training loss', values: tickValues, size: 56 }],
      }, train);
      const vs = [{ label: 'step' }];
      for (const x of runs) {
        vs.push(line(x, metric, { scale: 'm' }));
        vs.push(line(x, 'valid loss', { scale: 'loss', dash: [6, 4], width: 1.5 }));
      }
      v.charts.add($('#chart-valid'), {
        series: vs,
        scales: { m: {}, loss: {} },
        axes: [xAxis, { scale: 'm', label: metric, values: tickValues, size: 56 },
          { scale: 'loss', label: 'valid loss', side: 1, grid: { show: false }, values: tickValues, size: 56 }],
      }, valid);
      v.charts.add($('#chart-lr'), {
        series: [{ label: 'step' }, ...runs.map((x) => line(x, 'lr', { paths: uPlot.paths.stepped({ align: 1 }) }))],
        scales: { y: { distr: 3, range: logRange } },
        axes: [xAxis, { label: 'learning rate', values: tickValues, splits: logSplits, size: 60 }],
      }, lr);
    }

    return v;
  }

  // ---------------------------------------------------------------------------------------------
  // Start: the store's name for the header (the overview brings its own), live updates, the view.

  async function storeName() {
    if (location.pathname !== '/') {
      const r = await getJSON('/api/status');
      if (r.ok && r.data.store && !$('#store').textContent) $('#store').textContent = r.data.store;
    }
  }

  route();
  storeName();
  connect();
})();
