import assert from "node:assert/strict";
import { test } from "node:test";
import {
  defaultQuery,
  DEFAULT_MAX,
  formatCount,
  localInputToNs,
  normLevel,
  nsToLocalInput,
  pageSearch,
  parsePageParams,
  queryToHttpParams,
} from "../../src/state.ts";
import { pollUrl } from "../../src/transport/poll.ts";
import { parseEntryJson, parsePollJson } from "../../src/transport/json.ts";
import { highlighterFor, matchRanges } from "../../src/row.ts";

test("levels and aliases", () => {
  assert.equal(normLevel("ERROR"), "error");
  assert.equal(normLevel("warning"), "warn");
  assert.equal(normLevel("err"), "error");
  assert.equal(normLevel("Critical"), "fatal");
  assert.equal(normLevel("panic"), "fatal");
  assert.equal(normLevel("whatever"), "info");
});

test("query → HTTP fallback params", () => {
  const q = { ...defaultQuery(), level: "error", grep: "disk full", since: 1_700_000_000_000_000_000n, until: 1_800_000_000_000_000_000n, after: 9_007_199_254_740_993n };
  const p = queryToHttpParams(q);
  assert.equal(p.get("level"), "error");
  assert.equal(p.get("grep"), "disk full");
  assert.equal(p.get("since"), "1700000000000000000");
  assert.equal(p.get("until"), "1800000000000000000");
  assert.equal(p.get("after"), "9007199254740993"); // beyond 2^53, exact
  assert.equal(p.get("follow"), "true");
  assert.equal(p.has("regex"), false);
  const empty = queryToHttpParams(defaultQuery());
  assert.equal(empty.toString(), "follow=true");
});

test("poll URL", () => {
  const u = new URL(pollUrl("http://127.0.0.1:50051", { ...defaultQuery(), level: "warn" }, 42n, "25s"));
  assert.equal(u.pathname, "/api/v1/poll");
  assert.equal(u.searchParams.get("after"), "42");
  assert.equal(u.searchParams.get("wait"), "25s");
  assert.equal(u.searchParams.get("level"), "warn");
  const first = new URL(pollUrl("http://h", defaultQuery(), null, "0s"));
  assert.equal(first.searchParams.has("after"), false);
});

test("page params round trip", () => {
  const cfg = parsePageParams("?level=error&grep=a%20b&regex=1&since=1700000000000000000&follow=0&transport=sse&max=5000");
  assert.equal(cfg.query.level, "error");
  assert.equal(cfg.query.grep, "a b");
  assert.equal(cfg.query.regex, true);
  assert.equal(cfg.query.since, 1_700_000_000_000_000_000n);
  assert.equal(cfg.query.follow, false);
  assert.equal(cfg.transport, "sse");
  assert.equal(cfg.max, 5000);
  assert.deepEqual(parsePageParams(pageSearch(cfg)), cfg);
  const d = parsePageParams("");
  assert.deepEqual([d.query.follow, d.transport, d.max, d.query.level], [true, null, DEFAULT_MAX, ""]);
  assert.equal(pageSearch(d), "");
  assert.equal(parsePageParams("?transport=carrier-pigeon").transport, null);
  assert.equal(parsePageParams("?max=1").max, 100);
  assert.equal(parsePageParams("?level=ALL").query.level, "");
});

test("datetime-local ↔ ns (local time)", () => {
  const ns = localInputToNs("2024-05-01T12:34:56");
  assert.equal(ns, BigInt(new Date(2024, 4, 1, 12, 34, 56).getTime()) * 1_000_000n);
  assert.equal(nsToLocalInput(ns!), "2024-05-01T12:34:56");
  assert.equal(localInputToNs("2024-05-01T12:34"), BigInt(new Date(2024, 4, 1, 12, 34).getTime()) * 1_000_000n);
  assert.equal(localInputToNs(""), null);
  assert.equal(localInputToNs("garbage"), null);
});

test("JSON entries keep int64 precision", () => {
  const e = parseEntryJson('{"cursor":18446744073709551615,"timestamp":1700000000123456789,"level":"ERROR","message":"a \\"cursor\\": 5","labels":{"host":"a","app":"b"}}');
  assert.equal(e.cursor, 18_446_744_073_709_551_615n);
  assert.equal(e.timestamp, 1_700_000_000_123_456_789n);
  assert.equal(e.level, "error");
  assert.equal(e.message, 'a "cursor": 5');
  assert.deepEqual(e.labels, [["app", "b"], ["host", "a"]]);
  const s = parseEntryJson('{"cursor":"7","timestamp":"1700000000123456789","level":"warn","message":"m"}');
  assert.equal(s.timestamp, 1_700_000_000_123_456_789n);
  assert.equal(s.labels, null);
  const p = parsePollJson('{"entries":[{"cursor":1,"timestamp":1700000000000000001,"level":"info","message":"x"}],"next_cursor":9007199254740993}');
  assert.equal(p.entries.length, 1);
  assert.equal(p.entries[0].timestamp, 1_700_000_000_000_000_001n);
  assert.equal(p.nextCursor, 9_007_199_254_740_993n);
  assert.deepEqual(parsePollJson('{"entries":[],"next_cursor":3}'), { entries: [], nextCursor: 3n });
});

test("search highlighting", () => {
  assert.deepEqual(matchRanges("disk full, disk gone", "disk"), [[0, 4], [11, 15]]);
  assert.deepEqual(matchRanges("Disk", "disk"), []); // case-sensitive, like the server
  assert.deepEqual(matchRanges("abc", null), []);
  const re = highlighterFor("d[a-z]+k", true);
  assert.ok(re instanceof RegExp);
  assert.deepEqual(matchRanges("a disk and a dusk", re), [[2, 6], [13, 17]]);
  assert.equal(highlighterFor("(", true), null);
  assert.deepEqual(matchRanges("aaa", /x*/g), []);
  assert.equal(formatCount(1234567), "1,234,567");
});
