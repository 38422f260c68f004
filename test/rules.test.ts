/**
 * The rules of transactions and blocks, one row per rule: each invalid block is refused by
 * ChainDB.connectBlock with its own error class and code, and leaves the store exactly as it was.
 * The valid edge cases (paying oneself, spending within a block what the block just paid,
 * spending to the last unit, blocks exactly at the limits) are accepted.
 */
import { TipHarness } from './helpers/tip.ts';
import assert from 'node:assert/strict';
import { ChainDB } from '../ledger/chaindb.ts';
import { auditChainDB } from '../ledger/audit.ts';
import { concatBytes, toHex } from '../ledger/bytes.ts';
import { BlockRuleError, TxRuleError } from '../ledger/errors.ts';
import { sha256 } from '../ledger/hash.ts';
import { signHash } from '../ledger/keys.ts';
import { MAX_AMOUNT } from '../ledger/amount.ts';
import { COINBASE_BYTES, HEADER_BYTES, computeMerkleRoot, type Block } from '../ledger/block.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import { encodeAccount, type Account } from '../ledger/state.ts';
import { TX_BYTES, UNSIGNED_TX_BYTES, decodeTransaction, type Transaction } from '../ledger/transaction.ts';
import { FUNDED_KEYS, childBlock, useTempStore, testKey, testParams, transfer, type TestKey } from './helpers/fixtures.ts';
import { stateAfter } from './helpers/states.ts';

const [A, B, C] = FUNDED_KEYS as [TestKey, TestKey, TestKey, TestKey];
const FRESH = testKey(20); // no account at genesis
const RICH = testKey(21); // funded near MAX_AMOUNT in the overflow rows
const MINER = testKey(99);
const START = 1_000_000n;
const BIG_REWARD = 5_000_000n;

/** A transaction with A's fields but another key or signature: only decoding can build one. */
function forge(base: Transaction, parts: { publicKey?: Uint8Array; signature?: Uint8Array }): Transaction {
  return decodeTransaction(
    concatBytes(base.bytes.subarray(0, UNSIGNED_TX_BYTES), parts.publicKey ?? base.publicKey, parts.signature ?? base.signature),
  );
}

/**
 * A genesis whose allocations sum to exactly MAX_AMOUNT (so parseGenesis would accept it), with a
 * big reward: once A has mined a block, A holds more than RICH's headroom, so a credit to RICH can
 * overflow on a perfectly valid chain.
 */
function overflowParams(): Partial<ChainParams> {
  const alloc = [
    ...FUNDED_KEYS.map((k) => ({ address: k.address, balance: START })),
    { address: RICH.address, balance: MAX_AMOUNT - 4n * START },
  ].sort((x, y) => Buffer.compare(x.address, y.address));
  return { reward: BIG_REWARD, alloc };
}
async function aMinesABlock(h: TipHarness): Promise<void> {
  await h.connectBlock(childBlock(h.tip, [], { miner: A.address, reward: BIG_REWARD }));
}
const HEADROOM = 4n * START; // MAX_AMOUNT - RICH's balance

interface Row {
  readonly name: string;
  readonly params?: Partial<ChainParams>;
  /** Valid blocks connected before the bad one. */
  readonly setup?: (h: TipHarness) => Promise<void>;
  readonly block: (h: TipHarness) => Block;
  readonly error: typeof TxRuleError | typeof BlockRuleError;
  readonly code: string;
  readonly txIndex?: number;
  readonly banScore: number;
}

const ROWS: Row[] = [
  // --- signatures and keys ---
  {
    name: 'a signature by the sender over different fields',
    block: (h) => {
      const real = transfer(A, B.address, 10n, 0n);
      const other = transfer(A, B.address, 11n, 0n);
      return childBlock(h.tip, [forge(real, { signature: other.signature })]);
    },
    error: TxRuleError, code: 'TX_BAD_SIGNATURE', txIndex: 0, banScore: 100,
  },
  {
    name: 'a signature by another key over the same fields',
    block: (h) => {
      const real = transfer(A, B.address, 10n, 0n);
      return childBlock(h.tip, [forge(real, { signature: signHash(real.sighash, C.privateKey) })]);
    },
    error: TxRuleError, code: 'TX_BAD_SIGNATURE', txIndex: 0, banScore: 100,
  },
  {
    name: 'a bad signature in the second tx, after a valid first one',
    block: (h) => {
      const ok = transfer(A, B.address, 10n, 0n);
      const real = transfer(A, B.address, 20n, 1n);
      return childBlock(h.tip, [ok, forge(real, { signature: ok.signature })]);
    },
    error: TxRuleError, code: 'TX_BAD_SIGNATURE', txIndex: 1, banScore: 100,
  },
  {
    name: 'a public key that is not the sender\'s (with a signature that verifies under it)',
    block: (h) => {
      const real = transfer(A, B.address, 10n, 0n);
      return childBlock(h.tip, [forge(real, { publicKey: C.publicKey, signature: signHash(real.sighash, C.privateKey) })]);
    },
    error: TxRuleError, code: 'TX_SENDER_MISMATCH', txIndex: 0, banScore: 100,
  },
  // --- stateful transaction rules ---
  {
    name: 'a transaction for another chain',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n, 1n, 8)]),
    error: TxRuleError, code: 'TX_WRONG_CHAIN', txIndex: 0, banScore: 100,
  },
  {
    // PROTOCOL.md's order (rule 3 before rule 4): another network's transaction costs its relayer
    // the ban (100) whatever its nonce, not the 0 of a nonce a reorganisation may have made stale.
    name: 'a transaction for another chain with a nonce that is wrong here too',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 5n, 1n, 8)]),
    error: TxRuleError, code: 'TX_WRONG_CHAIN', txIndex: 0, banScore: 100,
  },
  {
    name: 'a nonce too high',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 1n)]),
    error: TxRuleError, code: 'TX_BAD_NONCE', txIndex: 0, banScore: 0,
  },
  {
    name: 'a transaction replayed from an earlier block (nonce too low)',
    setup: async (h) => {
      await h.connectBlock(childBlock(h.tip, [transfer(A, B.address, 10n, 0n)]));
    },
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n)]),
    error: TxRuleError, code: 'TX_BAD_NONCE', txIndex: 0, banScore: 0,
  },
  {
    name: 'a nonce used twice in one block (different payments)',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n), transfer(A, C.address, 10n, 0n)]),
    error: TxRuleError, code: 'TX_BAD_NONCE', txIndex: 1, banScore: 0,
  },
  {
    name: 'amount + fee one over the balance',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, START - 1n, 0n, 2n)]),
    error: TxRuleError, code: 'TX_INSUFFICIENT_BALANCE', txIndex: 0, banScore: 0,
  },
  {
    name: 'a fee from an account that does not exist',
    block: (h) => childBlock(h.tip, [transfer(FRESH, B.address, 0n, 0n, 1n)]),
    error: TxRuleError, code: 'TX_INSUFFICIENT_BALANCE', txIndex: 0, banScore: 0,
  },
  {
    name: 'a second spend of what an earlier tx of the block already spent',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 600_000n, 0n), transfer(A, C.address, 400_000n, 1n)]),
    error: TxRuleError, code: 'TX_INSUFFICIENT_BALANCE', txIndex: 1, banScore: 0,
  },
  {
    // The coinbase is paid after every transaction: a miner cannot spend in a block what that block pays it.
    name: "a miner spending, in its block, that block's coinbase",
    block: (h) => childBlock(h.tip, [transfer(MINER, B.address, 10n, 0n, 0n)]),
    error: TxRuleError, code: 'TX_INSUFFICIENT_BALANCE', txIndex: 0, banScore: 0,
  },
  {
    name: 'amount + fee over MAX_AMOUNT (each within it)',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, MAX_AMOUNT, 0n, 1n)]),
    error: TxRuleError, code: 'TX_AMOUNT_OVER_LIMIT', txIndex: 0, banScore: 100,
  },
  {
    // Rule 4 before rule 5: a nonce judged stale first, as a reorganisation may leave it (ban 0).
    name: 'amount + fee over MAX_AMOUNT with a nonce already used',
    setup: async (h) => {
      await h.connectBlock(childBlock(h.tip, [transfer(A, B.address, 10n, 0n)]));
    },
    block: (h) => childBlock(h.tip, [transfer(A, B.address, MAX_AMOUNT, 0n, 1n)]),
    error: TxRuleError, code: 'TX_BAD_NONCE', txIndex: 0, banScore: 0,
  },
  {
    name: 'a credit that would take the recipient over MAX_AMOUNT',
    params: overflowParams(),
    setup: aMinesABlock,
    block: (h) => childBlock(h.tip, [transfer(A, RICH.address, HEADROOM + 1n, 0n)], { reward: BIG_REWARD }),
    error: TxRuleError, code: 'TX_BALANCE_OVERFLOW', txIndex: 0, banScore: 0,
  },
  // --- block rules ---
  {
    name: 'a Merkle root of random bytes',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n)], { merkleRoot: sha256(Uint8Array.of(7)) }),
    error: BlockRuleError, code: 'BLOCK_BAD_MERKLE_ROOT', banScore: 100,
  },
  {
    name: 'a Merkle root over the same txs in another order',
    block: (h) => {
      const txs = [transfer(A, B.address, 10n, 0n), transfer(B, C.address, 10n, 0n)];
      const height = h.tip.height + 1;
      const root = computeMerkleRoot(height, { to: MINER.address, amount: 52n }, [txs[1]!, txs[0]!]);
      return childBlock(h.tip, txs, { merkleRoot: root });
    },
    error: BlockRuleError, code: 'BLOCK_BAD_MERKLE_ROOT', banScore: 100,
  },
  {
    name: 'a Merkle root that commits to another coinbase recipient',
    block: (h) => {
      const txs = [transfer(A, B.address, 10n, 0n)];
      const root = computeMerkleRoot(h.tip.height + 1, { to: A.address, amount: 51n }, txs);
      return childBlock(h.tip, txs, { merkleRoot: root });
    },
    error: BlockRuleError, code: 'BLOCK_BAD_MERKLE_ROOT', banScore: 100,
  },
  {
    name: 'a block one transaction over maxBlockBytes',
    params: { maxBlockBytes: HEADER_BYTES + COINBASE_BYTES + 1 + TX_BYTES },
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n), transfer(A, B.address, 10n, 1n)]),
    error: BlockRuleError, code: 'BLOCK_TOO_LARGE', banScore: 100,
  },
  {
    // Transactions have a fixed size, so only a limit that is not a whole number of them finds a limit off by one.
    name: 'a block one byte over maxBlockBytes',
    params: { maxBlockBytes: HEADER_BYTES + COINBASE_BYTES + 1 + TX_BYTES - 1 },
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n)]),
    error: BlockRuleError, code: 'BLOCK_TOO_LARGE', banScore: 100,
  },
  {
    name: 'a block one transaction over maxBlockTxs',
    params: { maxBlockTxs: 2 },
    block: (h) => childBlock(h.tip, [0n, 1n, 2n].map((n) => transfer(A, B.address, 10n, n))),
    error: BlockRuleError, code: 'BLOCK_TOO_MANY_TXS', banScore: 100,
  },
  {
    // The Merkle root is checked first: a body its header does not commit to says nothing about
    // the header, however it breaks the other rules (a sync blames the header's sender for those).
    name: 'a body over maxBlockTxs that its header does not commit to',
    params: { maxBlockTxs: 2 },
    block: (h) => childBlock(h.tip, [0n, 1n, 2n].map((n) => transfer(A, B.address, 10n, n)), { merkleRoot: new Uint8Array(32) }),
    error: BlockRuleError, code: 'BLOCK_BAD_MERKLE_ROOT', banScore: 100,
  },
  {
    name: 'a body over maxBlockBytes that its header does not commit to',
    params: { maxBlockBytes: HEADER_BYTES + COINBASE_BYTES + 1 + TX_BYTES },
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n), transfer(A, B.address, 10n, 1n)], { merkleRoot: new Uint8Array(32) }),
    error: BlockRuleError, code: 'BLOCK_BAD_MERKLE_ROOT', banScore: 100,
  },
  {
    name: 'any transaction where maxBlockTxs is 0',
    params: { maxBlockTxs: 0 },
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n)]),
    error: BlockRuleError, code: 'BLOCK_TOO_MANY_TXS', banScore: 100,
  },
  {
    name: 'a coinbase paying one unit too much',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n, 3n)], { coinbaseAmount: 54n }),
    error: BlockRuleError, code: 'BLOCK_BAD_COINBASE', banScore: 100,
  },
  {
    name: 'a coinbase paying one unit too little',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n, 3n)], { coinbaseAmount: 52n }),
    error: BlockRuleError, code: 'BLOCK_BAD_COINBASE', banScore: 100,
  },
  {
    name: 'a coinbase that leaves out the fees',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n, 3n), transfer(B, A.address, 10n, 0n, 4n)], { coinbaseAmount: 50n }),
    error: BlockRuleError, code: 'BLOCK_BAD_COINBASE', banScore: 100,
  },
  {
    name: 'a coinbase that would take the miner over MAX_AMOUNT',
    params: overflowParams(),
    setup: async (h) => {
      await aMinesABlock(h);
      await h.connectBlock(childBlock(h.tip, [transfer(A, RICH.address, HEADROOM, 0n, 0n)], { reward: BIG_REWARD }));
    },
    block: (h) => childBlock(h.tip, [], { miner: RICH.address, reward: BIG_REWARD }),
    error: BlockRuleError, code: 'BLOCK_BAD_COINBASE', banScore: 0,
  },
  {
    name: 'the same transaction twice',
    block: (h) => {
      const tx = transfer(A, B.address, 10n, 0n);
      return childBlock(h.tip, [tx, tx]);
    },
    error: BlockRuleError, code: 'BLOCK_DUPLICATE_TX', banScore: 100,
  },
  {
    name: 'the same transaction twice, not adjacent',
    block: (h) => {
      const tx = transfer(A, B.address, 10n, 0n);
      return childBlock(h.tip, [tx, transfer(B, A.address, 1n, 0n), tx]);
    },
    error: BlockRuleError, code: 'BLOCK_DUPLICATE_TX', banScore: 100,
  },
  {
    name: 'a parent that is not the tip (unknown hash)',
    block: (h) => childBlock({ hash: sha256(Uint8Array.of(1)), height: h.tip.height }, []),
    error: BlockRuleError, code: 'BLOCK_BAD_PARENT', banScore: 0,
  },
  {
    name: 'a parent that is not the tip (the tip\'s own parent)',
    setup: async (h) => {
      await h.connectBlock(childBlock(h.tip, []));
    },
    block: (h) => childBlock({ hash: h.db.genesis.header.hash, height: 0 }, [], { miner: A.address }),
    error: BlockRuleError, code: 'BLOCK_BAD_PARENT', banScore: 0,
  },
  {
    name: 'a height one too high',
    block: (h) => childBlock(h.tip, [], { height: h.tip.height + 2 }),
    error: BlockRuleError, code: 'BLOCK_BAD_HEIGHT', banScore: 100,
  },
  {
    name: 'a height equal to the parent\'s',
    block: (h) => childBlock(h.tip, [], { height: h.tip.height }),
    error: BlockRuleError, code: 'BLOCK_BAD_HEIGHT', banScore: 100,
  },
  {
    name: 'a valid body with a state root its transactions do not leave',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n)], { stateRoot: sha256(Uint8Array.of(9)) }),
    error: BlockRuleError, code: 'BLOCK_BAD_STATE_ROOT', banScore: 100,
  },
  {
    name: "a valid body carrying its parent's state root forward (a stale root)",
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n)], { stateRoot: stateAfter(h.tip)!.root }),
    error: BlockRuleError, code: 'BLOCK_BAD_STATE_ROOT', banScore: 100,
  },
  {
    name: 'a block version 1 (before the state root)',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n)], { version: 1 }),
    error: BlockRuleError, code: 'BLOCK_BAD_VERSION', banScore: 100,
  },
  {
    name: 'a block version 2 (inner nodes of the state tree hashed with their prefix)',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n)], { version: 2 }),
    error: BlockRuleError, code: 'BLOCK_BAD_VERSION', banScore: 100,
  },
  {
    name: 'block version 4',
    block: (h) => childBlock(h.tip, [transfer(A, B.address, 10n, 0n)], { version: 4 }),
    error: BlockRuleError, code: 'BLOCK_BAD_VERSION', banScore: 100,
  },
];

async function allAccounts(db: ChainDB): Promise<string[]> {
  const out: string[] = [];
  for await (const { address, account } of db.accounts()) out.push(`${toHex(address)}=${toHex(encodeAccount(account))}`);
  return out;
}

async function allNodes(db: ChainDB): Promise<string[]> {
  await db.flushed();
  const out: string[] = [];
  for await (const { id, node } of db.stateNodes()) out.push(`${toHex(Buffer.from(id, 'latin1'))}=${toHex(node)}`);
  return out;
}

function touched(block: Block): Uint8Array[] {
  return [...block.txs.flatMap((tx) => [tx.from, tx.to]), block.coinbase.to];
}

describe('rules: each invalid block is refused with its own error and writes nothing', () => {
  const store = useTempStore();
  let db: ChainDB | undefined;

  it('every row has its own code, and the table covers every rule the ledger enforces at connection', () => {
    const codes = new Set(ROWS.map((r) => r.code));
    for (const code of [
      'TX_BAD_SIGNATURE', 'TX_SENDER_MISMATCH', 'TX_WRONG_CHAIN', 'TX_BAD_NONCE', 'TX_INSUFFICIENT_BALANCE',
      'TX_AMOUNT_OVER_LIMIT', 'TX_BALANCE_OVERFLOW', 'BLOCK_BAD_MERKLE_ROOT', 'BLOCK_TOO_LARGE', 'BLOCK_TOO_MANY_TXS',
      'BLOCK_BAD_COINBASE', 'BLOCK_DUPLICATE_TX', 'BLOCK_BAD_PARENT', 'BLOCK_BAD_HEIGHT', 'BLOCK_BAD_VERSION',
      'BLOCK_BAD_STATE_ROOT',
    ]) {
      assert.ok(codes.has(code), `no row for ${code}`);
    }
  });

  for (const row of ROWS) {
    it(`${row.code}: ${row.name}`, async () => {
      db = await store.open(testParams(row.params));
      const h = await TipHarness.open(db);
      await row.setup?.(h);
      const tipBefore = h.tip;
      const accountsBefore = await allAccounts(db);
      const block = row.block(h);
      const touchedBefore = new Map<string, Account | undefined>();
      for (const address of touched(block)) touchedBefore.set(toHex(address), await db.getAccount(address));
      const locationsBefore = await Promise.all(block.txs.map((tx) => db!.getTxLocation(tx.id)));
      const treeBefore = await allNodes(db);

      await assert.rejects(h.connectBlock(block), (err: unknown) => {
        assert.ok(err instanceof row.error, `expected ${row.error.name}, got ${String(err)}`);
        assert.equal(err.code, row.code, err.message);
        assert.equal(err.banScore, row.banScore, `banScore of ${row.code}`);
        if (err instanceof TxRuleError) assert.equal(err.txIndex, row.txIndex, 'txIndex');
        return true;
      });

      assert.deepEqual(h.tip, tipBefore);
      assert.equal(await db.hasBlock(block.header.hash), false);
      for (const address of touched(block)) assert.deepEqual(await db.getAccount(address), touchedBefore.get(toHex(address)));
      assert.deepEqual(await Promise.all(block.txs.map((tx) => db!.getTxLocation(tx.id))), locationsBefore);
      assert.deepEqual(await allAccounts(db), accountsBefore);
      assert.deepEqual(await allNodes(db), treeBefore, 'the state tree is untouched');
      // The store still moves: a valid child of the unchanged tip connects.
      await h.connectBlock(childBlock(h.tip, [], { reward: row.params?.reward }));
      await auditChainDB(db);
    });
  }
});

interface GoodRow {
  readonly name: string;
  readonly params?: Partial<ChainParams>;
  readonly setup?: (h: TipHarness) => Promise<void>;
  readonly txs: (h: TipHarness) => Transaction[];
  readonly reward?: bigint;
  /** Who the coinbase pays (MINER unless given). */
  readonly miner?: TestKey;
  /** Accounts after the block (relative to the store before it when a function). */
  readonly expect: ReadonlyArray<{ readonly key: TestKey; readonly account: Account | undefined }>;
}

const GOOD: GoodRow[] = [
  {
    name: 'a payment to oneself costs only the fee',
    txs: () => [transfer(A, A.address, 500n, 0n, 3n)],
    expect: [{ key: A, account: { balance: START - 3n, nonce: 1n } }],
  },
  {
    name: 'a payment to oneself of the whole balance less the fee',
    txs: () => [transfer(A, A.address, START - 1n, 0n, 1n)],
    expect: [{ key: A, account: { balance: START - 1n, nonce: 1n } }],
  },
  {
    name: 'a later tx spends what an earlier tx of the same block received',
    txs: () => [transfer(A, FRESH.address, 1000n, 0n, 1n), transfer(FRESH, B.address, 990n, 0n, 10n)],
    expect: [
      { key: A, account: { balance: START - 1001n, nonce: 1n } },
      { key: FRESH, account: { balance: 0n, nonce: 1n } },
      { key: B, account: { balance: START + 990n, nonce: 0n } },
      { key: MINER, account: { balance: 50n + 11n, nonce: 0n } },
    ],
  },
  {
    name: 'amount + fee exactly equal to the balance',
    txs: () => [transfer(A, B.address, START - 2n, 0n, 2n)],
    expect: [
      { key: A, account: { balance: 0n, nonce: 1n } },
      { key: B, account: { balance: 2n * START - 2n, nonce: 0n } },
    ],
  },
  {
    name: 'a whole balance sent as fee',
    txs: () => [transfer(A, B.address, 0n, 0n, START)],
    expect: [
      { key: A, account: { balance: 0n, nonce: 1n } },
      { key: MINER, account: { balance: 50n + START, nonce: 0n } },
    ],
  },
  {
    name: 'a credit that brings the recipient to exactly MAX_AMOUNT',
    params: overflowParams(),
    setup: aMinesABlock,
    reward: BIG_REWARD,
    txs: () => [transfer(A, RICH.address, HEADROOM, 0n, 0n)],
    expect: [{ key: RICH, account: { balance: MAX_AMOUNT, nonce: 0n } }],
  },
  {
    // TX_AMOUNT_OVER_LIMIT is for a sum above the cap: one at it is a valid payment.
    name: 'amount + fee exactly MAX_AMOUNT, from a balance of MAX_AMOUNT',
    params: overflowParams(),
    setup: async (h) => {
      await aMinesABlock(h);
      await h.connectBlock(childBlock(h.tip, [transfer(A, RICH.address, HEADROOM, 0n, 0n)], { reward: BIG_REWARD }));
    },
    reward: BIG_REWARD,
    txs: () => [transfer(RICH, FRESH.address, MAX_AMOUNT - 1n, 0n, 1n)],
    expect: [
      { key: RICH, account: { balance: 0n, nonce: 1n } },
      { key: FRESH, account: { balance: MAX_AMOUNT - 1n, nonce: 0n } },
    ],
  },
  {
    // The miner's BLOCK_BAD_COINBASE is for a balance above the cap: a coinbase that reaches it is valid.
    name: 'a coinbase that brings the miner to exactly MAX_AMOUNT',
    params: { ...overflowParams(), reward: HEADROOM },
    reward: HEADROOM,
    miner: RICH,
    txs: () => [],
    expect: [{ key: RICH, account: { balance: MAX_AMOUNT, nonce: 0n } }],
  },
  {
    // PROTOCOL.md, Accounts: a block's first touch makes an account, even with an amount of 0.
    name: 'a transfer of 0 to an address with no account makes its account (0, 0)',
    txs: () => [transfer(A, FRESH.address, 0n, 0n, 1n)],
    expect: [
      { key: A, account: { balance: START - 1n, nonce: 1n } },
      { key: FRESH, account: { balance: 0n, nonce: 0n } },
    ],
  },
  {
    name: 'a block of exactly maxBlockBytes',
    params: { maxBlockBytes: HEADER_BYTES + COINBASE_BYTES + 1 + TX_BYTES },
    txs: () => [transfer(A, B.address, 10n, 0n)],
    expect: [{ key: A, account: { balance: START - 11n, nonce: 1n } }],
  },
  {
    name: 'a block of exactly maxBlockTxs',
    params: { maxBlockTxs: 2 },
    txs: () => [transfer(A, B.address, 10n, 0n), transfer(A, B.address, 10n, 1n)],
    expect: [{ key: A, account: { balance: START - 22n, nonce: 2n } }],
  },
];

describe('rules: valid edge cases are accepted', () => {
  const store = useTempStore();
  let db: ChainDB | undefined;

  for (const row of GOOD) {
    it(row.name, async () => {
      db = await store.open(testParams(row.params));
      const h = await TipHarness.open(db);
      await row.setup?.(h);
      const before = await auditChainDB(db);
      const block = childBlock(h.tip, row.txs(h), { reward: row.reward, miner: row.miner?.address });
      await h.connectBlock(block);
      assert.deepEqual(h.tip, { hash: block.header.hash, height: before.height + 1 });
      for (const { key, account } of row.expect) assert.deepEqual(await db.getAccount(key.address), account);
      const after = await auditChainDB(db, { checkSignatures: true });
      assert.equal(after.supply, before.supply + (row.reward ?? 50n));
      // And the block undoes to the same state.
      await h.disconnectTip();
      assert.equal((await auditChainDB(db)).digest, before.digest);
    });
  }
});
