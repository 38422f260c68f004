/**
 * Every file a node, a light client or the CLI reads that a user, a crash or a bad disk can leave
 * in any state, fuzzed from a sample of what the code itself writes: random byte edits, JSON-aware
 * edits for the JSON files (test/helpers/fuzz.ts), and garbage. Each must be read as what was
 * written, or as what its comments say of a damaged one (passed over, read up to the damage, started
 * over), or refused with its typed error in one line: never a TypeError or RangeError (which the
 * CLI reports as a bug in cairn), a crash, or a datadir that lost anything else.
 * The proof file handed to `cairn verify` is fuzzed in test/proof-file.test.ts.
 *
 * A deeper run by hand: CAIRN_FUZZ_SCALE=30 CAIRN_FUZZ_SEED=11 mocha … test/files-fuzz.test.ts (CI
 * runs scale 1, seed 1207; scale 20 found the saved tip's unchecked anchor, which scale 1 misses).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { GenesisError } from '../ledger/errors.ts';
import { makeHeader, type BlockHeader } from '../ledger/block.ts';
import { genesisBlock, genesisJson, parseGenesis, sameGenesis } from '../ledger/genesis.ts';
import { Mempool } from '../ledger/mempool.ts';
import { MemoryAccounts } from '../ledger/audit.ts';
import { blockWork } from '../consensus/pow.ts';
import { checkpointText, parseCheckpoint } from '../consensus/header-rules.ts';
import { banFile, BANS_FILE } from '../node/ban-file.ts';
import { NetworkGuard } from '../node/guard.ts';
import { PeerBook } from '../node/peer-book.ts';
import { peerFile, PEERS_FILE } from '../node/peer-file.ts';
import { PeerManager } from '../node/peers.ts';
import { loadMempool, MEMPOOL_FILE, saveMempool } from '../node/mempool-file.ts';
import { CHECKPOINT_FILE, CheckpointError, readCheckpoint } from '../node/light/checkpoint.ts';
import { LightHeaders, RECENT_HEADERS } from '../node/light/headers.ts';
import type { Env } from '../node/env.ts';
import { RPC_ENDPOINT_FILE } from '../node/rpc-types.ts';
import { createKey, KeystoreError, listKeys, loadPrivateKey } from '../cli/keystore.ts';
import { keyFilePath } from '../cli/keystore-files.ts';
import { failureText } from '../cli/output.ts';
import { RpcClient, RpcClientError } from '../cli/rpc-client.ts';
import { createNode } from '../node/launch.ts';
import { tempDir, testKey, testParams, transfer } from './helpers/fixtures.ts';
import { networkParams, startNode } from './helpers/network.ts';
import { arbFileBytes, FUZZ_SEED, fuzzRuns } from './helpers/fuzz.ts';

type ErrorClass = new (...a: never[]) => Error;

/** Runs `read`; a refusal must be one of `typed`, and read by the CLI as one line of ours. */
async function readsOrRefuses<T>(what: string, bytes: Uint8Array, typed: readonly ErrorClass[], read: () => T | Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    const shown = `${what}: ${String(err)} for ${JSON.stringify(Buffer.from(bytes).toString('latin1').slice(0, 300))}`;
    assert.ok(typed.some((cls) => err instanceof cls), `${shown} is not a typed refusal\n${(err as Error).stack}`);
    assert.doesNotMatch(failureText(err, false, ''), /internal error/, shown);
    assert.doesNotMatch((err as Error).message, /[\r\n]/, `${shown}: more than one line`);
    return undefined;
  }
}

const property = <T>(arb: fc.Arbitrary<T>, check: (value: T) => Promise<void>, numRuns: number) =>
  fc.assert(fc.asyncProperty(arb, check), { seed: FUZZ_SEED, numRuns: fuzzRuns(numRuns) });

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8'); // as readFile(…, 'utf8') reads it

describe('the files a node and the CLI read, under fuzzing', function () {
  this.timeout(120_000);
  let dir: ReturnType<typeof tempDir>;
  /** A file of the datadir no read of another may touch. */
  const SENTINEL = 'sentinel';
  beforeEach(() => {
    dir = tempDir('cairn-files-fuzz-');
    writeFileSync(join(dir.path, SENTINEL), 'kept');
  });
  afterEach(() => {
    assert.equal(readFileSync(join(dir.path, SENTINEL), 'utf8'), 'kept', 'the datadir keeps its other contents');
    dir.remove();
  });

  it('a node started on a datadir whose peers.json, bans.json and mempool.dat are garbage: starts, says so of the bans and the mempool, and keeps the rest', async () => {
    const first = await startNode(networkParams(), [], { verifyThreads: 1 });
    await first.node.stop();
    const datadir = first.config.datadir;
    const garbage = Uint8Array.from({ length: 300 }, (_, i) => (i * 167 + 13) & 0xff);
    for (const file of [PEERS_FILE, BANS_FILE, MEMPOOL_FILE]) writeFileSync(join(datadir, file), garbage);
    writeFileSync(join(datadir, SENTINEL), 'kept');
    const before = readdirSync(datadir).filter((f) => f !== MEMPOOL_FILE).sort();
    const again = createNode(first.config);
    const warnings: string[] = [];
    again.on('log', (level, message) => void (level === 'warn' && warnings.push(message)));
    try {
      await again.start();
      assert.ok(warnings.some((w) => /bans\.json is damaged \(.*\): the node starts with no bans/.test(w)), warnings.join('\n'));
      assert.ok(warnings.some((w) => /mempool\.dat is damaged \(.*\): 0 transactions read before the damage, the file removed/.test(w)), warnings.join('\n'));
      await again.stop();
      for (const file of before) assert.ok(existsSync(join(datadir, file)), `${file} kept`);
      assert.equal(readFileSync(join(datadir, SENTINEL), 'utf8'), 'kept');
      assert.deepEqual(JSON.parse(readFileSync(join(datadir, PEERS_FILE), 'utf8')), { peers: [] }, 'the peers passed over, and the file replaced at the stop');
    } finally {
      await again.stop();
      first.remove();
    }
  });

  it('genesis.json: read as the network it defines, which writes back to the same, or refused with a GenesisError naming the problem', async () => {
    const samples = [readFileSync(new URL('../genesis.json', import.meta.url)), new TextEncoder().encode(genesisJson(testParams()))];
    await property(fc.constantFrom(...samples).chain((s) => arbFileBytes(s, true)), async (bytes) => {
      const params = await readsOrRefuses('genesis', bytes, [GenesisError], () => parseGenesis(text(bytes)));
      if (!params) return;
      assert.ok(sameGenesis(parseGenesis(genesisJson(params)), params), 'what was taken writes back as the same network');
      genesisBlock(params);
    }, 1500);
  });

  it('peers.json: entries that are peers are taken, anything else passed over, and the book dials what it took', async () => {
    const store = peerFile(dir.path);
    await store.save([
      { peer: '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo', addrs: ['/ip4/127.0.0.1/tcp/7370/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo', '/ip6/::1/tcp/7370'] },
      { peer: 'p2', addrs: ['/ip4/10.0.0.2/tcp/1', '/dns4/example.org/tcp/1'] },
    ]);
    const sample = readFileSync(join(dir.path, PEERS_FILE));
    const transport = { peerId: 'self', peers: () => [], connectionInfo: () => undefined, dial: async () => Promise.reject(new Error('unreachable')) };
    await property(arbFileBytes(sample, true), async (bytes) => {
      writeFileSync(join(dir.path, PEERS_FILE), bytes);
      const known = await store.load();
      for (const k of known) assert.ok(typeof k.peer === 'string' && Array.isArray(k.addrs) && k.addrs.every((a) => typeof a === 'string'));
      const book = new PeerBook({ now: () => 0, monotonic: () => 0 } as unknown as Env, transport as never, new PeerManager(() => 0));
      book.restore(known);
      book.redial();
    }, 400);
  });

  it('bans.json: the bans in it are restored, or a damaged file is refused with the reason and the node starts with none, saying so', async () => {
    const store = banFile(dir.path);
    await store.save([{ kind: 'peer', id: 'p', until: 2_000_000_000, reason: 'invalid block' }, { kind: 'ip', id: '192.0.2.1', until: 1_900_000_000, reason: 'x' }]);
    const sample = readFileSync(join(dir.path, BANS_FILE));
    const env = { now: () => 1_800_000_000_000, randomBytes: (n: number) => new Uint8Array(n) } as unknown as Env;
    await property(arbFileBytes(sample, true), async (bytes) => {
      writeFileSync(join(dir.path, BANS_FILE), bytes);
      const bans = await readsOrRefuses('bans', bytes, [Error], () => store.load());
      if (bans === undefined) {
        const logs: string[] = [];
        const peers = new PeerManager(() => 1_800_000_000);
        await new NetworkGuard({ env, peers, banStore: store, log: (level, message) => void logs.push(`${level} ${message}`) }).restoreBans();
        assert.equal(logs.length, 1);
        assert.match(logs[0]!, /^warn .*bans\.json.*: the node starts with no bans/);
        return;
      }
      const peers = new PeerManager(() => 1_800_000_000);
      peers.restore(bans);
      for (const r of peers.records()) assert.ok(Number.isFinite(r.until) && r.until <= 1_800_000_000 + 86_400 * 365, `a ban until ${r.until}`);
    }, 400);
  });

  it('mempool.dat: read up to any damage, the rest of the file removed and said; nothing it did not hold is admitted', async () => {
    const keys = [0, 1, 2].map((i) => testKey(600 + i));
    const pool = () => {
      const state = new MemoryAccounts();
      for (const k of keys) state.set(k.address, { balance: 1_000_000n, nonce: 0n });
      return new Mempool(state, { chainId: 7 }, { maxAge: 3_600 });
    };
    const before = pool();
    const txs = keys.map((k, i) => transfer(k, testKey(610).address, BigInt(i + 1), 0n));
    for (const tx of txs) await before.add(tx, 1_000);
    await saveMempool(dir.path, before);
    const sample = readFileSync(join(dir.path, MEMPOOL_FILE));
    const ids = new Set(txs.map((tx) => tx.idHex));
    await property(arbFileBytes(sample), async (bytes) => {
      writeFileSync(join(dir.path, MEMPOOL_FILE), bytes);
      const after = pool();
      const restored = await loadMempool(dir.path, after, 2_000);
      for (const e of after.entries()) assert.ok(ids.has(e.tx.idHex) && e.addedAt <= 2_000, `admitted ${e.tx.idHex} at ${e.addedAt}`);
      assert.equal(restored.admitted, [...after.entries()].length);
      if (restored.problem !== undefined) {
        assert.match(restored.problem, /mempool\.dat is damaged \(.*\): \d+ transactions read before the damage, the file removed$/);
        assert.ok(!existsSync(join(dir.path, MEMPOOL_FILE)));
      }
    }, 300);
  });

  it('a light client\'s checkpoint file: read as the checkpoint written, or refused as not one (LIGHT_CHECKPOINT_FILE)', async () => {
    const sample = new TextEncoder().encode(`${checkpointText({ height: 123_456, hash: new Uint8Array(32).fill(0xab) })}\n`);
    await property(arbFileBytes(sample), async (bytes) => {
      writeFileSync(join(dir.path, CHECKPOINT_FILE), bytes);
      const checkpoint = await readsOrRefuses('checkpoint', bytes, [CheckpointError], () => readCheckpoint(dir.path));
      if (checkpoint) assert.deepEqual(parseCheckpoint(checkpointText(checkpoint)), checkpoint);
    }, 300);
  });

  describe("a light client's headers file and its saved tip", () => {
    const params = testParams();
    const genesis = genesisBlock(params).header;
    /** A chain of `n` headers after genesis (a light client's file checks no proof of work: what it keeps was checked). */
    function chainOf(n: number): BlockHeader[] {
      const out = [genesis];
      for (let height = 1; height <= n; height++) {
        const parent = out.at(-1)!;
        out.push(makeHeader({ version: 1, height, prevHash: parent.hash, merkleRoot: new Uint8Array(32), stateRoot: new Uint8Array(32), timestamp: parent.timestamp + 10, target: params.target >> BigInt(height % 3), nonce: 0n }));
      }
      return out;
    }
    interface Saved { readonly headers: Uint8Array; readonly tip: Uint8Array; readonly chain: BlockHeader[] }
    const made = new Map<number, Saved>();
    /** The files a clean close of `n` headers leaves (made once for each n: 2,000 headers take a while). */
    async function saved(n: number): Promise<Saved> {
      if (made.has(n)) return made.get(n)!;
      const path = join(dir.path, 'headers');
      const chain = chainOf(n);
      const light = new LightHeaders(path, genesis);
      let work = blockWork(genesis.target);
      light.stage().append(chain.slice(1), chain.slice(1).map((h) => (work += blockWork(h.target))));
      light.commit();
      await light.close();
      const files = { headers: readFileSync(path), tip: readFileSync(`${path}.tip`), chain };
      rmSync(path);
      rmSync(`${path}.tip`);
      made.set(n, files);
      return files;
    }

    /** Opens over the files given: the chain saved, or genesis alone: nothing else, and never a throw. */
    async function opensAsSavedOrStartsOver(s: Saved, headers: Uint8Array, tip: Uint8Array): Promise<void> {
      const path = join(dir.path, 'headers');
      writeFileSync(path, headers);
      writeFileSync(`${path}.tip`, tip);
      const light = LightHeaders.open(path, genesis);
      const opened = { height: light.height, hash: light.tip.header.hash };
      try {
        const top = s.chain.length - 1;
        assert.ok(light.height === 0 || light.height === top, `opened at ${light.height}`);
        const staged = light.stage();
        const start = staged.startAt(light.height)!;
        light.rollback();
        if (light.height === 0) {
          assert.ok(bytesEqual(light.tip.header.hash, genesis.hash));
          assert.equal(readFileSync(path).length, 32, 'started over: the file holds genesis alone');
          return;
        }
        let work = 0n;
        for (const h of s.chain) work += blockWork(h.target);
        assert.equal(light.tip.totalWork, work, 'the chain\'s total work');
        assert.equal(start.anchorTimestamp, s.chain[1]!.timestamp, 'block 1\'s timestamp anchors the targets');
        for (let h = Math.max(0, top - RECENT_HEADERS + 1); h <= top; h++) assert.ok(bytesEqual(light.hashAt(h)!, s.chain[h]!.hash), `hash at ${h}`);
      } finally {
        await light.close();
      }
      // The tip is saved at every commit now, not removed as it is read: what opened is what the
      // files say from then on, however damaged they were.
      const again = LightHeaders.open(path, genesis);
      try {
        assert.equal(again.height, opened.height, 'reopened where it opened');
        assert.ok(bytesEqual(again.tip.header.hash, opened.hash));
      } finally {
        await again.close();
        rmSync(`${path}.tip`, { force: true });
      }
    }

    it('a chain longer than the headers kept whole: a byte changed in the head or in the end of the saved tip starts over, or reopens with block 1 as it was', async () => {
      // Found by the fuzz: block 1's timestamp (ASERT's anchor) was saved alone, and checked only
      // while block 1 was among the headers kept whole: a bit flipped in it reopened the chain with
      // every later target wrong, and the client banned each peer whose headers it then checked.
      const s = await saved(RECENT_HEADERS + 40);
      for (let at = 0; at < s.tip.length; at = at === 12 ? s.tip.length - 160 : at + (at < 12 ? 1 : 8)) {
        const tip = Uint8Array.from(s.tip);
        tip[at]! ^= 0x10;
        await opensAsSavedOrStartsOver(s, s.headers, tip);
      }
    });

    for (const [name, n, runs] of [['a short chain', 12, 100], ['a chain longer than the headers kept whole', RECENT_HEADERS + 40, 25]] as const) {
      it(`${name}: a damaged tip or headers file reopens as the chain saved or starts over at genesis`, async () => {
        const s = await saved(n);
        await property(fc.oneof(arbFileBytes(s.tip).map((tip) => ({ tip, headers: s.headers })), arbFileBytes(s.headers).map((headers) => ({ tip: s.tip, headers }))), (c) => opensAsSavedOrStartsOver(s, c.headers, c.tip), runs);
      });
    }
  });

  it('a keystore\'s key file: opens as the key written, or is refused with a KeystoreError (KEY_FILE_CORRUPT, WRONG_PASSWORD) in one line', async () => {
    const keystore = join(dir.path, 'keystore');
    const { address } = await createKey(keystore, 'pw', undefined, { scryptN: 16 });
    const file = keyFilePath(keystore, address);
    const sample = readFileSync(file);
    const key = await loadPrivateKey(keystore, address, 'pw');
    await property(arbFileBytes(sample, true), async (bytes) => {
      rmSync(file, { force: true });
      writeFileSync(file, bytes);
      assert.deepEqual(await listKeys(keystore), [address]);
      const loaded = await readsOrRefuses('key file', bytes, [KeystoreError], () => loadPrivateKey(keystore, address, 'pw'));
      if (loaded) assert.ok(bytesEqual(loaded, key), 'a file that opens gives the key written');
    }, 400);
  });

  it("rpc.json: names a node's endpoint the CLI can ask, or is refused with an RpcClientError in one line", async () => {
    writeFileSync(join(dir.path, RPC_ENDPOINT_FILE), JSON.stringify({ url: 'http://127.0.0.1:7371/', token: toHex(new Uint8Array(32).fill(7)), pid: process.pid }) + '\n');
    const sample = readFileSync(join(dir.path, RPC_ENDPOINT_FILE));
    await property(arbFileBytes(sample, true), async (bytes) => {
      writeFileSync(join(dir.path, RPC_ENDPOINT_FILE), bytes);
      const client = await readsOrRefuses('rpc.json', bytes, [RpcClientError], () => RpcClient.fromDatadir(dir.path));
      if (!client) return;
      // What a call would do with them (node:http's own checks, made before anything is sent).
      const url = new URL(client.url);
      assert.ok(url.protocol === 'http:' || url.protocol === 'https:', client.url);
      assert.ok(/^[\x21-\x7e]+$/.test((client as unknown as { token: string }).token), 'a token a header can carry');
    }, 600);
  });
});
