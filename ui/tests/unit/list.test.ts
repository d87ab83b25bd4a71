import assert from "node:assert/strict";
import { test } from "node:test";
import { computeWindow, isAtBottom, scrollTopAfterDrop } from "../../src/list.ts";
import { RingBuffer } from "../../src/buffer.ts";

const base = { rowHeight: 20, overscan: 5, maxScrollPx: 8_000_000, viewportHeight: 400 };

test("empty list renders nothing", () => {
  const w = computeWindow({ ...base, count: 0, scrollTop: 0 });
  assert.deepEqual([w.first, w.last, w.totalHeight], [0, 0, 0]);
});

test("top of the list", () => {
  const w = computeWindow({ ...base, count: 1000, scrollTop: 0 });
  assert.equal(w.first, 0);
  assert.equal(w.last, 25); // 20 visible + 5 overscan
  assert.equal(w.offsetY, 0);
  assert.equal(w.totalHeight, 20_000);
  assert.equal(w.scaled, false);
});

test("middle of the list, partial rows", () => {
  const w = computeWindow({ ...base, count: 1000, scrollTop: 1010 });
  // visible rows 50..71 (1010/20 = 50.5 → 50; (1010+400)/20 = 70.5 → 71)
  assert.equal(w.first, 45);
  assert.equal(w.last, 76);
  assert.equal(w.offsetY, 45 * 20);
});

test("bottom of the list clamps", () => {
  const w = computeWindow({ ...base, count: 1000, scrollTop: 1e9 });
  assert.equal(w.last, 1000);
  assert.equal(w.first, 1000 - 20 - 5);
});

test("fewer rows than the viewport", () => {
  const w = computeWindow({ ...base, count: 3, scrollTop: 0 });
  assert.deepEqual([w.first, w.last, w.totalHeight], [0, 3, 60]);
});

test("only the rows in view exist, even for a million lines", () => {
  for (const top of [0, 123_456, 9_999_000, 19_999_600]) {
    const w = computeWindow({ ...base, count: 1_000_000, scrollTop: top, maxScrollPx: 30_000_000 });
    assert.ok(w.last - w.first <= 20 + 2 * 5 + 1, `window ${w.first}..${w.last}`);
    assert.ok(w.first * 20 <= top + 1 && (w.last * 20 >= Math.min(top + 400, 20_000_000)));
  }
});

test("scaled mode beyond the browser's height limit", () => {
  const count = 5_000_000; // 100M px natural
  const top = computeWindow({ ...base, count, scrollTop: 0 });
  assert.equal(top.scaled, true);
  assert.equal(top.totalHeight, base.maxScrollPx);
  assert.equal(top.first, 0);
  const maxTop = base.maxScrollPx - base.viewportHeight;
  const bottom = computeWindow({ ...base, count, scrollTop: maxTop });
  assert.equal(bottom.last, count);
  const mid = computeWindow({ ...base, count, scrollTop: maxTop / 2 });
  const firstVisible = mid.first + 5;
  assert.ok(Math.abs(firstVisible - (count - 20) / 2) <= 1, String(firstVisible));
  // The first visible row sits at the top of the viewport.
  assert.equal(mid.offsetY + 5 * 20, maxTop / 2);
  assert.ok(mid.last - mid.first <= 31);
});

test("at-bottom detection and drop compensation", () => {
  assert.equal(isAtBottom(600, 400, 1000, 20), true);
  assert.equal(isAtBottom(592, 400, 1000, 20), true);
  assert.equal(isAtBottom(500, 400, 1000, 20), false);
  assert.equal(scrollTopAfterDrop(1000, 10, 20), 800);
  assert.equal(scrollTopAfterDrop(100, 10, 20), 0);
});

test("ring buffer keeps the newest N and counts the dropped", () => {
  const b = new RingBuffer<number>(5);
  assert.equal(b.push([1, 2, 3]), 0);
  assert.deepEqual([b.size, b.get(0), b.get(2)], [3, 1, 3]);
  assert.equal(b.push([4, 5, 6, 7]), 2);
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => b.get(i)), [3, 4, 5, 6, 7]);
  assert.equal(b.dropped, 2);
  assert.equal(b.get(5), undefined);
  assert.equal(b.push([8, 9, 10, 11, 12, 13, 14]), 7);
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => b.get(i)), [10, 11, 12, 13, 14]);
  assert.equal(b.dropped, 9);
  assert.equal(b.last(), 14);
  b.clear();
  assert.deepEqual([b.size, b.dropped], [0, 0]);
  b.push([1]);
  assert.equal(b.get(0), 1);
});
