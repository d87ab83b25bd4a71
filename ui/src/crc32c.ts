// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.
// logtap's `logtap-crc32c` trailer covers, for every entry sent in order, the
// 8 bytes of its int64 timestamp (little-endian two's complement) then the
// UTF-8 bytes of its message; written as 8 lowercase hex digits.

const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export class Crc32c {
  private c = 0xffffffff;

  reset(): void {
    this.c = 0xffffffff;
  }

  byte(b: number): void {
    this.c = TABLE[(this.c ^ b) & 0xff] ^ (this.c >>> 8);
  }

  bytes(buf: Uint8Array): this {
    let c = this.c;
    for (let i = 0; i < buf.length; i++) c = TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
    this.c = c;
    return this;
  }

  /** The UTF-8 encoding of `s` (lone surrogates as U+FFFD, like TextEncoder), without allocating. */
  utf8(s: string): this {
    let c = this.c;
    const n = s.length;
    for (let i = 0; i < n; i++) {
      let cp = s.charCodeAt(i);
      if (cp < 0x80) {
        c = TABLE[(c ^ cp) & 0xff] ^ (c >>> 8);
        continue;
      }
      if (cp >= 0xd800 && cp <= 0xdfff) {
        const next = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (cp <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (next - 0xdc00);
          i++;
        } else {
          cp = 0xfffd;
        }
      }
      if (cp < 0x800) {
        c = TABLE[(c ^ (0xc0 | (cp >> 6))) & 0xff] ^ (c >>> 8);
        c = TABLE[(c ^ (0x80 | (cp & 0x3f))) & 0xff] ^ (c >>> 8);
      } else if (cp < 0x10000) {
        c = TABLE[(c ^ (0xe0 | (cp >> 12))) & 0xff] ^ (c >>> 8);
        c = TABLE[(c ^ (0x80 | ((cp >> 6) & 0x3f))) & 0xff] ^ (c >>> 8);
        c = TABLE[(c ^ (0x80 | (cp & 0x3f))) & 0xff] ^ (c >>> 8);
      } else {
        c = TABLE[(c ^ (0xf0 | (cp >> 18))) & 0xff] ^ (c >>> 8);
        c = TABLE[(c ^ (0x80 | ((cp >> 12) & 0x3f))) & 0xff] ^ (c >>> 8);
        c = TABLE[(c ^ (0x80 | ((cp >> 6) & 0x3f))) & 0xff] ^ (c >>> 8);
        c = TABLE[(c ^ (0x80 | (cp & 0x3f))) & 0xff] ^ (c >>> 8);
      }
    }
    this.c = c;
    return this;
  }

  /** 8 bytes, little-endian two's complement of a signed 64-bit integer. */
  int64le(v: bigint): this {
    const u = BigInt.asUintN(64, v);
    const lo = Number(u & 0xffffffffn);
    const hi = Number(u >> 32n);
    let c = this.c;
    for (let k = 0; k < 4; k++) c = TABLE[(c ^ (lo >>> (8 * k))) & 0xff] ^ (c >>> 8);
    for (let k = 0; k < 4; k++) c = TABLE[(c ^ (hi >>> (8 * k))) & 0xff] ^ (c >>> 8);
    this.c = c;
    return this;
  }

  /** One log entry as the `logtap-crc32c` trailer counts it. */
  entry(timestamp: bigint, message: string): this {
    return this.int64le(timestamp).utf8(message);
  }

  value(): number {
    return (this.c ^ 0xffffffff) >>> 0;
  }

  hex(): string {
    return this.value().toString(16).padStart(8, "0");
  }
}

/** CRC-32C of bytes or of a string's UTF-8, as a number. */
export function crc32c(data: Uint8Array | string): number {
  const c = new Crc32c();
  if (typeof data === "string") c.utf8(data);
  else c.bytes(data);
  return c.value();
}

/** 8 lowercase hex digits. */
export function crcHex(v: number): string {
  return (v >>> 0).toString(16).padStart(8, "0");
}
