/**
 * docs/PROTOCOL.md is the specification; three suites keep it true. This one recomputes every
 * `vector` block of the document with the code in ledger/ (and, for network messages and
 * difficulty, node/ and consensus/: helpers/protocol-wire.ts). protocol-tables.test.ts checks the
 * field tables against the vectors' bytes, and protocol-spec-text.test.ts recomputes the central
 * vectors a second time from the document's text alone, with node:crypto and nothing of ours, so
 * that the code, the vectors and the prose cannot agree with each other while disagreeing with
 * the spec.
 */
import { TipHarness } from './helpers/tip.ts';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Level } from 'level';
import { Reader, Writer, bytesToBigInt, toHex } from '../ledger/bytes.ts';
import { BlockRuleError, DecodeError, TxRuleError, type DecodeErrorCode } from '../ledger/errors.ts';
import { sha256 } from '../ledger/hash.ts';
import { ADDRESS_PREFIX, CURVE_ORDER, addressOf, decodeAddress, encodeAddress, publicKeyOf, verifySignature } from '../ledger/keys.ts';
import { MAX_AMOUNT } from '../ledger/amount.ts';
import {
  TX_BYTES,
  TX_VERSION,
  UNSIGNED_TX_BYTES,
  checkTxSignature,
  decodeTransaction,
  encodeUnsignedTransaction,
  signTransaction,
} from '../ledger/transaction.ts';
import {
  BLOCK_VERSION,
  COINBASE_BYTES,
  HEADER_BYTES,
  MAX_BLOCK_BYTES_LIMIT,
  checkBlockBody,
  coinbaseId,
  computeMerkleRoot,
  decodeBlock,
  decodeHeader,
  makeBlock,
  makeHeader,
  type HeaderFields,
} from '../ledger/block.ts';
import { merkleRoot } from '../ledger/merkle.ts';
import { encodeParams, genesisBlock, parseGenesis, type ChainParams } from '../ledger/genesis.ts';
import { ACCOUNT_BYTES, applyBlock, decodeAccount, decodeUndo, encodeAccount, encodeUndo, type UndoRecord } from '../ledger/state.ts';
import { MemoryAccounts, stateDigest } from '../ledger/audit.ts';
import { layout } from '../ledger/layout.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { STORED_TREE_DEPTH } from '../ledger/tree-store.ts';
import { compareKeys, positionIdOfBytes, stateKey, type TreeNodeReader, type TreeWrite } from '../ledger/smt.ts';
import { updateTree } from '../ledger/smt-update.ts';
import { decodeAccountProof, encodeAccountProof, proveAccount, verifyAccountProof } from '../ledger/smt-proof.ts';
import { decodeTxProof, encodeTxProof, proveTransaction, verifyTxProof } from '../ledger/tx-proof.ts';
import { encodeChunkProof, keyUnder, proveChunk, readChunkPosition, readChunkProof, verifyChunk } from '../ledger/smt-range.ts';
import { tempDir } from './helpers/fixtures.ts';
import { BY_NAME, DOC, VECTORS, named, ofKind, type Vector } from './helpers/protocol-doc.ts';
import { MESSAGE_NAMES, WIRE_CHECKS, WIRE_DECODERS } from './helpers/protocol-wire.ts';

// ---------------------------------------------------------------------------------------------
// Helpers for the checks

const paramsCache = new Map<string, ChainParams>();
function network(v: Vector): ChainParams {
  const file = v.text('network');
  let p = paramsCache.get(file);
  if (!p) {
    assert.match(file, /^[a-z0-9-]+\.json$/, 'network must name a file at the repository root');
    p = parseGenesis(readFileSync(new URL(`../${file}`, import.meta.url), 'utf8'));
    paramsCache.set(file, p);
  }
  return p;
}

const hex = toHex;

function expectError(run: () => unknown, cls: new (...args: never[]) => Error, code: string, name: string): void {
  let thrown: unknown;
  try {
    run();
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown !== undefined, `${name}: expected ${cls.name} ${code}, but nothing was thrown`);
  assert.ok(thrown instanceof cls, `${name}: expected ${cls.name} ${code}, got ${String(thrown)}`);
  assert.equal((thrown as { code?: string }).code, code, `${name}: ${(thrown as Error).message}`);
}

function headerFields(v: Vector): HeaderFields {
  return {
    version: v.num('version'),
    height: v.num('height'),
    prevHash: v.hex('prevHash'),
    merkleRoot: v.hex('merkleRoot'),
    stateRoot: v.hex('stateRoot'),
    timestamp: v.num('timestamp'),
    target: bytesToBigInt(v.hex('target')),
    nonce: v.big('nonce'),
  };
}

function assertHeaderFields(actual: HeaderFields, expected: HeaderFields): void {
  assert.equal(actual.version, expected.version);
  assert.equal(actual.height, expected.height);
  assert.equal(hex(actual.prevHash), hex(expected.prevHash));
  assert.equal(hex(actual.merkleRoot), hex(expected.merkleRoot));
  assert.equal(hex(actual.stateRoot), hex(expected.stateRoot));
  assert.equal(actual.timestamp, expected.timestamp);
  assert.equal(actual.target, expected.target);
  assert.equal(actual.nonce, expected.nonce);
}

/** `address balance nonce` or `address absent`. */
function parseAccountLine(line: string): { address: string; account: { balance: bigint; nonce: bigint } | undefined } {
  const m = /^([0-9a-f]{40}) (?:(absent)|(0|[1-9][0-9]*) (0|[1-9][0-9]*))$/.exec(line);
  assert.ok(m, `not "address balance nonce" or "address absent": ${line}`);
  return { address: m[1]!, account: m[2] ? undefined : { balance: BigInt(m[3]!), nonce: BigInt(m[4]!) } };
}

/** A state-root vector's accounts (`address balance nonce` lines; none for the empty state). */
function stateAccounts(v: Vector): Array<{ address: Uint8Array; account: { balance: bigint; nonce: bigint } }> {
  const lines = v.list('account');
  return lines.map((line) => {
    const { address, account } = parseAccountLine(line);
    assert.ok(account, `${v.name}: an account line must have a balance and a nonce`);
    return { address: new Uint8Array(Buffer.from(address, 'hex')), account };
  });
}

/** The store's side of the tree in a Map (position → node). */
class MapTree implements TreeNodeReader {
  readonly nodes = new Map<string, Uint8Array>();
  async readNodes(ids: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    return ids.map((id) => this.nodes.get(id));
  }
  apply(writes: readonly TreeWrite[]): void {
    for (const w of writes) {
      if (w.node) this.nodes.set(w.id, w.node);
      else this.nodes.delete(w.id);
    }
  }
}

/** Applies a block vector to the genesis state of its network, with the project's state code. */
async function applyToGenesis(params: ChainParams, blockName: string) {
  const state = new MemoryAccounts();
  for (const a of params.alloc) state.set(a.address, { balance: a.balance, nonce: 0n });
  return applyBlock(state, decodeBlock(named(blockName).peekHex('encoded')), params);
}

// ---------------------------------------------------------------------------------------------
// Checks against ledger/, one per kind

const DECODERS: Record<string, (bytes: Uint8Array) => unknown> = {
  transaction: decodeTransaction,
  header: decodeHeader,
  block: decodeBlock,
  account: decodeAccount,
  undo: decodeUndo,
  'account-proof': decodeAccountProof,
  'tx-proof': decodeTxProof,
  varint: (bytes) => {
    const r = new Reader(bytes);
    r.varint();
    r.end('varint');
  },
  ...WIRE_DECODERS,
};

const CHECKS: Record<string, (v: Vector) => void | Promise<void>> = {
  constants(v) {
    assert.equal(v.big('MAX_AMOUNT'), MAX_AMOUNT);
    assert.equal(bytesToBigInt(v.hex('CURVE_ORDER')), CURVE_ORDER);
    assert.equal(v.num('TX_VERSION'), TX_VERSION);
    assert.equal(v.num('BLOCK_VERSION'), BLOCK_VERSION);
    assert.equal(v.num('UNSIGNED_TX_BYTES'), UNSIGNED_TX_BYTES);
    assert.equal(v.num('TX_BYTES'), TX_BYTES);
    assert.equal(v.num('HEADER_BYTES'), HEADER_BYTES);
    assert.equal(v.num('COINBASE_BYTES'), COINBASE_BYTES);
    assert.equal(v.num('ACCOUNT_BYTES'), ACCOUNT_BYTES);
    assert.equal(v.num('MAX_BLOCK_BYTES_LIMIT'), MAX_BLOCK_BYTES_LIMIT);
    assert.equal(v.text('ADDRESS_PREFIX'), ADDRESS_PREFIX);
    assert.equal(v.num('STORED_TREE_DEPTH'), STORED_TREE_DEPTH);
  },

  async 'state-root'(v) {
    const accounts = stateAccounts(v);
    const tree = new MapTree();
    const update = await updateTree(tree, accounts.map((a) => ({ key: stateKey(a.address), account: a.account })));
    tree.apply(update.writes);
    assert.equal(hex(update.root), hex(v.hex('root')));
  },

  async 'account-proof'(v) {
    const state = named(v.text('state'));
    const tree = new MapTree();
    tree.apply((await updateTree(tree, stateAccounts(state).map((a) => ({ key: stateKey(a.address), account: a.account })))).writes);
    const address = v.hex('address');
    const proof = await proveAccount(tree, address);
    assert.equal(hex(proof), hex(v.hex('proof')));
    assert.deepEqual(encodeAccountProof(decodeAccountProof(proof)), proof);
    const account = verifyAccountProof(state.peekHex('root'), address, proof);
    const expected = v.text('account');
    assert.equal(account ? `${account.balance} ${account.nonce}` : 'absent', expected);
  },

  async 'chunk-proof'(v) {
    const state = named(v.text('state'));
    const tree = new MapTree();
    tree.apply((await updateTree(tree, stateAccounts(state).map((a) => ({ key: stateKey(a.address), account: a.account })))).writes);
    const position = readChunkPosition(new Reader(v.hex('position')));
    const proof = await proveChunk(tree, position);
    assert.equal(hex(encodeChunkProof(proof)), hex(v.hex('proof')));
    const expected = v.has('account') ? stateAccounts(v) : [];
    const under = stateAccounts(state)
      .map((a) => ({ ...a, key: stateKey(a.address) }))
      .filter((a) => keyUnder(a.key, position))
      .sort((a, b) => compareKeys(a.key, b.key));
    assert.deepEqual(under.map((a) => hex(a.address)), expected.map((a) => hex(a.address)), `${v.name}: the accounts under the position, in key order`);
    const leaves = verifyChunk(state.peekHex('root'), position, expected, readChunkProof(new Reader(v.hex('proof'))));
    assert.equal(leaves.length, expected.length);
  },

  'tx-proof'(v) {
    const block = decodeBlock(named(v.text('block')).peekHex('encoded'));
    const txId = hex(named(v.text('tx')).peekHex('id'));
    const position = block.txs.findIndex((tx) => hex(tx.id) === txId);
    assert.ok(position >= 0, `${v.name}: the transaction is not in the block`);
    const proof = encodeTxProof(proveTransaction(block, position));
    assert.equal(hex(proof), hex(v.hex('proof')));
    assert.deepEqual(encodeTxProof(decodeTxProof(proof)), proof);
    assert.equal(hex(verifyTxProof(block.header, proof).tx.id), txId);
  },

  varint(v) {
    const value = v.num('value');
    const encoded = v.hex('encoded');
    assert.equal(hex(new Writer().varint(value).finish()), hex(encoded));
    const r = new Reader(encoded);
    assert.equal(r.varint(), value);
    r.end('varint');
  },

  address(v) {
    const publicKey = publicKeyOf(v.hex('privateKey'));
    assert.equal(hex(publicKey), hex(v.hex('publicKey')));
    const address = addressOf(publicKey);
    assert.equal(hex(address), hex(v.hex('addressBytes')));
    assert.equal(encodeAddress(address), v.text('address'));
    assert.equal(hex(decodeAddress(v.text('address'))), hex(address));
  },

  transaction(v) {
    assert.equal(v.num('version'), TX_VERSION);
    const fields = { chainId: v.num('chainId'), to: v.hex('to'), amount: v.big('amount'), fee: v.big('fee'), nonce: v.big('nonce') };
    const tx = signTransaction(fields, v.hex('privateKey'));
    assert.equal(hex(tx.publicKey), hex(v.hex('publicKey')));
    assert.equal(hex(tx.from), hex(v.hex('from')));
    assert.equal(hex(encodeUnsignedTransaction(tx)), hex(v.hex('unsigned')));
    assert.equal(hex(tx.sighash), hex(v.hex('sighash')));
    assert.equal(hex(tx.signature), hex(v.hex('signature')), 'signatures are deterministic (RFC 6979)');
    assert.equal(hex(tx.bytes), hex(v.hex('signed')));
    assert.equal(hex(tx.id), hex(v.hex('id')));

    const decoded = decodeTransaction(v.hex('signed'));
    assert.equal(decoded.chainId, fields.chainId);
    assert.equal(hex(decoded.from), hex(tx.from));
    assert.equal(hex(decoded.to), hex(fields.to));
    assert.equal(decoded.amount, fields.amount);
    assert.equal(decoded.fee, fields.fee);
    assert.equal(decoded.nonce, fields.nonce);
    assert.equal(hex(decoded.publicKey), hex(tx.publicKey));
    assert.equal(hex(decoded.signature), hex(tx.signature));
    assert.equal(hex(decoded.sighash), hex(tx.sighash));
    assert.equal(hex(decoded.id), hex(tx.id));
    checkTxSignature(decoded);
    assert.ok(verifySignature(decoded.signature, decoded.sighash, decoded.publicKey));
  },

  header(v) {
    const fields = headerFields(v);
    const header = makeHeader(fields);
    assert.equal(hex(header.bytes), hex(v.hex('encoded')));
    assert.equal(hex(header.hash), hex(v.hex('hash')));
    const decoded = decodeHeader(v.hex('encoded'));
    assertHeaderFields(decoded, fields);
    assert.equal(hex(decoded.hash), hex(header.hash));
  },

  merkle(v) {
    const leaves = v.list('leaf').map((l) => new Uint8Array(Buffer.from(l, 'hex')));
    assert.ok(leaves.every((l) => l.length === 32));
    assert.equal(hex(merkleRoot(leaves)), hex(v.hex('root')));
  },

  block(v) {
    const params = network(v);
    const fields = headerFields(v);
    const coinbase = { to: v.hex('coinbaseTo'), amount: v.big('coinbaseAmount') };
    const txs = (v.has('tx') ? v.list('tx') : []).map((name) => decodeTransaction(named(name).peekHex('signed')));
    assert.equal(hex(coinbaseId(fields.height, coinbase)), hex(v.hex('coinbaseId')));
    assert.equal(hex(computeMerkleRoot(fields.height, coinbase, txs)), hex(fields.merkleRoot));
    const block = makeBlock(makeHeader(fields), coinbase, txs);
    assert.equal(hex(block.bytes), hex(v.hex('encoded')));
    assert.equal(hex(block.header.hash), hex(v.hex('hash')));

    const decoded = decodeBlock(v.hex('encoded'));
    assertHeaderFields(decoded.header, fields);
    assert.equal(hex(decoded.coinbase.to), hex(coinbase.to));
    assert.equal(decoded.coinbase.amount, coinbase.amount);
    assert.deepEqual(decoded.txs.map((t) => hex(t.id)), txs.map((t) => hex(t.id)));
    checkBlockBody(decoded, params);
    assert.ok(bytesToBigInt(decoded.header.hash) <= decoded.header.target, 'the block vectors are mined');
  },

  genesis(v) {
    const file = v.text('file');
    assert.match(file, /^[a-z0-9-]+\.json$/);
    const params = parseGenesis(readFileSync(new URL(`../${file}`, import.meta.url), 'utf8'));
    const encoded = encodeParams(params);
    assert.equal(hex(encoded), hex(v.hex('params')));
    assert.equal(hex(sha256(encoded)), hex(v.hex('paramsHash')));
    const block = genesisBlock(params);
    assert.equal(hex(block.bytes), hex(v.hex('encoded')));
    assert.equal(hex(block.header.hash), hex(v.hex('hash')));
    assert.equal(hex(decodeBlock(block.bytes).header.hash), hex(block.header.hash));
  },

  account(v) {
    const account = { balance: v.big('balance'), nonce: v.big('nonce') };
    assert.equal(hex(encodeAccount(account)), hex(v.hex('encoded')));
    assert.deepEqual(decodeAccount(v.hex('encoded')), account);
  },

  async undo(v) {
    const records: UndoRecord[] = v.list('record').map((line) => {
      const { address, account } = parseAccountLine(line);
      return { address: new Uint8Array(Buffer.from(address, 'hex')), previous: account };
    });
    assert.equal(hex(encodeUndo(records)), hex(v.hex('encoded')));
    assert.deepEqual(decodeUndo(v.hex('encoded')), records);
    const effects = await applyToGenesis(network(v), v.text('block'));
    assert.equal(hex(encodeUndo(effects.undo)), hex(v.hex('encoded')));
  },

  async state(v) {
    const effects = await applyToGenesis(network(v), v.text('block'));
    const actual = effects.accounts.map((a) => `${hex(a.address)} ${a.account.balance} ${a.account.nonce}`);
    assert.deepEqual(actual, v.list('account'));
  },

  key(v) {
    const name = v.text('key') as keyof typeof layout;
    const entry = layout[name];
    assert.ok(entry !== undefined && name !== 'range' && name !== 'heights', `unknown layout key "${name}"`);
    let key: unknown;
    if (name === 'index') {
      key = layout.index(v.num('height'), v.hex('arg'));
    } else if (typeof entry === 'function') {
      const arg = name === 'height' || name === 'pending' ? v.num('arg') : name === 'stateNode' ? positionIdOfBytes(v.hex('arg')) : v.hex('arg');
      key = (entry as (a: unknown) => Uint8Array)(arg);
    } else {
      key = entry;
    }
    assert.ok(key instanceof Uint8Array);
    assert.equal(hex(key), hex(v.hex('encoded')));
  },

  async store(v) {
    const params = network(v);
    const dir = tempDir('cairn-protocol-');
    try {
      const db = await ChainDB.open(dir.path, params);
      const h = await TipHarness.open(db);
      try {
        for (const step of v.ordered(['connect', 'disconnect'])) {
          const block = decodeBlock(named(step.value).peekHex('encoded'));
          if (step.key === 'connect') {
            await h.connectBlock(block);
          } else {
            const removed = await h.disconnectTip();
            assert.equal(hex(removed.header.hash), hex(block.header.hash), `disconnect: the tip is not ${step.value}`);
          }
        }
        assert.equal(await stateDigest(db), hex(v.hex('stateDigest')));
      } finally {
        await db.close();
      }
      const expected = v.items('entries').map((line) => {
        const m = /^([0-9a-f]+) (@[a-z0-9-]+|[0-9a-f]*)$/.exec(line);
        assert.ok(m, `entry is not "key value": ${line}`);
        const value = m[2]!.startsWith('@') ? hex(named(m[2]!.slice(1)).peekHex('encoded')) : m[2]!;
        return `${m[1]} ${value}`;
      });
      const raw = new Level<Uint8Array, Uint8Array>(dir.path, { keyEncoding: 'view', valueEncoding: 'view' });
      const actual: string[] = [];
      try {
        for await (const [key, value] of raw.iterator()) actual.push(`${hex(key)} ${hex(value)}`);
      } finally {
        await raw.close();
      }
      assert.deepEqual(actual, expected);
    } finally {
      dir.remove();
    }
  },

  malformed(v) {
    const decoder = v.text('decoder');
    const code = v.text('error') as DecodeErrorCode;
    v.text('why');
    if (decoder === 'address') {
      const text = v.text('text');
      expectError(() => decodeAddress(text), DecodeError, code, v.name);
      return;
    }
    const decode = DECODERS[decoder];
    assert.ok(decode, `unknown decoder "${decoder}"`);
    const input = v.hex('input');
    expectError(() => decode(input), DecodeError, code, v.name);
  },

  'tx-rule'(v) {
    v.text('why');
    const tx = decodeTransaction(v.hex('input'));
    expectError(() => checkTxSignature(tx), TxRuleError, v.text('error'), v.name);
  },

  'block-rule'(v) {
    v.text('why');
    const block = decodeBlock(v.hex('input'));
    const params = network(v);
    expectError(() => checkBlockBody(block, params), BlockRuleError, v.text('error'), v.name);
  },

  message: (v) => WIRE_CHECKS.message!(v, network),
  target: (v) => WIRE_CHECKS.target!(v, network),
};

describe('docs/PROTOCOL.md test vectors', () => {
  it('holds every vector the spec promises', () => {
    assert.equal(VECTORS.length, DOC.split('\n').filter((l) => l.startsWith('```vector')).length, 'every vector fence parsed');
    assert.ok(VECTORS.length >= 80, `only ${VECTORS.length} vectors`);
    assert.equal(BY_NAME.size, VECTORS.length, 'vector names are unique');
    for (const v of VECTORS) assert.ok(CHECKS[v.kind], `${v.name}: unknown kind "${v.kind}"`);
    for (const kind of Object.keys(CHECKS)) assert.ok(ofKind(kind).length > 0, `no "${kind}" vector`);

    assert.ok(ofKind('address').length >= 2);
    assert.ok(ofKind('transaction').length >= 2);
    assert.ok(ofKind('block').some((v) => v.has('tx') && v.list('tx').length >= 2), 'a block with a coinbase and two txs');
    const merkleSizes = ofKind('merkle').map((v) => v.list('leaf').length);
    for (const n of [1, 2, 3, 5]) assert.ok(merkleSizes.includes(n), `a Merkle root of ${n} leaves`);
    assert.ok(ofKind('genesis').some((v) => v.peekText('file') === 'genesis.json'), 'the bundled genesis.json');
    const messages = new Set(ofKind('message').map((v) => v.peekText('message')));
    for (const message of MESSAGE_NAMES) assert.ok(messages.has(message), `a message vector for ${message}`);

    const malformed = ofKind('malformed').map((v) => ({ decoder: v.peekText('decoder'), error: v.peekText('error'), name: v.name }));
    const codes: DecodeErrorCode[] = ['DECODE_TRUNCATED', 'DECODE_TRAILING_BYTES', 'DECODE_NON_CANONICAL', 'DECODE_OVER_LIMIT', 'DECODE_BAD_VERSION'];
    for (const code of codes) assert.ok(malformed.some((m) => m.error === code), `a malformed vector for ${code}`);
    for (const decoder of [...Object.keys(DECODERS), 'address']) {
      assert.ok(malformed.some((m) => m.decoder === decoder), `a malformed vector for the ${decoder} decoder`);
    }
    for (const name of [
      'bad-tx-trailing-byte',
      'bad-tx-truncated',
      'bad-block-count-non-minimal',
      'bad-tx-high-s',
      'bad-tx-pubkey-prefix-04',
      'bad-tx-amount-over-max',
      'bad-tx-version-2',
    ]) {
      assert.ok(BY_NAME.has(name), `missing vector ${name}`);
    }
  });

  for (const v of VECTORS) {
    it(`${v.kind} ${v.name} (PROTOCOL.md line ${v.line})`, async () => {
      const check = CHECKS[v.kind];
      assert.ok(check, `unknown kind "${v.kind}"`);
      await check(v);
      v.assertAllUsed();
    });
  }
});

