/**
 * docs/PROTOCOL.md's central vectors computed a second time from the document's text alone:
 * node:crypto and the code in this file, nothing of ours but the parser of the vector blocks
 * (helpers/protocol-doc.ts). The code in ledger/ is checked against the same vectors by
 * protocol-vectors.test.ts; both agreeing with the vectors means both agree with the text.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createECDH, createHash, createHmac, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { DOC, named, ofKind, type Vector } from './helpers/protocol-doc.ts';

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
    // The body rules name the block version (a review found them still at an old one).
    assert.ok(DOC.includes(`1. \`header.version = ${named('constants').peekText('BLOCK_VERSION')}\`, else \`BLOCK_BAD_VERSION\``), 'the body rules state the block version of the constants vector');
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

  it('targets: the ASERT formula of "Difficulty" as written, and floor(2^256 / (target + 1)) for the work', () => {
    // The formula's constants are the text's own.
    assert.ok(DOC.includes('factor   = 65536 + ((195766423245049*frac + 971821376*frac^2 + 5127*frac^3 + 2^47) >> 48)'));
    const vectors = ofKind('target');
    assert.ok(vectors.length >= 8);
    for (const v of vectors) {
      const g = JSON.parse(readFileSync(new URL(`../${v.peekText('network')}`, import.meta.url), 'utf8')) as { target: string; blockTime: number; asertHalfLife: number };
      const genesisTarget = BigInt(g.target);
      const h = BigInt(v.peekText('parentHeight'));
      const t = BigInt(v.peekText('parentTimestamp'));
      let target = genesisTarget; // the child of genesis
      if (h > 0n) {
        const t1 = BigInt(v.peekText('block1Timestamp'));
        const blockTime = BigInt(g.blockTime);
        const exponent = ((t - (t1 - blockTime) - blockTime * h) * 65536n) / BigInt(g.asertHalfLife); // BigInt division truncates
        const shifts = exponent >> 16n;
        const frac = exponent & 0xffffn;
        const factor = 65536n + ((195766423245049n * frac + 971821376n * frac ** 2n + 5127n * frac ** 3n + 2n ** 47n) >> 48n);
        const shift = shifts - 16n;
        target = shift > 256n ? 2n ** 256n - 1n : shift >= 0n ? (genesisTarget * factor) << shift : (genesisTarget * factor) >> -shift;
        target = target < 1n ? 1n : target > 2n ** 256n - 1n ? 2n ** 256n - 1n : target;
      }
      assert.equal(be(target, 32).toString('hex'), plainHex(v.peekHex('target')), v.name);
      assert.equal(2n ** 256n / (target + 1n), BigInt(v.peekText('work')), v.name);
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

