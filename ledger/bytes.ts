import { DecodeError } from './errors.ts';

/** Hex helpers: lower-case, no prefix, even length. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Each character code's value as a hex digit; -1 for any other character. */
const HEX_DIGIT = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX_DIGIT[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX_DIGIT[0x61 + i] = HEX_DIGIT[0x41 + i] = 10 + i;

/**
 * Decoded in one pass rather than a pattern test and then Buffer's decoder (which would read
 * U+0130 as "0": it keeps a character's low byte), at about half the cost on an RPC batch's
 * transactions.
 */
export function fromHex(hex: string, expectedLength?: number): Uint8Array {
  const n = hex.length;
  if (n % 2 !== 0) throw new DecodeError('DECODE_NON_CANONICAL', 'not a hex string');
  const bytes = new Uint8Array(n >>> 1);
  let bad = 0;
  for (let i = 0, j = 0; i < n; i += 2, j++) {
    const a = hex.charCodeAt(i);
    const b = hex.charCodeAt(i + 1);
    const hi = a < 256 ? HEX_DIGIT[a]! : -1;
    const lo = b < 256 ? HEX_DIGIT[b]! : -1;
    bad |= hi | lo;
    bytes[j] = (hi << 4) | lo;
  }
  if (bad < 0) throw new DecodeError('DECODE_NON_CANONICAL', 'not a hex string');
  if (expectedLength !== undefined && bytes.length !== expectedLength) {
    throw new DecodeError('DECODE_NON_CANONICAL', `expected ${expectedLength} bytes of hex, got ${bytes.length}`);
  }
  return bytes;
}

/** A plain Uint8Array copy of bytes that may be a Buffer (LevelDB hands those out). */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return Buffer.isBuffer(bytes) ? new Uint8Array(bytes) : bytes;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** A 256-bit big-endian byte string as an unsigned integer. */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  if (bytes.length === 32) {
    // Every header hash judged against its target: four words rather than a hex round trip.
    const view = new DataView(bytes.buffer, bytes.byteOffset, 32);
    return (view.getBigUint64(0) << 192n) | (view.getBigUint64(8) << 128n) | (view.getBigUint64(16) << 64n) | view.getBigUint64(24);
  }
  return bytes.length === 0 ? 0n : BigInt('0x' + toHex(bytes));
}

const U256_LIMIT = 1n << 256n;
const WORD = (1n << 64n) - 1n;

export function bigIntToBytes(value: bigint, length: number): Uint8Array {
  if (value < 0n) throw new RangeError('negative');
  if (length === 32 && value < U256_LIMIT) {
    // Targets and chain work, a few per block: four words rather than a hex round trip.
    const out = new Uint8Array(32);
    const view = new DataView(out.buffer);
    view.setBigUint64(0, value >> 192n);
    view.setBigUint64(8, (value >> 128n) & WORD);
    view.setBigUint64(16, (value >> 64n) & WORD);
    view.setBigUint64(24, value & WORD);
    return out;
  }
  const hex = value.toString(16).padStart(length * 2, '0');
  if (hex.length > length * 2) throw new RangeError(`${value} does not fit in ${length} bytes`);
  return fromHex(hex);
}

const U64_MAX = (1n << 64n) - 1n;
const U64_VIEW = new DataView(new ArrayBuffer(8));
const U64_BYTES = new Uint8Array(U64_VIEW.buffer);

/**
 * Appends fixed-width big-endian fields. Every encoder in Cairn goes through this one writer,
 * so that there is exactly one way to lay out an integer.
 */
export class Writer {
  private buf: Uint8Array;
  private pos = 0;

  // Bytes are written by hand rather than through a DataView: making a DataView per encoder was
  // 4% of a syncing node's main thread (an account, a location, a key: tens of them a block).
  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  private put32(v: number): void {
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 24;
    b[p + 1] = (v >>> 16) & 0xff;
    b[p + 2] = (v >>> 8) & 0xff;
    b[p + 3] = v & 0xff;
    this.pos = p + 4;
  }

  u8(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`u8 out of range: ${v}`);
    this.reserve(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`u32 out of range: ${v}`);
    this.reserve(4);
    this.put32(v);
    return this;
  }

  u64(v: bigint): this {
    if (v < 0n || v > U64_MAX) throw new RangeError(`u64 out of range: ${v}`);
    this.reserve(8);
    // Through one shared view: shifting and masking made two bigints per field, and a block's
    // import writes thousands of fields.
    U64_VIEW.setBigUint64(0, v);
    this.buf.set(U64_BYTES, this.pos);
    this.pos += 8;
    return this;
  }

  /** Bitcoin's CompactSize: 1, 3, 5 or 9 bytes, always the shortest form. */
  varint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`);
    if (v < 0xfd) return this.u8(v);
    if (v <= 0xffff) {
      this.u8(0xfd).reserve(2);
      this.buf[this.pos++] = v >>> 8;
      this.buf[this.pos++] = v & 0xff;
      return this;
    }
    if (v <= 0xffffffff) return this.u8(0xfe).u32(v);
    return this.u8(0xff).u64(BigInt(v));
  }

  bytes(b: Uint8Array, expectedLength?: number): this {
    if (expectedLength !== undefined && b.length !== expectedLength) {
      throw new RangeError(`expected ${expectedLength} bytes, got ${b.length}`);
    }
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /**
   * The bytes written. A writer sized exactly hands over its buffer without a copy: safe even if
   * written to again, since a full buffer is replaced, not changed, by the next write.
   */
  finish(): Uint8Array {
    return this.pos === this.buf.length ? this.buf : this.buf.slice(0, this.pos);
  }
}

/** Reads what Writer wrote, refusing anything short, long or non-minimal. */
export class Reader {
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  private readonly views: boolean;
  private pos = 0;

  /**
   * By default every value handed out is a copy that owns its bytes, so a decoded value never
   * pins a large input (a network read, a LevelDB value). `views: true` hands out subarrays
   * instead, for a decoder that has copied its input once and wants one allocation, not one
   * per field.
   */
  constructor(buf: Uint8Array, options: { views?: boolean } = {}) {
    // A Buffer's slice() is a view, not a copy: read through a plain Uint8Array so every value
    // compares equal to values built elsewhere.
    this.buf = Buffer.isBuffer(buf) ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.views = options.views === true;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  get offset(): number {
    return this.pos;
  }

  private need(n: number, what: string): void {
    if (this.remaining < n) {
      throw new DecodeError('DECODE_TRUNCATED', `truncated ${what}: need ${n} bytes, have ${this.remaining}`);
    }
  }

  u8(what = 'u8'): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }

  u32(what = 'u32'): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  u64(what = 'u64'): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  varint(what = 'varint', max = Number.MAX_SAFE_INTEGER): number {
    const tag = this.u8(what);
    let v: number;
    let min: number;
    if (tag < 0xfd) return check(tag);
    if (tag === 0xfd) {
      this.need(2, what);
      v = this.view.getUint16(this.pos);
      this.pos += 2;
      min = 0xfd;
    } else if (tag === 0xfe) {
      v = this.u32(what);
      min = 0x10000;
    } else {
      const big = this.u64(what);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new DecodeError('DECODE_OVER_LIMIT', `${what} too large`);
      v = Number(big);
      min = 0x100000000;
    }
    if (v < min) throw new DecodeError('DECODE_NON_CANONICAL', `${what} is not minimally encoded`);
    return check(v);

    function check(n: number): number {
      if (n > max) throw new DecodeError('DECODE_OVER_LIMIT', `${what} ${n} exceeds limit ${max}`);
      return n;
    }
  }

  bytes(n: number, what = 'bytes'): Uint8Array {
    this.need(n, what);
    const out = this.views ? this.buf.subarray(this.pos, this.pos + n) : this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Input bytes already read, from `start` to `end` (a copy, or a view with `views`). */
  bytesBetween(start: number, end: number): Uint8Array {
    if (start < 0 || end > this.pos || start > end) throw new RangeError('bytesBetween outside what was read');
    return this.views ? this.buf.subarray(start, end) : this.buf.slice(start, end);
  }

  /** Every decoder ends here: one value, one encoding, nothing after it. */
  end(what: string): void {
    if (this.remaining !== 0) {
      throw new DecodeError('DECODE_TRAILING_BYTES', `${this.remaining} trailing bytes after ${what}`);
    }
  }
}
