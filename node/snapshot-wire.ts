import { Reader, Writer } from '../ledger/bytes.ts';
import { DecodeError } from '../ledger/errors.ts';
import { HASH_BYTES } from '../ledger/block.ts';
import { decodeAccount, encodeAccount } from '../ledger/state.ts';
import { CHUNK_ENTRY_BYTES, MAX_CHUNK_ACCOUNTS, MAX_CHUNK_DEPTH, encodeChunkPosition, encodeChunkProof, readChunkPosition, readChunkProof, type ChunkEntry, type ChunkProof } from '../ledger/smt-range.ts';
import { WIRE_VERSION } from './wire.ts';

/**
 * Snapshot sync's one message (docs/PROTOCOL.md, "Snapshot sync"): getSnapshotChunk asks for the
 * accounts under one position of the state tree at a snapshot block, and is answered with them and
 * their range proof (ledger/smt-range.ts), or `none` (no snapshot of that block here), or `split`
 * (more accounts there than one answer carries: ask for the two halves).
 */
export { MAX_CHUNK_ACCOUNTS };
/** 01 ‖ height u32 ‖ block hash (32) ‖ depth u8 ‖ prefix (up to 32 bytes). */
export const GET_SNAPSHOT_CHUNK_MAX_BYTES = 1 + 4 + 32 + 1 + 32;
/** 01 ‖ 02 ‖ count u16 ‖ accounts ‖ a proof of up to 255 siblings (j, bitmap, siblings, end, a leaf's key and account). */
export const SNAPSHOT_CHUNK_MAX_BYTES = 4 + MAX_CHUNK_ACCOUNTS * CHUNK_ENTRY_BYTES + 1 + 32 + MAX_CHUNK_DEPTH * 32 + 1 + 32 + 16;

export interface GetSnapshotChunk {
  readonly height: number;
  readonly hash: Uint8Array;
  /** The position (ledger/smt.ts positionId). */
  readonly position: string;
}

export type SnapshotChunkAnswer =
  | { readonly kind: 'chunk'; readonly entries: readonly ChunkEntry[]; readonly proof: ChunkProof }
  | { readonly kind: 'none' }
  | { readonly kind: 'split' };

const ANSWER = { none: 0, split: 1, chunk: 2 } as const;

export function encodeGetSnapshotChunk(m: GetSnapshotChunk): Uint8Array {
  return new Writer(GET_SNAPSHOT_CHUNK_MAX_BYTES).u8(WIRE_VERSION).u32(m.height).bytes(m.hash, HASH_BYTES).bytes(encodeChunkPosition(m.position)).finish();
}

export function decodeGetSnapshotChunk(bytes: Uint8Array): GetSnapshotChunk {
  const r = new Reader(bytes);
  const v = r.u8('getSnapshotChunk version');
  if (v !== WIRE_VERSION) throw new DecodeError('DECODE_BAD_VERSION', `getSnapshotChunk version ${v}`);
  const m = { height: r.u32('height'), hash: r.bytes(HASH_BYTES, 'block hash'), position: readChunkPosition(r) };
  r.end('getSnapshotChunk');
  return m;
}

export function encodeSnapshotChunk(a: SnapshotChunkAnswer): Uint8Array {
  if (a.kind !== 'chunk') return Uint8Array.of(WIRE_VERSION, ANSWER[a.kind]);
  if (a.entries.length > MAX_CHUNK_ACCOUNTS) throw new RangeError(`a chunk of ${a.entries.length} accounts`);
  const proof = encodeChunkProof(a.proof);
  const w = new Writer(4 + a.entries.length * CHUNK_ENTRY_BYTES + proof.length).u8(WIRE_VERSION).u8(ANSWER.chunk).u8(a.entries.length >>> 8).u8(a.entries.length & 0xff);
  for (const e of a.entries) w.bytes(e.address, 20).bytes(encodeAccount(e.account));
  return w.bytes(proof).finish();
}

export function decodeSnapshotChunk(bytes: Uint8Array): SnapshotChunkAnswer {
  const r = new Reader(bytes);
  const v = r.u8('snapshot chunk version');
  if (v !== WIRE_VERSION) throw new DecodeError('DECODE_BAD_VERSION', `snapshot chunk version ${v}`);
  const kind = r.u8('snapshot chunk answer');
  if (kind === ANSWER.none || kind === ANSWER.split) {
    r.end('snapshot chunk');
    return { kind: kind === ANSWER.none ? 'none' : 'split' };
  }
  if (kind !== ANSWER.chunk) throw new DecodeError('DECODE_NON_CANONICAL', `snapshot chunk answer ${kind}`);
  const count = (r.u8('count') << 8) | r.u8('count');
  if (count > MAX_CHUNK_ACCOUNTS) throw new DecodeError('DECODE_OVER_LIMIT', `a chunk of ${count} accounts`);
  const entries: ChunkEntry[] = [];
  for (let i = 0; i < count; i++) entries.push({ address: r.bytes(20, 'chunk address'), account: decodeAccount(r.bytes(16, 'chunk account')) });
  const proof = readChunkProof(r);
  r.end('snapshot chunk');
  return { kind: 'chunk', entries, proof };
}
