// Wiring: controls → query → one stream at a time → batched rendering → status bar.
import "./style.css";
import { authMessage, normalizeToken, sessionStorageOrNull, takeTokenFromUrl, TokenStore } from "./auth.ts";
import { RingBuffer } from "./buffer.ts";
import { Crc32c } from "./crc32c.ts";
import { VirtualList } from "./list.ts";
import { createRowElement, highlighterFor, renderRow, ROW_HEIGHT } from "./row.ts";
import {
  formatCount,
  formatTimestamp,
  localInputToNs,
  nsToLocalInput,
  pageSearch,
  parsePageParams,
  type Query,
  type TransportName,
} from "./state.ts";
import { isAbort, openStream, StreamError, type Entry, type StreamTail } from "./transport/index.ts";

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

// ---- the list ----
const viewport = $("viewport");
const emptyEl = $("empty");
const jump = $<HTMLButtonElement>("jump");
const buffer = new RingBuffer<Entry>(cfg.max);
let hl = highlighterFor(query.grep, query.regex);
/** The entry shown in the detail panel (highlighted in the list). */
let selected: Entry | null = null;
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
  }
  renderStatus();
}

function setState(s: State, msg = ""): void {
  state = s;
  stateMsg = msg;
  renderStatus();
}

function stop(): void {
  gen++;
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
  const q: Query = { ...query, after: resume ? lastCursor : query.after };
  if (!resume) {
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
        if (h.total !== undefined) total = h.total;
        if (h.requestId) requestId = h.requestId;
        if (headMs == null && !resume) headMs = performance.now() - tStart;
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
        schedule();
      },
      onReconnecting(reason) {
        if (my !== gen) return;
        setState("reconnecting", reason);
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
      setState("ended");
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
  document.title = (query.level === "error" ? "Errors" : "logtap") + ` · ${formatCount(received)}`;
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
const search = $<HTMLInputElement>("search");
const regex = $<HTMLInputElement>("regex");
const since = $<HTMLInputElement>("since");
const until = $<HTMLInputElement>("until");
const follow = $<HTMLInputElement>("follow");

function renderControls(): void {
  for (const b of levelButtons) b.setAttribute("aria-pressed", String((b.dataset.level ?? "") === query.level));
  showErrors.classList.toggle("active", query.level === "error");
  if (document.activeElement !== search) search.value = query.grep;
  regex.checked = query.regex;
  since.value = query.since != null ? nsToLocalInput(query.since) : "";
  until.value = query.until != null ? nsToLocalInput(query.until) : "";
  since.classList.toggle("blank", !since.value);
  until.classList.toggle("blank", !until.value);
  follow.checked = query.follow;
}

/** A new filter: cancel the stream, clear the screen, start over. */
function applyQuery(q: Query): void {
  query = { ...q, after: null };
  cfg.query = query;
  history.replaceState(null, "", location.pathname + pageSearch(cfg) + location.hash);
  hl = highlighterFor(query.grep, query.regex);
  stop();
  pending = [];
  buffer.clear();
  newBelow = 0;
  closeDetail();
  list.reset();
  renderControls();
  start(false);
}

showErrors.addEventListener("click", () => applyQuery({ ...query, level: "error" }));
for (const b of levelButtons) b.addEventListener("click", () => applyQuery({ ...query, level: b.dataset.level ?? "" }));

let searchTimer = 0;
function applySearch(): void {
  clearTimeout(searchTimer);
  if (search.value !== query.grep) applyQuery({ ...query, grep: search.value });
}
search.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = window.setTimeout(applySearch, 350);
});
search.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter") applySearch();
  else if (ev.key === "Escape") {
    search.value = "";
    applySearch();
    search.blur();
  }
});
regex.addEventListener("change", () => applyQuery({ ...query, regex: regex.checked }));
since.addEventListener("change", () => applyQuery({ ...query, since: localInputToNs(since.value) }));
until.addEventListener("change", () => applyQuery({ ...query, until: localInputToNs(until.value) }));
follow.addEventListener("change", () => applyQuery({ ...query, follow: follow.checked }));

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

// Row details on click.
const detail = $("detail");
function closeDetail(): void {
  detail.hidden = true;
  if (selected) {
    selected = null;
    list.invalidate();
  }
}
list.layer.addEventListener("click", (ev) => {
  const row = (ev.target as HTMLElement).closest<HTMLElement>(".row");
  if (!row) return;
  const k = Array.prototype.indexOf.call(list.layer.children, row);
  const e = buffer.get(list.window.first + k);
  if (!e) return;
  selected = e;
  list.invalidate();
  const meta = $("detail-meta");
  meta.textContent = "";
  const add = (k: string, v: string, cls = "") => {
    const s = document.createElement("span");
    s.className = "kv " + cls;
    const b = document.createElement("b");
    b.textContent = k;
    s.append(b, " " + v);
    meta.append(s);
  };
  add("time", `${formatTimestamp(e.timestamp)} (${e.timestamp} ns)`);
  add("level", e.level, "lvl-" + e.level);
  add("cursor", e.cursor.toString());
  for (const [lk, lv] of e.labels ?? []) add(lk, lv, "label");
  $("detail-message").textContent = e.message;
  detail.hidden = false;
});
$("detail-close").addEventListener("click", closeDetail);

document.addEventListener("keydown", (ev) => {
  const typing = ev.target instanceof HTMLInputElement || ev.target instanceof HTMLTextAreaElement;
  if (ev.key === "Escape" && !detail.hidden) closeDetail();
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "/") {
    ev.preventDefault();
    search.focus();
    search.select();
  } else if (ev.key === "e" || ev.key === "E") {
    showErrors.click();
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
};

renderControls();
start(false);
