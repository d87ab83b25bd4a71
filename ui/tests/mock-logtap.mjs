#!/usr/bin/env node
// A stand-in for the `logtap` binary, ONLY for trying the viewer and the e2e
// harness before the Rust server serves the viewer and the HTTP fallbacks.
// It mimics the PRODUCT.md contract: `serve --data DIR --listen ADDR` with
// gRPC-Web GetLogs (headers, trailers incl. logtap-crc32c), /api/v1/sse,
// /api/v1/poll, /api/v1/push, /healthz, /metrics and ui/dist at /; and
// `push --server URL [--token T] FILE...` (over POST /api/v1/push). In-memory
// store. `serve --auth-token-file FILE` checks bearer tokens roughly like the
// server does (`TOKEN read|write|read,write` lines; `authorization: Bearer`,
// or `?access_token=` on /api/v1/sse and /api/v1/poll; gRPC-Web refusals as
// grpc-status 16/7, HTTP as 401/403).
//
//   LOGTAP_BIN=ui/tests/mock-logtap.mjs node ui/tests/e2e.mjs
import { createServer } from "node:http";
import { mkdirSync, readFileSync, existsSync } from "node:fs";
import { dirname, join, extname, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { fileDesc } from "@bufbuild/protobuf/codegenv2";
import { connectNodeAdapter } from "@connectrpc/connect-node";

const UI = join(dirname(fileURLToPath(import.meta.url)), "..");
const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"];
const ALIASES = { warning: "warn", err: "error", critical: "fatal", crit: "fatal", panic: "fatal" };
const levelOf = (s) => {
  const l = String(s ?? "").toLowerCase();
  return LEVELS.includes(l) ? l : ALIASES[l] ?? null;
};

// ---- CRC-32C ----
const T = new Uint32Array(256).map((_, i) => {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  return c >>> 0;
});
const crcUpdate = (c, buf) => {
  for (const b of buf) c = T[(c ^ b) & 0xff] ^ (c >>> 8);
  return c;
};
const crcEntry = (c, e) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(e.timestamp);
  return crcUpdate(crcUpdate(c, b), Buffer.from(e.message, "utf8"));
};
const crcHex = (c) => ((c ^ 0xffffffff) >>> 0).toString(16).padStart(8, "0");

// ---- line parsing (the `logtap push` line format, simplified) ----
function parseLine(line) {
  const t = line.trim();
  if (!t) return null;
  if (t.startsWith("{")) {
    try {
      const o = JSON.parse(t);
      const labels = {};
      let ts = 0n;
      for (const [k, v] of Object.entries(o)) {
        if (["level", "message", "msg", "timestamp", "time", "ts"].includes(k)) continue;
        labels[k] = typeof v === "string" ? v : JSON.stringify(v);
      }
      const tv = o.timestamp ?? o.time ?? o.ts;
      if (typeof tv === "number") ts = BigInt(Math.round(tv > 1e15 ? tv : tv > 1e12 ? tv * 1e6 : tv * 1e9));
      else if (typeof tv === "string" && !Number.isNaN(Date.parse(tv))) ts = BigInt(Date.parse(tv)) * 1_000_000n;
      return { level: levelOf(o.level) ?? "info", message: String(o.message ?? o.msg ?? ""), timestamp: ts, labels };
    } catch {
      /* plain */
    }
  }
  const m = /\b(?:level=)?(trace|debug|info|warn(?:ing)?|error|err|fatal|critical|crit|panic)\b/i.exec(t);
  const d = /^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)/.exec(t);
  const ts = d && !Number.isNaN(Date.parse(d[1])) ? BigInt(Date.parse(d[1])) * 1_000_000n : 0n;
  return { level: (m && levelOf(m[1])) ?? "info", message: t, timestamp: ts, labels: {} };
}

// ---- tokens ----
function loadTokens(file) {
  const tokens = new Map();
  for (const raw of readFileSync(file, "utf8").split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const [token, scope] = line.split(/\s+/);
    const parts = scope.toLowerCase().split(",");
    tokens.set(token, { read: parts.includes("read"), write: parts.includes("write") });
  }
  return tokens;
}

/** null: let it through; else what to refuse with. */
function checkToken(tokens, req, u) {
  if (!tokens) return null;
  const p = u.pathname;
  if (p === "/healthz" || p === "/" || p === "/index.html" || p.startsWith("/assets/")) return null;
  const need = p.startsWith("/logtap.v1.") ? (/\/(GetLogs|StreamLogs)$/.test(p) ? "read" : "write") : p.startsWith("/api/") && req.method !== "GET" ? "write" : "read";
  let token = null;
  const h = req.headers.authorization;
  if (h) token = /^bearer\s+(\S+)\s*$/i.exec(h)?.[1] ?? "";
  else if (req.method === "GET" && (p === "/api/v1/sse" || p === "/api/v1/poll")) token = u.searchParams.get("access_token");
  if (!token) return { status: 401, grpc: 16, message: token === "" ? "malformed authorization header" : "no token" };
  const grant = tokens.get(token);
  if (!grant) return { status: 401, grpc: 16, message: "unknown token" };
  if (!grant[need]) return { status: 403, grpc: 7, message: `this token lacks the ${need} scope` };
  return null;
}

// ---- serve ----
async function serve(args) {
  const tokens = args["auth-token-file"] ? loadTokens(args["auth-token-file"]) : null;
  const data = args.data ?? "./logtap-data";
  mkdirSync(data, { recursive: true });
  const [host, port] = (args.listen ?? "127.0.0.1:50051").split(/:(?=\d+$)/);
  const store = [];
  let waiters = [];
  const metrics = { active: 0, stored: 0, sent: 0, cancelled: 0 };
  const notify = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const append = (lines) => {
    let last = 0n;
    for (const l of lines) {
      const e = parseLine(l);
      if (!e) continue;
      if (e.timestamp === 0n) e.timestamp = BigInt(Date.now()) * 1_000_000n + BigInt(store.length % 1_000_000);
      e.cursor = BigInt(store.length + 1);
      store.push(e);
      last = e.cursor;
    }
    metrics.stored = store.length;
    notify();
    return last;
  };
  const matcher = (f) => {
    const min = f.level ? LEVELS.indexOf(levelOf(f.level)) : 0;
    if (min < 0) throw new Error(`unknown level "${f.level}": valid levels are ${LEVELS.join(", ")}`);
    const re = f.grep && f.regex ? new RegExp(f.grep) : null;
    return (e) =>
      LEVELS.indexOf(e.level) >= min &&
      (!f.since || e.timestamp >= f.since) &&
      (!f.until || e.timestamp < f.until) &&
      (!f.grep || (re ? re.test(e.message) : e.message.includes(f.grep))) &&
      (f.after == null || e.cursor > f.after);
  };
  async function* entries(f, signal) {
    const match = matcher(f);
    let i = f.after != null ? Number(f.after) : 0;
    for (;;) {
      while (i < store.length) {
        const e = store[i++];
        if (match(e)) yield e;
        if (signal.aborted) return;
      }
      if (!f.follow || signal.aborted) return;
      await new Promise((resolve) => {
        waiters.push(resolve);
        signal.addEventListener("abort", resolve, { once: true });
      });
      if (signal.aborted) return;
    }
  }
  const b64 = /fileDesc\("([^"]+)"/.exec(readFileSync(join(UI, "src/gen/logtap/v1/logtap_pb.ts"), "utf8"))[1];
  const file = fileDesc(b64);
  const [, LogEntrySchema] = file.messages;
  const LogService = file.services[0];

  const grpc = connectNodeAdapter({
    grpcWeb: true,
    connect: false,
    grpc: false,
    routes(router) {
      router.service(LogService, {
        async *getLogs(req, ctx) {
          metrics.active++;
          const f = {
            level: req.level,
            grep: req.grep,
            regex: req.regex,
            since: req.since,
            until: req.until,
            after: req.afterCursor ?? null,
            follow: req.follow,
          };
          let match;
          try {
            match = matcher(f);
          } catch (e) {
            metrics.active--;
            const { ConnectError, Code } = await import("@connectrpc/connect");
            throw new ConnectError(e.message, Code.InvalidArgument);
          }
          ctx.responseHeader.set("x-request-id", ctx.requestHeader.get("x-request-id") ?? randomUUID());
          if (!req.follow) ctx.responseHeader.set("logtap-total-count", String(store.filter(match).length));
          let crc = 0xffffffff;
          let sent = 0;
          let last = f.after ?? 0n;
          try {
            for await (const e of entries(f, ctx.signal)) {
              crc = crcEntry(crc, e);
              sent++;
              metrics.sent++;
              last = e.cursor;
              yield create(LogEntrySchema, e);
            }
            ctx.responseTrailer.set("logtap-sent", String(sent));
            ctx.responseTrailer.set("logtap-next-cursor", String(last));
            ctx.responseTrailer.set("logtap-crc32c", crcHex(crc));
          } finally {
            metrics.active--;
            if (ctx.signal.aborted) metrics.cancelled++;
          }
        },
      });
    },
  });

  const toJson = (e) =>
    `{"cursor":${e.cursor},"timestamp":${e.timestamp},"level":"${e.level}","message":${JSON.stringify(e.message)},"labels":${JSON.stringify(e.labels)}}`;
  const filterFrom = (u, after) => ({
    level: u.searchParams.get("level") ?? "",
    grep: u.searchParams.get("grep") ?? "",
    regex: u.searchParams.get("regex") === "true",
    since: BigInt(u.searchParams.get("since") ?? 0),
    until: BigInt(u.searchParams.get("until") ?? 0),
    after,
    follow: u.searchParams.get("follow") !== "false",
  });
  const MIME = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css" };

  const server = createServer(async (req, res) => {
    const u = new URL(req.url, "http://x");
    const refused = checkToken(tokens, req, u);
    u.searchParams.delete("access_token");
    if (refused) {
      if (String(req.headers["content-type"] ?? "").startsWith("application/grpc")) {
        // gRPC-Web trailers-only answer.
        res.writeHead(200, { "content-type": "application/grpc-web+proto", "grpc-status": String(refused.grpc), "grpc-message": encodeURIComponent(refused.message) });
        return res.end();
      }
      res.writeHead(refused.status, { "content-type": "application/json", "www-authenticate": 'Bearer realm="logtap"' });
      return res.end(JSON.stringify({ error: refused.message }) + "\n");
    }
    if (u.pathname.startsWith("/logtap.v1.")) return grpc(req, res);
    if (u.pathname === "/healthz") return res.end("ok\n");
    if (u.pathname === "/metrics") {
      res.setHeader("content-type", "text/plain; version=0.0.4");
      return res.end(
        `# TYPE logtap_active_streams gauge\nlogtap_active_streams ${metrics.active}\n` +
          `logtap_entries_stored_total ${metrics.stored}\nlogtap_entries_sent_total ${metrics.sent}\n` +
          `logtap_streams_cancelled_total ${metrics.cancelled}\n`,
      );
    }
    if (u.pathname === "/api/v1/push" && req.method === "POST") {
      let body = "";
      for await (const c of req) body += c;
      const lines = body.split("\n");
      const before = store.length;
      const last = append(lines);
      res.setHeader("content-type", "application/json");
      return res.end(`{"stored":${store.length - before},"last_cursor":${last}}`);
    }
    if (u.pathname === "/api/v1/sse" || u.pathname === "/api/v1/poll") {
      const lastId = req.headers["last-event-id"];
      const after = lastId ? BigInt(lastId) : u.searchParams.has("after") ? BigInt(u.searchParams.get("after")) : null;
      const f = filterFrom(u, after);
      try {
        matcher(f);
      } catch (e) {
        res.statusCode = 400;
        return res.end(JSON.stringify({ error: e.message }));
      }
      const ac = new AbortController();
      res.on("close", () => ac.abort());
      metrics.active++;
      try {
        if (u.pathname === "/api/v1/sse") {
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
          res.write(": logtap\n\n");
          const hb = setInterval(() => res.write(": heartbeat\n\n"), 15000);
          try {
            for await (const e of entries(f, ac.signal)) {
              metrics.sent++;
              res.write(`id: ${e.cursor}\ndata: ${toJson(e)}\n\n`);
            }
          } finally {
            clearInterval(hb);
          }
          res.end();
        } else {
          const waitS = parseFloat(u.searchParams.get("wait") ?? "25") || 0;
          const match = matcher(f);
          const collect = () => store.filter(match).slice(0, 5000);
          let got = collect();
          if (!got.length && waitS > 0) {
            await new Promise((resolve) => {
              const t = setTimeout(resolve, waitS * 1000);
              waiters.push(() => {
                clearTimeout(t);
                resolve();
              });
              ac.signal.addEventListener("abort", resolve, { once: true });
            });
            got = collect();
          }
          metrics.sent += got.length;
          const next = got.length ? got[got.length - 1].cursor : (after ?? BigInt(store.length));
          res.setHeader("content-type", "application/json");
          res.end(`{"entries":[${got.map(toJson).join(",")}],"next_cursor":${next}}`);
        }
      } finally {
        metrics.active--;
        if (ac.signal.aborted && !res.writableFinished) metrics.cancelled++;
      }
      return;
    }
    // Static viewer.
    const rel = normalize(u.pathname === "/" ? "/index.html" : u.pathname).replace(/^(\.\.[/\\])+/, "");
    const p = join(UI, "dist", rel);
    if (p.startsWith(join(UI, "dist")) && existsSync(p)) {
      res.setHeader("content-type", MIME[extname(p)] ?? "application/octet-stream");
      return res.end(readFileSync(p));
    }
    res.statusCode = 404;
    res.end("not found\n");
  });
  server.listen(Number(port), host, () => console.error(`mock logtap listening on http://${host}:${port}`));
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

async function push(args, files) {
  const server = args.server ?? process.env.LOGTAP_SERVER ?? "http://127.0.0.1:50051";
  const body = files.length ? files.map((f) => readFileSync(f, "utf8")).join("\n") : readFileSync(0, "utf8");
  const token = args.token ?? process.env.LOGTAP_TOKEN;
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const r = await fetch(new URL("/api/v1/push", server), { method: "POST", body, headers });
  const t = await r.text();
  if (!r.ok) {
    console.error(t);
    process.exit(1);
  }
  const o = JSON.parse(t.replace(/:(\d{16,})/g, ':"$1"'));
  console.log(`stored ${o.stored} entries (last cursor ${o.last_cursor})`);
}

const [cmd, ...rest] = process.argv.slice(2);
const args = {};
const pos = [];
for (let i = 0; i < rest.length; i++) {
  if (rest[i].startsWith("--")) args[rest[i].slice(2)] = rest[++i];
  else pos.push(rest[i]);
}
if (cmd === "serve") await serve(args);
else if (cmd === "push") await push(args, pos);
else {
  console.error("usage: mock-logtap.mjs serve [--data DIR] [--listen ADDR] | push [--server URL] FILE...");
  process.exit(2);
}
