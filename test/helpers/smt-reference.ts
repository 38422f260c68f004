/**
 * The state tree as docs/PROTOCOL.md defines it, computed from scratch with node:crypto and
 * nothing of ours: the naive reference the tree code is held to. Slow on purpose (every node of
 * the whole tree, every time).
 */
import { createHash } from 'node:crypto';

export interface RefAccount {
  readonly balance: bigint;
  readonly nonce: bigint;
}

const H = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const u64 = (v: bigint) => Buffer.from(v.toString(16).padStart(16, '0'), 'hex');
const bit = (key: Uint8Array, i: number) => (key[i >> 3]! >> (7 - (i % 8))) & 1;

interface Entry {
  readonly key: Buffer;
  readonly value: Buffer;
}

/** H(address) of addresses seen before: the tree, not the key hashing, is what is naive here. */
const keys = new Map<string, Buffer>();
function keyOf(address: string): Buffer {
  let key = keys.get(address);
  if (!key) keys.set(address, (key = H(Buffer.from(address, 'hex'))));
  return key;
}

function entriesOf(accounts: ReadonlyMap<string, RefAccount>): Entry[] {
  return [...accounts].map(([address, a]) => ({ key: keyOf(address), value: Buffer.concat([u64(a.balance), u64(a.nonce)]) }));
}

/** R(S, d): empty → 32 zero bytes; one account → H(its leaf); more → H(R(S0) ‖ R(S1)), stored as 01 ‖ R(S0) ‖ R(S1). */
function root(entries: readonly Entry[], depth: number, nodes?: Map<string, string>, prefix = ''): Buffer {
  if (entries.length === 0) return Buffer.alloc(32);
  let node: Buffer;
  if (entries.length === 1) {
    node = Buffer.concat([Buffer.of(0), entries[0]!.key, entries[0]!.value]);
  } else {
    const left = entries.filter((e) => bit(e.key, depth) === 0);
    const right = entries.filter((e) => bit(e.key, depth) === 1);
    node = Buffer.concat([Buffer.of(1), root(left, depth + 1, nodes, prefix + '0'), root(right, depth + 1, nodes, prefix + '1')]);
  }
  nodes?.set(positionHex(depth, prefix), node.toString('hex'));
  return entries.length === 1 ? H(node) : H(node.subarray(1));
}

/** A position as the store keys it (after `S`): the depth byte, then the prefix bits in whole bytes, zero-padded. */
function positionHex(depth: number, bits: string): string {
  const bytes = Buffer.alloc(Math.ceil(depth / 8));
  for (let i = 0; i < depth; i++) if (bits[i] === '1') bytes[i >> 3]! |= 0x80 >> i % 8;
  return Buffer.concat([Buffer.of(depth), bytes]).toString('hex');
}

/** The state root of `accounts` (address hex → account). */
export function referenceRoot(accounts: ReadonlyMap<string, RefAccount>): Buffer {
  return root(entriesOf(accounts), 0);
}

/** Every node of the tree by position (hex of the store key after `S`), as hex: what a store must hold, exactly. */
export function referenceNodes(accounts: ReadonlyMap<string, RefAccount>): Map<string, string> {
  const nodes = new Map<string, string>();
  root(entriesOf(accounts), 0, nodes);
  return nodes;
}
