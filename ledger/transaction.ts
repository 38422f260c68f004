import { Reader, Writer, bytesEqual, fromHex, toHex } from './bytes.ts';
import { DecodeError, TxRuleError } from './errors.ts';
import { sha256 } from './hash.ts';
import {
  ADDRESS_BYTES,
  PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  addressOf,
  isCanonicalPublicKeyForm,
  isCanonicalSignature,
  publicKeyOf,
  signHash,
  verifySignature,
} from './keys.ts';
import { isValidAmount } from './amount.ts';
import { merkleLeaf } from './merkle.ts';

export const TX_VERSION = 1;
/** version + chainId + from + to + amount + fee + nonce */
export const UNSIGNED_TX_BYTES = 1 + 4 + ADDRESS_BYTES * 2 + 8 * 3;
export const TX_BYTES = UNSIGNED_TX_BYTES + PUBLIC_KEY_BYTES + SIGNATURE_BYTES;
const FROM_AT = 1 + 4;
const TO_AT = FROM_AT + ADDRESS_BYTES;

export interface UnsignedTransaction {
  readonly chainId: number;
  readonly from: Uint8Array;
  readonly to: Uint8Array;
  readonly amount: bigint;
  readonly fee: bigint;
  readonly nonce: bigint;
}

/**
 * A signed transfer. The public key travels with it because a 64-byte signature cannot be
 * recovered into one; `from` must be that key's address. Instances come only from
 * `signTransaction` or `decodeTransaction`, so `bytes`, `id` and `sighash` always match the fields.
 */
export interface Transaction extends UnsignedTransaction {
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
  /** The canonical signed encoding. */
  readonly bytes: Uint8Array;
  /** SHA-256 of the signed encoding. */
  readonly id: Uint8Array;
  /** SHA-256 of the unsigned encoding: what the key signs. */
  readonly sighash: Uint8Array;
  /** Its leaf in a block's Merkle tree (merkle.ts), made with the id. */
  readonly merkleLeaf: Uint8Array;
  /** Hex of `id`, `from` and `to`: the keys of every map a transaction goes into, made once. */
  readonly idHex: string;
  readonly fromKey: string;
  readonly toKey: string;
}

/**
 * The one implementation. The hex keys are computed on first use and kept: a block import, the
 * mempool, the caches and the state overlay each ask for them, and were making them afresh each
 * time (12% of a 2,000-transaction block's import).
 */
class SignedTransaction implements Transaction {
  readonly chainId: number;
  readonly amount: bigint;
  readonly fee: bigint;
  readonly nonce: bigint;
  readonly bytes: Uint8Array;
  readonly id: Uint8Array;
  /**
   * Made with the id rather than on first use: a node relaying a block rebuilds it from its
   * mempool, and every leaf hashed at admission is one hash fewer between the block's arrival and
   * its connection.
   */
  readonly merkleLeaf: Uint8Array;
  #sighash: Uint8Array | undefined;
  #idHex: string | undefined;
  #fromKey: string | undefined;
  #toKey: string | undefined;

  constructor(fields: Omit<UnsignedTransaction, 'from' | 'to'>, bytes: Uint8Array, id: Uint8Array) {
    this.chainId = fields.chainId;
    this.amount = fields.amount;
    this.fee = fields.fee;
    this.nonce = fields.nonce;
    this.bytes = bytes;
    this.id = id;
    this.merkleLeaf = merkleLeaf(id);
  }

  // The byte fields are views made when asked for, not kept: four views held by each of the tens
  // of thousands of transactions a busy node keeps were a quarter of a transaction's memory.
  get from(): Uint8Array {
    return this.bytes.subarray(FROM_AT, FROM_AT + ADDRESS_BYTES);
  }

  get to(): Uint8Array {
    return this.bytes.subarray(TO_AT, TO_AT + ADDRESS_BYTES);
  }

  get publicKey(): Uint8Array {
    return this.bytes.subarray(UNSIGNED_TX_BYTES, UNSIGNED_TX_BYTES + PUBLIC_KEY_BYTES);
  }

  get signature(): Uint8Array {
    return this.bytes.subarray(UNSIGNED_TX_BYTES + PUBLIC_KEY_BYTES, TX_BYTES);
  }

  /**
   * Made on first use: the worker pool hashes the unsigned bytes itself, so most transactions
   * (every one a syncing node downloads) never need it on the main thread.
   */
  get sighash(): Uint8Array {
    return (this.#sighash ??= sha256(this.bytes.subarray(0, UNSIGNED_TX_BYTES)));
  }

  get idHex(): string {
    return (this.#idHex ??= toHex(this.id));
  }

  get fromKey(): string {
    return (this.#fromKey ??= toHex(this.from));
  }

  get toKey(): string {
    return (this.#toKey ??= toHex(this.to));
  }
}

function writeUnsigned(w: Writer, tx: UnsignedTransaction): Writer {
  if (!isValidAmount(tx.amount) || !isValidAmount(tx.fee)) {
    throw new TxRuleError('TX_AMOUNT_OVER_LIMIT', 'amount or fee outside [0, MAX_AMOUNT]', 100);
  }
  return w
    .u8(TX_VERSION)
    .u32(tx.chainId)
    .bytes(tx.from, ADDRESS_BYTES)
    .bytes(tx.to, ADDRESS_BYTES)
    .u64(tx.amount)
    .u64(tx.fee)
    .u64(tx.nonce);
}

export function encodeUnsignedTransaction(tx: UnsignedTransaction): Uint8Array {
  return writeUnsigned(new Writer(UNSIGNED_TX_BYTES), tx).finish();
}

/** `bytes` is the canonical signed encoding of exactly these fields. */
function build(fields: Omit<UnsignedTransaction, 'from' | 'to'>, bytes: Uint8Array): Transaction {
  return new SignedTransaction(fields, bytes, sha256(bytes));
}

/** Signs locally; `from` is derived from the key, so it cannot disagree with it. */
export function signTransaction(
  fields: Omit<UnsignedTransaction, 'from'>,
  privateKey: Uint8Array,
  /** For bulk signing: the key's public key if known, and another signer with noble's exact output. */
  o: { publicKey?: Uint8Array; sign?: (hash: Uint8Array, privateKey: Uint8Array) => Uint8Array } = {},
): Transaction {
  const publicKey = o.publicKey ?? publicKeyOf(privateKey);
  const unsigned: UnsignedTransaction = { ...fields, from: addressOf(publicKey) };
  const w = writeUnsigned(new Writer(TX_BYTES), unsigned);
  const signature = (o.sign ?? signHash)(sha256(w.finish()), privateKey);
  const bytes = w.bytes(publicKey).bytes(signature).finish();
  return build(unsigned, bytes);
}

/**
 * Reads one transaction from a reader (inside a block) without requiring the end of input. With a
 * reader in `views` mode every field is a view into the reader's buffer: no copy per field.
 */
export function readTransaction(r: Reader): Transaction {
  const start = r.offset;
  const version = r.u8('tx version');
  if (version !== TX_VERSION) throw new DecodeError('DECODE_BAD_VERSION', `unknown tx version ${version}`);
  const chainId = r.u32('tx chainId');
  r.bytes(ADDRESS_BYTES * 2, 'tx from and to');
  const amount = r.u64('tx amount');
  const fee = r.u64('tx fee');
  const nonce = r.u64('tx nonce');
  if (!isValidAmount(amount)) throw new DecodeError('DECODE_OVER_LIMIT', `tx amount ${amount} exceeds MAX_AMOUNT`);
  if (!isValidAmount(fee)) throw new DecodeError('DECODE_OVER_LIMIT', `tx fee ${fee} exceeds MAX_AMOUNT`);
  const publicKey = r.bytes(PUBLIC_KEY_BYTES, 'tx public key');
  if (!isCanonicalPublicKeyForm(publicKey)) {
    throw new DecodeError('DECODE_NON_CANONICAL', 'tx public key is not a compressed SEC1 key');
  }
  const signature = r.bytes(SIGNATURE_BYTES, 'tx signature');
  if (!isCanonicalSignature(signature)) {
    throw new DecodeError('DECODE_NON_CANONICAL', 'tx signature r or s out of range, or s not low');
  }
  // Re-slicing the input rather than re-encoding: the fields above admit exactly one encoding.
  const bytes = r.bytesBetween(start, r.offset);
  return build({ chainId, amount, fee, nonce }, bytes);
}

export function decodeTransaction(bytes: Uint8Array): Transaction {
  // One private copy of the input, and every field a view into it.
  return decodeOwned(new Uint8Array(bytes));
}

/**
 * A transaction from its hex (an RPC or REST body): the bytes fromHex makes are already nobody
 * else's, so they are not copied again (decodeTransaction's copy was a fifth of an RPC batch's decode).
 */
export function decodeTransactionHex(hex: string): Transaction {
  return decodeOwned(fromHex(hex));
}

function decodeOwned(bytes: Uint8Array): Transaction {
  const r = new Reader(bytes, { views: true });
  const tx = readTransaction(r);
  r.end('transaction');
  return tx;
}

/**
 * Context-free checks: the key is the sender's, and it signed these exact fields. The expensive
 * half of validation, kept apart so it can be batched, parallelised and cached.
 */
export function checkTxSignature(tx: Transaction, txIndex?: number): void {
  if (!bytesEqual(addressOf(tx.publicKey), tx.from)) {
    throw new TxRuleError('TX_SENDER_MISMATCH', 'public key does not belong to the sender', 100, txIndex);
  }
  if (!verifySignature(tx.signature, tx.sighash, tx.publicKey)) {
    throw new TxRuleError('TX_BAD_SIGNATURE', 'signature does not verify', 100, txIndex);
  }
}
