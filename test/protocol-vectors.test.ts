/**
 * docs/PROTOCOL.md is the specification; this suite keeps it true. It parses every `vector` block
 * of the document and recomputes each one with the code in ledger/, checks the field tables
 * against the vectors' bytes, and then recomputes the central vectors a second time from the
 * document's text alone, with node:crypto and nothing of ours, so that the code, the vectors and
 * the prose cannot agree with each other while disagreeing with the spec.
 */
import { TipHarness } from './helpers/tip.ts';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createECDH, createHash, createHmac, createPublicKey, verify as cryptoVerify } from 'node:crypto';
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

const DOC_URL = new URL('../docs/PROTOCOL.md', import.meta.url);
const DOC = readFileSync(DOC_URL, 'utf8');

// ---------------------------------------------------------------------------------------------
// The vector format (docs/PROTOCOL.md, "Test vectors" > "Format")

interface Field {
  readonly key: string;
  /** The inline value, or the indented lines that follow `key:`; comments removed, trimmed. */
  readonly lines: readonly string[];
}

class Vector {
  readonly kind: string;
  readonly name: string;
  readonly line: number;
  private readonly fields: readonly Field[];
  private readonly used = new Set<string>(['kind', 'name']);

  constructor(fields: readonly Field[], line: number) {
    this.fields = fields;
    this.line = line;
    this.kind = this.peekText('kind');
    this.name = this.peekText('name');
  }

  private occurrences(key: string): Field[] {
    return this.fields.filter((f) => f.key === key);
  }

  private only(key: string): Field {
    const found = this.occurrences(key);
    assert.equal(found.length, 1, `${this.name}: expected exactly one "${key}", found ${found.length}`);
    return found[0]!;
  }

  has(key: string): boolean {
    return this.occurrences(key).length > 0;
  }

  peekText(key: string): string {
    const f = this.only(key);
    assert.equal(f.lines.length, 1, `${this.kind ?? 'vector'} "${key}" must be one line`);
    return f.lines[0]!;
  }

  /** A hex field, without marking it used: for other checks that read this vector's bytes. */
  peekHex(key: string): Uint8Array {
    const hex = this.only(key).lines.join('').replace(/\s+/g, '');
    assert.match(hex, /^([0-9a-f]{2})*$/, `${this.name}: "${key}" is not lower-case hex of whole bytes`);
    return new Uint8Array(Buffer.from(hex, 'hex'));
  }

  text(key: string): string {
    this.used.add(key);
    return this.peekText(key);
  }

  hex(key: string): Uint8Array {
    this.used.add(key);
    return this.peekHex(key);
  }

  big(key: string): bigint {
    const s = this.text(key);
    assert.match(s, /^(0|[1-9][0-9]*)$/, `${this.name}: "${key}" is not a decimal integer`);
    return BigInt(s);
  }

  num(key: string): number {
    const v = this.big(key);
    assert.ok(v <= BigInt(Number.MAX_SAFE_INTEGER), `${this.name}: "${key}" is too large for a number`);
    return Number(v);
  }

  /** Every value of a repeatable one-line key, in order. */
  list(key: string): string[] {
    this.used.add(key);
    return this.occurrences(key).map((f) => {
      assert.equal(f.lines.length, 1, `${this.name}: each "${key}" must be one line`);
      return f.lines[0]!;
    });
  }

  /** The lines of a multi-line field, each a list item. */
  items(key: string): readonly string[] {
    this.used.add(key);
    return this.only(key).lines;
  }

  /** Keys in document order, for fields whose interleaving matters (store steps). */
  ordered(keys: readonly string[]): Array<{ key: string; value: string }> {
    for (const k of keys) this.used.add(k);
    return this.fields.filter((f) => keys.includes(f.key)).map((f) => ({ key: f.key, value: f.lines.join(' ') }));
  }

  /** Every field of the vector was checked: a typo or a new field cannot be silently ignored. */
  assertAllUsed(): void {
    const unused = [...new Set(this.fields.map((f) => f.key))].filter((k) => !this.used.has(k));
    assert.deepEqual(unused, [], `${this.name}: fields not checked by any test`);
  }
}

function stripComment(line: string): string {
  return line.replace(/\s+#\s.*$/, '').replace(/^\s*#\s.*$/, '');
}

function parseVectors(doc: string): Vector[] {
  const lines = doc.split('\n');
  const vectors: Vector[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```vector') continue;
    const start = i + 1;
    const fields: Array<{ key: string; lines: string[] }> = [];
    let open: string[] | undefined; // the lines of a field whose `key:` line had no inline value
    for (i++; i < lines.length && lines[i] !== '```'; i++) {
      const raw = stripComment(lines[i]!);
      const keyLine = /^([A-Za-z][A-Za-z0-9_]*):(?: (.*))?$/.exec(raw);
      if (keyLine) {
        const inline = (keyLine[2] ?? '').trim();
        const field = { key: keyLine[1]!, lines: inline === '' ? [] : [inline] };
        fields.push(field);
        open = inline === '' ? field.lines : undefined;
      } else if (/^\s+\S/.test(raw)) {
        assert.ok(open, `PROTOCOL.md line ${i + 1}: indented line outside a multi-line field`);
        open.push(raw.trim());
      } else {
        assert.equal(raw.trim(), '', `PROTOCOL.md line ${i + 1}: not "key: value": ${lines[i]}`);
      }
    }
    assert.ok(i < lines.length, `PROTOCOL.md line ${start}: vector block never closed`);
    vectors.push(new Vector(fields, start));
  }
  return vectors;
}

const VECTORS = parseVectors(DOC);
const BY_NAME = new Map(VECTORS.map((v) => [v.name, v]));

function named(name: string): Vector {
  const v = BY_NAME.get(name);
  assert.ok(v, `no vector named "${name}"`);
  return v;
}

function ofKind(kind: string): Vector[] {
  return VECTORS.filter((v) => v.kind === kind);
}

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

// ---------------------------------------------------------------------------------------------
// Field tables: `<!-- layout: NAME -->` followed by | offset | size | field | type | rule |

interface Row {
  readonly offset: number;
  readonly size: number;
  readonly field: string;
  readonly type: string;
}

function layoutTable(name: string): Row[] {
  const marker = `<!-- layout: ${name} -->`;
  const at = DOC.indexOf(marker);
  assert.ok(at >= 0, `PROTOCOL.md has no ${marker}`);
  const lines = DOC.slice(at + marker.length).split('\n').slice(1);
  assert.match(lines[0] ?? '', /^\| offset \| size \| field \| type \| rule \|$/);
  const rows: Row[] = [];
  for (const line of lines.slice(2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    rows.push({ offset: Number(cells[0]), size: Number(cells[1]), field: cells[2]!, type: cells[3]! });
  }
  return rows;
}

const TABLES: Record<string, { total: number; sources: () => Array<{ bytes: Uint8Array; v: Vector; key: (field: string) => string }> }> = {
  'unsigned-transaction': {
    total: UNSIGNED_TX_BYTES,
    sources: () => ofKind('transaction').map((v) => ({ bytes: v.peekHex('unsigned'), v, key: (f) => f })),
  },
  transaction: {
    total: TX_BYTES,
    sources: () => ofKind('transaction').map((v) => ({ bytes: v.peekHex('signed'), v, key: (f) => f })),
  },
  header: {
    total: HEADER_BYTES,
    sources: () => [
      ...ofKind('header').map((v) => ({ bytes: v.peekHex('encoded'), v, key: (f: string) => f })),
      ...ofKind('block').map((v) => ({ bytes: v.peekHex('encoded').subarray(0, HEADER_BYTES), v, key: (f: string) => f })),
    ],
  },
  coinbase: {
    total: COINBASE_BYTES,
    sources: () =>
      ofKind('block').map((v) => ({
        bytes: v.peekHex('encoded').subarray(HEADER_BYTES, HEADER_BYTES + COINBASE_BYTES),
        v,
        key: (f: string) => `coinbase${f[0]!.toUpperCase()}${f.slice(1)}`,
      })),
  },
  account: {
    total: ACCOUNT_BYTES,
    sources: () => ofKind('account').map((v) => ({ bytes: v.peekHex('encoded'), v, key: (f) => f })),
  },
};

describe('docs/PROTOCOL.md field tables', () => {
  for (const [name, { total, sources }] of Object.entries(TABLES)) {
    it(`${name}: offsets are contiguous, sizes add up to ${total}, and every vector's bytes sit where the table says`, () => {
      const rows = layoutTable(name);
      assert.ok(rows.length >= 2);
      let offset = 0;
      for (const row of rows) {
        assert.equal(row.offset, offset, `${name}.${row.field} offset`);
        assert.ok(Number.isInteger(row.size) && row.size > 0, `${name}.${row.field} size`);
        offset += row.size;
      }
      assert.equal(offset, total);
      const list = sources();
      assert.ok(list.length > 0, `no vector to check the ${name} table against`);
      for (const { bytes, v, key } of list) {
        assert.equal(bytes.length, total);
        for (const row of rows) {
          const slice = bytes.subarray(row.offset, row.offset + row.size);
          const k = key(row.field);
          if (row.type === 'bytes' || row.type === 'u256') {
            assert.equal(hex(slice), hex(v.peekHex(k)), `${v.name}: ${name}.${row.field}`);
          } else {
            const width = { u8: 1, u32: 4, u64: 8 }[row.type];
            assert.equal(width, row.size, `${name}.${row.field}: type ${row.type} with size ${row.size}`);
            assert.equal(bytesToBigInt(slice), BigInt(v.peekText(k)), `${v.name}: ${name}.${row.field}`);
          }
        }
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// A second computation from the spec's text alone: node:crypto and the code below, nothing of ours.

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

function H(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}
const b = (hexText: string) => Buffer.from(hexText, 'hex');
const plainHex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const be = (value: bigint, bytes: number) => Buffer.from(value.toString(16).padStart(bytes * 2, '0'), 'hex');
const int = (bytes: Uint8Array) => BigInt('0x' + (Buffer.from(bytes).toString('hex') || '0'));
function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  base %= mod;
  for (; exp > 0n; exp >>= 1n, base = (base * base) % mod) if (exp & 1n) result = (result * base) % mod;
  return result;
}
function compressedPublicKey(privateKey: Uint8Array): Buffer {
  const ecdh = createECDH('secp256k1');
  ecdh.setPrivateKey(privateKey);
  return ecdh.getPublicKey(null, 'compressed');
}

/** RFC 6979 §3.2 with HMAC-SHA-256, then ECDSA and low S, as "Signatures" describes. */
function rfc6979Sign(hash: Uint8Array, privateKey: Uint8Array): Buffer {
  const d = int(privateKey);
  const z = int(hash) % N;
  const hmac = (key: Buffer, ...parts: Uint8Array[]) => {
    const m = createHmac('sha256', key);
    for (const p of parts) m.update(p);
    return m.digest();
  };
  let v = Buffer.alloc(32, 1);
  let k = Buffer.alloc(32, 0);
  k = hmac(k, v, Buffer.of(0), be(d, 32), be(z, 32));
  v = hmac(k, v);
  k = hmac(k, v, Buffer.of(1), be(d, 32), be(z, 32));
  v = hmac(k, v);
  for (;;) {
    v = hmac(k, v);
    const nonce = int(v);
    if (nonce >= 1n && nonce < N) {
      const r = int(compressedPublicKey(be(nonce, 32)).subarray(1)) % N;
      let s = (modPow(nonce, N - 2n, N) * (z + r * d)) % N;
      if (s > N / 2n) s = N - s;
      if (r !== 0n && s !== 0n) return Buffer.concat([be(r, 32), be(s, 32)]);
    }
    k = hmac(k, v, Buffer.of(0));
    v = hmac(k, v);
  }
}

/** ECDSA with SHA-256 over the message, by OpenSSL: the spec says a Cairn signature is exactly that. */
function opensslVerify(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  const point = createECDH('secp256k1').constructor as unknown as {
    convertKey(key: Uint8Array, curve: string, inEnc: undefined, outEnc: undefined, format: 'uncompressed'): Buffer;
  };
  const full = point.convertKey(publicKey, 'secp256k1', undefined, undefined, 'uncompressed');
  const key = createPublicKey({
    key: { kty: 'EC', crv: 'secp256k1', x: full.subarray(1, 33).toString('base64url'), y: full.subarray(33).toString('base64url') },
    format: 'jwk',
  });
  return cryptoVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature);
}

/** BIP 350 bech32m over 20 bytes, as "Addresses" describes. */
const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
function polymod(values: readonly number[]): number {
  const gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let chk = 1;
  for (const value of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ value;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= gen[i]!;
  }
  return chk >>> 0;
}
const hrpExpand = (hrp: string) => [...[...hrp].map((c) => c.charCodeAt(0) >> 5), 0, ...[...hrp].map((c) => c.charCodeAt(0) & 31)];
function bech32mAddress(address: Uint8Array): string {
  const value = int(address);
  const words = Array.from({ length: 32 }, (_, i) => Number((value >> BigInt(155 - 5 * i)) & 31n));
  const check = polymod([...hrpExpand('cairn'), ...words, 0, 0, 0, 0, 0, 0]) ^ 0x2bc830a3;
  const checksum = Array.from({ length: 6 }, (_, i) => (check >>> (5 * (5 - i))) & 31);
  return 'cairn1' + [...words, ...checksum].map((w) => CHARSET[w]).join('');
}
function bech32mAddressBytes(text: string): Buffer {
  assert.match(text, /^cairn1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{38}$/);
  const data = [...text.slice(6)].map((c) => CHARSET.indexOf(c));
  assert.equal(polymod([...hrpExpand('cairn'), ...data]), 0x2bc830a3);
  const value = data.slice(0, 32).reduce((acc, w) => (acc << 5n) | BigInt(w), 0n);
  return be(value, 20);
}

/** RFC 6962 §2.1, as "The Merkle tree" describes. */
function mth(leaves: readonly Uint8Array[]): Buffer {
  if (leaves.length === 1) return H(Buffer.of(0), leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return H(Buffer.of(1), mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

const u32 = (n: number | bigint) => be(BigInt(n), 4);
const u64 = (n: number | bigint) => be(BigInt(n), 8);
const compactSize = (n: number) => (n < 0xfd ? Buffer.of(n) : assert.fail('only short counts in these vectors'));

function headerBytes(v: Vector): Buffer {
  return Buffer.concat([
    u32(BigInt(v.peekText('version'))),
    u32(BigInt(v.peekText('height'))),
    v.peekHex('prevHash'),
    v.peekHex('merkleRoot'),
    v.peekHex('stateRoot'),
    u64(BigInt(v.peekText('timestamp'))),
    v.peekHex('target'),
    u64(BigInt(v.peekText('nonce'))),
  ]);
}

describe('docs/PROTOCOL.md vectors, recomputed from the spec text with node:crypto only', () => {
  it('the prose states the same constants and genesis hash as the vectors', () => {
    assert.ok(DOC.includes(`n = 0x${N.toString(16)}`));
    assert.ok(DOC.includes(`(n − 1)/2 = 0x${((N - 1n) / 2n).toString(16)}`));
    assert.ok(DOC.includes(`MAX_AMOUNT = 2^63 − 1 = ${2n ** 63n - 1n}`));
    const stated = /its genesis hash is\s+`([0-9a-f]{64})`/.exec(DOC);
    assert.ok(stated, 'the Genesis section states the devnet genesis hash');
    assert.equal(stated[1], plainHex(named('genesis-devnet').peekHex('hash')));
  });

  it('addresses: SHA-256 of the compressed key, bech32m with prefix cairn', () => {
    for (const v of ofKind('address')) {
      const publicKey = compressedPublicKey(v.peekHex('privateKey'));
      assert.equal(publicKey.toString('hex'), plainHex(v.peekHex('publicKey')), v.name);
      const address = H(publicKey).subarray(0, 20);
      assert.equal(address.toString('hex'), plainHex(v.peekHex('addressBytes')), v.name);
      assert.equal(bech32mAddress(address), v.peekText('address'), v.name);
    }
  });

  it('transactions: field layout, sighash, RFC 6979 signature, OpenSSL ECDSA-SHA256 verification, id', () => {
    for (const v of ofKind('transaction')) {
      const privateKey = v.peekHex('privateKey');
      const publicKey = compressedPublicKey(privateKey);
      const unsigned = Buffer.concat([
        Buffer.of(1),
        u32(BigInt(v.peekText('chainId'))),
        H(publicKey).subarray(0, 20),
        v.peekHex('to'),
        u64(BigInt(v.peekText('amount'))),
        u64(BigInt(v.peekText('fee'))),
        u64(BigInt(v.peekText('nonce'))),
      ]);
      assert.equal(unsigned.length, 69);
      assert.equal(unsigned.toString('hex'), plainHex(v.peekHex('unsigned')), v.name);
      const sighash = H(unsigned);
      assert.equal(sighash.toString('hex'), plainHex(v.peekHex('sighash')), v.name);
      const signature = rfc6979Sign(sighash, privateKey);
      assert.equal(signature.toString('hex'), plainHex(v.peekHex('signature')), v.name);
      assert.ok(int(signature.subarray(32)) <= (N - 1n) / 2n, 'low S');
      assert.ok(opensslVerify(unsigned, signature, publicKey), `${v.name}: OpenSSL verifies`);
      const signed = Buffer.concat([unsigned, publicKey, signature]);
      assert.equal(signed.length, 166);
      assert.equal(signed.toString('hex'), plainHex(v.peekHex('signed')), v.name);
      assert.equal(H(signed).toString('hex'), plainHex(v.peekHex('id')), v.name);
    }
  });

  it('headers: big-endian fields, one SHA-256', () => {
    for (const v of ofKind('header')) {
      const bytes = headerBytes(v);
      assert.equal(bytes.toString('hex'), plainHex(v.peekHex('encoded')), v.name);
      assert.equal(H(bytes).toString('hex'), plainHex(v.peekHex('hash')), v.name);
    }
  });

  it('Merkle roots: RFC 6962 over the ids', () => {
    for (const v of ofKind('merkle')) {
      const leaves = v.list('leaf').map(b);
      assert.equal(mth(leaves).toString('hex'), plainHex(v.peekHex('root')), v.name);
    }
  });

  it('blocks: header ‖ coinbase ‖ count ‖ txs, coinbase id with height, root over [coinbase id, tx ids]', () => {
    for (const v of ofKind('block')) {
      const height = BigInt(v.peekText('height'));
      const to = v.peekHex('coinbaseTo');
      const amount = BigInt(v.peekText('coinbaseAmount'));
      const cbid = H(u32(height), to, u64(amount));
      assert.equal(cbid.toString('hex'), plainHex(v.peekHex('coinbaseId')), v.name);
      const txs = (v.has('tx') ? v.list('tx') : []).map((name) => named(name).peekHex('signed'));
      assert.equal(mth([cbid, ...txs.map((t) => H(t))]).toString('hex'), plainHex(v.peekHex('merkleRoot')), v.name);
      const bytes = Buffer.concat([headerBytes(v), to, u64(amount), compactSize(txs.length), ...txs]);
      assert.equal(bytes.toString('hex'), plainHex(v.peekHex('encoded')), v.name);
      assert.equal(H(bytes.subarray(0, 152)).toString('hex'), plainHex(v.peekHex('hash')), v.name);
    }
  });

  it('genesis: the parameter commitment of genesis.json and the genesis hash', () => {
    for (const v of ofKind('genesis')) {
      const g = JSON.parse(readFileSync(new URL(`../${v.peekText('file')}`, import.meta.url), 'utf8')) as {
        name: string;
        chainId: number;
        timestamp: number;
        target: string;
        blockTime: number;
        asertHalfLife: number;
        reward: string;
        unit: string;
        decimals: number;
        limits: { maxBlockBytes: number; maxBlockTxs: number };
        alloc: Record<string, string>;
      };
      const target = be(BigInt(g.target), 32);
      const alloc = Object.entries(g.alloc)
        .map(([text, balance]) => ({ address: bech32mAddressBytes(text), balance: BigInt(balance) }))
        .sort((x, y) => Buffer.compare(x.address, y.address));
      const name = Buffer.from(g.name, 'ascii');
      const params = Buffer.concat([
        Buffer.from('cairn-genesis-v2', 'ascii'),
        compactSize(name.length),
        name,
        u32(g.chainId),
        u64(g.timestamp),
        target,
        u32(g.blockTime),
        u32(g.asertHalfLife),
        u64(BigInt(g.reward)),
        compactSize(g.unit.length),
        Buffer.from(g.unit, 'ascii'),
        Buffer.of(g.decimals),
        u32(g.limits.maxBlockBytes),
        u32(g.limits.maxBlockTxs),
        compactSize(alloc.length),
        ...alloc.flatMap((a) => [a.address, u64(a.balance)]),
      ]);
      assert.equal(params.toString('hex'), plainHex(v.peekHex('params')), v.name);
      const stateRoot = specStateRoot(alloc.map((a) => ({ address: a.address, balance: a.balance, nonce: 0n })));
      const header = Buffer.concat([u32(BigInt(named('constants').peekText('BLOCK_VERSION'))), u32(0), Buffer.alloc(32), H(params), stateRoot, u64(g.timestamp), target, u64(0)]);
      const block = Buffer.concat([header, Buffer.alloc(20), u64(0), Buffer.of(0)]);
      assert.equal(block.toString('hex'), plainHex(v.peekHex('encoded')), v.name);
      assert.equal(H(header).toString('hex'), plainHex(v.peekHex('hash')), v.name);
    }
  });

  it('state roots: R(S, d) over the accounts at H(address), leaves H(00 ‖ key ‖ account), inner nodes H(left ‖ right)', () => {
    for (const v of ofKind('state-root')) {
      const accounts = (v.has('account') ? v.list('account') : []).map(specAccount);
      assert.equal(specStateRoot(accounts).toString('hex'), plainHex(v.peekHex('root')), v.name);
    }
    // The genesis and block-devnet-1 states are the state roots of those blocks.
    assert.equal(plainHex(named('state-root-genesis-devnet').peekHex('root')), plainHex(named('genesis-devnet').peekHex('encoded').subarray(72, 104)));
    assert.equal(plainHex(named('state-root-devnet-1').peekHex('root')), plainHex(named('block-devnet-1').peekHex('stateRoot')));
  });

  it('account proofs: the bitmap, the siblings, the end, folded up to the root', () => {
    for (const v of ofKind('account-proof')) {
      const root = named(v.peekText('state')).peekHex('root');
      const key = H(v.peekHex('address'));
      const p = Buffer.from(v.peekHex('proof'));
      const d = p[0]!;
      let at = 1 + Math.ceil(d / 8);
      const siblings: Buffer[] = [];
      for (let i = 0; i < d; i++) {
        const present = (p[1 + (i >> 3)]! >> (7 - (i % 8))) & 1;
        siblings.push(present ? p.subarray(at, (at += 32)) : Buffer.alloc(32));
      }
      const end = p[at++]!;
      let h: Buffer;
      let proven = 'absent';
      if (end === 0) h = Buffer.alloc(32);
      else if (end === 1) {
        h = H(Buffer.of(0), key, p.subarray(at, at + 16));
        proven = `${int(p.subarray(at, at + 8))} ${int(p.subarray(at + 8, at + 16))}`;
      } else {
        const other = p.subarray(at, at + 32);
        assert.notEqual(other.toString('hex'), key.toString('hex'));
        for (let i = 0; i < d; i++) assert.equal(bitOf(other, i), bitOf(key, i), `${v.name}: the other leaf shares the path`);
        h = H(Buffer.of(0), other, p.subarray(at + 32, at + 48));
      }
      for (let i = d - 1; i >= 0; i--) h = bitOf(key, i) === 0 ? H(h, siblings[i]!) : H(siblings[i]!, h);
      assert.equal(h.toString('hex'), plainHex(root), v.name);
      assert.equal(proven, v.peekText('account'), v.name);
    }
  });

  it("chunk proofs: the chunk's subtree, or the path's end, folded up the position's path to the root", () => {
    for (const v of ofKind('chunk-proof')) {
      const root = named(v.peekText('state')).peekHex('root');
      const pos = Buffer.from(v.peekHex('position'));
      const depth = pos[0]!;
      const prefix = Buffer.concat([pos.subarray(1), Buffer.alloc(32)]).subarray(0, 32);
      const accounts = v.has('account') ? v.list('account').map(specAccount) : [];
      for (const a of accounts) for (let i = 0; i < depth; i++) assert.equal(bitOf(H(a.address), i), bitOf(prefix, i), `${v.name}: an account under the position`);
      const p = Buffer.from(v.peekHex('proof'));
      const j = p[0]!;
      assert.ok(j <= depth, `${v.name}: no deeper than the position`);
      let at = 1 + Math.ceil(j / 8);
      const siblings: Buffer[] = [];
      for (let i = 0; i < j; i++) {
        const present = (p[1 + (i >> 3)]! >> (7 - (i % 8))) & 1;
        siblings.push(present ? p.subarray(at, (at += 32)) : Buffer.alloc(32));
      }
      const end = p[at++]!;
      let h: Buffer;
      if (end === 0) {
        assert.ok(accounts.length > 0 && (accounts.length === 1 || j === depth), v.name);
        h = specSubtreeRoot(accounts, depth);
      } else if (end === 1) {
        assert.equal(accounts.length, 0, v.name);
        h = Buffer.alloc(32);
      } else {
        assert.equal(accounts.length, 0, v.name);
        const other = p.subarray(at, at + 32);
        for (let i = 0; i < j; i++) assert.equal(bitOf(other, i), bitOf(prefix, i), `${v.name}: the other leaf is on the path`);
        assert.ok([...Array(depth).keys()].some((i) => bitOf(other, i) !== bitOf(prefix, i)), `${v.name}: and outside the range`);
        h = H(Buffer.of(0), other, p.subarray(at + 32, at + 48));
      }
      for (let i = j - 1; i >= 0; i--) h = bitOf(prefix, i) === 0 ? H(h, siblings[i]!) : H(siblings[i]!, h);
      assert.equal(h.toString('hex'), plainHex(root), v.name);
    }
  });

  it("transaction proofs: H(00 ‖ id) folded with each hash on its side reaches the header's Merkle root", () => {
    for (const v of ofKind('tx-proof')) {
      const p = Buffer.from(v.peekHex('proof'));
      const tx = p.subarray(0, 166);
      assert.equal(H(tx).toString('hex'), plainHex(named(v.peekText('tx')).peekHex('id')), v.name);
      const n = p[166]!;
      const sides = p.subarray(167, 167 + Math.ceil(n / 8));
      let r = H(Buffer.of(0), H(tx));
      for (let i = 0; i < n; i++) {
        const hash = p.subarray(167 + sides.length + 32 * i, 167 + sides.length + 32 * (i + 1));
        r = (sides[i >> 3]! >> (7 - (i % 8))) & 1 ? H(Buffer.of(1), hash, r) : H(Buffer.of(1), r, hash);
      }
      assert.equal(r.toString('hex'), plainHex(named(v.peekText('block')).peekHex('merkleRoot')), v.name);
    }
  });

  it('store vectors: S holds every leaf, and the inner nodes from STORED_TREE_DEPTH down, at their positions', () => {
    const storedDepth = Number(named('constants').peekText('STORED_TREE_DEPTH'));
    for (const v of ofKind('store')) {
      const entries = v.items('entries').map((line) => line.split(' ') as [string, string]);
      const accounts = entries
        .filter(([k]) => k.startsWith('41'))
        .map(([k, value]) => ({ address: Buffer.from(k.slice(2), 'hex'), balance: BigInt('0x' + value.slice(0, 16)), nonce: BigInt('0x' + value.slice(16)) }));
      const nodes = new Map<string, string>();
      specStateRoot(accounts, nodes);
      const stored = [...nodes].filter(([position, node]) => node.startsWith('00') || parseInt(position.slice(0, 2), 16) >= storedDepth);
      const expected = stored.map(([position, node]) => `53${position} ${node}`).sort();
      assert.deepEqual(entries.filter(([k]) => k.startsWith('53')).map((e) => e.join(' ')), expected, v.name);
    }
  });
});

const bitOf = (key: Uint8Array, i: number) => (key[i >> 3]! >> (7 - (i % 8))) & 1;

function specAccount(line: string): { address: Buffer; balance: bigint; nonce: bigint } {
  const [address, balance, nonce] = line.split(' ') as [string, string, string];
  return { address: Buffer.from(address, 'hex'), balance: BigInt(balance), nonce: BigInt(nonce) };
}

/**
 * "The state tree": R(S, d), keys H(address). With `nodes`, every node by position (depth byte and
 * the key bits in whole bytes, hex) as "Keys and values" lays them out.
 */
function specStateRoot(accounts: readonly { address: Uint8Array; balance: bigint; nonce: bigint }[], nodes?: Map<string, string>): Buffer {
  const entries = accounts.map((a) => ({ key: H(a.address), account: Buffer.concat([u64(a.balance), u64(a.nonce)]) }));
  const R = (set: typeof entries, d: number, bits: string): Buffer => {
    if (set.length === 0) return Buffer.alloc(32);
    const node =
      set.length === 1
        ? Buffer.concat([Buffer.of(0), set[0]!.key, set[0]!.account])
        : Buffer.concat([Buffer.of(1), R(set.filter((e) => bitOf(e.key, d) === 0), d + 1, bits + '0'), R(set.filter((e) => bitOf(e.key, d) === 1), d + 1, bits + '1')]);
    if (nodes) {
      const prefix = Buffer.alloc(Math.ceil(d / 8));
      for (let i = 0; i < d; i++) if (bits[i] === '1') prefix[i >> 3]! |= 0x80 >> i % 8;
      nodes.set(Buffer.concat([Buffer.of(d), prefix]).toString('hex'), node.toString('hex'));
    }
    return set.length === 1 ? H(node) : H(node.subarray(1)); // an inner node's hash leaves out its prefix
  };
  return R(entries, 0, '');
}

/** R(S, d) of accounts whose keys share their first `d` bits: a chunk's subtree ("Range proofs"). */
function specSubtreeRoot(accounts: readonly { address: Uint8Array; balance: bigint; nonce: bigint }[], d: number): Buffer {
  const entries = accounts.map((a) => ({ key: H(a.address), account: Buffer.concat([u64(a.balance), u64(a.nonce)]) }));
  const R = (set: typeof entries, depth: number): Buffer => {
    if (set.length === 0) return Buffer.alloc(32);
    if (set.length === 1) return H(Buffer.of(0), set[0]!.key, set[0]!.account);
    return H(R(set.filter((e) => bitOf(e.key, depth) === 0), depth + 1), R(set.filter((e) => bitOf(e.key, depth) === 1), depth + 1));
  };
  return R(entries, d);
}
