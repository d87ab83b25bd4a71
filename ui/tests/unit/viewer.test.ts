// The second generation's pure parts: LogQL handling, histogram buckets,
// facets, details, context selectors, permalink parameters.
import assert from "node:assert/strict";
import { test } from "node:test";
import { contextSelector } from "../../src/context.ts";
import { entryJson, prettyJson, rfc3339 } from "../../src/details.ts";
import { facetNames, topValues } from "../../src/facets.ts";
import { addPoint, bucketOf, emptyBuckets, stepFor, timeAt } from "../../src/histogram.ts";
import {
  completionAt,
  errorPosition,
  facetQuery,
  histogramQuery,
  isLogql,
  levelOnly,
  levelQuery,
  lineFilterTerms,
  presetOf,
  splitSelector,
  tokenize,
  toServerQuery,
  withMatcher,
} from "../../src/logql.ts";
import { highlighterForQuery, matchRanges } from "../../src/row.ts";
import { defaultQuery, pageSearch, parsePageParams, queryToHttpParams, resolveRange } from "../../src/state.ts";
import type { Entry } from "../../src/transport/types.ts";

const S = 1_000_000_000n;

test("tokens cover the query and tell its parts apart", () => {
  const q = '{service="api", level=~"error|fatal"} |= "time\\"out" | json | status >= 500';
  const toks = tokenize(q);
  assert.equal(toks.map((t) => t.text).join(""), q);
  const kinds = toks.filter((t) => t.kind !== "ws").map((t) => `${t.kind}:${t.text}`);
  assert.deepEqual(kinds.slice(0, 9), ["brace:{", "label:service", "op:=", 'string:"api"', "punct:,", "label:level", "op:=~", 'string:"error|fatal"', "brace:}"]);
  assert.ok(kinds.includes("filter:|="));
  assert.ok(kinds.includes('string:"time\\"out"'));
  assert.ok(kinds.includes("keyword:json"));
  assert.ok(kinds.includes("op:>="));
  const m = tokenize("sum by (level) (count_over_time({}[5m]))").filter((t) => t.kind !== "ws");
  assert.equal(m[0].kind, "func");
  assert.equal(m[1].kind, "keyword");
  assert.ok(m.some((t) => t.kind === "duration" && t.text === "[5m]"));
});

test("plain text is a substring search; LogQL goes as typed", () => {
  assert.equal(isLogql("disk full"), false);
  assert.equal(toServerQuery("disk full"), '{} |= "disk full"');
  assert.equal(toServerQuery('say "hi" \\ bye'), '{} |= "say \\"hi\\" \\\\ bye"');
  assert.equal(toServerQuery("  "), "");
  assert.equal(toServerQuery('{service="api"} |= "x"'), '{service="api"} |= "x"');
  assert.equal(toServerQuery('|= "x"'), '{} |= "x"');
  assert.equal(isLogql("count_over_time({}[1m])"), true);
  assert.equal(isLogql("count of things"), false);
});

test("line filter terms are what rows highlight", () => {
  assert.deepEqual(lineFilterTerms('{a="b"} |= "disk" != "x" |= `raw\\d`'), ["disk", "raw\\d"]);
  assert.deepEqual(lineFilterTerms(toServerQuery('plain "quoted"')), ['plain "quoted"']);
  const hl = highlighterForQuery({ ...defaultQuery(), logql: "disk" });
  assert.equal(hl, "disk");
  const two = highlighterForQuery({ ...defaultQuery(), logql: '{} |= "a.b" |= "c"' });
  assert.ok(two instanceof RegExp);
  assert.deepEqual(matchRanges("xa.bxaxbc", two), [
    [1, 4],
    [8, 9],
  ]);
});

test("the server's error position is found in the query, in UTF-16 units", () => {
  assert.equal(errorPosition('bad query at 14: expected "," or "}", found "|="', '{service="s1" |= "x"'), 14);
  // "é" is two bytes in UTF-8, one unit in the page.
  assert.equal(errorPosition("bad query at 7: expected x", '{a="é" x'), 6);
  assert.equal(errorPosition("bad query at 99: end", "{a"), 2);
  assert.equal(errorPosition("INVALID_ARGUMENT: unknown level", "x"), null);
});

test("a facet click adds or replaces a matcher in the selector", () => {
  assert.equal(withMatcher("", "service", "api"), '{service="api"}');
  assert.equal(withMatcher('{level="error"} |= "x"', "service", "api"), '{level="error", service="api"} |= "x"');
  assert.equal(withMatcher('{service="web"}', "service", "api"), '{service="api"}');
  assert.equal(withMatcher('{service="web"}', "service", "api", true), '{service="web", service!="api"}');
  assert.equal(withMatcher("disk", "host", 'n"1'), '{host="n\\"1"} |= "disk"');
  assert.deepEqual(splitSelector('{a="}"} |= "y"'), { selector: '{a="}"}', rest: '|= "y"' });
});

test("level presets set the query and are recognised in it", () => {
  assert.equal(levelQuery("error"), '{level=~"error|fatal"}');
  assert.equal(levelQuery("warn"), '{level=~"warn|error|fatal"}');
  assert.equal(levelQuery(""), "");
  assert.equal(presetOf('{level=~"error|fatal"}'), "error");
  assert.equal(presetOf(""), "");
  assert.equal(presetOf("{x}"), null);
});

test("level-only queries are counted from the summaries over {}", () => {
  assert.deepEqual(levelOnly(""), ["trace", "debug", "info", "warn", "error", "fatal"]);
  assert.deepEqual(levelOnly("{}"), ["trace", "debug", "info", "warn", "error", "fatal"]);
  assert.deepEqual(levelOnly(levelQuery("error")), ["error", "fatal"]);
  assert.deepEqual(levelOnly('{level="warn"}'), ["warn"]);
  assert.equal(levelOnly('{level=~"error|loud"}'), null);
  assert.equal(levelOnly('{level="error"} |= "x"'), null);
  assert.equal(levelOnly('{service="api"}'), null);
});

test("metric queries for the histogram and the facets", () => {
  assert.equal(histogramQuery("", 60n * S), "sum by (level) (count_over_time({}[60s]))");
  assert.equal(histogramQuery('{a="b"} |= "x"', S / 10n), 'sum by (level) (count_over_time({a="b"} |= "x"[1s]))');
  assert.equal(facetQuery("", "service", 3600n * S), "topk(5, sum by (service) (count_over_time({}[3600s])))");
});

test("completion: label names after { or a comma, values after an operator", () => {
  assert.deepEqual(completionAt("{ser", 4), { kind: "name", prefix: "ser", from: 1, to: 4 });
  assert.deepEqual(completionAt('{a="b", ', 8), { kind: "name", prefix: "", from: 8, to: 8 });
  assert.deepEqual(completionAt("{service=", 9), { kind: "value", label: "service", prefix: "", from: 9, to: 9 });
  assert.deepEqual(completionAt('{service="ap', 12), { kind: "value", label: "service", prefix: "ap", from: 9, to: 12 });
  assert.equal(completionAt('{service="api"} |= "x', 21), null);
  assert.equal(completionAt("plain", 5), null);
});

test("histogram buckets: steps, points into bars, positions into times", () => {
  assert.equal(stepFor(0n, 80n * S), S);
  assert.equal(stepFor(0n, 800n * S), 10n * S);
  assert.equal(stepFor(0n, 10n), S);
  const b = emptyBuckets(100n * S, 110n * S, 2n * S);
  assert.equal(b.length, 5);
  // The value at T counts (T - step, T]: the bar that ends at T.
  addPoint(b, { timestamp: 102n * S, samples: [{ labels: { level: "error" }, value: 3 }, { labels: { level: "info" }, value: 7 }] });
  addPoint(b, { timestamp: 110n * S, samples: [{ labels: { level: "warning" }, value: 1 }] });
  addPoint(b, { timestamp: 200n * S, samples: [{ labels: { level: "info" }, value: 1 }] });
  assert.equal(b[0].counts.error, 3);
  assert.equal(b[0].counts.info, 7);
  assert.equal(b[4].counts.warn, 1);
  assert.equal(bucketOf(b, 101n * S), 0);
  assert.equal(bucketOf(b, 109n * S), 4);
  assert.equal(bucketOf(b, 110n * S), -1);
  assert.equal(bucketOf(b, 99n * S), -1);
  assert.equal(timeAt(50, 100, 0n, 10n * S), 5n * S);
  assert.equal(timeAt(-5, 100, 0n, 10n * S), 0n);
});

test("facets: level first, then the labels seen most; values by count", () => {
  assert.deepEqual(facetNames(new Map([["host", 3], ["service", 9], ["level", 1], ["region", 3]])), ["level", "service", "host", "region"]);
  assert.deepEqual(
    topValues("service", [
      { labels: { service: "api" }, value: 3 },
      { labels: { service: "web" }, value: 9 },
      { labels: {}, value: 4 },
    ]),
    [
      { value: "web", count: 9 },
      { value: "api", count: 3 },
    ],
  );
});

const entry: Entry = {
  cursor: 9_007_199_254_740_993n,
  timestamp: 1_700_000_000_123_456_789n,
  level: "error",
  message: '{"a":1,"b":[true]}',
  labels: [
    ["host", "n1"],
    ["service", "api"],
  ],
};

test("details: JSON pretty-printed, exact time, the entry's JSON form", () => {
  assert.equal(prettyJson(entry.message), '{\n  "a": 1,\n  "b": [\n    true\n  ]\n}');
  assert.equal(prettyJson("not json {"), null);
  assert.equal(rfc3339(entry.timestamp), "2023-11-14T22:13:20.123456789Z");
  assert.equal(
    entryJson(entry),
    '{"cursor":9007199254740993,"timestamp":1700000000123456789,"level":"error","message":"{\\"a\\":1,\\"b\\":[true]}","labels":{"host":"n1","service":"api"}}',
  );
});

test("context: the row's service, its labels without one, or all", () => {
  assert.equal(contextSelector(entry, "service"), '{service="api"}');
  assert.equal(contextSelector({ ...entry, labels: [["host", "n1"]] }, "service"), '{host="n1"}');
  assert.equal(contextSelector(entry, "all"), "{}");
});

test("permalinks: query, range, follow and the selected row round-trip", () => {
  const cfg = parsePageParams('?q=%7Bservice%3D%22api%22%7D&range=15m&follow=0&sel=42');
  assert.equal(cfg.query.logql, '{service="api"}');
  assert.equal(cfg.query.range, "15m");
  assert.equal(cfg.query.follow, false);
  assert.equal(cfg.selected, 42n);
  assert.equal(parsePageParams(pageSearch(cfg)).query.logql, cfg.query.logql);
  assert.equal(pageSearch(cfg), "?q=%7Bservice%3D%22api%22%7D&range=15m&follow=0&sel=42");
  assert.equal(parsePageParams("?range=bogus").query.range, "");
  const r = resolveRange(cfg.query, 1000n * S);
  assert.equal(r.since, 100n * S);
  assert.equal(r.until, null);
  // The HTTP fallbacks get the query in the server's form.
  assert.equal(queryToHttpParams({ ...defaultQuery(), logql: "disk" }).get("query"), '{} |= "disk"');
});
