import { Reader, Writer, bytesEqual } from './bytes.ts';
import { DecodeError, ProofError } from './errors.ts';
import { sha256 } from './hash.ts';
import { ACCOUNT_BYTES, decodeAccount, encodeAccount, type Account } from './state.ts';
import {
  EMPTY_HASH,
  LEAF_PREFIX,
  STATE_KEY_BYTES,
  bitAt,
  childHash,
  isInner,
  leafAccountBytes,
  leafKey,
  positionId,
  stateKey,
  type TreeNodeReader,
} from './smt.ts';

/**
 * Membership and non-membership proofs of the state tree (docs/PROTOCOL.md, "Account proofs"):
 * the siblings along an account's path, the empty ones as bits of a bitmap and only the others in
 * full, and how the path ends: in an empty subtree, in the account's own leaf, or in the leaf of
 * another account that holds the only place this one could have been. About 32·log2(accounts)
 * bytes.
 */
export type ProofEnd =
  | { readonly kind: 'empty' }
  | { readonly kind: 'leaf'; readonly account: Account }
  | { readonly kind: 'other'; readonly key: Uint8Array; readonly account: Account };

export interface AccountProof {
  /** Sibling i is beside the path at depth i + 1: the root's other child first. */
  readonly siblings: readonly Uint8Array[];
  readonly end: ProofEnd;
}

const END_EMPTY = 0;
const END_LEAF = 1;
const END_OTHER = 2;
const MAX_DEPTH = 255;

/**
 * A proof's siblings as written, for account proofs and chunk proofs alike: their count, a bitmap
 * of the non-empty ones, then those in full; a Writer with room for the proof's end after them.
 */
export function writeSiblings(siblings: readonly Uint8Array[], maxDepth: number, what: string): Writer {
  const d = siblings.length;
  if (d > maxDepth) throw new RangeError(`a ${what} of ${d} siblings`);
  const bitmap = new Uint8Array((d + 7) >>> 3);
  const present = siblings.filter((s, i) => {
    const full = !bytesEqual(s, EMPTY_HASH);
    if (full) bitmap[i >>> 3]! |= 0x80 >>> (i & 7);
    return full;
  });
  const w = new Writer(2 + bitmap.length + present.length * 32 + 1 + STATE_KEY_BYTES + ACCOUNT_BYTES).u8(d).bytes(bitmap);
  for (const s of present) w.bytes(s, 32);
  return w;
}

/** The siblings writeSiblings wrote, in canonical form only (no bits past the count, no empty one in full). */
export function readSiblings(r: Reader, maxDepth: number, what: string): Uint8Array[] {
  const d = r.u8(`${what} depth`);
  if (d > maxDepth) throw new DecodeError('DECODE_NON_CANONICAL', `a ${what} of ${d} siblings`);
  const bitmap = r.bytes((d + 7) >>> 3, `${what} bitmap`);
  if (d & 7 && (bitmap.at(-1)! & (0xff >>> (d & 7))) !== 0) throw new DecodeError('DECODE_NON_CANONICAL', `${what} bitmap has bits set past its depth`);
  const siblings: Uint8Array[] = [];
  for (let i = 0; i < d; i++) {
    if ((bitmap[i >>> 3]! & (0x80 >>> (i & 7))) === 0) {
      siblings.push(EMPTY_HASH);
      continue;
    }
    const s = r.bytes(32, `${what} sibling`);
    if (bytesEqual(s, EMPTY_HASH)) throw new DecodeError('DECODE_NON_CANONICAL', 'an empty sibling written out in full');
    siblings.push(s);
  }
  return siblings;
}

export function encodeAccountProof(proof: AccountProof): Uint8Array {
  const w = writeSiblings(proof.siblings, MAX_DEPTH, 'proof');
  const end = proof.end;
  if (end.kind === 'empty') w.u8(END_EMPTY);
  else if (end.kind === 'leaf') w.u8(END_LEAF).bytes(encodeAccount(end.account));
  else w.u8(END_OTHER).bytes(end.key, STATE_KEY_BYTES).bytes(encodeAccount(end.account));
  return w.finish();
}

export function decodeAccountProof(bytes: Uint8Array): AccountProof {
  const r = new Reader(bytes);
  const siblings = readSiblings(r, MAX_DEPTH, 'proof');
  const kind = r.u8('proof end');
  let end: ProofEnd;
  if (kind === END_EMPTY) end = { kind: 'empty' };
  else if (kind === END_LEAF) end = { kind: 'leaf', account: decodeAccount(r.bytes(ACCOUNT_BYTES, 'proof account')) };
  else if (kind === END_OTHER) {
    const key = r.bytes(STATE_KEY_BYTES, 'proof key');
    end = { kind: 'other', key, account: decodeAccount(r.bytes(ACCOUNT_BYTES, 'proof account')) };
  } else throw new DecodeError('DECODE_NON_CANONICAL', `proof end kind ${kind}`);
  r.end('account proof');
  return { siblings, end };
}

/**
 * What `proof` proves about `address` under `stateRoot`: its account, or `undefined` for none.
 * Throws DecodeError for bytes that are not a proof, ProofError for a proof of something else.
 */
export function verifyAccountProof(stateRoot: Uint8Array, address: Uint8Array, proofBytes: Uint8Array): Account | undefined {
  const proof = decodeAccountProof(proofBytes);
  const key = stateKey(address);
  const d = proof.siblings.length;
  const end = proof.end;
  let h: Uint8Array;
  if (end.kind === 'empty') {
    h = EMPTY_HASH;
  } else if (end.kind === 'leaf') {
    h = leafHash(key, end.account);
  } else {
    if (bytesEqual(end.key, key)) throw new ProofError('the proof ends in the leaf of the account itself, marked as another');
    for (let i = 0; i < d; i++) {
      if (bitAt(end.key, i) !== bitAt(key, i)) throw new ProofError(`the other leaf in the proof is not on the account's path (bit ${i} differs)`);
    }
    h = leafHash(end.key, end.account);
  }
  if (!bytesEqual(climbSiblings(h, key, proof.siblings), stateRoot)) throw new ProofError('the proof does not lead to the state root of its block');
  return end.kind === 'leaf' ? end.account : undefined;
}

/**
 * The root a proof leads to: `h`, the hash at depth `siblings.length` on `key`'s path, hashed up
 * with the sibling beside it at each depth, for account proofs and chunk proofs alike.
 */
export function climbSiblings(h: Uint8Array, key: Uint8Array, siblings: readonly Uint8Array[]): Uint8Array {
  const input = new Uint8Array(64); // an inner node's hash covers its two halves, not its prefix
  for (let i = siblings.length - 1; i >= 0; i--) {
    const s = siblings[i]!;
    if (bitAt(key, i) === 0) {
      input.set(h, 0);
      input.set(s, 32);
    } else {
      input.set(s, 0);
      input.set(h, 32);
    }
    h = sha256(input);
  }
  return h;
}

function leafHash(key: Uint8Array, account: Account): Uint8Array {
  const input = new Uint8Array(1 + STATE_KEY_BYTES + ACCOUNT_BYTES);
  input[0] = LEAF_PREFIX;
  input.set(key, 1);
  input.set(encodeAccount(account), 1 + STATE_KEY_BYTES);
  return sha256(input);
}

/** Proofs for several keys from the tree `reader` holds, their paths read a level per round trip. */
export async function proveKeys(reader: TreeNodeReader, keys: readonly Uint8Array[]): Promise<AccountProof[]> {
  const siblings: Uint8Array[][] = keys.map(() => []);
  const ends: (ProofEnd | undefined)[] = keys.map(() => undefined);
  let open = keys.map((_, i) => i);
  for (let depth = 0; open.length > 0; depth++) {
    const found = await reader.readNodes(open.map((i) => positionId(keys[i]!, depth)));
    const still: number[] = [];
    open.forEach((i, k) => {
      const node = found[k];
      const key = keys[i]!;
      if (node === undefined) {
        ends[i] = { kind: 'empty' };
      } else if (!isInner(node)) {
        const other = leafKey(node);
        const account = decodeAccount(leafAccountBytes(node));
        ends[i] = bytesEqual(other, key) ? { kind: 'leaf', account } : { kind: 'other', key: new Uint8Array(other), account };
      } else {
        siblings[i]!.push(new Uint8Array(childHash(node, 1 - bitAt(key, depth))));
        still.push(i);
      }
    });
    open = still;
  }
  return keys.map((_, i) => ({ siblings: siblings[i]!, end: ends[i]! }));
}

export async function proveAccount(reader: TreeNodeReader, address: Uint8Array): Promise<Uint8Array> {
  const [proof] = await proveKeys(reader, [stateKey(address)]);
  return encodeAccountProof(proof!);
}
