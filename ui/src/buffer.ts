// A bounded ring buffer: keeps the newest `capacity` items, counts the dropped.

export class RingBuffer<T> {
  private items: (T | undefined)[];
  private head = 0; // index of the oldest item
  private len = 0;
  /** How many items were dropped (oldest first) since the last clear(). */
  dropped = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError("capacity must be >= 1");
    this.items = [];
  }

  get size(): number {
    return this.len;
  }

  /** Appends items; returns how many old ones were dropped to make room. */
  push(batch: readonly T[]): number {
    const cap = this.capacity;
    let start = 0;
    let droppedNow = 0;
    if (batch.length > cap) {
      // Only the newest `cap` of the batch can be kept.
      start = batch.length - cap;
      droppedNow += start + this.len;
      this.items = [];
      this.head = 0;
      this.len = 0;
    }
    for (let i = start; i < batch.length; i++) {
      if (this.len < cap) {
        const at = (this.head + this.len) % cap;
        if (at === this.items.length) this.items.push(batch[i]);
        else this.items[at] = batch[i];
        this.len++;
      } else {
        this.items[this.head] = batch[i];
        this.head = (this.head + 1) % cap;
        droppedNow++;
      }
    }
    this.dropped += droppedNow;
    return droppedNow;
  }

  /** The i-th kept item, 0 = oldest. */
  get(i: number): T | undefined {
    if (i < 0 || i >= this.len) return undefined;
    return this.items[(this.head + i) % this.capacity];
  }

  last(): T | undefined {
    return this.len ? this.get(this.len - 1) : undefined;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.len = 0;
    this.dropped = 0;
  }
}
