import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../../ledger/hash.ts';
import { SIGNATURE_BYTES, addressOf, publicKeyOf } from '../../ledger/keys.ts';
import { BLOCK_VERSION, computeMerkleRoot, makeBlock, makeHeader, type Block } from '../../ledger/block.ts';
import type { ChainParams } from '../../ledger/genesis.ts';
import { ChainDB } from '../../ledger/chaindb.ts';
import type { SignatureChecker } from '../../ledger/state.ts';
import { decodeTransaction, encodeUnsignedTransaction, signTransaction, type Transaction } from '../../ledger/transaction.ts';
import { EMPTY_HASH } from '../../ledger/smt.ts';
import { applyLoosely, rememberState, stateAfter } from './states.ts';

export interface TestKey {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly address: Uint8Array;
}

/** Deterministic keys, so failures reproduce. */
export function testKey(n: number): TestKey {
  const privateKey = sha256(new TextEncoder().encode(`cairn test key ${n}`));
  const publicKey = publicKeyOf(privateKey);
  return { privateKey, publicKey, address: addressOf(publicKey) };
}

/** A small deterministic PRNG (xorshift128+): tests draw "random" data from a seed. */
export function seededRandom(seed: number) {
  let s0 = BigInt(seed) | 1n;
  let s1 = 0x9e3779b97f4a7c15n ^ BigInt(seed);
  const mask = (1n << 64n) - 1n;
  function next64(): bigint {
    let x = s0;
    const y = s1;
    s0 = y;
    x ^= (x << 23n) & mask;
    s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return (s1 + y) & mask;
  }
  return {
    /** An integer in [0, n). */
    int(n: number): number {
      return Number(next64() % BigInt(n));
    },
    bytes(length: number): Uint8Array {
      const out = new Uint8Array(length);
      for (let i = 0; i < length; i++) out[i] = Number(next64() & 0xffn);
      return out;
    },
  };
}

export const FUNDED_KEYS = [0, 1, 2, 3].map(testKey);

export function testParams(overrides: Partial<ChainParams> = {}): ChainParams {
  return {
    name: 'cairn-test',
    chainId: 7,
    timestamp: 1_700_000_000,
    target: (1n << 255n) - 1n, // one hash in two meets it
    blockTime: 10,
    asertHalfLife: 600,
    reward: 50n,
    unit: 'TST',
    decimals: 8,
    maxBlockBytes: 1_000_000,
    maxBlockTxs: 1000,
    alloc: FUNDED_KEYS.map((k) => ({ address: k.address, balance: 1_000_000n })).sort((a, b) =>
      Buffer.compare(a.address, b.address),
    ),
    ...overrides,
  };
}

/**
 * A transfer whose signature (r = s = 1) is canonical but signs nothing: for blocks connected with
 * signature checks skipped (`uncheckedSignatures`), where thousands of really signed ones would take seconds.
 */
export function placeholderTransfer(params: ChainParams, from: TestKey, to: Uint8Array, nonce: bigint, amount = 1n, fee = 1n): Transaction {
  const unsigned = encodeUnsignedTransaction({ chainId: params.chainId, from: from.address, to, amount, fee, nonce });
  const bytes = new Uint8Array(unsigned.length + from.publicKey.length + SIGNATURE_BYTES);
  bytes.set(unsigned, 0);
  bytes.set(from.publicKey, unsigned.length);
  bytes[unsigned.length + from.publicKey.length + 31] = 1;
  bytes[bytes.length - 1] = 1;
  return decodeTransaction(bytes);
}

/** A signature checker that checks nothing: for blocks of placeholderTransfer, and for blocks whose signatures are not what a test or bench measures. */
export const uncheckedSignatures: SignatureChecker = { async checkBlockSignatures() {} };

export function transfer(from: TestKey, to: Uint8Array, amount: bigint, nonce: bigint, fee = 1n, chainId = 7): Transaction {
  return signTransaction({ chainId, to, amount, fee, nonce }, from.privateKey);
}

export interface BlockOptions {
  readonly miner?: Uint8Array;
  readonly timestamp?: number;
  readonly target?: bigint;
  readonly reward?: bigint;
  /** Overrides the coinbase amount (default reward + fees). */
  readonly coinbaseAmount?: bigint;
  readonly merkleRoot?: Uint8Array;
  /** Overrides the state root (default: the root of the parent's state after this block, when the parent's state is known). */
  readonly stateRoot?: Uint8Array;
  readonly height?: number;
  readonly version?: number;
  readonly nonce?: bigint;
}

/**
 * A block on top of `parent` with a correct Merkle root, coinbase and state root unless told
 * otherwise. No PoW search. The state root needs the parent's state (test/helpers/states.ts): a
 * block on a parent nobody built here carries the empty root, which only a block that fails an
 * earlier rule (an unknown parent, a wrong height) can get away with.
 */
export function childBlock(parent: { hash: Uint8Array; height: number }, txs: readonly Transaction[], o: BlockOptions = {}): Block {
  const height = o.height ?? parent.height + 1;
  const fees = txs.reduce((sum, tx) => sum + tx.fee, 0n);
  const coinbase = { to: o.miner ?? testKey(99).address, amount: o.coinbaseAmount ?? (o.reward ?? 50n) + fees };
  const before = stateAfter(parent);
  const after = before && applyLoosely(before, txs, coinbase);
  const header = makeHeader({
    version: o.version ?? BLOCK_VERSION,
    height,
    prevHash: parent.hash,
    merkleRoot: o.merkleRoot ?? computeMerkleRoot(height, coinbase, txs),
    stateRoot: o.stateRoot ?? after?.root ?? EMPTY_HASH,
    timestamp: o.timestamp ?? 1_700_000_000 + height * 10,
    target: o.target ?? (1n << 255n) - 1n,
    nonce: o.nonce ?? 0n,
  });
  if (after) rememberState(header.hash, after, 2 * txs.length + 1);
  return makeBlock(header, coinbase, txs);
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix = 'cairn-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * For a mocha `describe`: a fresh directory per test, and the ChainDB the test opens in it
 * (`open` again closes and reopens it), closed and removed after each test.
 */
export function useTempStore(): { open(params: ChainParams): Promise<ChainDB> } {
  let dir: ReturnType<typeof tempDir> | undefined;
  let db: ChainDB | undefined;
  beforeEach(() => (dir = tempDir()));
  afterEach(async () => {
    await db?.close();
    db = undefined;
    dir?.remove();
  });
  return {
    async open(params) {
      await db?.close();
      db = await ChainDB.open(dir!.path, params);
      return db;
    },
  };
}

/** Resolves after `turns` turns of the event loop: what waits on nothing held gets done meanwhile. */
export async function afterTurns(turns: number): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}
