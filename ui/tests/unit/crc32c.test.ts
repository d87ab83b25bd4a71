import assert from "node:assert/strict";
import { test } from "node:test";
import { Crc32c, crc32c, crcHex } from "../../src/crc32c.ts";

test("known vectors", () => {
  assert.equal(crcHex(crc32c("123456789")), "e3069283");
  assert.equal(crcHex(crc32c("")), "00000000");
  assert.equal(crcHex(crc32c(new Uint8Array(32))), "8a9136aa"); // RFC 3720 B.4: 32 bytes of zeros
  assert.equal(crcHex(crc32c(new Uint8Array(32).fill(0xff))), "62a8ab43"); // 32 bytes of 0xff
  const inc = new Uint8Array(32).map((_, i) => i);
  assert.equal(crcHex(crc32c(inc)), "46dd794e"); // incrementing 0..31
  assert.equal(crcHex(crc32c("The quick brown fox jumps over the lazy dog")), "22620404");
});

test("streaming updates equal one-shot", () => {
  const c = new Crc32c();
  c.utf8("1234").utf8("56789");
  assert.equal(c.hex(), "e3069283");
});

test("utf8 without allocation matches TextEncoder", () => {
  const samples = ["héllo wörld", "日本語のログ", "emoji 🚨🔥 done", "\u0000\u007f\u0080\u07ff\u0800\uffff", "lone \ud800 surrogate", "end \udc00"];
  for (const s of samples) {
    const a = new Crc32c().utf8(s).hex();
    const b = new Crc32c().bytes(new TextEncoder().encode(s)).hex();
    assert.equal(a, b, JSON.stringify(s));
  }
});

test("int64 little-endian two's complement", () => {
  const le = (v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, v, true);
    return b;
  };
  for (const v of [0n, 1n, -1n, 1_700_000_000_123_456_789n, -(2n ** 63n), 2n ** 63n - 1n, 0x0102030405060708n]) {
    assert.equal(new Crc32c().int64le(v).hex(), new Crc32c().bytes(le(v)).hex(), v.toString());
  }
});

test("entry checksum: timestamp bytes then message bytes, over the stream in order", () => {
  const entries: [bigint, string][] = [
    [1_700_000_000_000_000_000n, "first"],
    [1_700_000_000_000_000_001n, "ERROR disk full"],
    [-5n, "ünïcödé"],
  ];
  const c = new Crc32c();
  const bytes: number[] = [];
  for (const [ts, m] of entries) {
    c.entry(ts, m);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, ts, true);
    bytes.push(...b, ...new TextEncoder().encode(m));
  }
  assert.equal(c.hex(), crcHex(crc32c(new Uint8Array(bytes))));
  assert.match(c.hex(), /^[0-9a-f]{8}$/);
});
