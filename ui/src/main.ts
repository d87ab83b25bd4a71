// Wiring: controls → query → one stream at a time → batched rendering → status bar;
// beside the stream, the histogram, the facets, the row details and context.
import "./style.css";
import { Api } from "./api.ts";
import { authHeaders, authMessage, normalizeToken, sessionStorageOrNull, takeTokenFromUrl, TokenStore } from "./auth.ts";
import { Context } from "./context.ts";
import { Details } from "./details.ts";
import { Facets, facetNames } from "./facets.ts";
import { Histogram } from "./histogram.ts";
import { levelQuery, presetOf, toServerQuery, withMatcher } from "./logql.ts";
import { QueryBox } from "./querybox.ts";
import { RingBuffer } from "./buffer.ts";
import { Crc32c } from "./crc32c.ts";
import { VirtualList } from "./list.ts";
import { createRowElement, highlighterForQuery, renderRow, ROW_HEIGHT } from "./row.ts";
import {
  formatCount,
  LEVELS,
  localInputToNs,
  nsToLocalInput,
  pageSearch,
  parsePageParams,
  queryToHttpParams,
  RANGE_PRESETS,
  resolveRange,
  type Query,
  type TransportName,
} from "./state.ts";
import { isAbort, openStream, resetTransportPreference, StreamError, type Entry, type StreamTail } from "./transport/index.ts";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

// ---- the token (a server with --auth-token-file) ----
// `?token=` is taken out of the address bar before anything else happens, so
// it is neither left on screen nor in a bookmark; it lives on in this tab's
// sessionStorage only.
const tokens = new TokenStore(sessionStorageOrNull());
{
  const { token, cleaned } = takeTokenFromUrl(location.href);
  if (cleaned != null) {
    history.replaceState(history.state, "", cleaned);
    if (token) tokens.set(token);
  }
}

const cfg = parsePageParams(location.search);
let query: Query = cfg.query;
/** The query the stream runs: `query` with a range preset resolved when it was applied. */
let running: Query = resolveRange(query, nowNs());
const api = new Api(location.origin, () => tokens.get());

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

// ---- the list ----
const viewport = $("viewport");
const emptyEl = $("empty");
const jump = $<HTMLButtonElement>("jump");
const buffer = new RingBuffer<Entry>(cfg.max);
let hl = highlighterForQuery(query);
/** The entry shown in the details panel (highlighted in the list). */
let selected: Entry | null = null;
/** A permalink's row (`?sel=`), selected once it arrives. */
let wanted: bigint | null = cfg.selected;
/** Label names in the entries received, with how many carried each (facets, completion). */
const seenLabels = new Map<string, number>();
const list = new VirtualList<Entry>(viewport, {
  rowHeight: ROW_HEIGHT,
  overscan: 10,
  source: buffer,
  createRow: createRowElement,
  renderRow: (el, e) => {
    renderRow(el, e, hl);
    el.classList.toggle("selected", e === selected);
  },
  onStickyChange(sticky) {
    if (sticky) newBelow = 0;
    renderJump();
  },
});

// ---- stream state ----
type State = "connecting" | "streaming" | "reconnecting" | "ended" | "paused" | "error";
let state: State = "connecting";
let stateMsg = "";
let ctl: AbortController | null = null;
let gen = 0;
let lastCursor: bigint | null = null;
let received = 0;
let total: bigint | null = null;
let requestId = "";
let transport: TransportName | null = null;
let transportWhy = "";
let tStart = 0;
let firstMs: number | null = null;
let firstArrivalMs: number | null = null;
let headMs: number | null = null;
let firstPending = false;
const crc = new Crc32c();
let crcCount = 0;
let checksum: { text: string; ok: boolean | null } = { text: "checksum —", ok: null };
let pending: Entry[] = [];
let frame = 0;
let newBelow = 0;
let wantedArrived = false;
let reconnectTimer = 0;
let reconnectTries = 0;
/** The stream got its headers at least once: a failure after that is worth reconnecting. */
let wasStreaming = false;

/** Errors that come back the same however often they are retried. */
const FINAL_CODES = new Set(["INVALID_ARGUMENT", "DATA_LOSS", "FAILED_PRECONDITION", "OUT_OF_RANGE", "UNIMPLEMENTED", "RESOURCE_EXHAUSTED"]);

/**
 * A following stream that the server ended (its shutdown ends streams
 * cleanly) or that no transport could reopen: try again after a growing
 * pause, after the last cursor, gRPC-Web first again. The status bar says so.
 */
function reconnectLater(why: string): void {
  const delay = Math.min(10_000, 500 * 2 ** Math.min(reconnectTries++, 5));
  setState("reconnecting", lastCursor != null ? `${why}; resuming after cursor ${lastCursor}` : why);
  reconnectTimer = window.setTimeout(() => {
    reconnectTimer = 0;
    resetTransportPreference();
    start(true);
  }, delay);
}
let seenCount = 0;
/** Label names are learnt from the first entries of a result only. */
const SEEN_SAMPLE = 5000;

function schedule(): void {
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush(): void {
  frame = 0;
  if (pending.length) {
    const batch = pending;
    pending = [];
    const dropped = buffer.push(batch);
    list.droppedFromTop(dropped);
    if (!list.sticky) newBelow += batch.length;
    list.refresh();
    if (firstPending) {
      firstPending = false;
      firstMs = performance.now() - tStart;
    }
    if (wantedArrived && wanted != null) {
      const i = indexOfCursor(wanted);
      wanted = null;
      wantedArrived = false;
      if (i >= 0) selectIndex(i);
    }
  }
  renderStatus();
}

/** The buffer's index of a cursor (entries arrive in cursor order), or -1. */
function indexOfCursor(c: bigint): number {
  let lo = 0;
  let hi = buffer.size - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = buffer.get(mid)!.cursor;
    if (m === c) return mid;
    if (m < c) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

function setState(s: State, msg = ""): void {
  state = s;
  stateMsg = msg;
  renderStatus();
}

function stop(): void {
  gen++;
  clearTimeout(reconnectTimer);
  reconnectTimer = 0;
  if (ctl) {
    ctl.abort();
    ctl = null;
  }
}

function start(resume: boolean): void {
  stop();
  const my = gen;
  const c = new AbortController();
  ctl = c;
  const q: Query = { ...running, after: resume ? lastCursor : running.after };
  if (!resume) {
    wasStreaming = false;
    reconnectTries = 0;
    received = 0;
    lastCursor = null;
    firstMs = null;
    firstArrivalMs = null;
    headMs = null;
    total = null;
  }
  firstPending = !resume;
  requestId = "";
  checksum = { text: "checksum —", ok: null };
  tStart = performance.now();
  const token = tokens.get();
  setState("connecting");
  openStream(
    q,
    {
      onHead(h) {
        if (my !== gen) return;
        hideAuth();
        queryBox.setError(null);
        if (h.total !== undefined) total = h.total;
        if (h.requestId) requestId = h.requestId;
        if (headMs == null && !resume) headMs = performance.now() - tStart;
        wasStreaming = true;
        reconnectTries = 0;
        setState("streaming");
      },
      onEntry(e) {
        if (my !== gen) return;
        if (firstPending && firstArrivalMs == null) firstArrivalMs = performance.now() - tStart;
        pending.push(e);
        crc.entry(e.timestamp, e.message);
        crcCount++;
        received++;
        lastCursor = e.cursor;
        if (e.labels && seenCount < SEEN_SAMPLE) {
          seenCount++;
          for (const [k] of e.labels) seenLabels.set(k, (seenLabels.get(k) ?? 0) + 1);
        }
        if (wanted != null && e.cursor === wanted) wantedArrived = true;
        if (liveSide) {
          if (histogram.pastEnd(e.timestamp)) reloadHistogramSoon();
          else histogram.add(e.timestamp, e.level);
        }
        scheduleFacets();
        schedule();
      },
      onReconnecting(reason) {
        if (my !== gen) return;
        setState("reconnecting", lastCursor != null ? `${reason}; resuming after cursor ${lastCursor}` : reason);
      },
    },
    c.signal,
    {
      forced: cfg.transport,
      token,
      onTransport(name, why) {
        if (my !== gen) return;
        transport = name;
        transportWhy = why ?? "";
        crc.reset();
        crcCount = 0;
        renderStatus();
      },
    },
  ).then(
    (end) => {
      if (my !== gen) return;
      ctl = null;
      checksum = checksumResult(end.tail, end.transport);
      if (end.tail?.requestId) requestId = end.tail.requestId;
      // Let the last batch render before saying "ended".
      flush();
      if (running.follow && running.until == null && wasStreaming) {
        reconnectLater("the server ended the stream");
        return;
      }
      setState("ended");
      scheduleFacets();
    },
    (err: unknown) => {
      if (my !== gen || isAbort(err)) return;
      ctl = null;
      flush();
      if (err instanceof StreamError && err.auth) {
        // The server refused the token (or its absence): ask for one.
        const msg = authMessage(err.auth, token != null);
        showAuth(msg);
        setState("error", msg);
        return;
      }
      const msg = err instanceof StreamError ? (err.code ? `${err.code}: ${err.message}` : err.message) : String(err);
      if (err instanceof StreamError && err.code === "INVALID_ARGUMENT") queryBox.setError(err.message);
      if (running.follow && wasStreaming && !(err instanceof StreamError && err.code && FINAL_CODES.has(err.code))) {
        reconnectLater(msg);
        return;
      }
      setState("error", msg);
    },
  );
}

function checksumResult(tail: StreamTail | null, via: TransportName): { text: string; ok: boolean | null } {
  if (!tail?.crc32c) return { text: via === "grpc-web" ? "checksum n/a" : `checksum n/a (${via})`, ok: null };
  const mine = crc.hex();
  if (mine === tail.crc32c) return { text: "checksum ok", ok: true };
  return { text: `checksum mismatch (server ${tail.crc32c}, got ${mine})`, ok: false };
}

// ---- status bar ----
const st = {
  state: $("status-state"),
  transport: $("status-transport"),
  total: $("status-total"),
  received: $("status-received"),
  first: $("status-first-ms"),
  checksum: $("status-checksum"),
  dropped: $("status-dropped"),
  requestId: $("status-request-id"),
  pause: $<HTMLButtonElement>("pause"),
};

function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

function renderStatus(): void {
  const label =
    state === "error" ? `error: ${stateMsg}` : state === "reconnecting" ? `reconnecting: ${stateMsg}` : state;
  setText(st.state, label);
  st.state.dataset.state = state;
  st.state.title = label;
  setText(st.transport, transport ?? "—");
  st.transport.title = transportWhy ? `fell back: ${transportWhy}` : "";
  setText(st.total, total != null ? formatCount(total) : "—");
  setText(st.received, formatCount(received));
  setText(st.first, firstMs != null ? `${Math.round(firstMs)} ms` : "—");
  if (firstMs != null) st.first.dataset.ms = firstMs.toFixed(1);
  else delete st.first.dataset.ms;
  setText(st.checksum, checksum.text);
  st.checksum.dataset.ok = checksum.ok == null ? "" : String(checksum.ok);
  if (buffer.dropped > 0) {
    st.dropped.hidden = false;
    setText(st.dropped, `${formatCount(buffer.dropped)} older lines dropped (max ${formatCount(cfg.max)})`);
  } else st.dropped.hidden = true;
  setText(st.requestId, requestId ? `request ${requestId}` : "");
  const active = state === "connecting" || state === "streaming" || state === "reconnecting";
  setText(st.pause, state === "paused" ? "Resume" : "Pause");
  st.pause.disabled = !(active || state === "paused" || (state === "error" && lastCursor != null));
  if (state === "error" && lastCursor != null) setText(st.pause, "Resume");
  st.pause.classList.toggle("on", state === "paused");
  // Empty-state hint (the token prompt says it all when it is up).
  if (buffer.size === 0 && authForm.hidden) {
    emptyEl.hidden = false;
    const hint =
      state === "connecting"
        ? "Connecting…"
        : state === "error"
          ? `Error: ${stateMsg}`
          : state === "paused"
            ? "Paused."
            : state === "ended"
              ? received
                ? "Cleared."
                : "No matching entries."
              : received
                ? "Cleared. New lines will appear here."
                : query.follow
                  ? "No matching entries yet. Waiting for new lines…"
                  : "Loading…";
    setText(emptyEl, hint);
    emptyEl.dataset.state = state;
  } else emptyEl.hidden = true;
  document.title = (showsErrors() ? "Errors" : "logtap") + ` · ${formatCount(received)}`;
}

function renderJump(): void {
  jump.hidden = list.sticky;
  setText($("jump-count"), newBelow ? `${formatCount(newBelow)} new ·` : "");
}

// ---- token prompt ----
const authForm = $<HTMLFormElement>("auth");
const authMsg = $("auth-message");
const tokenInput = $<HTMLInputElement>("token");

function showAuth(msg: string): void {
  setText(authMsg, msg);
  const wasHidden = authForm.hidden;
  authForm.hidden = false;
  emptyEl.hidden = true;
  const a = document.activeElement;
  if (wasHidden && (!a || a === document.body || a === viewport)) tokenInput.focus();
}

function hideAuth(): void {
  if (authForm.hidden) return;
  authForm.hidden = true;
  renderStatus();
}

authForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = normalizeToken(tokenInput.value);
  if (!t) {
    tokenInput.focus();
    return;
  }
  tokens.set(t);
  tokenInput.value = "";
  tokenInput.blur();
  authForm.hidden = true;
  applyQuery(query);
});

// ---- controls ----
const levelButtons = ["level-all", "level-warn", "level-error"].map((id) => $<HTMLButtonElement>(id));
const showErrors = $<HTMLButtonElement>("show-errors");
const rangeSel = $<HTMLSelectElement>("range");
const since = $<HTMLInputElement>("since");
const until = $<HTMLInputElement>("until");
const follow = $<HTMLInputElement>("follow");
const exportLink = $<HTMLAnchorElement>("export");
for (const [k, label] of RANGE_PRESETS) rangeSel.append(new Option(label, k));
rangeSel.append(new Option("Custom", "custom"));

const queryBox = new QueryBox($<HTMLInputElement>("query"), {
  onRun(text) {
    applyQuery({ ...query, logql: text, level: "", grep: "" });
  },
  async complete(c) {
    if (c.kind === "name") return ["level", ...[...seenLabels.keys()].filter((k) => k !== "level").sort()];
    if (c.label === "level") return [...LEVELS];
    return labelValues(c.label ?? "");
  },
});

const valueCache = new Map<string, { at: number; values: Promise<string[]> }>();
/** A label's values seen over the current range (QueryMetrics), cached for a while. */
function labelValues(label: string): Promise<string[]> {
  const hit = valueCache.get(label);
  if (hit && performance.now() - hit.at < 15_000) return hit.values;
  const to = nowNs();
  const range = running.since != null ? to - running.since : 7n * 86_400_000_000_000n;
  const values = (async () => {
    const out = new Map<string, number>();
    await api.metrics(`sum by (${label}) (count_over_time({}[${range / 1_000_000_000n}s]))`, to, to, range, new AbortController().signal, (p) => {
      for (const s of p.samples) if (s.labels[label]) out.set(s.labels[label], s.value);
    });
    return [...out.entries()].sort((a, b) => b[1] - a[1]).map(([v]) => v);
  })();
  valueCache.set(label, { at: performance.now(), values });
  values.catch(() => valueCache.delete(label));
  return values;
}

function showsErrors(): boolean {
  return presetOf(query.logql) === "error" || (!query.logql && query.level === "error");
}

function renderControls(): void {
  const preset = presetOf(query.logql);
  for (const b of levelButtons) {
    const l = b.dataset.level ?? "";
    b.setAttribute("aria-pressed", String(preset === l && (l !== "" || !query.level) || (!query.logql && query.level === l && l !== "")));
  }
  showErrors.classList.toggle("active", showsErrors());
  if (document.activeElement !== queryBox.input) queryBox.set(query.logql || query.grep);
  rangeSel.value = query.range || (query.since != null || query.until != null ? "custom" : "");
  since.value = running.since != null ? nsToLocalInput(running.since) : "";
  until.value = running.until != null ? nsToLocalInput(running.until) : "";
  since.classList.toggle("blank", !since.value);
  until.classList.toggle("blank", !until.value);
  follow.checked = query.follow;
  renderExport();
}

/** The export link: the server's NDJSON of the current result (never following). */
function renderExport(): void {
  const p = queryToHttpParams({ ...running, after: null, follow: false });
  exportLink.href = new URL("/api/v1/logs?" + p.toString(), location.origin).toString();
}

// With a token the download cannot be a plain link: the server takes tokens
// in the URL only where EventSource needs it (URLs end up in logs). The
// response is streamed to the file a person picks, chunk by chunk, never
// collected in the page.
exportLink.addEventListener("click", (ev) => {
  const token = tokens.get();
  if (!token) return;
  ev.preventDefault();
  const picker = (window as unknown as { showSaveFilePicker?: (o: unknown) => Promise<{ createWritable(): Promise<WritableStream<Uint8Array>> }> }).showSaveFilePicker;
  if (!picker) {
    setState(state, "export with a token needs a browser that can save a stream (Chromium's file picker)");
    return;
  }
  void (async () => {
    try {
      const file = await picker({ suggestedName: "logtap.ndjson" });
      const res = await fetch(exportLink.href, { headers: authHeaders(token) });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      await res.body.pipeTo(await file.createWritable());
    } catch (e) {
      if (!(e instanceof DOMException && e.name === "AbortError")) setState(state, `export failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  })();
});

function writeUrl(): void {
  cfg.query = query;
  history.replaceState(null, "", location.pathname + pageSearch(cfg) + location.hash);
}

/** A new filter: cancel the stream, clear the screen, start over. */
function applyQuery(q: Query): void {
  query = { ...q, after: null };
  running = resolveRange(query, nowNs());
  cfg.selected = wanted;
  writeUrl();
  hl = highlighterForQuery(query);
  stop();
  pending = [];
  buffer.clear();
  newBelow = 0;
  seenLabels.clear();
  seenCount = 0;
  closeDetail();
  context.close();
  facets.cancel();
  list.reset();
  renderControls();
  start(false);
  void loadHistogram();
}

const setQueryText = (text: string) => applyQuery({ ...query, logql: text, level: "", grep: "" });
showErrors.addEventListener("click", () => setQueryText(levelQuery("error")));
for (const b of levelButtons) b.addEventListener("click", () => setQueryText(levelQuery(b.dataset.level ?? "")));
rangeSel.addEventListener("change", () => {
  if (rangeSel.value === "custom") {
    since.focus();
    return;
  }
  applyQuery({ ...query, range: rangeSel.value, since: null, until: null });
});
since.addEventListener("change", () => applyQuery({ ...query, range: "", since: localInputToNs(since.value), until: running.until }));
until.addEventListener("change", () => applyQuery({ ...query, range: "", since: running.since, until: localInputToNs(until.value) }));
follow.addEventListener("change", () => applyQuery({ ...query, follow: follow.checked }));

// ---- histogram ----
const histogram = new Histogram($("histogram"), api, {
  onZoom(from, to) {
    applyQuery({ ...query, range: "", since: from, until: to });
  },
  onJump(from, to) {
    // In the rows already here: scroll to the first one in the bar; else show the bar's range.
    let lo = 0;
    let hi = buffer.size;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (buffer.get(mid)!.timestamp < from) lo = mid + 1;
      else hi = mid;
    }
    const e = buffer.get(lo);
    if (e && e.timestamp < to) selectIndex(lo);
    else applyQuery({ ...query, range: "", since: from, until: to });
  },
});
/** Live entries go into the histogram while following an open-ended range. */
let liveSide = false;
let histogramMs: number | null = null;
let histogramGen = 0;

async function loadHistogram(): Promise<void> {
  const my = ++histogramGen;
  const t0 = performance.now();
  const server = toServerQuery(running.logql);
  liveSide = false;
  let from = running.since;
  let to = running.until;
  if (from == null || to == null) {
    const b = await api.bounds(server, running.since, running.until, new AbortController().signal).catch(() => null);
    if (my !== histogramGen) return;
    const now = nowNs();
    from ??= b ? b[0] : now - 3_600_000_000_000n;
    to ??= running.follow ? (b && b[1] + 1n > now ? b[1] + 1n : now) : b ? b[1] + 1n : now;
    if (to <= from) to = from + 1_000_000_000n;
  }
  await histogram.load(server, from, to);
  if (my !== histogramGen) return;
  histogramMs = performance.now() - t0;
  liveSide = running.follow && running.until == null;
  void loadFacets(from, to);
}

let histogramTimer = 0;
function reloadHistogramSoon(): void {
  liveSide = false;
  if (!histogramTimer) histogramTimer = window.setTimeout(() => ((histogramTimer = 0), void loadHistogram()), 1000);
}

// ---- facets ----
const facets = new Facets($("facets"), api, (label, value, exclude) => {
  applyQuery({ ...query, logql: withMatcher(query.logql || (query.grep ? query.grep : ""), label, value, exclude), level: "", grep: "" });
});
let facetsRange: [bigint, bigint] | null = null;
let facetsTimer = 0;
let facetsLoadedFor = -1;
async function loadFacets(from: bigint, to: bigint): Promise<void> {
  facetsRange = [from, to];
  scheduleFacets();
}
/** Facets wait for the first entries (their label names) or the stream's end. */
function scheduleFacets(): void {
  if (facetsTimer || !facetsRange || facetsLoadedFor === histogramGen) return;
  if (seenCount < 200 && state !== "ended") {
    facetsTimer = window.setTimeout(() => ((facetsTimer = 0), forceFacets()), 400);
    return;
  }
  forceFacets();
}
function forceFacets(): void {
  if (!facetsRange || facetsLoadedFor === histogramGen) return;
  facetsLoadedFor = histogramGen;
  void facets.load(toServerQuery(running.logql), facetNames(seenLabels), facetsRange[0], facetsRange[1]);
}

st.pause.addEventListener("click", () => {
  if (state === "paused" || state === "error") {
    start(true); // after_cursor = the last cursor received: no gap, no duplicate
  } else {
    stop();
    flush();
    setState("paused");
  }
});

$("clear").addEventListener("click", () => {
  pending = [];
  buffer.clear();
  newBelow = 0;
  closeDetail();
  list.reset();
  renderStatus();
});

jump.addEventListener("click", () => {
  newBelow = 0;
  list.scrollToBottom();
  renderJump();
});

// ---- row details, context, keys ----
const details = new Details($("details"), {
  onContext(e) {
    context.open(e);
  },
  onClose: () => closeDetail(),
  linkFor(e) {
    return location.origin + location.pathname + pageSearch({ ...cfg, query, selected: e.cursor });
  },
});
const context = new Context($("context"), api);
let selectedIndex = -1;

function closeDetail(): void {
  details.close();
  selectedIndex = -1;
  if (cfg.selected != null) {
    cfg.selected = null;
    writeUrl();
  }
  if (selected) {
    selected = null;
    list.invalidate();
  }
}

/** Selects the row at buffer index `i`: marked, scrolled into view, its details open, in the URL. */
function selectIndex(i: number): void {
  const e = buffer.get(i);
  if (!e) return;
  selected = e;
  selectedIndex = i;
  cfg.selected = e.cursor;
  writeUrl();
  list.scrollToIndex(i);
  list.invalidate();
  details.show(e);
}

list.layer.addEventListener("click", (ev) => {
  const row = (ev.target as HTMLElement).closest<HTMLElement>(".row");
  if (!row) return;
  const k = Array.prototype.indexOf.call(list.layer.children, row);
  selectIndex(list.window.first + k);
});

document.addEventListener("keydown", (ev) => {
  const typing = ev.target instanceof HTMLInputElement || ev.target instanceof HTMLTextAreaElement || ev.target instanceof HTMLSelectElement;
  if (ev.key === "Escape" && !typing) {
    if (!context.el.hidden) context.close();
    else if (!details.el.hidden) closeDetail();
  }
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "/") {
    ev.preventDefault();
    queryBox.input.focus();
    queryBox.input.select();
  } else if (ev.key === "e" || ev.key === "E") {
    showErrors.click();
  } else if (ev.key === "f") {
    follow.click();
  } else if (ev.key === "j" || ev.key === "k") {
    // The selected row's index moves as older rows drop out: find it again by its cursor.
    const at = selected ? indexOfCursor(selected.cursor) : -1;
    const base = at >= 0 ? at : ev.key === "j" ? list.window.first - 1 : list.window.last;
    selectIndex(Math.min(buffer.size - 1, Math.max(0, base + (ev.key === "j" ? 1 : -1))));
  } else if (ev.key === "c" && selected) {
    context.open(selected);
  } else if (ev.key === "End") {
    jump.click();
  }
});

// Leaving the page cancels the stream (the server sees the cancellation).
addEventListener("pagehide", () => stop());
addEventListener("pageshow", (ev) => {
  if ((ev as PageTransitionEvent).persisted && state !== "paused") start(lastCursor != null);
});

// Test hook (read-only numbers for the e2e harness).
(window as unknown as { __logtap: unknown }).__logtap = {
  get state() {
    return state;
  },
  get received() {
    return received;
  },
  get firstMs() {
    return firstMs;
  },
  /** Request start → response headers / first entry decoded (diagnostics). */
  get headMs() {
    return headMs;
  },
  get firstArrivalMs() {
    return firstArrivalMs;
  },
  get transport() {
    return transport;
  },
  get kept() {
    return buffer.size;
  },
  /** The token prompt's message while it is shown, else null (never the token). */
  get auth() {
    return authForm.hidden ? null : authMsg.textContent;
  },
  get hasToken() {
    return tokens.get() != null;
  },
  /** Query applied → histogram drawn (ms), and how many histograms were drawn. */
  get histogramMs() {
    return histogramMs;
  },
  get histogramLoads() {
    return histogram.loads;
  },
  get facetLoads() {
    return facets.loads;
  },
  get contextLoads() {
    return context.loads;
  },
  get selectedIndex() {
    return selectedIndex;
  },
};

renderControls();
start(false);
void loadHistogram();
