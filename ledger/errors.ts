/**
 * Errors are values with codes: created where the rule lives, read where the decision is made
 * (ban a peer, answer an RPC, print a CLI error). `banScore` lets the network layer punish a peer
 * without interpreting consensus rules itself; 0 means "not the sender's fault".
 */
export class CairnError extends Error {
  readonly code: string;
  readonly banScore: number;

  constructor(code: string, message: string, banScore = 0) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.banScore = banScore;
  }
}

/** Bytes that are not the one canonical encoding of a value (from a peer, a file, the store). */
export class DecodeError extends CairnError {
  constructor(code: DecodeErrorCode, message: string) {
    super(code, message, 100);
  }
}
export type DecodeErrorCode =
  | 'DECODE_TRUNCATED'
  | 'DECODE_TRAILING_BYTES'
  | 'DECODE_NON_CANONICAL'
  | 'DECODE_OVER_LIMIT'
  | 'DECODE_BAD_VERSION';

/** A transaction that breaks a rule. Stateful failures (nonce, balance) may be nobody's fault. */
export class TxRuleError extends CairnError {
  readonly txIndex: number | undefined;
  constructor(code: TxRuleErrorCode, message: string, banScore: number, txIndex?: number) {
    super(code, txIndex === undefined ? message : `tx #${txIndex}: ${message}`, banScore);
    this.txIndex = txIndex;
  }
}
export type TxRuleErrorCode =
  | 'TX_BAD_SIGNATURE'
  | 'TX_BAD_PUBKEY'
  | 'TX_SENDER_MISMATCH'
  | 'TX_WRONG_CHAIN'
  | 'TX_BAD_NONCE'
  | 'TX_INSUFFICIENT_BALANCE'
  | 'TX_AMOUNT_OVER_LIMIT'
  | 'TX_BALANCE_OVERFLOW';

/** A block that breaks a rule of its body or of how it links to its parent. */
export class BlockRuleError extends CairnError {
  constructor(code: BlockRuleErrorCode, message: string, banScore = 100) {
    super(code, message, banScore);
  }
}
export type BlockRuleErrorCode =
  | 'BLOCK_BAD_MERKLE_ROOT'
  | 'BLOCK_TOO_LARGE'
  | 'BLOCK_TOO_MANY_TXS'
  | 'BLOCK_BAD_COINBASE'
  | 'BLOCK_DUPLICATE_TX'
  | 'BLOCK_BAD_PARENT'
  | 'BLOCK_BAD_HEIGHT'
  | 'BLOCK_BAD_VERSION'
  | 'BLOCK_BAD_STATE_ROOT'
  | 'BLOCK_BAD_TX';

/** A genesis file that does not define a network. */
export class GenesisError extends CairnError {
  constructor(message: string) {
    super('GENESIS_INVALID', message);
  }
}

/** The datadir cannot be used as asked: another network's data, a damaged store, or a full disk (which damages nothing). */
export class StoreError extends CairnError {
  constructor(code: 'STORE_GENESIS_MISMATCH' | 'STORE_CORRUPT' | 'STORE_NOT_FOUND' | 'STORE_WRITE_FAILED' | 'STORE_LOCKED' | 'STORE_TOO_NEW' | 'STORE_DISK_FULL', message: string) {
    super(code, message);
  }
}

/**
 * Whether `err` (or what caused it) is a full disk or a spent quota, as Node's file system says
 * it (ENOSPC, EDQUOT) or LevelDB does, in the text of an IO error. Told apart from damage: what
 * was written before is whole, and the fix is space, never deleting the store.
 */
export function isDiskFull(err: unknown): boolean {
  let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 4; depth++, e = e.cause as typeof e) {
    if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return true;
    if (typeof e.message === 'string' && /no space left on device|disk quota exceeded/i.test(e.message)) return true;
  }
  return false;
}

/** A state or transaction proof that does not prove what it claims: whoever served it lied. */
export class ProofError extends CairnError {
  constructor(message: string) {
    super('PROOF_INVALID', message, 100);
  }
}
