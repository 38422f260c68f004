import { bytesEqual, fromHex, toHex } from '../ledger/bytes.ts';
import { CairnError, DecodeError, ProofError } from '../ledger/errors.ts';
import { jsonParseReason } from '../ledger/json-text.ts';
import { BLOCK_VERSION, decodeHeader, type BlockHeader } from '../ledger/block.ts';
import { genesisBlock, type ChainParams } from '../ledger/genesis.ts';
import { decodeAddress, encodeAddress } from '../ledger/keys.ts';
import type { Account } from '../ledger/state.ts';
import { verifyAccountProof } from '../ledger/smt-proof.ts';
import { verifyTxProof } from '../ledger/tx-proof.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { nextTarget } from './difficulty.ts';
import type { Checkpoint } from './header-rules.ts';
import { HeaderChainCheck, type HeaderChainStart } from './headers.ts';
import { blockWork, hasValidProofOfWork } from './pow.ts';

/**
 * A proof file (`cairn proof … > proof.json`): an account or transaction proof with the headers
 * that carry it, from genesis (or from a checkpoint) to the tip of the node that made it, so that
 * `cairn verify` can check everything without a node. JSON, hex for bytes, decimal strings for
 * amounts; docs/PROTOCOL.md does not define it (it is the CLI's), the proofs inside it are.
 */
export interface ProofFile {
  readonly cairnProof: 1;
  readonly kind: 'account' | 'transaction';
  readonly network: string;
  /** The genesis hash of the network: the verifier's genesis.json must give the same. */
  readonly genesis: string;
  /** The block whose header the proof is against. */
  readonly block: { readonly height: number; readonly hash: string };
  /** Account proofs: the address, and what its maker says the proof proves (null: no account). */
  readonly address?: string;
  readonly account?: { readonly balance: string; readonly nonce: string } | null;
  /** Transaction proofs: the id. */
  readonly transaction?: string;
  /** The proof's bytes (docs/PROTOCOL.md, "Account proofs" / "Transaction proofs"). */
  readonly proof: string;
  readonly headers: {
    /** The height of the first header listed: 1 (from genesis), or a checkpoint's neighbourhood. */
    readonly from: number;
    /** Block 1's header, whose timestamp anchors ASERT, when the list starts later. */
    readonly anchor?: string;
    readonly list: readonly string[];
  };
}

/** Why a proof file proves nothing: the first thing that did not hold. */
export class ProofFileError extends CairnError {
  constructor(message: string) {
    super('PROOF_NOT_PROVEN', message);
  }
}

const not = (message: string) => new ProofFileError(message);

/** Headers before a checkpoint the file must hold, for the median time past of those after it. */
const CHECKPOINT_CONTEXT = 10;

export interface VerifiedProof {
  readonly kind: 'account' | 'transaction';
  readonly height: number;
  readonly hash: string;
  /** Headers checked after the proof's block, plus one. */
  readonly confirmations: number;
  readonly headersChecked: number;
  /** The work of the checked chain: from genesis, or after the checkpoint. */
  readonly totalWork: bigint;
  /**
   * The work of the proof's block, and of the headers listed after it: confirmations as work.
   * Their count alone says little, since ASERT eases the target of a chain dated behind schedule
   * until its blocks cost next to nothing: a forged tail of many blocks carries the work of a few.
   */
  readonly blockWork: bigint;
  readonly workAfter: bigint;
  readonly fromGenesis: boolean;
  readonly address?: Uint8Array;
  /** What the account proof proves: the account, or undefined for none. */
  readonly account?: Account | undefined;
  readonly tx?: Transaction;
}

/** A proof file's text, checked for shape: every field present, of its type. */
export function readProofFile(text: string): ProofFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw not(`not a proof file: not JSON (${jsonParseReason(err, text)})`);
  }
  const f = json as Partial<ProofFile> & Record<string, unknown>;
  const bad = (what: string) => not(`not a proof file: ${what}`);
  if (typeof f !== 'object' || f === null || f.cairnProof !== 1) throw bad('"cairnProof" must be 1');
  if (f.kind !== 'account' && f.kind !== 'transaction') throw bad('"kind" must be "account" or "transaction"');
  if (typeof f.network !== 'string' || typeof f.genesis !== 'string' || !/^[0-9a-f]{64}$/.test(f.genesis)) throw bad('"network" and "genesis" (64 hex digits) are required');
  const b = f.block;
  if (!b || !Number.isSafeInteger(b.height) || b.height < 0 || typeof b.hash !== 'string' || !/^[0-9a-f]{64}$/.test(b.hash)) throw bad('"block" needs a height and a 64-hex-digit hash');
  if (typeof f.proof !== 'string' || !/^([0-9a-f]{2})*$/.test(f.proof)) throw bad('"proof" must be hex');
  const h = f.headers;
  if (!h || !Number.isSafeInteger(h.from) || h.from < 1 || !Array.isArray(h.list) || !h.list.every((x) => typeof x === 'string')) throw bad('"headers" needs "from" (a height from 1) and "list" (hex headers)');
  if (h.anchor !== undefined && typeof h.anchor !== 'string') throw bad('"headers.anchor" must be hex');
  if (f.kind === 'account') {
    if (typeof f.address !== 'string') throw bad('an account proof needs "address"');
    const a = f.account;
    if (a !== null && (typeof a !== 'object' || typeof a.balance !== 'string' || typeof a.nonce !== 'string')) throw bad('"account" must be null or {balance, nonce}');
  } else if (typeof f.transaction !== 'string' || !/^[0-9a-f]{64}$/.test(f.transaction)) {
    throw bad('a transaction proof needs "transaction" (64 hex digits)');
  }
  return f as ProofFile;
}

function header(hex: string, what: string): BlockHeader {
  // Lower case only, as the proof's hex and the hashes: a digit in upper case is a byte changed
  // that fromHex would read as the same header.
  if (/[A-F]/.test(hex)) throw not(`${what} does not decode: hex in upper case`);
  try {
    return decodeHeader(fromHex(hex));
  } catch (err) {
    throw not(`${what} does not decode: ${(err as Error).message}`);
  }
}

/**
 * Checks a proof file against the network `params` define, offline: the headers link from genesis
 * (or from `checkpoint`) with their proof of work, ASERT targets and timestamps (as sync checks a
 * peer's headers, `now` bounding how far ahead a timestamp may be); the proof's block is among them;
 * the proof holds against that header; and the file says what the proof proves. Throws
 * ProofFileError naming the first thing that does not hold.
 */
export function verifyProofFile(params: ChainParams, file: ProofFile, options: { checkpoint?: Checkpoint; now: number }): VerifiedProof {
  const genesis = genesisBlock(params).header;
  if (file.genesis !== toHex(genesis.hash)) {
    throw not(`the proof is for the network "${file.network}" (genesis ${file.genesis.slice(0, 16)}…), not "${params.name}" (genesis ${toHex(genesis.hash).slice(0, 16)}…): give its genesis.json with --genesis`);
  }
  if (file.network !== params.name) throw not(`the file names the network "${file.network}", but its genesis is "${params.name}"'s`);
  const from = file.headers.from;
  const count = file.headers.list.length;
  // Each header is decoded as it is checked and then let go (the proof's block kept): a file of a
  // million headers, or of a million that do not hold, costs no memory beyond its text, and one
  // that does not hold is refused at its first bad header, not after decoding all of them.
  const at = (i: number): BlockHeader => {
    const h = header(file.headers.list[i]!, `header ${from + i}`);
    if (h.height !== from + i) throw not(`header ${from + i} in the list says it is at height ${h.height}`);
    return h;
  };
  const { start, next, prefix, fromGenesis } = startOfChain(params, genesis, file, at, options.checkpoint);
  const wanted = file.block.height;
  // Height 0 is the genesis the parameters make, which the list (from block 1) never holds.
  let block = wanted === 0 ? genesis : prefix.find((h) => h.height === wanted);
  let workAfter = prefix.reduce((sum, h) => (h.height > wanted ? sum + blockWork(h.target) : sum), 0n);
  const check = new HeaderChainCheck(params, start, options.now);
  for (let i = next; i < count; i++) {
    const h = at(i);
    try {
      check.extend([h]);
    } catch (err) {
      throw not(`header ${h.height}: ${(err as Error).message}`);
    }
    if (h.height === wanted) block = h;
    else if (h.height > wanted) workAfter += blockWork(h.target);
  }
  if (!block) throw not(`the proof's block, height ${wanted}, is not among the headers (${from} to ${from + count - 1})`);
  if (toHex(block.hash) !== file.block.hash) throw not(`the header at height ${block.height} is ${toHex(block.hash)}, not the proof's block ${file.block.hash}`);
  if (options.checkpoint && block.height < options.checkpoint.height - CHECKPOINT_CONTEXT) throw not('the proof is for a block before the checkpoint');
  const tipHeight = from + count - 1;
  const verified = {
    kind: file.kind,
    height: block.height,
    hash: file.block.hash,
    confirmations: tipHeight - block.height + 1,
    headersChecked: count - next,
    totalWork: fromGenesis ? check.totalWork : check.totalWork - start.totalWork,
    blockWork: blockWork(block.target),
    workAfter,
    fromGenesis,
  };
  return file.kind === 'account' ? { ...verified, ...checkAccount(file, block) } : { ...verified, tx: checkTransaction(file, block) };
}

/**
 * Where checking starts: genesis, or the checkpoint, which the headers before it link back to.
 * `next` is the index in the list of the first header to check after it; `prefix`, the headers
 * up to the checkpoint (none from genesis).
 */
function startOfChain(params: ChainParams, genesis: BlockHeader, file: ProofFile, at: (i: number) => BlockHeader, checkpoint: Checkpoint | undefined) {
  const from = file.headers.from;
  const count = file.headers.list.length;
  if (from === 1) {
    if (checkpoint) {
      // Height 0 is the genesis the parameters make: a user who pins it pins the genesis file too.
      const pinned = checkpoint.height === 0 ? genesis : checkpoint.height <= count ? at(checkpoint.height - 1) : undefined;
      if (!pinned || !bytesEqual(pinned.hash, checkpoint.hash)) throw not(`the chain does not pass through the checkpoint ${checkpoint.height}:${toHex(checkpoint.hash)}`);
    }
    const start: HeaderChainStart = { header: genesis, totalWork: blockWork(genesis.target), anchorTimestamp: undefined, recentTimes: [genesis.timestamp] };
    return { start, next: 0, prefix: [] as BlockHeader[], fromGenesis: true };
  }
  if (!checkpoint) throw not(`the headers start at height ${from}, not at genesis: say which checkpoint to trust with --checkpoint HEIGHT:HASH`);
  const index = checkpoint.height - from;
  if (index < CHECKPOINT_CONTEXT || index >= count) {
    throw not(`the file must hold the checkpoint's header and the ${CHECKPOINT_CONTEXT} before it (heights ${checkpoint.height - CHECKPOINT_CONTEXT} to ${checkpoint.height})`);
  }
  const list: BlockHeader[] = new Array(index + 1);
  list[index] = at(index);
  if (!bytesEqual(list[index]!.hash, checkpoint.hash)) throw not(`header ${checkpoint.height} is ${toHex(list[index]!.hash)}, not the checkpoint ${toHex(checkpoint.hash)}`);
  for (let i = index; i > 0; i--) {
    list[i - 1] = at(i - 1);
    if (!bytesEqual(list[i]!.prevHash, list[i - 1]!.hash)) throw not(`header ${from + i - 1} is not the parent of header ${from + i}`);
  }
  if (!file.headers.anchor) throw not('headers that start after block 1 need block 1 ("headers.anchor"): its timestamp anchors the difficulty schedule');
  const anchor = header(file.headers.anchor, 'the anchor header (block 1)');
  // Block 1 of this network: a child of genesis at the genesis target, with its proof of work.
  if (anchor.height !== 1 || !bytesEqual(anchor.prevHash, genesis.hash)) throw not('the anchor header is not a block 1: a child of the genesis block');
  if (anchor.version !== BLOCK_VERSION || anchor.target !== params.target || !hasValidProofOfWork(anchor)) throw not('the anchor header (block 1) is not a valid block 1: version, target or proof of work');
  // The headers before the checkpoint are the checkpoint's ancestors: their targets must be the
  // ones this anchor gives, or the anchor is not their chain's (and would set any target after).
  for (let i = 1; i <= index; i++) {
    const parent = list[i - 1]!;
    const expected = parent.height === 0 ? params.target : nextTarget(params, parent, anchor.timestamp);
    if (list[i]!.target !== expected) throw not("the anchor header (block 1) is not the one the checkpoint's chain was built on: the targets before the checkpoint do not follow from it");
  }
  const start: HeaderChainStart = {
    header: list[index]!,
    totalWork: 0n,
    anchorTimestamp: anchor.timestamp,
    recentTimes: list.slice(index - CHECKPOINT_CONTEXT, index + 1).map((h) => h.timestamp),
  };
  return { start, next: index + 1, prefix: list, fromGenesis: false };
}

function checkAccount(file: ProofFile, block: BlockHeader): { address: Uint8Array; account: Account | undefined } {
  let address: Uint8Array;
  try {
    address = decodeAddress(file.address!);
  } catch (err) {
    throw not(`the address "${file.address}" is not an address: ${(err as Error).message}`);
  }
  let account: Account | undefined;
  try {
    account = verifyAccountProof(block.stateRoot, address, fromHex(file.proof));
  } catch (err) {
    if (err instanceof DecodeError || err instanceof ProofError) throw not(`the account proof does not hold against the state root of block ${block.height}: ${err.message}`);
    throw err;
  }
  const said = file.account === null ? 'no account' : `balance ${file.account!.balance}, nonce ${file.account!.nonce}`;
  const proven = account ? `balance ${account.balance}, nonce ${account.nonce}` : 'no account';
  if (said !== proven) throw not(`the file says ${encodeAddress(address)} has ${said}, but the proof proves ${proven}`);
  return { address, account };
}

function checkTransaction(file: ProofFile, block: BlockHeader): Transaction {
  let tx: Transaction;
  try {
    tx = verifyTxProof(block, fromHex(file.proof)).tx;
  } catch (err) {
    if (err instanceof DecodeError || err instanceof ProofError) throw not(`the transaction proof does not hold against the Merkle root of block ${block.height}: ${err.message}`);
    throw err;
  }
  if (tx.idHex !== file.transaction) throw not(`the file names transaction ${file.transaction}, but the proof proves ${tx.idHex}`);
  return tx;
}
