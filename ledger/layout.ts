/**
 * Every LevelDB key Cairn writes, in one place. Keys are a one-byte prefix followed by fixed-width
 * binary fields, so LevelDB's byte order is the order that matters (heights big-endian).
 *
 *   M "genesis"        → genesis hash (32)              which network this datadir belongs to
 *   M "layout"         → version u32 BE                 the layout of this store (STORE_LAYOUT, below); absent
 *                                                       in stores written before it was marked
 *   M "network"        → network name (UTF-8)           for the error when it is the wrong one
 *   M "tip"            → tip hash (32)                  last block connected to the main chain
 *   M "pruned"         → height (u32 BE)                main-chain bodies up to here are deleted
 *   B hash(32)         → block bytes                    every block stored, main chain or not
 *   I height(u32 BE) hash(32) → block index record      header, total work and status (consensus);
 *                                                       by height first, so a height range is one scan
 *   H height(u32 BE)   → hash (32)                      main chain only
 *   P chunk(u32 BE)    → hashes (32 each)               scratch: the header chain a sync is fetching,
 *                                                       heights chunk × 2048 on
 *   A address(20)      → balance u64 ‖ nonce u64        current state (main chain tip)
 *   U hash(32)         → undo records                   main chain only; restores state on disconnect
 *   T txid(32)         → block hash (32) ‖ index u32    main chain only
 *   X address(20) ‖ height(u32 BE) ‖ position(u32 BE)
 *                      → roles u8 ‖ id (32)             address index (optional; ledger/address-index.ts),
 *                                                       main chain only. position 0 is the coinbase (id: the
 *                                                       block hash), i + 1 the block's transaction i (id: txid);
 *                                                       roles: 1 sent, 2 received, 4 coinbase. Newest first is
 *                                                       a reverse read of one address's keys.
 *   M "addrindex"      → next u32 ‖ end u32             the address index is on; main-chain heights [next, end)
 *                                                       still wait for the background backfill (next = end: done)
 *   C address(20)      → end u32 ‖ height u32 ‖ position u32 ‖ hash(32) ‖ entries, sent, received, coinbase u64
 *                                                       a busy address's entries counted up to one of them (its
 *                                                       block's hash), for the index whose M "addrindex" has this end
 *   S depth(u8) ‖ bits → state tree node               the tree at the main-chain tip, by position:
 *                                                      the key's first `depth` bits in whole bytes
 *   M "statebase"      → height (u32 BE)                the state began as a snapshot of this main-chain
 *                                                      block (snapshot sync): no fork below it, no undo
 *   q height(u32 BE)   → block hash ‖ state root ‖ accounts u64 ‖ 01
 *                                                      a complete snapshot served to joining nodes
 *                                                      (ledger/snapshot-store.ts); written last
 *   Q height(u32 BE) 'E' key(32) → address(20) ‖ account   that snapshot's accounts by state key
 *   Q height(u32 BE) 'N' depth ‖ bits → node           its tree nodes down to depth 16, and below it the
 *                                                      children of crowded positions (chunk proofs)
 *   Q height(u32 BE) 'C' depth ‖ bits → (empty)        a crowded position: more than 4,096 accounts under it
 *   M "join"           → height u32 ‖ hash(32) ‖ phase u8   a snapshot sync in progress (ledger/snapshot-join.ts):
 *                                                      phase 0 fetching, 1 installing
 *   M "top"            → 01 ‖ state root(32) ‖ n u32 ‖ slots (u32 BE) × n ‖ bodies (64) × n
 *                                                      the tree's inner nodes at depth 17, written at a clean
 *                                                      close and deleted on open (ledger/top-rebuild.ts)
 *   W 'H' height(u32 BE) → size u16 ‖ (hash(32) ‖ index record) × n
 *                                                      the join's checked headers, a batch from this height
 *   W 'E' key(32)      → address(20) ‖ account          the join's verified chunk accounts
 *   W 'C' depth ‖ bits → (empty)                       the chunks verified, each with its accounts
 *
 * Connecting a block writes its B (if new), H, U, T, every touched A, the tree nodes it changed (S)
 * and the tip in ONE batch; disconnecting deletes H, U, T, restores A and S and moves the tip back,
 * again in one batch. An index kept beside the chain (X) adds its records to those same batches
 * (ChainDB's BlockIndexer). Pruning deletes old main-chain B, U and T (never H, I, A, S or X) with
 * the new M "pruned", one batch a chunk.
 */
const enc = new TextEncoder();

/**
 * The version of this layout, kept in `M "layout"`. A change to what a key or value means that a
 * node of the version before would misread is a new version, and this node refuses a store of a
 * version above its own (STORE_TOO_NEW) rather than read it as its own.
 */
export const STORE_LAYOUT = 1;

/** A one-byte prefix and one field: a block's import makes thousands of these. */
function key(prefix: string, field: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + field.length);
  out[0] = prefix.charCodeAt(0);
  out.set(field, 1);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function u32(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

function idBytes(id: string): Uint8Array {
  const out = new Uint8Array(id.length);
  for (let i = 0; i < id.length; i++) out[i] = id.charCodeAt(i);
  return out;
}

/** The keys `base ‖ k` for every 32-byte k whose first `depth` bits are `prefix`'s (the rest of `prefix` zero). */
function keyRange(base: Uint8Array, prefix: Uint8Array, depth: number): { gte: Uint8Array; lt: Uint8Array } {
  const gte = concat(base, prefix);
  const end = prefix.slice();
  // The first key past the range: the prefix plus one at its last bit, carried into the bytes before.
  let byte = (depth - 1) >> 3;
  let add = depth === 0 ? 0 : 0x80 >>> ((depth - 1) & 7);
  while (depth > 0 && byte >= 0) {
    const sum = end[byte]! + add;
    end[byte] = sum & 0xff;
    if (sum <= 0xff) return { gte, lt: concat(base, end) };
    add = 1;
    byte--;
  }
  const lt = base.slice();
  lt[lt.length - 1]! += 1;
  return { gte, lt };
}

export const layout = {
  genesis: key('M', enc.encode('genesis')),
  network: key('M', enc.encode('network')),
  layoutVersion: key('M', enc.encode('layout')),
  tip: key('M', enc.encode('tip')),
  pruned: key('M', enc.encode('pruned')),
  stateBase: key('M', enc.encode('statebase')),
  historyVerdict: key('M', enc.encode('historyverdict')),
  join: key('M', enc.encode('join')),
  topCheckpoint: key('M', enc.encode('top')),
  snapshotInfo: (height: number) => key('q', u32(height)),
  /** Every key of the snapshot at `height`. */
  snapshotData: (height: number) => ({ gte: key('Q', u32(height)), lt: height >= 0xffffffff ? Uint8Array.of(0x52) : key('Q', u32(height + 1)) }),
  snapshotEntry: (height: number, stateKey: Uint8Array) => concat(key('Q', u32(height)), concat(Uint8Array.of(0x45), stateKey)),
  snapshotEntries: (height: number) => ({ gte: concat(key('Q', u32(height)), Uint8Array.of(0x45)), lt: concat(key('Q', u32(height)), Uint8Array.of(0x46)) }),
  /** The snapshot's entries whose key starts with the first `depth` bits of `prefix`. */
  snapshotRange: (height: number, prefix: Uint8Array, depth: number) => keyRange(concat(key('Q', u32(height)), Uint8Array.of(0x45)), prefix, depth),
  snapshotNode: (height: number, id: string) => concat(key('Q', u32(height)), concat(Uint8Array.of(0x4e), idBytes(id))),
  snapshotCrowded: (height: number, id: string) => concat(key('Q', u32(height)), concat(Uint8Array.of(0x43), idBytes(id))),
  joinHeader: (height: number) => concat(Uint8Array.of(0x57, 0x48), u32(height)),
  joinHeaders: (from: number, to: number) => ({ gte: concat(Uint8Array.of(0x57, 0x48), u32(from)), lt: to >= 2 ** 32 ? Uint8Array.of(0x57, 0x49) : concat(Uint8Array.of(0x57, 0x48), u32(to)) }),
  joinEntry: (stateKey: Uint8Array) => concat(Uint8Array.of(0x57, 0x45), stateKey),
  joinEntries: { gte: Uint8Array.of(0x57, 0x45), lt: Uint8Array.of(0x57, 0x46) },
  joinChunk: (id: string) => concat(Uint8Array.of(0x57, 0x43), idBytes(id)),
  joinChunks: { gte: Uint8Array.of(0x57, 0x43), lt: Uint8Array.of(0x57, 0x44) },
  block: (hash: Uint8Array) => key('B', hash),
  index: (height: number, hash: Uint8Array) => key('I', concat(u32(height), hash)),
  height: (height: number) => key('H', u32(height)),
  pending: (chunk: number) => key('P', u32(chunk)),
  account: (address: Uint8Array) => key('A', address),
  undo: (hash: Uint8Array) => key('U', hash),
  tx: (txid: Uint8Array) => key('T', txid),
  addressIndexState: key('M', enc.encode('addrindex')),
  addressCount: (address: Uint8Array) => key('C', address),
  /** One address's entry; with `height` and `position` omitted, the start of its keys. */
  addressEntry: (address: Uint8Array, height: number, position: number) => {
    const out = new Uint8Array(1 + 20 + 8);
    out[0] = 'X'.charCodeAt(0);
    out.set(address, 1);
    out.set(u32(height), 21);
    out.set(u32(position), 25);
    return out;
  },
  /** A state tree position, from its id (ledger/smt.ts positionId: char codes of the bytes). */
  stateNode: (id: string) => {
    const out = new Uint8Array(1 + id.length);
    out[0] = 0x53; // 'S'
    for (let i = 0; i < id.length; i++) out[i + 1] = id.charCodeAt(i);
    return out;
  },
  /** Bounds that select every key with a prefix, for iterators. */
  range: (prefix: 'A' | 'B' | 'I' | 'H' | 'U' | 'T' | 'P' | 'X' | 'C' | 'S' | 'Q' | 'q' | 'W') => ({
    gte: Uint8Array.of(prefix.charCodeAt(0)),
    lt: Uint8Array.of(prefix.charCodeAt(0) + 1),
  }),
  /** Keys of a height-keyed prefix (H, I) for heights from `from` up to, not including, `to`. */
  heights: (prefix: 'H' | 'I', from: number, to = 2 ** 32) => ({
    gte: key(prefix, u32(from)),
    lt: to >= 2 ** 32 ? Uint8Array.of(prefix.charCodeAt(0) + 1) : key(prefix, u32(to)),
  }),
};

/** The height in a height-keyed key (H, I). */
export function heightOfKey(key: Uint8Array): number {
  return ((key[1]! << 24) | (key[2]! << 16) | (key[3]! << 8) | key[4]!) >>> 0;
}
