#!/usr/bin/env node
// End-to-end check of the browser viewer against a real `logtap` server.
//
//   node ui/tests/e2e.mjs                       # LOGTAP_BIN defaults to target/debug/logtap
//   LOGTAP_BIN=target/release/logtap node ui/tests/e2e.mjs
//
// Starts `logtap serve --data <tmp> --listen 127.0.0.1:<free port>`, waits for
// /healthz, pushes thousands of mixed lines with `logtap push`, then, in
// headless Chromium (playwright-core, /usr/bin/chromium, no browser download),
// for each transport (gRPC-Web, ?transport=sse, ?transport=poll): loads the
// page, clicks "Show Errors", checks that only error/fatal rows arrive (all of
// them), that they are red, how soon the first one shows, that a newly pushed
// error appears live, and that the server's logtap_active_streams falls back
// when the filter changes and when the page is closed. Also checks the
// gRPC-Web trailers (logtap-crc32c → "checksum ok") and the total-count header
// on a non-follow query. Screenshot: ui/tests/artifacts/viewer.png.
// Tokens: a second server with --auth-token-file (a read and a write token):
// without a token the page asks for one ("this server needs a read token"),
// on every transport and without falling back; the token field and ?token=
// both work on gRPC-Web, SSE and poll (?token= leaves the address bar); a
// write-only token gets "this token cannot read". E2E_NO_AUTH=1 skips it.
// Env: LOGTAP_BIN, CHROMIUM (default /usr/bin/chromium), E2E_LINES (default 6000),
// E2E_TRANSPORTS (default "grpc-web,sse,poll").
// While the server's `/` does not serve the viewer yet, that check fails and
// the harness serves ui/dist itself on another port, proxying everything else
// to the server (E2E_NO_PROXY=1 stops there instead), so the rest still runs.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "../..");
const BIN = (() => {
  const b = process.env.LOGTAP_BIN ?? "target/debug/logtap";
  return isAbsolute(b) ? b : resolve(REPO, b);
})();
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const LINES = Number(process.env.E2E_LINES ?? 6000);
const TRANSPORTS = (process.env.E2E_TRANSPORTS ?? "grpc-web,sse,poll").split(",").map((s) => s.trim()).filter(Boolean);
const ARTIFACTS = join(HERE, "artifacts");
const OVERALL_TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS ?? 360_000);

const results = []; // { name, ok, detail }
const figures = []; // [label, value]
let server = null;
let serverLog = "";
let authServer = null;
let authServerLog = "";
let browser = null;
const proxies = [];
let livePushes = 0;
const tmp = mkdtempSync(join(tmpdir(), "logtap-e2e-"));

function record(name, ok, detail = "") {
  results.push({ name, ok, detail });
  console.log(`${ok ? "  ok  " : "  FAIL"}  ${name}${detail ? " — " + detail : ""}`);
  return ok;
}

function cmd(args) {
  // A .mjs/.js LOGTAP_BIN (the mock) runs under node.
  return /\.(m?js)$/.test(BIN) ? [process.execPath, [BIN, ...args]] : [BIN, args];
}

function run(args, timeoutMs = 60_000) {
  return new Promise((res) => {
    const [exe, argv] = cmd(args);
    const p = spawn(exe, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    const t = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("error", (e) => {
      clearTimeout(t);
      res({ code: -1, out: String(e) });
    });
    p.on("close", (code) => {
      clearTimeout(t);
      res({ code, out });
    });
  });
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs = 10_000, everyMs = 50) {
  const t0 = Date.now();
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (${last.message})` : ""}`);
    await sleep(everyMs);
  }
}

async function activeStreams(base) {
  const r = await fetch(base + "/metrics");
  const text = await r.text();
  const m = /^logtap_active_streams(?:\{[^}]*\})?\s+([0-9.eE+-]+)/m.exec(text);
  if (!m) throw new Error("no logtap_active_streams in /metrics");
  return Number(m[1]);
}

// ---- test data ----
function makeLines(n) {
  const now = Date.now();
  const lines = [];
  let errors = 0;
  const services = ["api", "worker", "billing", "auth"];
  const msgs = {
    INFO: ["request served path=/v1/items status=200", "cache warmed entries=512", "user signed in"],
    DEBUG: ["cache lookup key=session:42 hit=true", "pool stats idle=4 busy=2"],
    WARN: ["slow query took 812ms", "retrying upstream call attempt=2", "disk usage at 81%"],
    ERROR: ["payment declined: card expired", "upstream timeout after 30s", "failed to write segment: disk full"],
  };
  for (let i = 0; i < n; i++) {
    const ts = new Date(now - (n - i) * 250).toISOString();
    const r = i % 20;
    const svc = services[i % services.length];
    if (r === 3 || r === 11) {
      // plain ERROR line
      lines.push(`${ts} ERROR ${msgs.ERROR[i % 3]} (#${i})`);
      errors++;
    } else if (r === 7) {
      lines.push(JSON.stringify({ level: "error", message: `${msgs.ERROR[(i + 1) % 3]} (#${i})`, timestamp: ts, service: svc, host: `node-${i % 3}` }));
      errors++;
    } else if (r === 17 && i % 100 === 17) {
      lines.push(JSON.stringify({ level: "fatal", message: `panic: invariant violated (#${i})`, timestamp: ts, service: svc }));
      errors++;
    } else if (r === 5 || r === 13) {
      lines.push(`${ts} WARN ${msgs.WARN[i % 3]} (#${i})`);
    } else if (r === 9) {
      lines.push(JSON.stringify({ level: "warning", message: `${msgs.WARN[(i + 2) % 3]} (#${i})`, timestamp: ts, service: svc }));
    } else if (r === 1 || r === 19) {
      lines.push(`${ts} DEBUG ${msgs.DEBUG[i % 2]} (#${i})`);
    } else if (r % 4 === 0) {
      lines.push(JSON.stringify({ level: "info", message: `${msgs.INFO[i % 3]} (#${i})`, timestamp: ts, service: svc, region: "eu-west-1" }));
    } else {
      lines.push(`${ts} INFO ${msgs.INFO[i % 3]} (#${i})`);
    }
  }
  return { text: lines.join("\n") + "\n", errors };
}

function isRed(rgb) {
  const m = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/.exec(rgb);
  if (!m) return false;
  const [r, g, b] = [+m[1], +m[2], +m[3]];
  return r >= 150 && r - g >= 50 && r - b >= 50;
}

async function viewerState(page) {
  return page.evaluate(() => {
    const l = window.__logtap;
    const txt = (id) => document.getElementById(id)?.textContent ?? "";
    return {
      auth: l?.auth ?? null,
      state: l?.state,
      received: l?.received,
      transport: l?.transport,
      firstMs: l?.firstMs,
      headMs: l?.headMs,
      firstArrivalMs: l?.firstArrivalMs,
      statusState: txt("status-state"),
      statusTransport: txt("status-transport"),
      statusTotal: txt("status-total"),
      statusChecksum: txt("status-checksum"),
    };
  });
}

async function checkTransport(ctx, pageBase, base, transport, expectedErrors, screenshot) {
  const tag = `[${transport}]`;
  if (transport !== "grpc-web") {
    const path = transport === "sse" ? "/api/v1/sse?follow=false" : "/api/v1/poll?wait=0s&follow=false";
    const ac = new AbortController();
    const r = await fetch(base + path, { signal: ac.signal }).catch((e) => ({ status: String(e), ok: false }));
    ac.abort();
    if (!r.ok) {
      record(`${tag} GET ${path.split("?")[0]} available on the server`, false, `HTTP ${r.status} (pending on the server)`);
      return;
    }
  }
  const page = await ctx.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  try {
    const url = pageBase + "/" + (transport === "grpc-web" ? "" : `?transport=${transport}`);
    const baseline = await activeStreams(base);
    await page.goto(url, { waitUntil: "domcontentloaded" });
    await page.waitForSelector("#show-errors", { timeout: 10_000 });
    // The "All" stream starts by itself and fills the screen.
    await waitFor(`${tag} rows for the "All" view`, () => page.$(".row"), 15_000);
    const st0 = await viewerState(page);
    record(`${tag} page loads, streams all levels`, st0.statusTransport === transport && st0.received > 0, `transport=${st0.statusTransport}, received=${st0.received}, state=${st0.statusState}`);

    // Show Errors: measure click → first red row, in the page.
    const clickToFirst = await page.evaluate(
      () =>
        new Promise((res) => {
          const vp = document.getElementById("viewport");
          let t0 = 0;
          const check = () => {
            const r = vp.querySelector('.row[data-level="error"], .row[data-level="fatal"]');
            if (r) {
              obs.disconnect();
              requestAnimationFrame(() => res(performance.now() - t0));
              return true;
            }
            return false;
          };
          const obs = new MutationObserver(check);
          obs.observe(vp, { subtree: true, childList: true, attributes: true, characterData: true });
          t0 = performance.now();
          document.getElementById("show-errors").click();
          setTimeout(() => {
            obs.disconnect();
            res(-1);
          }, 15_000);
        }),
    );
    const firstMsViewer = await waitFor(`${tag} time-to-first-line in the status bar`, async () => (await viewerState(page)).firstMs, 5000);
    figures.push([`${transport}: Show Errors click → first red row painted`, `${clickToFirst.toFixed(1)} ms`]);
    const fs = await viewerState(page);
    figures.push([`${transport}: viewer's "first line" (request start → first row rendered)`, `${Number(firstMsViewer).toFixed(1)} ms (headers ${Number(fs.headMs).toFixed(1)} ms, first entry decoded ${Number(fs.firstArrivalMs).toFixed(1)} ms)`]);
    record(`${tag} first error row after Show Errors`, clickToFirst >= 0 && clickToFirst < 1000, `${clickToFirst.toFixed(1)} ms (viewer: ${Number(firstMsViewer).toFixed(1)} ms)`);

    await waitFor(`${tag} all ${expectedErrors} errors received`, async () => (await viewerState(page)).received >= expectedErrors, 30_000);
    await sleep(300);
    const st1 = await viewerState(page);
    record(`${tag} exactly the stored error+fatal entries arrive`, st1.received === expectedErrors, `received ${st1.received}, expected ${expectedErrors}`);

    const levels = await page.$$eval(".row", (rows) => rows.map((r) => r.dataset.level));
    const bad = levels.filter((l) => l !== "error" && l !== "fatal");
    record(`${tag} only error/fatal rows rendered`, levels.length > 0 && bad.length === 0, `${levels.length} rows in the DOM, ${bad.length} others${bad.length ? ": " + [...new Set(bad)].join(",") : ""}`);
    // Scroll to the top and check again: the virtual list renders other rows there.
    await page.evaluate(() => (document.getElementById("viewport").scrollTop = 0));
    await sleep(150);
    const levelsTop = await page.$$eval(".row", (rows) => rows.map((r) => r.dataset.level));
    record(`${tag} only error/fatal rows at the top too`, levelsTop.every((l) => l === "error" || l === "fatal"), `${levelsTop.length} rows`);
    const domRows = await page.$$eval(".row", (r) => r.length);
    record(`${tag} list is virtualised`, domRows < 200, `${domRows} row elements for ${st1.received} entries`);
    await page.evaluate(() => {
      const v = document.getElementById("viewport");
      v.scrollTop = v.scrollHeight;
    });
    await sleep(150);

    const colours = await page.$eval('.row[data-level="error"]', (r) => {
      const s = getComputedStyle(r);
      const m = getComputedStyle(r.querySelector(".msg"));
      return { color: m.color, rowColor: s.color, background: s.backgroundColor, border: s.borderLeftColor };
    });
    record(`${tag} error rows are red`, isRed(colours.color) && isRed(colours.border), `text ${colours.color}, background ${colours.background}, edge ${colours.border}`);

    // Filter change cancelled the "All" stream: one stream open for this page.
    const during = await waitFor(`${tag} one active stream after the filter change`, async () => ((await activeStreams(base)) === baseline + 1 ? baseline + 1 : null), 8000).catch(() => null);
    record(`${tag} changing the filter cancelled the previous stream`, during === baseline + 1, `logtap_active_streams=${await activeStreams(base)} (baseline ${baseline})`);

    // Live: push a new error and see it appear.
    const token = `live-${transport}-${Math.random().toString(36).slice(2, 8)}`;
    const f = join(tmp, `live-${transport}.log`);
    writeFileSync(f, `${new Date().toISOString()} ERROR ${token} happened just now\n`);
    const t0 = Date.now();
    const pushed = await run(["push", "--server", base, f]);
    if (pushed.code !== 0) record(`${tag} logtap push (live)`, false, pushed.out.trim());
    else livePushes++;
    const seen = await waitFor(`${tag} live error row`, () => page.$(`.row[data-level="error"] >> text=${token}`), 10_000).then(
      () => true,
      () => false,
    );
    figures.push([`${transport}: push → live row visible`, `${Date.now() - t0} ms (incl. the push process)`]);
    record(`${tag} newly pushed error appears live`, seen, `${Date.now() - t0} ms`);

    // Pause, push 3 errors, resume: they arrive once each (after_cursor = last cursor).
    const before = (await viewerState(page)).received;
    await page.click("#pause");
    await waitFor(`${tag} paused`, async () => (await viewerState(page)).state === "paused", 5000);
    const pf = join(tmp, `pause-${transport}.log`);
    writeFileSync(pf, [1, 2, 3].map((k) => `${new Date().toISOString()} ERROR while-paused-${transport}-${k}`).join("\n") + "\n");
    const p2 = await run(["push", "--server", base, pf]);
    if (p2.code === 0) livePushes += 3;
    await sleep(300);
    const whilePaused = (await viewerState(page)).received;
    await page.click("#pause");
    const resumed = await waitFor(`${tag} resumed entries`, async () => ((await viewerState(page)).received >= before + 3 ? true : null), 10_000).then(
      () => true,
      () => false,
    );
    await sleep(400);
    const afterResume = await viewerState(page);
    const cursors = await page.$$eval(".row", (rows) => rows.map((r) => r.dataset.cursor));
    const dupes = cursors.length - new Set(cursors).size;
    record(
      `${tag} pause/resume: nothing lost or duplicated`,
      resumed && whilePaused === before && afterResume.received === before + 3 && dupes === 0 && afterResume.state !== "error",
      `before ${before}, while paused ${whilePaused}, after resume ${afterResume.received} (want ${before + 3}), duplicate cursors on screen ${dupes}, state ${afterResume.statusState}`,
    );

    if (screenshot) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "viewer.png") });
    }

    if (pageErrors.length) record(`${tag} no page errors`, false, pageErrors.join(" | "));

    // Closing the page cancels the stream on the server.
    await page.close();
    const after = await waitFor(`${tag} logtap_active_streams back to ${baseline}`, async () => ((await activeStreams(base)) <= baseline ? true : null), 8000).then(
      () => true,
      () => false,
    );
    record(`${tag} closing the page ends the stream on the server`, after, `logtap_active_streams=${await activeStreams(base)}`);
  } catch (e) {
    record(`${tag} run`, false, e.message);
    if (!page.isClosed()) await page.close().catch(() => {});
  }
}

// Through a proxy that answers 415 to gRPC-Web: the viewer must fall back by
// itself (to SSE, else long-polling) and still stream errors live.
async function checkFallback(ctx, pageBase, base, expectedErrors) {
  const page = await ctx.newPage();
  try {
    await page.goto(pageBase + "/?level=error", { waitUntil: "domcontentloaded" });
    await waitFor("fallback rows (or the viewer giving up)", async () => (await page.$('.row[data-level="error"]')) || (await viewerState(page)).state === "error", 20_000);
    if ((await viewerState(page)).state === "error") throw new Error("no transport worked");
    const st = await viewerState(page);
    record("[fallback] gRPC-Web blocked by a proxy: viewer falls back by itself", st.statusTransport === "sse" || st.statusTransport === "poll", `transport=${st.statusTransport}, state=${st.statusState}`);
    await waitFor("fallback: all errors", async () => (await viewerState(page)).received >= expectedErrors, 20_000).catch(() => {});
    const st2 = await viewerState(page);
    record("[fallback] same errors through the fallback", st2.received === expectedErrors, `received ${st2.received}, expected ${expectedErrors}`);
  } catch (e) {
    const st = await viewerState(page).catch(() => ({}));
    record("[fallback] gRPC-Web blocked by a proxy: viewer falls back by itself", false, `${e.message}; status: ${st.statusState ?? "?"} via ${st.statusTransport ?? "?"}`);
  } finally {
    await page.close().catch(() => {});
  }
}

async function checkTrailers(ctx, base, expectedErrors) {
  const page = await ctx.newPage();
  try {
    await page.goto(base + "/?level=error&follow=0", { waitUntil: "domcontentloaded" });
    await waitFor("non-follow stream to end", async () => (await viewerState(page)).state === "ended", 20_000);
    const st = await viewerState(page);
    record("[grpc-web] non-follow stream ends with trailers, checksum ok", st.statusChecksum === "checksum ok", `${st.statusChecksum}; received ${st.received}`);
    record("[grpc-web] logtap-total-count header shown", st.statusTotal.replace(/,/g, "") === String(st.received) && st.received >= expectedErrors, `total ${st.statusTotal}, received ${st.received}`);
    // Everything (all levels, thousands of lines): time to first line and checksum.
    await page.goto(base + "/?follow=0", { waitUntil: "domcontentloaded" });
    await waitFor("all-levels non-follow stream to end", async () => (await viewerState(page)).state === "ended", 30_000);
    const all = await viewerState(page);
    figures.push([`grpc-web: all ${all.received} lines (non-follow), first line`, `${Number(all.firstMs).toFixed(1)} ms (headers ${Number(all.headMs).toFixed(1)} ms, first entry decoded ${Number(all.firstArrivalMs).toFixed(1)} ms)`]);
    record("[grpc-web] all levels, non-follow: checksum ok", all.statusChecksum === "checksum ok", `${all.statusChecksum}; received ${all.received}`);
    // Bounded memory: ?max=1000 keeps the newest 1000 and says how many were dropped.
    await page.goto(base + "/?follow=0&max=1000", { waitUntil: "domcontentloaded" });
    await waitFor("max=1000 stream to end", async () => (await viewerState(page)).state === "ended", 30_000);
    const kept = await page.evaluate(() => ({ kept: window.__logtap.kept, received: window.__logtap.received, dropped: document.getElementById("status-dropped").textContent, hidden: document.getElementById("status-dropped").hidden }));
    const wantDropped = (kept.received - 1000).toLocaleString("en-US");
    record("?max=1000 keeps 1000 lines, shows the dropped count", kept.kept === 1000 && !kept.hidden && kept.dropped.startsWith(`${wantDropped} older lines dropped`), `kept ${kept.kept} of ${kept.received}; "${kept.dropped}"`);
  } catch (e) {
    record("[grpc-web] trailers/checksum", false, e.message);
  } finally {
    await page.close().catch(() => {});
  }
}

// ---- the viewer's second generation (issue 21) ----

/** Runs `text` as a query as a person does: `/`, type, Enter; ms from Enter to the first row painted. */
async function runQuery(page, text, rowSelector = ".row") {
  await page.keyboard.press("Escape").catch(() => {});
  await page.click("#viewport").catch(() => {});
  await page.keyboard.press("/");
  await page.fill('[data-testid="query"]', text);
  return page.evaluate(
    (sel) =>
      new Promise((res) => {
        const vp = document.getElementById("viewport");
        const input = document.querySelector('[data-testid="query"]');
        let t0 = 0;
        const check = () => {
          if (vp.querySelector(sel)) {
            obs.disconnect();
            requestAnimationFrame(() => res(performance.now() - t0));
          }
        };
        const obs = new MutationObserver(check);
        obs.observe(vp, { subtree: true, childList: true, attributes: true, characterData: true });
        t0 = performance.now();
        input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
        setTimeout(() => {
          obs.disconnect();
          res(-1);
        }, 20_000);
      }),
    rowSelector,
  );
}

const histogramBars = (page) =>
  page.$$eval('[data-testid="histogram"] .hist-bar', (bars) => bars.map((b) => ({ level: b.dataset.level, count: Number(b.dataset.count) })));
const sumCounts = (bars, levels) => bars.filter((b) => !levels || levels.includes(b.level)).reduce((n, b) => n + b.count, 0);
const rowsInfo = (page) =>
  page.$$eval(".viewport .row", (rows) => rows.map((r) => ({ level: r.dataset.level, cursor: r.dataset.cursor, msg: r.querySelector(".msg").textContent, labels: r.querySelector(".labels").textContent, marks: r.querySelectorAll("mark").length })));
const hook = (page, name) => page.evaluate((n) => window.__logtap[n], name);

/** Waits for the next histogram drawn after `before` loads; the viewer's "applied → drawn" ms. */
async function histogramDrawn(page, before, timeoutMs = 15_000) {
  await waitFor("the histogram to be drawn", async () => (await hook(page, "histogramLoads")) > before, timeoutMs);
  return hook(page, "histogramMs");
}

/** The three timings issue 21 asks for, on the store as it is: a level query, a label query, the histogram. */
async function measureTimings(ctx, base, labelQuery, tag) {
  const page = await ctx.newPage();
  try {
    await page.goto(base + "/?follow=0", { waitUntil: "domcontentloaded" });
    await waitFor("rows", () => page.$(".viewport .row"), 30_000);
    const h0 = await histogramDrawn(page, 0, 120_000);
    figures.push([`${tag}histogram drawn (page load, all entries)`, `${Number(h0).toFixed(1)} ms`]);
    const out = {};
    for (const [what, q] of [
      ["level query", '{level=~"error|fatal"}'],
      ["label query", labelQuery],
    ]) {
      const loads = await hook(page, "histogramLoads");
      const ms = await runQuery(page, q);
      const hist = await histogramDrawn(page, loads, 120_000);
      figures.push([`${tag}${what} ${q}: Enter → first row painted`, `${ms.toFixed(1)} ms`]);
      figures.push([`${tag}${what} ${q}: Enter → histogram drawn`, `${Number(hist).toFixed(1)} ms`]);
      out[what] = { firstRow: ms, histogram: hist };
    }
    out.histogramAll = h0;
    return out;
  } finally {
    await page.close().catch(() => {});
  }
}

async function checkFeatures(ctx, base, stored, errors) {
  const tag = "[viewer]";
  const page = await ctx.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  const step = async (name, fn) => {
    try {
      await fn();
    } catch (e) {
      record(`${tag} ${name}`, false, e.message);
    }
  };
  try {
    await page.goto(base + "/?follow=0", { waitUntil: "domcontentloaded" });
    await waitFor("rows", () => page.$(".viewport .row"), 15_000);

    await step("histogram", async () => {
      const ms = await histogramDrawn(page, 0);
      const bars = await histogramBars(page);
      const levels = new Set(bars.map((b) => b.level));
      record(`${tag} histogram: every stored entry counted, stacked by level`, sumCounts(bars) === stored && sumCounts(bars, ["error", "fatal"]) === errors && levels.has("info") && levels.has("error"), `${sumCounts(bars)} counted (want ${stored}), ${sumCounts(bars, ["error", "fatal"])} errors (want ${errors}), levels ${[...levels].join(",")}, drawn in ${Number(ms).toFixed(1)} ms`);
      const colours = await page.$eval('.hist-bar[data-level="error"]', (b) => getComputedStyle(b).backgroundColor);
      record(`${tag} histogram: error bars in the error colour`, isRed(colours), colours);
    });

    await step("level query", async () => {
      const ms = await runQuery(page, '{level=~"error|fatal"}', '.row[data-level="error"], .row[data-level="fatal"]');
      await waitFor("all errors", async () => (await hook(page, "state")) === "ended", 15_000);
      const rows = await rowsInfo(page);
      const received = await hook(page, "received");
      const pressed = await page.$eval("#show-errors", (b) => b.classList.contains("active"));
      record(`${tag} LogQL level query: exactly the errors, Show Errors shown pressed`, received === errors && rows.every((r) => r.level === "error" || r.level === "fatal") && pressed, `received ${received} (want ${errors}) in ${ms.toFixed(1)} ms`);
      const hl = await page.$$eval(".qb-hl span", (s) => s.map((x) => x.className));
      record(`${tag} query box highlights LogQL`, hl.includes("tk-label") && hl.includes("tk-string") && hl.includes("tk-op"), hl.slice(0, 6).join(" "));
    });

    await step("label query", async () => {
      await runQuery(page, '{service="api"}');
      await waitFor("end", async () => (await hook(page, "state")) === "ended", 15_000);
      const rows = await rowsInfo(page);
      record(`${tag} LogQL label query: only service=api rows`, rows.length > 0 && rows.every((r) => r.labels.includes("service=api")), `${rows.length} rows on screen`);
    });

    await step("error position", async () => {
      const bad = '{service="api" |= "x"';
      await page.keyboard.press("/");
      await page.fill('[data-testid="query"]', bad);
      await page.press('[data-testid="query"]', "Enter");
      await waitFor("the error", () => page.isVisible('[data-testid="query-error"]'), 10_000);
      const msg = await page.textContent('[data-testid="query-error"]');
      const at = await page.evaluate(() => {
        const hl = document.querySelector(".qb-hl");
        const mark = hl.querySelector(".qb-error-at");
        if (!mark) return -1;
        const r = document.createRange();
        r.setStart(hl, 0);
        r.setEndBefore(mark);
        return r.toString().length;
      });
      record(`${tag} a bad query shows the server's error at its position`, at === bad.indexOf("|=") && /at 15/.test(msg), `"${msg}", marked at ${at}`);
    });

    await step("plain text", async () => {
      await runQuery(page, "disk", ".row mark");
      await waitFor("end", async () => (await hook(page, "state")) === "ended", 15_000);
      const rows = await rowsInfo(page);
      const url = new URL(page.url());
      record(`${tag} plain text is a substring search, matches highlighted`, rows.length > 0 && rows.every((r) => r.msg.includes("disk") && r.marks > 0) && url.searchParams.get("q") === "disk", `${rows.length} rows, q=${url.searchParams.get("q")}`);
    });

    await step("completion", async () => {
      await page.keyboard.press("Escape");
      await page.click('[data-testid="query"]');
      await page.fill('[data-testid="query"]', "");
      await page.type('[data-testid="query"]', "{serv");
      await waitFor("name completion", () => page.isVisible('[data-testid="completion"] li'), 5000);
      const names = await page.$$eval('[data-testid="completion"] li', (l) => l.map((x) => x.textContent));
      await page.press('[data-testid="query"]', "Tab");
      await page.type('[data-testid="query"]', '="');
      await waitFor("value completion", async () => (await page.$$eval('[data-testid="completion"] li', (l) => l.map((x) => x.textContent))).includes("api"), 5000);
      await sleep(300);
      const values = await page.$$eval('[data-testid="completion"] li', (l) => l.map((x) => x.textContent));
      const menu = await page.$$eval('[data-testid="completion"] li', (l) => l.map((x) => x.textContent).join(","));
      const focus = await page.evaluate(() => document.activeElement?.id);
      // A value is taken with the mouse here (names were taken with Tab above).
      await page.click('[data-testid="completion"] li >> text=worker');
      const text = await page.inputValue('[data-testid="query"]');
      record(`${tag} completion of label names and values from the server`, names.includes("service") && values.includes("api") && text === '{service="worker"', `names ${names.join(",")}; values ${values.join(",")}; menu ${menu} (focus ${focus}); text ${text}`);
      await page.keyboard.press("Escape");
    });

    await step("facets", async () => {
      const loads = await hook(page, "facetLoads");
      await page.click("#level-all");
      await waitFor("facets", async () => (await hook(page, "facetLoads")) > loads, 15_000);
      const svc = await page.$$eval('[data-testid="facets"] .facet-value[data-label="service"]', (b) => b.map((x) => [x.dataset.value, x.querySelector(".facet-count").textContent]));
      const levels = await page.$$eval('[data-testid="facets"] .facet-value[data-label="level"]', (b) => b.map((x) => x.dataset.value));
      record(`${tag} facets: labels with top values and counts`, svc.some(([v]) => v === "worker") && levels.includes("error"), `service: ${svc.map((x) => x.join(" ")).join(", ")}; level: ${levels.join(",")}`);
      const l2 = await hook(page, "facetLoads");
      await page.click('[data-testid="facets"] .facet-value[data-label="service"][data-value="worker"]');
      await waitFor("end", async () => (await hook(page, "state")) === "ended" && (await hook(page, "facetLoads")) > l2, 15_000);
      const q1 = await page.inputValue('[data-testid="query"]');
      const rows = await rowsInfo(page);
      record(`${tag} facet click adds label="value"`, q1 === '{service="worker"}' && rows.length > 0 && rows.every((r) => r.labels.includes("service=worker")), `query ${q1}, ${rows.length} rows`);
      // The worker service logs warnings and fatal lines only (makeLines).
      await page.click('[data-testid="facets"] .facet-value[data-label="level"][data-value="warn"]', { modifiers: ["Alt"] });
      await waitFor("end", async () => (await hook(page, "state")) === "ended", 15_000);
      const q2 = await page.inputValue('[data-testid="query"]');
      const rows2 = await rowsInfo(page);
      record(`${tag} facet alt-click excludes the value`, q2 === '{service="worker", level!="warn"}' && rows2.length > 0 && rows2.every((r) => r.level === "fatal" && r.labels.includes("service=worker")), `query ${q2}, ${rows2.length} rows`);
    });

    await step("histogram drag", async () => {
      await page.click("#level-all");
      await waitFor("end", async () => (await hook(page, "state")) === "ended", 15_000);
      const loads = await hook(page, "histogramLoads");
      const all = await hook(page, "received");
      const box = await page.$eval('[data-testid="histogram"] .hist-bars', (e) => {
        const r = e.getBoundingClientRect();
        return { x: r.left, y: r.top, w: r.width, h: r.height };
      });
      await page.mouse.move(box.x + box.w * 0.25, box.y + box.h / 2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.w * 0.4, box.y + box.h / 2, { steps: 5 });
      await page.mouse.move(box.x + box.w * 0.5, box.y + box.h / 2, { steps: 5 });
      await page.mouse.up();
      await histogramDrawn(page, loads);
      await waitFor("end", async () => (await hook(page, "state")) === "ended", 15_000);
      const url = new URL(page.url());
      const got = await hook(page, "received");
      const bars = await histogramBars(page);
      record(`${tag} drag on the histogram zooms the range`, url.searchParams.has("since") && url.searchParams.has("until") && got > 0 && got < all && Math.abs(sumCounts(bars) - got) <= 1, `received ${got} of ${all}; histogram counts ${sumCounts(bars)}; ${url.search}`);
      // Click a bar: the first row in it is selected and shown.
      await page.mouse.click(box.x + box.w * 0.5, box.y + box.h - 2);
      await waitFor("a selected row", async () => (await hook(page, "selectedIndex")) >= 0, 5000);
      const sel = await page.$eval('[data-testid="details"]', (d) => ({ hidden: d.hidden, cursor: d.dataset.cursor }));
      record(`${tag} click on a bar jumps to its first row`, !sel.hidden && !!sel.cursor, `details for cursor ${sel.cursor}`);
      await page.click("#range").catch(() => {});
      await page.selectOption("#range", "");
      await waitFor("end", async () => (await hook(page, "state")) === "ended", 15_000);
    });

    let chosen = null;
    await step("details", async () => {
      await runQuery(page, '{service="api"}');
      await waitFor("end", async () => (await hook(page, "state")) === "ended", 15_000);
      await page.$$eval(".viewport .row", (r) => r[Math.floor(r.length / 2)].click());
      await waitFor("details", async () => !(await page.$eval('[data-testid="details"]', (d) => d.hidden)), 5000);
      chosen = await page.$eval('[data-testid="details"]', (d) => d.dataset.cursor);
      const fields = await page.$$eval('[data-testid="details"] .details-fields th', (t) => t.map((x) => x.textContent));
      const json = await page.$eval('[data-testid="details"] .details-message', (p) => p.classList.contains("json") && p.textContent.includes("\n"));
      await page.click('[data-testid="details"] .copy-json');
      await waitFor("copied", () => page.$('[data-testid="details"] .copy-json.copied'), 3000);
      const clip = await page.evaluate(() => navigator.clipboard.readText()).catch(() => "");
      const url = new URL(page.url());
      record(`${tag} row details: labels, cursor, exact time, copy`, ["cursor", "timestamp", "time (UTC)", "level", "service"].every((f) => fields.includes(f)) && clip.includes(`"cursor":${chosen}`) && url.searchParams.get("sel") === chosen, `fields ${fields.join(",")}; pretty JSON ${json}; clipboard ${clip.slice(0, 60)}…; sel=${url.searchParams.get("sel")}`);
    });

    await step("context", async () => {
      const before = await hook(page, "received");
      await page.click('[data-testid="details"] .details-context');
      await waitFor("context", async () => (await hook(page, "contextLoads")) > 0, 10_000);
      const ctxRows = await page.$$eval('[data-testid="context"] .row', (r) => r.map((x) => ({ cursor: x.dataset.cursor, anchor: x.classList.contains("anchor"), labels: x.querySelector(".labels").textContent })));
      const anchor = ctxRows.findIndex((r) => r.anchor);
      await page.click('[data-testid="context"] .context-more');
      await waitFor("more context", async () => (await hook(page, "contextLoads")) > 1, 10_000);
      // Widened to 30 either side: 30 before (the row is far from the start), as many after as there are.
      const [more, anchorAfter] = await page.$$eval('[data-testid="context"] .row', (r) => [r.length, r.findIndex((x) => x.classList.contains("anchor"))]);
      const after = await hook(page, "received");
      const ordered = ctxRows.every((r, i) => i === 0 || BigInt(r.cursor) > BigInt(ctxRows[i - 1].cursor));
      record(
        `${tag} context: lines before and after from the same service, row marked, more widens, result kept`,
        ctxRows.length === 21 && ctxRows[anchor]?.cursor === chosen && anchor === 10 && ordered && ctxRows.every((r) => r.labels.includes("service=api")) && anchorAfter === 30 && more > 31 && after === before,
        `${ctxRows.length} lines, marked #${anchor} (cursor ${ctxRows[anchor]?.cursor}), ${more} after More (marked #${anchorAfter}), main result ${after} (was ${before})`,
      );
      await page.keyboard.press("Escape");
      record(`${tag} Esc closes the context`, await page.$eval('[data-testid="context"]', (c) => c.hidden), "");
    });

    await step("keys", async () => {
      await page.click("#viewport");
      const i0 = await hook(page, "selectedIndex");
      await page.keyboard.press("j");
      const i1 = await hook(page, "selectedIndex");
      await page.keyboard.press("k");
      await page.keyboard.press("k");
      const i2 = await hook(page, "selectedIndex");
      await page.keyboard.press("/");
      const focused = await page.evaluate(() => document.activeElement?.dataset.testid);
      await page.keyboard.press("Escape");
      const left = await page.evaluate(() => document.activeElement?.dataset.testid ?? "");
      const f0 = new URL(page.url()).searchParams.get("follow");
      await page.keyboard.press("f");
      await sleep(200);
      const f1 = new URL(page.url()).searchParams.get("follow");
      await page.keyboard.press("f");
      await sleep(200);
      record(`${tag} keys: j/k move, / focuses the query, Esc leaves it, f toggles follow`, i1 === i0 + 1 && i2 === i0 - 1 && focused === "query" && left !== "query" && f0 === "0" && f1 === null, `rows ${i0}→${i1}→${i2}, focus ${focused}→${left || "body"}, follow ${f0}→${f1}`);
    });

    await step("permalink", async () => {
      await runQuery(page, '{service="api"}');
      await waitFor("end", async () => (await hook(page, "state")) === "ended", 15_000);
      await page.evaluate(() => (document.getElementById("viewport").scrollTop = 0));
      await sleep(100);
      await page.$$eval(".viewport .row", (r) => r[Math.floor(r.length / 2)].click());
      const cursor = await page.$eval('[data-testid="details"]', (d) => d.dataset.cursor);
      const link = page.url();
      const fresh = await ctx.newPage();
      await fresh.goto(link, { waitUntil: "domcontentloaded" });
      await waitFor("the linked row", async () => (await fresh.$eval('[data-testid="details"]', (d) => !d.hidden && d.dataset.cursor)) === cursor, 15_000);
      const shown = await fresh.evaluate((c) => {
        const r = document.querySelector(`.viewport .row.selected[data-cursor="${c}"]`);
        if (!r) return false;
        const a = r.getBoundingClientRect();
        const v = document.getElementById("viewport").getBoundingClientRect();
        return a.top >= v.top && a.bottom <= v.bottom;
      }, cursor);
      const q = await fresh.inputValue('[data-testid="query"]');
      record(`${tag} permalink: a shared link opens the same query and scrolls to the row`, shown && q === '{service="api"}', `${link.replace(base, "")} → row ${cursor} in view: ${shown}`);
      await fresh.close();
    });

    await step("export", async () => {
      const received = await hook(page, "received");
      const [dl] = await Promise.all([page.waitForEvent("download", { timeout: 15_000 }), page.click('[data-testid="export"]')]);
      const path = join(tmp, "export.ndjson");
      await dl.saveAs(path);
      const lines = readFileSync(path, "utf8").trim().split("\n");
      const ok = lines.every((l) => {
        const o = JSON.parse(l);
        return o.labels?.service === "api" && "cursor" in o;
      });
      record(`${tag} export: the result as NDJSON, streamed by the server`, lines.length === received && ok && dl.url().includes("/api/v1/logs?"), `${lines.length} lines (result ${received}) from ${dl.url().replace(base, "")}`);
    });

    await step("live", async () => {
      await page.click("#level-all");
      await page.keyboard.press("Escape");
      await page.click("#viewport");
      const loads = await hook(page, "histogramLoads");
      await page.keyboard.press("f");
      await histogramDrawn(page, loads);
      await waitFor("streaming", async () => (await hook(page, "state")) === "streaming", 10_000);
      await sleep(300);
      const before = sumCounts(await histogramBars(page));
      const token = `live-hist-${Math.random().toString(36).slice(2, 8)}`;
      const f = join(tmp, "live-hist.log");
      writeFileSync(f, `${new Date().toISOString()} ERROR ${token}\n`);
      const t0 = Date.now();
      const pushed = await run(["push", "--server", base, f]);
      if (pushed.code === 0) livePushes++;
      await waitFor("live row", () => page.$(`.row[data-level="error"] >> text=${token}`), 10_000);
      const rowMs = Date.now() - t0;
      await waitFor("histogram +1", async () => sumCounts(await histogramBars(page)) >= before + 1, 5000);
      const after = sumCounts(await histogramBars(page));
      record(`${tag} live: a new entry appears and is counted in the histogram`, after === before + 1, `row after ${rowMs} ms (incl. the push process), histogram ${before} → ${after}`);
    });

    await step("reconnect", async () => {
      const before = await hook(page, "received");
      await stopServer(server);
      await waitFor("the status bar to say reconnecting", async () => (await page.textContent("#status-state")).startsWith("reconnecting"), 15_000);
      const said = await page.textContent("#status-state");
      server = await restartMainServer();
      const token = `after-restart-${Math.random().toString(36).slice(2, 8)}`;
      const f = join(tmp, "after-restart.log");
      writeFileSync(f, `${new Date().toISOString()} ERROR ${token}\n`);
      const pushed = await run(["push", "--server", base, f]);
      if (pushed.code === 0) livePushes++;
      await waitFor("the entry pushed after the restart", () => page.$(`.row >> text=${token}`), 30_000);
      await sleep(300);
      const after = await hook(page, "received");
      const st = await hook(page, "state");
      record(`${tag} reconnect: the status bar says so, then the stream resumes after the last cursor (no gap, no duplicate)`, said.startsWith("reconnecting") && after === before + 1 && st === "streaming", `"${said}"; received ${before} → ${after}; state ${st} via ${await hook(page, "transport")}`);
    });

    await step("screenshots", async () => {
      // E2E_SCREENSHOTS=1 refreshes the committed ones shown in the READMEs.
      const shots = process.env.E2E_SCREENSHOTS ? join(REPO, "ui/screenshots") : ARTIFACTS;
      mkdirSync(shots, { recursive: true });
      for (const scheme of ["dark", "light"]) {
        await page.emulateMedia({ colorScheme: scheme });
        await page.click('.viewport .row[data-level="error"]');
        await sleep(200);
        await page.screenshot({ path: join(shots, `viewer-${scheme}.png`) });
      }
      await page.click('[data-testid="details"] .details-context');
      await waitFor("context", async () => !(await page.$eval('[data-testid="context"]', (c) => c.hidden)), 5000);
      await sleep(500);
      await page.screenshot({ path: join(shots, "viewer-context-light.png") });
      await page.emulateMedia({ colorScheme: "dark" });
      await page.screenshot({ path: join(shots, "viewer-context-dark.png") });
      await page.keyboard.press("Escape");
    });

    if (pageErrors.length) record(`${tag} no page errors`, false, pageErrors.join(" | "));
  } finally {
    await page.close().catch(() => {});
  }
}

// Starts `logtap serve` (or the mock) on a free port and waits for /healthz.
async function startServer(extraArgs, dataDir, onLog) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const [exe, argv] = cmd(["serve", "--data", dataDir, "--listen", `127.0.0.1:${port}`, ...extraArgs]);
  const proc = spawn(exe, argv, { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout.on("data", onLog);
  proc.stderr.on("data", onLog);
  proc.on("error", (e) => onLog(String(e)));
  const exited = new Promise((r) => proc.on("exit", (code) => r(code)));
  const healthy = await Promise.race([
    waitFor("/healthz", async () => (await fetch(base + "/healthz")).ok, 20_000, 100).then(() => true, () => false),
    exited.then(() => false),
  ]);
  return { proc, base, healthy };
}

async function stopServer(proc) {
  if (!proc || proc.exitCode !== null) return;
  proc.kill("SIGTERM");
  await Promise.race([new Promise((r) => proc.once("exit", r)), sleep(3000)]);
  if (proc.exitCode === null) proc.kill("SIGKILL");
}

// A server with --auth-token-file: the page is served without a token, the
// logs are not. The viewer must ask for a token, send it on every transport,
// take ?token= out of the address bar, and not fall back on a refusal.
async function checkAuth(ctx, servesViewer) {
  const readToken = `e2e-read-${randomBytes(16).toString("hex")}`;
  const writeToken = `e2e-write-${randomBytes(16).toString("hex")}`;
  const tokenFile = join(tmp, "tokens.txt");
  writeFileSync(tokenFile, `# e2e tokens\n${readToken} read\n${writeToken} write\n`, { mode: 0o600 });
  const started = await startServer(["--auth-token-file", tokenFile], join(tmp, "data-auth"), (d) => (authServerLog += d));
  authServer = started.proc;
  const base = started.base;
  if (!record("[auth] server with --auth-token-file starts", started.healthy, base)) return;
  // As a browser asks: without text/html, / is Elasticsearch's root.
  const page0 = await fetch(base + "/", { headers: { Accept: "text/html" } });
  record("[auth] GET / is served without a token", page0.ok || !servesViewer, `HTTP ${page0.status}`);
  const api = await fetch(base + "/api/v1/poll?wait=0s&follow=false");
  record("[auth] GET /api/v1/poll without a token is refused", api.status === 401, `HTTP ${api.status}`);
  await api.text().catch(() => {});
  const { text, errors } = makeLines(Math.min(LINES, 1200));
  const file = join(tmp, "auth.log");
  writeFileSync(file, text);
  const pushed = await run(["push", "--server", base, "--token", writeToken, file], 60_000);
  if (!record("[auth] logtap push --token (write token)", pushed.code === 0, pushed.out.trim().split("\n").pop())) return;
  const pageBase = servesViewer ? base : await startProxy(base, { serveDist: true });
  const url = (params) => {
    const q = new URLSearchParams(params).toString();
    return pageBase + "/" + (q ? "?" + q : "");
  };
  const forced = (t) => (t === "grpc-web" ? {} : { transport: t });
  const promptShown = (page) => waitFor("the token prompt", async () => (await viewerState(page)).auth, 15_000);

  // 1. No token: the prompt, on each transport, with no fallback.
  for (const t of TRANSPORTS) {
    const page = await ctx.newPage();
    try {
      await page.goto(url(forced(t)), { waitUntil: "domcontentloaded" });
      await promptShown(page);
      const st = await viewerState(page);
      const visible = await page.isVisible("#auth");
      const rows = await page.$$eval(".row", (r) => r.length);
      record(
        `[auth ${t}] no token: the page asks for one`,
        visible && st.auth === "this server needs a read token" && st.state === "error" && st.statusState === "error: this server needs a read token" && rows === 0,
        `prompt "${st.auth}", status "${st.statusState}", ${rows} rows`,
      );
      await sleep(300);
      const st2 = await viewerState(page);
      record(`[auth ${t}] no fallback on an auth refusal`, st2.transport === t && st2.statusTransport === t, `transport ${st2.statusTransport}`);
      if (t === "grpc-web") {
        // 2. The token field: type it in, and the page streams.
        mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: join(ARTIFACTS, "viewer-token.png") });
        await page.fill("#token", readToken);
        await page.press("#token", "Enter");
        await waitFor("rows after entering the token", () => page.$(".row"), 15_000);
        const st3 = await viewerState(page);
        const stored = await page.evaluate(() => ({
          session: sessionStorage.getItem("logtap.token"),
          local: Object.keys(localStorage).map((k) => localStorage.getItem(k)),
          field: document.getElementById("token").value,
          href: location.href,
        }));
        record(
          "[auth] token field: the page streams, the token is kept in sessionStorage only",
          st3.auth === null && !(await page.isVisible("#auth")) && st3.received > 0 && stored.session === readToken && !stored.local.includes(readToken) && stored.field === "" && !stored.href.includes(readToken),
          `received ${st3.received}, state ${st3.statusState}, sessionStorage ${stored.session === readToken ? "has it" : "missing"}, localStorage ${stored.local.includes(readToken) ? "HAS IT" : "clean"}`,
        );
      }
    } catch (e) {
      record(`[auth ${t}] no token`, false, e.message);
    } finally {
      await page.close().catch(() => {});
    }
  }

  // 3. ?token= on each transport: taken out of the URL; Show Errors works.
  for (const t of TRANSPORTS) {
    const page = await ctx.newPage();
    try {
      await page.goto(url({ ...forced(t), token: readToken }), { waitUntil: "domcontentloaded" });
      await waitFor(`[auth ${t}] rows`, async () => (await page.$(".row")) || (await viewerState(page)).auth, 15_000);
      const href = await page.evaluate(() => location.href);
      const gone = !href.includes(readToken) && !page.url().includes(readToken) && !/[?&]token=/.test(href);
      record(`[auth ${t}] ?token= is removed from location.href`, gone && (t === "grpc-web" || href.includes(`transport=${t}`)), href);
      await page.click("#show-errors");
      await waitFor(`[auth ${t}] all ${errors} errors`, async () => {
        const st = await viewerState(page);
        return st.received >= errors || st.state === "error";
      }, 20_000);
      await sleep(300);
      const st = await viewerState(page);
      const levels = await page.$$eval(".row", (rows) => rows.map((r) => r.dataset.level));
      record(
        `[auth ${t}] with ?token=, Show Errors streams exactly the errors`,
        st.received === errors && st.auth === null && st.state !== "error" && st.statusTransport === t && levels.length > 0 && levels.every((l) => l === "error" || l === "fatal"),
        `received ${st.received} (want ${errors}), via ${st.statusTransport}, state ${st.statusState}, ${levels.length} rows`,
      );
      if (t === "grpc-web") {
        // The histogram's and facets' calls carry the token too.
        await waitFor("[auth] the histogram", async () => sumCounts(await histogramBars(page)) === errors, 15_000).catch(() => {});
        const bars = await histogramBars(page);
        await waitFor("[auth] the facets", async () => (await hook(page, "facetLoads")) > 0, 15_000).catch(() => {});
        const facetValues = await page.$$eval('[data-testid="facets"] .facet-value', (b) => b.length);
        record("[auth] with a token, the histogram and the facets load", sumCounts(bars) === errors && facetValues > 0, `histogram counts ${sumCounts(bars)} (want ${errors}), ${facetValues} facet values`);
        // A reload in the same tab keeps the token (sessionStorage), still not in the URL.
        await page.reload({ waitUntil: "domcontentloaded" });
        await waitFor("rows after a reload", async () => (await page.$(".row")) || (await viewerState(page)).auth, 15_000);
        const r = await viewerState(page);
        record("[auth] a reload in the same tab keeps the token", r.auth === null && r.received > 0 && !(await page.evaluate(() => location.href)).includes(readToken), `received ${r.received}, state ${r.statusState}`);
      }
    } catch (e) {
      const st = await viewerState(page).catch(() => ({}));
      record(`[auth ${t}] with ?token=`, false, `${e.message}; status: ${st.statusState ?? "?"}`);
    } finally {
      await page.close().catch(() => {});
    }
  }

  // 4. A write-only token cannot read; 5. an unknown token is not accepted.
  for (const [t, token, want] of [
    ...TRANSPORTS.map((t) => [t, writeToken, "this token cannot read"]),
    ["grpc-web", `e2e-unknown-${randomBytes(8).toString("hex")}`, "this server needs a read token (the token given was not accepted)"],
  ]) {
    const page = await ctx.newPage();
    const what = token === writeToken ? "write-only token" : "unknown token";
    try {
      await page.goto(url({ ...forced(t), token }), { waitUntil: "domcontentloaded" });
      await promptShown(page);
      const st = await viewerState(page);
      record(`[auth ${t}] ${what}: "${want}"`, st.auth === want && st.statusState === `error: ${want}` && st.statusTransport === t && st.received === 0, `prompt "${st.auth}", status "${st.statusState}", via ${st.statusTransport}`);
    } catch (e) {
      record(`[auth ${t}] ${what}`, false, e.message);
    } finally {
      await page.close().catch(() => {});
    }
  }
}

// Serves ui/dist and proxies everything else to the server (streaming, and
// closing the upstream request when the browser goes away).
// With blockGrpcWeb it plays a proxy that does not let gRPC-Web through
// (answers 415), to check that the viewer falls back by itself.
async function startProxy(base, { serveDist = true, blockGrpcWeb = false } = {}) {
  const dist = join(HERE, "../dist");
  if (serveDist && !existsSync(join(dist, "index.html"))) throw new Error("ui/dist is not built (npm run build in ui/)");
  const up = new URL(base);
  const port = await freePort();
  const mime = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css" };
  const server = createHttpServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (blockGrpcWeb && path.startsWith("/logtap.v1.")) {
      res.writeHead(415, { "content-type": "text/plain" });
      return res.end("this proxy does not pass gRPC-Web\n");
    }
    const file = !serveDist ? null : path === "/" ? "index.html" : path.startsWith("/assets/") ? path.slice(1) : null;
    if (req.method === "GET" && file && !file.includes("..") && existsSync(join(dist, file))) {
      res.writeHead(200, { "content-type": mime[file.slice(file.lastIndexOf("."))] ?? "application/octet-stream" });
      return res.end(readFileSync(join(dist, file)));
    }
    const upstream = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    upstream.on("error", (e) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(e));
    });
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  proxies.push(server);
  return `http://127.0.0.1:${port}`;
}

async function launch() {
  return chromium.launchPersistentContext(join(tmp, "chromium-profile"), {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1400, height: 800 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

let mainServerArgs = null;
/** Starts the main server again on the same port and data (after the reconnect check stopped it). */
async function restartMainServer() {
  const [exe, argv] = mainServerArgs;
  const p = spawn(exe, argv, { stdio: ["ignore", "pipe", "pipe"] });
  p.stdout.on("data", (d) => (serverLog += d));
  p.stderr.on("data", (d) => (serverLog += d));
  const base = `http://${argv[argv.indexOf("--listen") + 1]}`;
  await waitFor("/healthz after the restart", async () => (await fetch(base + "/healthz")).ok, 20_000, 100);
  return p;
}

async function main() {
  const measure = process.env.E2E_MEASURE_URL;
  if (measure) {
    // Timings only, against a server someone else started on a filled store
    // (logtap-bench's viewer scenario): one JSON line on stdout.
    browser = await launch();
    const t = await measureTimings(browser, measure.replace(/\/$/, ""), process.env.E2E_LABEL_QUERY ?? '{service="api"}', "");
    console.log("E2E_TIMINGS " + JSON.stringify(t));
    return;
  }
  console.log(`logtap viewer e2e: LOGTAP_BIN=${BIN}`);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const data = join(tmp, "data");
  const [exe, argv] = cmd(["serve", "--data", data, "--listen", `127.0.0.1:${port}`]);
  mainServerArgs = [exe, argv];
  server = spawn(exe, argv, { stdio: ["ignore", "pipe", "pipe"] });
  server.stdout.on("data", (d) => (serverLog += d));
  server.stderr.on("data", (d) => (serverLog += d));
  const exited = new Promise((r) => server.on("exit", (code) => r(code)));
  server.on("error", (e) => (serverLog += String(e)));
  const healthy = await Promise.race([
    waitFor("/healthz", async () => (await fetch(base + "/healthz")).ok, 20_000, 100).then(() => true, () => false),
    exited.then(() => false),
  ]);
  if (!record("server starts and /healthz answers 200", healthy, base)) return;

  // As a browser asks: without text/html, / is Elasticsearch's root.
  const page0 = await fetch(base + "/", { headers: { Accept: "text/html" } });
  const html = await page0.text();
  let pageBase = base;
  const servesViewer = page0.ok && html.includes('id="show-errors"');
  if (!record("GET / serves the viewer", servesViewer, `HTTP ${page0.status}`)) {
    if (process.env.E2E_NO_PROXY) return;
    pageBase = await startProxy(base, { serveDist: true });
    console.log(`        (serving ui/dist from ${pageBase}, proxying the rest to ${base}, to go on)`);
  }

  const { text, errors } = makeLines(LINES);
  const file = join(tmp, "mixed.log");
  writeFileSync(file, text);
  const t0 = Date.now();
  const pushed = await run(["push", "--server", base, file], 120_000);
  if (!record(`logtap push ${LINES} mixed lines`, pushed.code === 0, `${Date.now() - t0} ms; ${pushed.out.trim().split("\n").pop()}`)) return;

  browser = await launch();
  for (const [i, t] of TRANSPORTS.entries()) {
    await checkTransport(browser, pageBase, base, t, errors + livePushes, i === 0);
  }
  if (TRANSPORTS.includes("grpc-web")) await checkTrailers(browser, pageBase, errors + livePushes);
  if (TRANSPORTS.includes("grpc-web")) {
    await browser.grantPermissions(["clipboard-read", "clipboard-write"], { origin: pageBase });
    await checkFeatures(browser, pageBase, LINES + livePushes, errors + livePushes);
    await measureTimings(browser, pageBase, '{service="api"}', "").catch((e) => record("[viewer] timings", false, e.message));
  }
  if (!process.env.E2E_NO_FALLBACK) {
    const blocked = await startProxy(base, { serveDist: !servesViewer, blockGrpcWeb: true });
    await checkFallback(browser, blocked, base, errors + livePushes);
  }
  if (!process.env.E2E_NO_AUTH) await checkAuth(browser, servesViewer);
}

const timer = setTimeout(() => {
  record("overall time limit", false, `${OVERALL_TIMEOUT_MS} ms`);
  finish().then(() => process.exit(1));
}, OVERALL_TIMEOUT_MS);

async function finish() {
  clearTimeout(timer);
  await browser?.close().catch(() => {});
  for (const p of proxies) {
    p.closeAllConnections?.();
    p.close();
  }
  await stopServer(server);
  await stopServer(authServer);
  rmSync(tmp, { recursive: true, force: true });
}

try {
  await main();
} catch (e) {
  record("harness", false, e.stack ?? String(e));
}
await finish();
const failed = results.filter((r) => !r.ok);
console.log("\n==== logtap viewer e2e summary ====");
for (const [k, v] of figures) console.log(`  ${k}: ${v}`);
console.log(`  screenshot: ${join(ARTIFACTS, "viewer.png")}`);
if (failed.length) {
  console.log("\nfailures:");
  for (const f of failed) console.log(`  - ${f.name}: ${f.detail}`);
  if (serverLog) console.log("\nserver output (last 40 lines):\n" + serverLog.trim().split("\n").slice(-40).join("\n"));
  if (authServerLog && failed.some((f) => f.name.startsWith("[auth"))) {
    console.log("\nserver with tokens, output (last 20 lines):\n" + authServerLog.trim().split("\n").slice(-20).join("\n"));
  }
}
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
