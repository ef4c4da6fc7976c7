// meshgate dashboard: one page, plain JS, no build step. It reads the management API
// (/actuator/gateway/*) and the live stats stream; the JSON contract is the backend's.
//
// Rules this file keeps:
// - Every string from the server goes into the DOM as text (textContent / text nodes via h()),
//   never through innerHTML: route ids, headers and error messages are attacker-reachable.
// - No inline script or style in the HTML (the page's CSP is script-src 'self'; style-src
//   'self'); sizes set from here go through element.style, which the CSP allows.
// - Live pages update their DOM in place (keyed rows), so tests and users keep their elements,
//   scroll position and selection while numbers change every second.
// It is an ES module (strict mode, deferred); uPlot is the classic script before it.

const API = "/actuator/gateway";
const TOKEN_KEY = "meshgate.managementToken";
const DASH = "\u2013";

// -- DOM helpers ---------------------------------------------------------------------------

/** Create an element. props: className, text, title, hidden, dataset {}, attrs {}, on {}.
 *  Children: nodes, strings (as text), arrays, null/undefined/false (skipped). */
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (name === "className") node.className = value;
    else if (name === "text") node.textContent = String(value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "attrs") for (const [a, v] of Object.entries(value)) node.setAttribute(a, v);
    else if (name === "on") for (const [e, fn] of Object.entries(value)) node.addEventListener(e, fn);
    else node[name] = value;
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace a node's content with the given children. */
function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/**
 * Keep `parent`'s keyed children in step with `items`, in order: existing nodes (matched by
 * key) are reused and updated, new ones created, missing ones removed. Children before
 * `start` (a fixed header row, say) are left alone.
 */
function syncKeyed(parent, items, { key, create, update, start = null }) {
  const existing = new Map();
  for (const child of Array.from(parent.children)) {
    if (child.dataset.key !== undefined) existing.set(child.dataset.key, child);
  }
  let previous = start;
  for (const item of items) {
    const k = String(key(item));
    let node = existing.get(k);
    if (node) existing.delete(k);
    else {
      node = create(item);
      node.dataset.key = k;
    }
    update(node, item);
    const anchor = previous ? previous.nextSibling : parent.firstChild;
    if (node !== anchor) parent.insertBefore(node, anchor);
    previous = node;
  }
  for (const stale of existing.values()) stale.remove();
}

function tableIn(wrapClass, head) {
  const tbody = h("tbody");
  const table = h(
    "table",
    {},
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        head.map(([label, cls]) => h("th", { className: cls || "", text: label, attrs: { scope: "col" } })),
      ),
    ),
    tbody,
  );
  return { wrap: h("div", { className: `table-wrap ${wrapClass || ""}` }, table), table, tbody };
}

function badge(text, tone) {
  return h("span", { className: `badge ${tone || ""}`, text });
}

function notice(text, isError = false) {
  return h("p", { className: isError ? "notice error" : "notice", text, attrs: { role: isError ? "alert" : "status" } });
}

// -- formatting ----------------------------------------------------------------------------

const isNum = (v) => typeof v === "number" && Number.isFinite(v);

function fmtRate(v) {
  if (!isNum(v)) return DASH;
  if (v === 0) return "0";
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** An error share 0..1 as a percentage. */
function fmtPct(v) {
  if (!isNum(v)) return DASH;
  const pct = v * 100;
  if (pct === 0) return "0 %";
  return `${pct >= 10 ? pct.toFixed(0) : pct >= 1 ? pct.toFixed(1) : pct.toFixed(2)} %`;
}

/** Seconds (as the API gives latencies) to a millisecond string. */
function fmtMs(seconds) {
  if (!isNum(seconds)) return DASH;
  const ms = seconds * 1000;
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}

function fmtInt(v) {
  return isNum(v) ? Math.round(v).toLocaleString("en") : DASH;
}

function fmtEpoch(epochSeconds) {
  if (!isNum(epochSeconds)) return DASH;
  return new Date(epochSeconds * 1000).toLocaleString();
}

function fmtClock(epochSeconds) {
  if (!isNum(epochSeconds)) return DASH;
  return new Date(epochSeconds * 1000).toLocaleTimeString();
}

/** A time axis tick: HH:MM, with seconds when ticks are under a minute apart. */
function fmtTick(epochSeconds, increment) {
  const options = { hour: "2-digit", minute: "2-digit", hour12: false };
  if (increment < 60) options.second = "2-digit";
  return new Date(epochSeconds * 1000).toLocaleTimeString([], options);
}

function fmtAgo(epochSeconds) {
  if (!isNum(epochSeconds)) return "";
  const s = Math.max(0, Date.now() / 1000 - epochSeconds);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

const ms = (seconds) => (isNum(seconds) ? seconds * 1000 : null);
const pct = (share) => (isNum(share) ? share * 100 : null);

// -- the management token ------------------------------------------------------------------

/** The bearer token lives in sessionStorage: this tab only, gone when it closes. */
const tokenStore = {
  get() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  },
  set(value) {
    try {
      sessionStorage.setItem(TOKEN_KEY, value);
    } catch {
      // Storage refused (private mode quotas): the token then lasts until a reload.
    }
    memoryToken = value;
  },
  clear() {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // nothing stored
    }
    memoryToken = null;
  },
};
let memoryToken = null;
const currentToken = () => tokenStore.get() ?? memoryToken;

/**
 * The token form. Every request that meets a 401 waits on one shared promise, which resolves
 * when the user submits a token; they all retry then. So a page that fires several requests
 * shows the form once.
 */
const tokenGate = {
  pending: null,
  resolve: null,

  ask(rejected) {
    if (!this.pending) {
      this.pending = new Promise((resolve) => {
        this.resolve = resolve;
      });
      const overlay = document.getElementById("token-overlay");
      const error = document.getElementById("token-error");
      error.hidden = !rejected;
      error.textContent = rejected ? "That token was not accepted. Try again." : "";
      overlay.hidden = false;
      const input = document.getElementById("token-input");
      input.value = "";
      input.focus();
    }
    return this.pending;
  },

  submit(value) {
    tokenStore.set(value);
    document.getElementById("token-overlay").hidden = true;
    updateForgetButton();
    const resolve = this.resolve;
    this.pending = null;
    this.resolve = null;
    if (resolve) resolve();
  },
};

function updateForgetButton() {
  document.getElementById("forget-token").hidden = !currentToken();
}

// -- the API -------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * fetch() with the bearer token. A 401 shows the token form and retries with what the user
 * enters, as often as it takes: the caller just sees the eventual answer.
 */
async function apiFetch(path, { method = "GET", body, accept = "application/json", signal } = {}) {
  for (;;) {
    const token = currentToken();
    const headers = { Accept: accept };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      signal,
    });
    if (response.status !== 401) return response;
    await response.body?.cancel().catch(() => {});
    // A request that raced with a token change used the old token: retry at once.
    if (currentToken() !== token && currentToken()) continue;
    if (token) tokenStore.clear();
    await tokenGate.ask(Boolean(token));
  }
}

/** The parsed JSON answer; an ApiError with the server's message otherwise. */
async function apiJson(path, options) {
  const response = await apiFetch(path, options);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    if (response.ok) throw new ApiError(response.status, `${path}: the answer is not JSON`);
  }
  if (!response.ok) {
    const message = data && typeof data.message === "string" && data.message ? data.message : response.statusText;
    throw new ApiError(response.status, `${path}: ${response.status} ${message}`);
  }
  return data;
}

const errorText = (error) => (error instanceof Error ? error.message : String(error));

// -- live stats ----------------------------------------------------------------------------

/** The latest stats sample and who wants it. Listeners get the latest at once on subscribe. */
const stats = {
  latest: null,
  listeners: new Set(),

  subscribe(listener) {
    this.listeners.add(listener);
    if (this.latest) listener(this.latest);
    return () => this.listeners.delete(listener);
  },

  publish(sample) {
    if (!sample || typeof sample !== "object") return;
    // Samples can overlap (the initial GET and the stream): never go back in time.
    if (this.latest && isNum(this.latest.timestamp) && isNum(sample.timestamp) && sample.timestamp < this.latest.timestamp) return;
    this.latest = sample;
    for (const listener of this.listeners) {
      // One page's bug must not stop the stream (whose reader calls this), but it must show.
      try {
        listener(sample);
      } catch (error) {
        console.error("dashboard: a page failed to show a stats sample", error);
      }
    }
  },
};

function setLive(state, text) {
  const live = document.getElementById("live");
  live.dataset.state = state;
  live.textContent = text;
}

const sleep = (millis) => new Promise((resolve) => setTimeout(resolve, millis));

/**
 * The SSE stream, read with fetch() because EventSource cannot send the Authorization header.
 * Reconnects with exponential backoff (1 s doubling to 15 s, with jitter) and resets it after
 * a connection that delivered data. A connection silent for STALL_MS is treated as dead: the
 * server sends a sample every second, so silence means a half-open connection.
 */
class StatsStream {
  static STALL_MS = 10000;

  constructor(publish) {
    this.publish = publish;
    this.controller = null;
  }

  async run() {
    let delay = 1000;
    let everLive = false;
    for (;;) {
      this.controller = new AbortController();
      let delivered = false;
      try {
        const response = await apiFetch(`${API}/stats/stream`, {
          accept: "text/event-stream",
          signal: this.controller.signal,
        });
        if (!response.ok || !response.body) {
          await response.body?.cancel().catch(() => {});
          throw new ApiError(response.status, `stats stream: HTTP ${response.status}`);
        }
        setLive("live", "live");
        everLive = true;
        delivered = await this.read(response.body);
      } catch {
        // Network error, abort by the stall watchdog, or a bad status: all end in a retry.
      }
      if (delivered) delay = 1000;
      setLive(everLive ? "reconnecting" : "offline", everLive ? "reconnecting" : "no stream");
      await sleep(delay * (0.8 + Math.random() * 0.4));
      delay = Math.min(delay * 2, 15000);
    }
  }

  /** Read events until the server ends the stream; true when at least one sample came. */
  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let delivered = false;
    let watchdog = setTimeout(() => this.controller.abort(), StatsStream.STALL_MS);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return delivered;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => this.controller.abort(), StatsStream.STALL_MS);
        // SSE allows CRLF, CR or LF line ends; a lone CR at a chunk's end waits for the next.
        buffer += value;
        const keep = buffer.endsWith("\r") ? 1 : 0;
        const ready = buffer.slice(0, buffer.length - keep).replace(/\r\n?/g, "\n");
        const tail = buffer.slice(buffer.length - keep);
        const blocks = ready.split("\n\n");
        buffer = blocks.pop() + tail;
        for (const block of blocks) {
          if (this.dispatch(block)) delivered = true;
        }
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  /** One event block; true when it carried a stats sample. */
  dispatch(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue; // ": keep-alive" comments
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (data.length === 0 || (event !== "stats" && event !== "message")) return false;
    let sample;
    try {
      sample = JSON.parse(data.join("\n"));
    } catch {
      return false; // a torn or foreign event: skip it, the next one comes in a second
    }
    this.publish(sample);
    return true;
  }
}

// -- charts --------------------------------------------------------------------------------

const darkQuery = window.matchMedia("(prefers-color-scheme: dark)");
const liveCharts = new Set();
// Colours come from CSS custom properties, so a theme switch rebuilds every chart.
darkQuery.addEventListener("change", () => {
  for (const chart of liveCharts) chart.rebuild();
});

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function withAlpha(color, alpha) {
  const m = /^#([0-9a-f]{6})$/i.exec(color);
  if (!m) return "transparent";
  const n = parseInt(m[1], 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/**
 * A uPlot time-series chart that fills its container's width. `series`: [{label, color (a CSS
 * variable name), fmt (value -> text)}]; `axisFmt` formats the y axis ticks.
 */
class TimeChart {
  constructor(container, { series, height = 200, axisFmt = (v) => String(v), yMin = 1 }) {
    this.container = container;
    this.series = series;
    this.height = height;
    this.axisFmt = axisFmt;
    this.yMin = yMin;
    this.data = [[], ...series.map(() => [])];
    this.plot = null;
    this.empty = h("p", { className: "chart-empty", text: "No data points yet." });
    container.append(this.empty);
    // Resizes are applied on the next frame, which avoids ResizeObserver loop warnings.
    this.observer = new ResizeObserver(() => {
      cancelAnimationFrame(this.frame);
      this.frame = requestAnimationFrame(() => this.resize());
    });
    this.observer.observe(container);
    this.build();
    liveCharts.add(this);
  }

  width() {
    return Math.max(200, Math.floor(this.container.clientWidth));
  }

  build() {
    if (typeof window.uPlot !== "function") {
      fill(this.container, notice("Charts are unavailable: uPlot did not load.", true));
      return;
    }
    const axis = cssVar("--chart-axis");
    const grid = cssVar("--chart-grid");
    const yMin = this.yMin;
    const options = {
      width: this.width(),
      height: this.height,
      padding: [12, 28, 0, 4],
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        // Always from 0, and never a flat range (all zeros / all nulls).
        y: { range: (u, min, max) => [0, isNum(max) && max > 0 ? max * 1.15 : yMin] },
      },
      axes: [
        {
          stroke: axis,
          space: 70,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid, width: 1 },
          // Local clock time; uPlot's default adds a date line that crowds narrow charts.
          values: (u, splits, axisIdx, space, increment) => splits.map((t) => fmtTick(t, increment)),
        },
        {
          stroke: axis,
          size: 56,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid, width: 1 },
          values: (u, values) => values.map((v) => this.axisFmt(v)),
        },
      ],
      series: [
        { value: (u, v) => (isNum(v) ? fmtClock(v) : DASH) },
        ...this.series.map((s, index) => {
          const color = cssVar(s.color);
          return {
            label: s.label,
            stroke: color,
            width: 2,
            fill: index === 0 ? withAlpha(color, 0.12) : undefined,
            points: { show: false },
            spanGaps: false,
            value: (u, v) => (isNum(v) ? s.fmt(v) : DASH),
          };
        }),
      ],
    };
    this.plot = new window.uPlot(options, this.data, this.container);
  }

  rebuild() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.build();
  }

  resize() {
    if (this.plot && this.container.isConnected) this.plot.setSize({ width: this.width(), height: this.height });
  }

  /** timestamps: epoch seconds; columns: one array per series (null where unknown). */
  setData(timestamps, columns) {
    const n = Array.isArray(timestamps) ? timestamps.length : 0;
    const ts = n ? timestamps : [];
    this.data = [ts, ...columns.map((c) => (Array.isArray(c) ? c.slice(0, n) : new Array(n).fill(null)))];
    this.empty.hidden = this.data.slice(1).some((c) => c.some(isNum));
    if (this.plot) this.plot.setData(this.data);
  }

  destroy() {
    liveCharts.delete(this);
    this.observer.disconnect();
    cancelAnimationFrame(this.frame);
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }
}

// -- shared widgets ------------------------------------------------------------------------

/** A big-number card: label, value (+unit), and a secondary line. */
function statCard(label, unit = "") {
  const value = h("span", { className: "stat-number", text: DASH });
  const sub = h("div", { className: "stat-sub", text: "" });
  const card = h(
    "div",
    { className: "card stat", dataset: { stat: label } },
    h("div", { className: "stat-label", text: label }),
    h("div", { className: "stat-value" }, value, unit ? h("span", { className: "stat-unit", text: unit }) : null),
    sub,
  );
  return {
    card,
    set(main, secondary, bad = false) {
      value.textContent = main;
      sub.textContent = secondary;
      card.classList.toggle("is-bad", bad);
    },
  };
}

/** The four window numbers (req/s, error rate, p50, p99) for 1m (big) and 5m (small). */
function windowCards() {
  const cards = {
    rate: statCard("Requests/s"),
    errorRate: statCard("Error rate"),
    p50: statCard("p50 latency", "ms"),
    p99: statCard("p99 latency", "ms"),
  };
  return {
    cards,
    set(totals) {
      const one = (totals && totals["1m"]) || {};
      const five = (totals && totals["5m"]) || {};
      cards.rate.set(fmtRate(one.rate), `1m · 5m: ${fmtRate(five.rate)}/s`);
      cards.errorRate.set(fmtPct(one.errorRate), `1m · 5m: ${fmtPct(five.errorRate)}`, isNum(one.errorRate) && one.errorRate > 0.01);
      cards.p50.set(fmtMs(one.p50), `1m · 5m: ${fmtMs(five.p50)} ms`);
      cards.p99.set(fmtMs(one.p99), `1m · 5m: ${fmtMs(five.p99)} ms`);
    },
  };
}

function pageHead(title, ...extra) {
  return h("div", { className: "page-head" }, h("h1", { text: title }), ...extra);
}

function waitingForStats() {
  return notice("Waiting for the first stats sample\u2026");
}

function routeHref(id) {
  return `#/routes/${encodeURIComponent(id)}`;
}

/** An SCG definition's predicate or filter as shorthand text: Name=arg1, arg2. */
function shorthand(definition) {
  if (!definition || typeof definition !== "object") return String(definition ?? "");
  const args = definition.args && typeof definition.args === "object" ? definition.args : {};
  const values = Object.entries(args).map(([key, value]) =>
    key.startsWith("_genkey_") ? String(value) : `${key}=${String(value)}`,
  );
  return values.length ? `${definition.name}=${values.join(", ")}` : String(definition.name);
}

/** SCG's "[[StripPrefix parts = 1], order = 1]" as "StripPrefix parts = 1 · order 1". */
function tidyFilter(text) {
  const m = /^\[\[(.*)\], order = (-?\d+)\]$/s.exec(String(text));
  return m ? `${m[1]} \u00b7 order ${m[2]}` : String(text);
}

function codeList(items, raw = items) {
  return h(
    "ul",
    { className: "filters-list mono" },
    items.map((text, i) => h("li", { text, title: raw[i] !== text ? raw[i] : undefined })),
  );
}

/** Route rows from /routes, with predicate shorthand from /routedefinitions where known. */
async function loadRoutes(signal) {
  const [routes, definitions] = await Promise.all([
    apiJson(`${API}/routes`, { signal }),
    apiJson(`${API}/routedefinitions`, { signal }).catch(() => []),
  ]);
  const byId = new Map((Array.isArray(definitions) ? definitions : []).map((d) => [d.id, d]));
  return (Array.isArray(routes) ? routes : []).map((route) => ({
    ...route,
    definition: byId.get(route.route_id) || null,
  }));
}

/**
 * How many series points to chart: the last point is the 5 s bucket still filling (its start
 * plus the interval is after the sample), and a rate over a fraction of a bucket jumps about;
 * only complete buckets are drawn.
 */
function completePoints(sample) {
  const series = (sample && sample.series) || {};
  const ts = Array.isArray(series.timestamps) ? series.timestamps : [];
  let n = ts.length;
  const interval = isNum(series.interval) ? series.interval : 5;
  if (n && isNum(sample.timestamp) && ts[n - 1] + interval > sample.timestamp + 0.001) n -= 1;
  return { ts: ts.slice(0, n), n };
}

const head = (values, n) => (Array.isArray(values) ? values.slice(0, n) : []);

function statsById(sample, list) {
  const map = new Map();
  for (const item of (sample && sample[list]) || []) map.set(item.id, item);
  return map;
}

// -- pages ---------------------------------------------------------------------------------
// A page is mount(root, params) -> cleanup. It subscribes to what it shows and undoes that in
// its cleanup, so navigating away stops its updates and frees its charts.

function overviewPage(root) {
  const inFlight = statCard("In flight");
  const windows = windowCards();
  const meta = h("span", { className: "muted small" });
  const rateBox = h("div", { className: "chart" });
  const errorBox = h("div", { className: "chart" });
  const latencyBox = h("div", { className: "chart" });
  const waiting = waitingForStats();
  const summary = h("p", { className: "muted small" });

  fill(
    root,
    pageHead("Overview", meta),
    waiting,
    h(
      "div",
      { className: "stats-grid" },
      windows.cards.rate.card,
      windows.cards.errorRate.card,
      windows.cards.p50.card,
      windows.cards.p99.card,
      inFlight.card,
    ),
    h(
      "div",
      { className: "charts" },
      h("section", { className: "card chart-card" }, h("h2", { text: "Requests per second" }), rateBox),
      h("section", { className: "card chart-card" }, h("h2", { text: "Error rate (5xx share)" }), errorBox),
      h("section", { className: "card chart-card" }, h("h2", { text: "Latency" }), latencyBox),
    ),
    summary,
  );

  const charts = [
    new TimeChart(rateBox, { series: [{ label: "req/s", color: "--chart-1", fmt: fmtRate }], axisFmt: fmtRate }),
    new TimeChart(errorBox, {
      series: [{ label: "errors", color: "--chart-2", fmt: (v) => `${v.toFixed(2)} %` }],
      axisFmt: (v) => `${+v.toFixed(2)} %`,
    }),
    new TimeChart(latencyBox, {
      series: [
        { label: "p50", color: "--chart-1", fmt: (v) => `${v.toFixed(1)} ms` },
        { label: "p99", color: "--chart-2", fmt: (v) => `${v.toFixed(1)} ms` },
      ],
      axisFmt: (v) => `${+v.toFixed(1)} ms`,
    }),
  ];

  const unsubscribe = stats.subscribe((sample) => {
    waiting.hidden = true;
    const totals = sample.totals || {};
    windows.set(totals);
    inFlight.set(fmtInt(totals.inFlight), `${fmtInt(sample.workers)} worker${sample.workers === 1 ? "" : "s"}`);
    meta.textContent = `sample ${fmtClock(sample.timestamp)}`;
    const series = sample.series || {};
    const { ts, n } = completePoints(sample);
    charts[0].setData(ts, [head(series.rate, n)]);
    charts[1].setData(ts, [head(series.errorRate, n).map(pct)]);
    charts[2].setData(ts, [head(series.p50, n).map(ms), head(series.p99, n).map(ms)]);
    const services = sample.services || [];
    const instances = services.flatMap((s) => s.instances || []);
    const healthy = instances.filter((i) => i.healthy).length;
    summary.textContent =
      `${(sample.routes || []).length} routes · ${services.length} services · ` +
      `${healthy}/${instances.length} instances healthy · one point per ${fmtInt(series.interval)} s`;
  });

  return () => {
    unsubscribe();
    for (const chart of charts) chart.destroy();
  };
}

function routesPage(root) {
  const controller = new AbortController();
  const status = notice("Loading routes\u2026");
  const { wrap, tbody } = tableIn("routes-table", [
    ["Route"],
    ["URI"],
    ["Order", "num"],
    ["Predicates"],
    ["Filters"],
    ["In flight", "num"],
    ["Req/s 1m", "num"],
    ["Errors 1m", "num"],
    ["p50 · p99 1m (ms)", "num"],
  ]);
  const count = h("span", { className: "muted small" });
  fill(root, pageHead("Routes", count), status, wrap);

  let routes = [];
  let knownIds = "";
  let reloading = false;

  function render() {
    const live = statsById(stats.latest, "routes");
    syncKeyed(tbody, routes, {
      key: (r) => r.route_id,
      create: (r) => {
        const row = h("tr", {
          className: "clickable",
          dataset: { route: r.route_id },
          // Whole-row click for the mouse; the id cell is a real link for the keyboard.
          on: { click: (event) => { if (!event.target.closest("a")) location.hash = routeHref(r.route_id); } },
        });
        const cls = ["nowrap", "mono", "num", "code-list", "code-list", "num", "num", "num", "num"];
        for (const className of cls) row.append(h("td", { className }));
        return row;
      },
      update: (row, r) => {
        const c = row.cells;
        if (!c[0].firstChild) {
          fill(c[0], h("a", { href: routeHref(r.route_id), text: r.route_id }));
          c[1].textContent = String(r.uri ?? "");
          c[2].textContent = String(r.order ?? "");
          const predicates = r.definition && Array.isArray(r.definition.predicates)
            ? r.definition.predicates.map(shorthand)
            : [String(r.predicate ?? "")];
          fill(c[3], codeList(predicates));
          c[3].title = String(r.predicate ?? "");
          const filters = Array.isArray(r.filters) ? r.filters.map(String) : [];
          fill(c[4], filters.length ? codeList(filters.map(tidyFilter), filters) : h("span", { className: "muted", text: "none" }));
        }
        const s = live.get(r.route_id);
        const one = (s && s["1m"]) || {};
        c[5].textContent = s ? fmtInt(s.inFlight) : DASH;
        c[6].textContent = fmtRate(one.rate);
        c[7].textContent = fmtPct(one.errorRate);
        c[8].textContent = `${fmtMs(one.p50)} \u00b7 ${fmtMs(one.p99)}`;
      },
    });
  }

  async function load() {
    reloading = true;
    try {
      routes = await loadRoutes(controller.signal);
      knownIds = routes.map((r) => r.route_id).sort().join("\n");
      status.hidden = routes.length > 0;
      if (!routes.length) fill(status, "No routes are configured.");
      count.textContent = `${routes.length} route${routes.length === 1 ? "" : "s"}`;
      // A reload replaces every route: fresh rows, so definitions are not stale.
      tbody.replaceChildren();
      render();
    } catch (error) {
      if (controller.signal.aborted) return;
      status.hidden = false;
      status.className = "notice error";
      status.textContent = `Could not load the routes: ${errorText(error)}`;
    } finally {
      reloading = false;
    }
  }

  load();
  const unsubscribe = stats.subscribe((sample) => {
    render();
    // The stats list the routes in force: when that set changes (a reload), fetch the table again.
    const ids = (sample.routes || []).map((r) => r.id).sort().join("\n");
    if (knownIds && ids && ids !== knownIds && !reloading) load();
  });
  return () => {
    unsubscribe();
    controller.abort();
  };
}

function routeDetailPage(root, params) {
  const id = params.id;
  const controller = new AbortController();
  const status = notice("Loading the route\u2026");
  const windows = windowCards();
  const inFlight = statCard("In flight");
  const facts = h("dl", { className: "facts" });
  const predicates = h("div");
  const filters = h("div");
  const metadata = h("pre", { className: "mono" });
  const rateBox = h("div", { className: "chart" });
  const latencyBox = h("div", { className: "chart" });

  fill(
    root,
    h("p", { className: "small" }, h("a", { href: "#/routes", text: "\u2190 All routes" })),
    pageHead(`Route ${id}`),
    status,
    h(
      "div",
      { className: "stats-grid" },
      windows.cards.rate.card,
      windows.cards.errorRate.card,
      windows.cards.p50.card,
      windows.cards.p99.card,
      inFlight.card,
    ),
    h(
      "div",
      { className: "charts" },
      h("section", { className: "card chart-card" }, h("h2", { text: "Requests per second" }), rateBox),
      h("section", { className: "card chart-card" }, h("h2", { text: "p99 latency" }), latencyBox),
    ),
    h(
      "div",
      { className: "two-col route-definition" },
      h("section", { className: "card" }, h("h2", { text: "Definition" }), facts),
      h("section", { className: "card" }, h("h2", { text: "Metadata" }), metadata),
    ),
    h(
      "div",
      { className: "two-col" },
      h("section", { className: "card" }, h("h2", { text: "Predicates" }), predicates),
      h("section", { className: "card" }, h("h2", { text: "Filters" }), filters),
    ),
  );

  const charts = [
    new TimeChart(rateBox, { series: [{ label: "req/s", color: "--chart-1", fmt: fmtRate }], height: 160, axisFmt: fmtRate }),
    new TimeChart(latencyBox, {
      series: [{ label: "p99", color: "--chart-2", fmt: (v) => `${v.toFixed(1)} ms` }],
      height: 160,
      axisFmt: (v) => `${+v.toFixed(1)} ms`,
    }),
  ];

  function list(items) {
    return items.length
      ? h("ul", { className: "filters-list mono" }, items.map((text) => h("li", { text })))
      : h("p", { className: "muted", text: "none" });
  }

  (async () => {
    try {
      const routes = await loadRoutes(controller.signal);
      const route = routes.find((r) => r.route_id === id);
      if (!route) {
        status.className = "notice error";
        status.textContent = `There is no route "${id}".`;
        return;
      }
      status.hidden = true;
      const def = route.definition;
      const rows = [
        ["ID", route.route_id],
        ["URI", route.uri],
        ["Order", route.order],
        ["Predicate (as SCG prints it)", route.predicate],
      ];
      fill(facts, rows.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { className: "mono", text: String(v ?? DASH) })]));
      fill(predicates, list(def && Array.isArray(def.predicates) ? def.predicates.map(shorthand) : [String(route.predicate ?? "")]));
      fill(
        filters,
        h("h3", { text: "In force (defaults and globals included), in order" }),
        Array.isArray(route.filters) && route.filters.length
          ? codeList(route.filters.map(String).map(tidyFilter), route.filters.map(String))
          : list([]),
        def && Array.isArray(def.filters) ? [h("h3", { text: "As defined" }), list(def.filters.map(shorthand))] : null,
      );
      const meta = route.metadata ?? (def && def.metadata) ?? {};
      metadata.textContent = Object.keys(meta).length ? JSON.stringify(meta, null, 2) : "none";
    } catch (error) {
      if (controller.signal.aborted) return;
      status.className = "notice error";
      status.textContent = `Could not load the route: ${errorText(error)}`;
    }
  })();

  const unsubscribe = stats.subscribe((sample) => {
    const s = statsById(sample, "routes").get(id);
    windows.set(s || {});
    inFlight.set(s ? fmtInt(s.inFlight) : DASH, s ? "" : "no live numbers for this route");
    const { ts, n } = completePoints(sample);
    const series = (s && s.series) || {};
    charts[0].setData(ts, [head(series.rate, n)]);
    charts[1].setData(ts, [head(series.p99, n).map(ms)]);
  });

  return () => {
    unsubscribe();
    controller.abort();
    for (const chart of charts) chart.destroy();
  };
}

const HEALTH_TONE = { passing: "ok", warning: "warn", critical: "bad", maintenance: "warn" };
const BREAKER_TONE = { closed: "ok", "half-open": "warn", open: "bad" };
const INSTANCE_COLUMNS = [
  ["Instance"],
  ["Health"],
  ["Healthy"],
  ["Breaker"],
  ["Ejected"],
  ["Weight", "num"],
  ["Zone"],
  ["In flight", "num"],
  ["Req/s 1m", "num"],
  ["Errors 1m", "num"],
  ["p99 1m (ms)", "num"],
  ["5m req/s · errors", "num"],
];

function breakerBadges(breakers) {
  const entries = Object.entries(breakers || {});
  if (!entries.length) return h("span", { className: "muted", text: "none" });
  return entries.map(([name, state]) => badge(entries.length > 1 ? `${name}: ${state}` : String(state), BREAKER_TONE[state]));
}

function servicesPage(root) {
  const list = h("div", { className: "services" });
  const waiting = waitingForStats();
  const empty = notice("No services: no route uses lb:// and the registry lists none.");
  empty.hidden = true;
  const count = h("span", { className: "muted small" });
  fill(root, pageHead("Services", count), waiting, empty, list);

  function createService() {
    const name = h("h2");
    const badges = h("span", { className: "service-badges" });
    const breakers = h("span", { className: "service-breakers" });
    const error = h("p", { className: "notice error service-error", hidden: true, attrs: { role: "alert" } });
    const { wrap, table } = tableIn("", INSTANCE_COLUMNS);
    table.tBodies[0].remove(); // one tbody per lane instead, added by syncKeyed
    const section = h(
      "section",
      { className: "card service" },
      h("div", { className: "service-head" }, name, badges, h("span", { className: "small muted", text: "breakers:" }), breakers),
      error,
      wrap,
    );
    section.parts = { name, badges, breakers, error, table };
    return section;
  }

  function createLane() {
    const title = h("th", { className: "lane-title", attrs: { colspan: String(INSTANCE_COLUMNS.length), scope: "rowgroup" } });
    const body = h("tbody", { className: "lane" }, h("tr", { className: "lane-row" }, title));
    body.parts = { title };
    return body;
  }

  function createInstance() {
    const row = h("tr", { className: "instance" });
    for (let i = 0; i < INSTANCE_COLUMNS.length; i++) {
      row.append(h("td", { className: INSTANCE_COLUMNS[i][1] === "num" ? "num" : "nowrap" }));
    }
    return row;
  }

  function updateInstance(row, { instance: i, service }) {
    const c = row.cells;
    row.dataset.instance = String(i.instanceId);
    row.dataset.healthy = i.healthy ? "true" : "false";
    row.dataset.health = String(i.health ?? "");
    row.classList.toggle("is-unhealthy", !i.healthy);
    const address = `${i.host}:${i.port}`;
    fill(
      c[0],
      h("span", { className: "mono", text: String(i.instanceId) }),
      String(i.instanceId).includes(address) ? null : h("span", { className: "sub mono", text: address }),
    );
    fill(c[1], badge(String(i.health ?? "unknown"), HEALTH_TONE[i.health]));
    fill(c[2], badge(i.healthy ? "yes" : "no", i.healthy ? "ok" : "bad"));
    fill(c[3], breakerBadges(service.breakers));
    fill(
      c[4],
      i.ejected
        ? badge(isNum(i.ejectedUntil) ? `until ${fmtClock(i.ejectedUntil)}` : "yes", "bad")
        : h("span", { className: "muted", text: "no" }),
    );
    c[5].textContent = String(i.weight ?? DASH);
    c[6].textContent = String(i.zone ?? DASH);
    const one = i["1m"] || {};
    const five = i["5m"] || {};
    c[7].textContent = fmtInt(i.inFlight);
    c[8].textContent = fmtRate(one.rate);
    c[9].textContent = fmtPct(one.errorRate);
    c[10].textContent = fmtMs(one.p99);
    c[11].textContent = `${fmtRate(five.rate)} \u00b7 ${fmtPct(five.errorRate)}`;
  }

  function updateService(section, service) {
    const p = section.parts;
    section.dataset.service = String(service.service);
    p.name.textContent = String(service.service);
    const instances = service.instances || [];
    const healthy = instances.filter((i) => i.healthy).length;
    const age = isNum(service.snapshotAgeSeconds) ? ` · snapshot ${service.snapshotAgeSeconds.toFixed(1)} s old` : "";
    fill(
      p.badges,
      badge(String(service.source ?? ""), ""),
      badge(`${healthy}/${instances.length} healthy`, healthy === instances.length && instances.length ? "ok" : healthy ? "warn" : "bad"),
      h("span", { className: "small muted", text: age }),
    );
    fill(p.breakers, breakerBadges(service.breakers));
    p.error.hidden = !service.error;
    p.error.textContent = service.error ? `Discovery error: ${service.error}` : "";

    // Lanes: stable first, then the others by name.
    const lanes = new Map();
    for (const instance of instances) {
      const lane = instance.lane || "stable";
      if (!lanes.has(lane)) lanes.set(lane, []);
      lanes.get(lane).push(instance);
    }
    const laneNames = [...lanes.keys()].sort((a, b) => (a === "stable" ? -1 : b === "stable" ? 1 : a.localeCompare(b)));
    syncKeyed(p.table, laneNames, {
      key: (lane) => `lane:${lane}`,
      create: createLane,
      start: p.table.tHead,
      update: (body, lane) => {
        const members = lanes.get(lane).slice().sort((a, b) => String(a.instanceId).localeCompare(String(b.instanceId)));
        const up = members.filter((i) => i.healthy).length;
        body.dataset.lane = lane;
        body.parts.title.textContent = `lane ${lane} · ${up}/${members.length} healthy`;
        syncKeyed(body, members.map((instance) => ({ instance, service })), {
          key: (x) => x.instance.instanceId,
          create: createInstance,
          start: body.firstElementChild,
          update: updateInstance,
        });
      },
    });
  }

  const unsubscribe = stats.subscribe((sample) => {
    waiting.hidden = true;
    const services = (sample.services || []).slice().sort((a, b) => String(a.service).localeCompare(String(b.service)));
    count.textContent = `${services.length} service${services.length === 1 ? "" : "s"} · updated ${fmtClock(sample.timestamp)}`;
    empty.hidden = services.length > 0;
    syncKeyed(list, services, {
      key: (s) => s.service,
      create: createService,
      update: updateService,
    });
  });
  return unsubscribe;
}

// The Explain form's values survive navigation (but not a reload), like a scratch pad.
const explainDraft = { method: "GET", url: "", headers: "", cookies: "", remoteAddress: "" };

/** "Name: value" lines to an object; repeated names are joined with ", " as HTTP does. */
function parseHeaderLines(text) {
  const headers = {};
  const errors = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (!line) return;
    const colon = line.indexOf(":");
    if (colon <= 0) {
      errors.push(`headers line ${index + 1}: expected "Name: value"`);
      return;
    }
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    const existing = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
    if (existing) headers[existing] = `${headers[existing]}, ${value}`;
    else headers[name] = value;
  });
  return { headers, errors };
}

/** "name=value" lines to an object. */
function parseCookieLines(text) {
  const cookies = {};
  const errors = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (!line) return;
    const eq = line.indexOf("=");
    if (eq <= 0) {
      errors.push(`cookies line ${index + 1}: expected "name=value"`);
      return;
    }
    cookies[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  });
  return { cookies, errors };
}

/** Headers as the API gives them: an object, or a list of [name, value] pairs. */
function headerPairs(headers) {
  if (Array.isArray(headers)) return headers.map((pair) => [String(pair[0]), String(pair[1])]);
  if (headers && typeof headers === "object") return Object.entries(headers).map(([k, v]) => [k, String(v)]);
  return [];
}

function headersTable(headers) {
  const pairs = headerPairs(headers);
  if (!pairs.length) return h("p", { className: "muted", text: "no headers" });
  const { wrap, tbody } = tableIn("", [["Header"], ["Value"]]);
  for (const [name, value] of pairs) {
    tbody.append(h("tr", {}, h("td", { className: "nowrap mono", text: name }), h("td", { className: "mono", text: value })));
  }
  return wrap;
}

function factsList(rows) {
  return h(
    "dl",
    { className: "facts" },
    rows.filter(Boolean).flatMap(([term, value]) => [h("dt", { text: term }), h("dd", {}, value)]),
  );
}

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

function explainPage(root, params) {
  const controller = new AbortController();
  const method = h("select", { id: "explain-method", name: "method" }, METHODS.map((m) => h("option", { value: m, text: m })));
  const url = h("input", {
    id: "explain-url",
    name: "url",
    type: "text",
    required: true,
    placeholder: "/orders/1?x=1 or http://host/path",
    spellcheck: false,
    attrs: { autocomplete: "off" },
  });
  const remote = h("input", { id: "explain-remote", name: "remoteAddress", type: "text", placeholder: "10.0.0.1", spellcheck: false });
  const headers = h("textarea", { id: "explain-headers", name: "headers", placeholder: "X-Lane: canary\nAccept: application/json", spellcheck: false });
  const cookies = h("textarea", { id: "explain-cookies", name: "cookies", placeholder: "session=abc", spellcheck: false });
  const submit = h("button", { type: "submit", className: "primary", text: "Explain" });
  const formError = h("p", { className: "form-error", hidden: true, attrs: { role: "alert" } });
  const result = h("div", { className: "explain-result stack", attrs: { "aria-live": "polite" } });

  method.value = params.query.get("method") || explainDraft.method;
  url.value = params.query.get("url") ?? explainDraft.url;
  headers.value = explainDraft.headers;
  cookies.value = explainDraft.cookies;
  remote.value = explainDraft.remoteAddress;

  const field = (cls, label, input) => h("div", { className: cls }, h("label", { htmlFor: input.id, text: label }), input);
  const form = h(
    "form",
    { className: "card explain-form", attrs: { "data-testid": "explain-form" } },
    field("field-method", "Method", method),
    field("field-url", "URL", url),
    field("field-remote", "Remote address", remote),
    h("div", { className: "pair" }, field("", "Headers (Name: value per line)", headers), field("", "Cookies (name=value per line)", cookies)),
    h("div", { className: "form-actions" }, submit, formError),
  );

  fill(
    root,
    pageHead("Explain", h("span", { className: "muted small", text: "Which route a request would take, and what would happen to it. Nothing is sent." })),
    form,
    result,
  );

  form.addEventListener("input", () => {
    Object.assign(explainDraft, {
      method: method.value,
      url: url.value,
      headers: headers.value,
      cookies: cookies.value,
      remoteAddress: remote.value,
    });
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const parsedHeaders = parseHeaderLines(headers.value);
    const parsedCookies = parseCookieLines(cookies.value);
    const errors = [...parsedHeaders.errors, ...parsedCookies.errors];
    if (!url.value.trim()) errors.unshift("a URL is required");
    formError.hidden = errors.length === 0;
    formError.textContent = errors.join("; ");
    if (errors.length) return;
    const body = { method: method.value, url: url.value.trim(), headers: parsedHeaders.headers, cookies: parsedCookies.cookies };
    if (remote.value.trim()) body.remoteAddress = remote.value.trim();
    submit.disabled = true;
    try {
      const answer = await apiJson(`${API}/explain`, { method: "POST", body, signal: controller.signal });
      renderExplain(result, answer);
    } catch (error) {
      if (controller.signal.aborted) return;
      fill(result, notice(errorText(error), true));
    } finally {
      submit.disabled = false;
    }
  });

  // #/explain?url=/x[&method=POST] explains at once: a shareable link.
  if (params.query.get("url")) form.requestSubmit();
  else url.focus();

  return () => controller.abort();
}

function renderExplain(root, answer) {
  const request = answer.request || {};
  const instance = answer.instance;
  const routeId = answer.route;
  const routeEl = h("span", {
    className: routeId ? "mono" : "verdict-no",
    text: routeId ? String(routeId) : "no route matches",
    attrs: { "data-testid": "explain-route", "data-route": routeId ? String(routeId) : "" },
  });
  const routeCell = routeId ? h("a", { href: routeHref(routeId) }, routeEl) : routeEl;
  const instanceText = instance
    ? [
        instance.service ? `${instance.service} / ` : "",
        instance.instanceId ? `${instance.instanceId} ` : "",
        `${instance.host}:${instance.port}`,
        instance.lane ? ` · lane ${instance.lane}` : "",
        instance.zone ? ` · zone ${instance.zone}` : "",
      ].join("")
    : "none";
  const summary = h(
    "section",
    { className: "card", attrs: { "data-testid": "explain-summary" } },
    h("h2", { text: "Result" }),
    factsList([
      ["Route", routeCell],
      ["Lane", h("span", { text: answer.lane ?? DASH })],
      ["Instance", h("span", { className: "mono", text: instanceText, attrs: { "data-testid": "explain-instance" } })],
      ["Destination", h("span", { className: "mono", text: answer.destination ?? DASH })],
      answer.answeredBy
        ? ["Answered by", h("span", { text: `${answer.answeredBy.filter} (status ${answer.answeredBy.status}), not forwarded` })]
        : null,
      [
        "Request",
        h("span", {
          className: "mono",
          text: `${request.method ?? ""} ${request.path ?? ""}${request.query ? `?${request.query}` : ""} · host ${request.host ?? DASH} · from ${request.remoteAddress ?? DASH}`,
        }),
      ],
    ]),
    Array.isArray(answer.notes) && answer.notes.length
      ? [h("h3", { text: "Notes" }), h("ul", { className: "small" }, answer.notes.map((n) => h("li", { text: String(n) })))]
      : null,
  );

  const forwarded = answer.forwarded;
  const forwardedSection = h(
    "section",
    { className: "card" },
    h("h2", { text: "Forwarded request" }),
    forwarded
      ? [
          h("p", { className: "mono", text: `${forwarded.method ?? ""} ${forwarded.path ?? ""}${forwarded.query ? `?${forwarded.query}` : ""}` }),
          headersTable(forwarded.headers),
        ]
      : h("p", { className: "muted", text: routeId ? "not forwarded" : "no route, nothing is forwarded" }),
  );

  const filters = Array.isArray(answer.filters) ? answer.filters : [];
  const filtersTable = tableIn("", [["#", "num"], ["Filter"], ["Kind"], ["Description"], ["Effect"]]);
  filters.forEach((f, index) => {
    filtersTable.tbody.append(
      h(
        "tr",
        {},
        h("td", { className: "num", text: String(index + 1) }),
        h("td", { className: "nowrap", text: String(f.name ?? "") }),
        h("td", { className: "nowrap muted", text: String(f.kind ?? "") }),
        h("td", { className: "mono wrap", text: String(f.description ?? "") }),
        h("td", { className: f.effect ? "wrap" : "muted", text: f.effect ? String(f.effect) : "no change" }),
      ),
    );
  });
  const filtersSection = h(
    "section",
    { className: "card" },
    h("h2", { text: "Filters, in the order they run" }),
    filters.length ? filtersTable.wrap : h("p", { className: "muted", text: "none" }),
  );

  // Every route, every predicate, with its verdict: why the chosen one won and the others lost.
  const routesTable = tableIn("explain-routes", [["Route"], ["Order", "num"], ["Predicate"], ["Verdict"], ["Reason"]]);
  for (const route of Array.isArray(answer.routes) ? answer.routes : []) {
    const predicates = Array.isArray(route.predicates) && route.predicates.length ? route.predicates : [null];
    predicates.forEach((p, index) => {
      const row = h("tr", {
        className: `${route.matched && route.id === routeId ? "is-matched" : ""} ${index === 0 ? "group-start" : ""}`,
        dataset: { explainRoute: String(route.id), matched: route.matched ? "true" : "false" },
      });
      if (index === 0) {
        const cellAttrs = { rowspan: String(predicates.length) };
        row.append(
          h(
            "td",
            { className: "nowrap", attrs: cellAttrs },
            h("a", { href: routeHref(route.id), className: "mono", text: String(route.id) }),
            route.matched && route.id === routeId ? [" ", badge("chosen", "ok")] : null,
            route.evaluated === false ? [" ", badge("after the match", "")] : null,
          ),
          h("td", { className: "num", text: String(route.order ?? ""), attrs: cellAttrs }),
        );
      }
      if (p === null) {
        row.append(h("td", { className: "muted", text: "no predicates" }), h("td", { className: "verdict-yes", text: "yes" }), h("td"));
      } else {
        row.append(
          h("td", { className: "mono wrap", text: String(p.predicate ?? "") }),
          h("td", { className: p.matched ? "verdict-yes" : "verdict-no", text: p.matched ? "yes" : "no" }),
          h("td", { className: "wrap", text: String(p.reason ?? "") }),
        );
      }
      routesTable.tbody.append(row);
    });
  }
  const routesSection = h(
    "section",
    { className: "card" },
    h("h2", { text: "Every route's predicates" }),
    routesTable.tbody.rows.length ? routesTable.wrap : h("p", { className: "muted", text: "no routes" }),
  );

  fill(root, h("div", { className: "two-col" }, summary, forwardedSection), filtersSection, routesSection);
}

function configPage(root) {
  const controller = new AbortController();
  const body = h("div", { className: "stack" }, notice("Loading the configuration\u2026"));
  const refresh = h("button", { type: "button", className: "secondary", text: "Refresh" });
  fill(root, pageHead("Config", refresh), body);

  async function load() {
    refresh.disabled = true;
    try {
      const config = await apiJson(`${API}/config`, { signal: controller.signal });
      const sources = Array.isArray(config.sources) ? config.sources : [];
      const table = tableIn("config-sources", [["Kind"], ["Location"], ["Routes", "num"]]);
      for (const s of sources) {
        table.tbody.append(
          h(
            "tr",
            { dataset: { source: String(s.kind) } },
            h("td", { className: "nowrap", text: String(s.kind ?? "") }),
            h("td", { className: "mono", text: String(s.location ?? "") }),
            h("td", { className: "num", text: fmtInt(s.routes) }),
          ),
        );
      }
      const reload = isNum(config.lastReload)
        ? h(
            "span",
            {},
            `${fmtEpoch(config.lastReload)} (${fmtAgo(config.lastReload)}) `,
            badge(config.lastReloadOk === false ? "failed" : "ok", config.lastReloadOk === false ? "bad" : "ok"),
          )
        : h("span", { className: "muted", text: "never reloaded since start" });
      fill(
        body,
        h(
          "section",
          { className: "card", attrs: { "data-testid": "config-summary" } },
          factsList([
            ["Routes", h("span", { text: fmtInt(config.routes) })],
            ["Discovery", h("span", { text: String(config.discovery ?? DASH) })],
            ["Workers", h("span", { text: fmtInt(config.workers) })],
            ["Management token", h("span", { text: config.managementTokenRequired ? "required" : "not required" })],
            ["Last reload", reload],
            [
              "Last error",
              config.lastError
                ? h("pre", { className: "notice error", text: String(config.lastError) })
                : h("span", { className: "muted", text: "none" }),
            ],
          ]),
        ),
        h("section", {}, h("h2", { text: "Route sources" }), sources.length ? table.wrap : notice("No sources.")),
      );
    } catch (error) {
      if (controller.signal.aborted) return;
      fill(body, notice(`Could not load the configuration: ${errorText(error)}`, true));
    } finally {
      refresh.disabled = false;
    }
  }

  refresh.addEventListener("click", load);
  load();
  return () => controller.abort();
}

// -- router --------------------------------------------------------------------------------

const PAGES = {
  overview: { nav: "overview", title: "Overview", mount: overviewPage },
  routes: { nav: "routes", title: "Routes", mount: routesPage },
  route: { nav: "routes", title: "Route", mount: routeDetailPage },
  services: { nav: "services", title: "Services", mount: servicesPage },
  explain: { nav: "explain", title: "Explain", mount: explainPage },
  config: { nav: "config", title: "Config", mount: configPage },
};

/** #/name[/rest][?query] -> {page, params}. Unknown pages go to the overview. */
function parseHash(hash) {
  const raw = hash.replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  const [name, ...rest] = path.split("/");
  if (name === "routes" && rest.length && rest.join("/")) {
    let id;
    try {
      id = decodeURIComponent(rest.join("/"));
    } catch {
      id = rest.join("/");
    }
    return { page: "route", params: { id, query } };
  }
  return { page: PAGES[name] ? name : "overview", params: { query } };
}

let unmountCurrent = null;

function navigate() {
  const { page, params } = parseHash(location.hash);
  const spec = PAGES[page];
  if (unmountCurrent) unmountCurrent();
  unmountCurrent = null;
  const main = document.getElementById("main");
  main.replaceChildren();
  main.dataset.page = page;
  for (const link of document.querySelectorAll(".nav a")) {
    if (link.dataset.page === spec.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${spec.title}${params.id ? ` ${params.id}` : ""} · meshgate`;
  closeNav();
  unmountCurrent = spec.mount(main, params) || null;
}

function closeNav() {
  document.getElementById("nav").classList.remove("is-open");
  document.getElementById("nav-toggle").setAttribute("aria-expanded", "false");
}

// -- start ---------------------------------------------------------------------------------

function start() {
  document.getElementById("nav-toggle").addEventListener("click", () => {
    const nav = document.getElementById("nav");
    const open = nav.classList.toggle("is-open");
    document.getElementById("nav-toggle").setAttribute("aria-expanded", String(open));
  });
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = document.getElementById("token-input").value.trim();
    if (value) tokenGate.submit(value);
  });
  document.getElementById("forget-token").addEventListener("click", () => {
    tokenStore.clear();
    location.reload();
  });
  updateForgetButton();

  window.addEventListener("hashchange", navigate);
  if (!location.hash) history.replaceState(null, "", "#/overview");
  navigate();

  // A first sample at once, then the stream (which also sends one every second).
  apiJson(`${API}/stats`).then((sample) => stats.publish(sample), () => {});
  new StatsStream((sample) => stats.publish(sample)).run();
}

start();
