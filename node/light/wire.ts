import { Reader, Writer } from '../../ledger/bytes.ts';
import { DecodeError } from '../../ledger/errors.ts';
import { HASH_BYTES } from '../../ledger/block.ts';
import { ADDRESS_BYTES } from '../../ledger/keys.ts';
import { WIRE_VERSION } from '../wire.ts';

/**
 * The messages full nodes serve light clients (docs/PROTOCOL.md, "Light clients"): headers by
 * height, and account proofs against a block's state root. As strict as every other decoder.
 */
export const MAX_RANGE_HEADERS = 2000;
export const MAX_PROOF_ADDRESSES = 64;
/** How far below its tip a full node rolls its state back to prove at a block (each block costs its changes). */
export const PROOF_DEPTH = 16;
/** The largest account proof: 255 siblings, the bitmap, and another account's leaf. */
export const MAX_PROOF_BYTES = 1 + 32 + 255 * 32 + 1 + 48;

/** What a full node answers to getProofs: the proofs, or why not. */
export type ProofsAnswer =
  | { readonly kind: 'proofs'; readonly proofs: readonly Uint8Array[] }
  /** The block is not on the answerer's main chain. */
  | { readonly kind: 'unknown-block' }
  /** The block is more than PROOF_DEPTH below the answerer's tip. */
  | { readonly kind: 'too-deep' };

const ANSWER_CODES = { proofs: 0, 'unknown-block': 1, 'too-deep': 2 } as const;

function version(r: Reader, what: string): void {
  const v = r.u8(`${what} version`);
  if (v !== WIRE_VERSION) throw new DecodeError('DECODE_BAD_VERSION', `${what} version ${v}`);
}

export function encodeGetHeaderRange(from: number, count: number): Uint8Array {
  const w = new Writer(7).u8(WIRE_VERSION).u32(from);
  return w.u8(count >>> 8).u8(count & 0xff).finish();
}

export function decodeGetHeaderRange(bytes: Uint8Array): { from: number; count: number } {
  const r = new Reader(bytes);
  version(r, 'getHeaderRange');
  const from = r.u32('from');
  const count = (r.u8('count') << 8) | r.u8('count');
  r.end('getHeaderRange');
  if (count === 0 || count > MAX_RANGE_HEADERS) throw new DecodeError('DECODE_OVER_LIMIT', `a header range of ${count}`);
  return { from, count };
}

export function encodeGetProofs(blockHash: Uint8Array, addresses: readonly Uint8Array[]): Uint8Array {
  const w = new Writer(1 + HASH_BYTES + 9 + addresses.length * ADDRESS_BYTES).u8(WIRE_VERSION).bytes(blockHash, HASH_BYTES).varint(addresses.length);
  for (const a of addresses) w.bytes(a, ADDRESS_BYTES);
  return w.finish();
}

export function decodeGetProofs(bytes: Uint8Array): { blockHash: Uint8Array; addresses: Uint8Array[] } {
  const r = new Reader(bytes);
  version(r, 'getProofs');
  const blockHash = r.bytes(HASH_BYTES, 'block hash');
  const count = r.varint('address count', MAX_PROOF_ADDRESSES);
  if (count === 0) throw new DecodeError('DECODE_OVER_LIMIT', 'getProofs asks for no address');
  const addresses: Uint8Array[] = [];
  for (let i = 0; i < count; i++) addresses.push(r.bytes(ADDRESS_BYTES, 'address'));
  r.end('getProofs');
  return { blockHash, addresses };
}

export function encodeProofs(answer: ProofsAnswer): Uint8Array {
  const w = new Writer(256).u8(WIRE_VERSION).u8(ANSWER_CODES[answer.kind]);
  if (answer.kind === 'proofs') {
    w.varint(answer.proofs.length);
    for (const p of answer.proofs) w.varint(p.length).bytes(p);
  }
  return w.finish();
}

/** The answer to a request for `asked` proofs: the count must be the one asked for. */
export function decodeProofs(bytes: Uint8Array, asked: number): ProofsAnswer {
  const r = new Reader(bytes);
  version(r, 'proofs');
  const code = r.u8('proofs answer');
  if (code === 1 || code === 2) {
    r.end('proofs');
    return { kind: code === 1 ? 'unknown-block' : 'too-deep' };
  }
  if (code !== 0) throw new DecodeError('DECODE_NON_CANONICAL', `proofs answer ${code}`);
  const count = r.varint('proof count', MAX_PROOF_ADDRESSES);
  if (count !== asked) throw new DecodeError('DECODE_NON_CANONICAL', `${count} proofs for ${asked} addresses`);
  const proofs: Uint8Array[] = [];
  for (let i = 0; i < count; i++) proofs.push(r.bytes(r.varint('proof length', MAX_PROOF_BYTES), 'proof'));
  r.end('proofs');
  return { kind: 'proofs', proofs };
}
