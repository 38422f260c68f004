/**
 * Every LevelDB key Cairn writes, in one place. Keys are a one-byte prefix followed by fixed-width
 * binary fields, so LevelDB's byte order is the order that matters (heights big-endian).
 *
 *   M "genesis"        → genesis hash (32)              which network this datadir belongs to
 *   M "network"        → network name (UTF-8)           for the error when it is the wrong one
 *   M "tip"            → tip hash (32)                  last block connected to the main chain
 *   B hash(32)         → block bytes                    every block stored, main chain or not
 *   I hash(32)         → block index record             header, total work and status (consensus)
 *   H height(u32 BE)   → hash (32)                      main chain only
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
 *   S depth(u8) ‖ bits → state tree node               the tree at the main-chain tip, by position:
 *                                                      the key's first `depth` bits in whole bytes
 *
 * Connecting a block writes its B (if new), H, U, T, every touched A, the tree nodes it changed (S)
 * and the tip in ONE batch; disconnecting deletes H, U, T, restores A and S and moves the tip back,
 * again in one batch. An index kept beside the chain (X) adds its records to those same batches
 * (ChainDB's BlockIndexer).
 */
const enc = new TextEncoder();

/** A one-byte prefix and one field: a block's import makes thousands of these. */
function key(prefix: string, field: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + field.length);
  out[0] = prefix.charCodeAt(0);
  out.set(field, 1);
  return out;
}

function u32(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

export const layout = {
  genesis: key('M', enc.encode('genesis')),
  network: key('M', enc.encode('network')),
  tip: key('M', enc.encode('tip')),
  block: (hash: Uint8Array) => key('B', hash),
  index: (hash: Uint8Array) => key('I', hash),
  height: (height: number) => key('H', u32(height)),
  account: (address: Uint8Array) => key('A', address),
  undo: (hash: Uint8Array) => key('U', hash),
  tx: (txid: Uint8Array) => key('T', txid),
  addressIndexState: key('M', enc.encode('addrindex')),
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
  range: (prefix: 'A' | 'B' | 'I' | 'H' | 'U' | 'T' | 'X' | 'S') => ({
    gte: Uint8Array.of(prefix.charCodeAt(0)),
    lt: Uint8Array.of(prefix.charCodeAt(0) + 1),
  }),
};
