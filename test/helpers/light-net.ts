/**
 * Light-client test fixtures: a test network, chains mined on it, full nodes answering the light
 * protocols from those chains (node/light/serve.ts on a Chain), and the in-memory transport a
 * LightClient reaches them over (test/light.test.ts, test/light-checkpoint.test.ts).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ChainDB } from '../../ledger/chaindb.ts';
import { MemoryDisk } from '../../ledger/kv-memory.ts';
import { BLOCK_VERSION, makeHeader, type Block, type BlockHeader } from '../../ledger/block.ts';
import { sha256 } from '../../ledger/hash.ts';
import { Chain } from '../../consensus/chain.ts';
import { realEnv, type Env } from '../../node/env.ts';
import { serveLightClients } from '../../node/light/serve.ts';
import { answerHeaderRange } from '../../node/header-sync.ts';
import type { Serve } from '../../node/serving.ts';
import { networkNames } from '../../node/protocols.ts';
import { TransportError, busyError, isBusy, type ConnectionGate, type RequestLimits, type Responder, type Transport, type TransportEvents } from '../../node/transport.ts';
import { decodeGetHeaders, encodeHeaders, encodeStatus } from '../../node/wire.ts';
import { LightClient } from '../../node/light/client.ts';
import { FUNDED_KEYS, tempDir, testKey, testParams, transfer } from './fixtures.ts';
import { waitFor } from './network.ts';
import { mineChild } from './mining.ts';
import { RECENT_HEADERS } from '../../node/light/headers.ts';

export const params = testParams({ name: 'cairn-light-test', timestamp: 1_600_000_000 });
export const NOW = params.timestamp + 1_000_000;
export const env = { ...realEnv, now: () => NOW * 1000 };
export const names = networkNames((await ChainDB.open(new MemoryDisk().open(), params)).genesis.header.hash);

/**
 * A child of `parent` that is not mined (its proof of work not met): for a header store
 * (node/light/headers.ts), which keeps what was checked and checks nothing itself. `branch` tells
 * apart children of one parent.
 */
export function unminedChild(parent: BlockHeader, branch: number): BlockHeader {
  const seed = sha256(Uint8Array.from([...parent.hash, branch & 0xff, (branch >>> 8) & 0xff]));
  return makeHeader({ version: BLOCK_VERSION, height: parent.height + 1, prevHash: parent.hash, merkleRoot: seed, stateRoot: seed, timestamp: parent.timestamp + 10, target: parent.target, nonce: 0n });
}

/** Peers are responders by protocol; the light client's side is a Transport over them. */
export class FakeNet {
  readonly peers = new Map<string, Map<string, Responder>>();
}

export class FakeTransport extends EventEmitter<TransportEvents> implements Transport {
  readonly peerId = 'light';
  private readonly net: FakeNet;
  private readonly gate: ConnectionGate;
  private readonly connected = new Set<string>();

  constructor(net: FakeNet, gate: ConnectionGate) {
    super();
    this.net = net;
    this.gate = gate;
  }

  /** `peer` dials in, from `remoteAddr`; false if the gate refused it. */
  connect(peer: string, remoteAddr = `/fake/${peer}`): boolean {
    if (this.gate.denied(peer) || this.gate.deniedInbound?.(remoteAddr)) return false;
    this.connected.add(peer);
    this.emit('peer:connect', peer, { direction: 'inbound', remoteAddr });
    this.emit('peer:ready', peer, [`/fake/${peer}`]);
    return true;
  }

  listenAddresses = () => [];
  peers = () => [...this.connected];
  connectionInfo = () => undefined;
  dial = async (addrs: readonly string[]) => addrs[0]!;
  async hangUp(peer: string) {
    this.connected.delete(peer);
    this.emit('peer:disconnect', peer);
  }
  async handle() {}
  async request(peer: string, protocol: string, body: Uint8Array, limits: RequestLimits): Promise<Uint8Array> {
    const respond = this.net.peers.get(peer)?.get(protocol);
    if (!this.connected.has(peer) || !respond) throw new TransportError('TRANSPORT_UNSUPPORTED', `${peer} does not serve ${protocol}`);
    const out = await respond(body, this.peerId);
    if (isBusy(out)) throw busyError(peer, protocol, out.retryAfterMs);
    // As the real transport: a frame over the asker's cap is the sender's fault.
    if ((out as Uint8Array).length > limits.maxBytes) throw new TransportError('TRANSPORT_BAD_FRAME', `an answer of ${(out as Uint8Array).length} bytes, over the ${limits.maxBytes} asked`);
    return out as Uint8Array;
  }
  requestMany = async () => [];
  subscribe() {}
  publish = async () => 0;
  async stop() {}
}

/** A full node's answers: status, headers after a locator, and the light protocols, from `chain`. */
export async function fullNode(
  net: FakeNet,
  id: string,
  chain: Chain,
  tweak: { status?: (s: ReturnType<typeof statusOf>) => ReturnType<typeof statusOf>; proofs?: Responder; busyFirst?: number; retryAfterMs?: number } = {},
): Promise<void> {
  const handlers = new Map<string, Responder>();
  // Its budgets, as a stand-in: the first `busyFirst` requests of each light protocol answered busy.
  const serve: Serve = async (_name, protocol, respond) => {
    let busy = tweak.busyFirst ?? 0;
    handlers.set(protocol, (req, peer) => (busy-- > 0 ? Promise.resolve({ busy: true, retryAfterMs: tweak.retryAfterMs ?? 5 }) : respond(req, peer)));
  };
  await serveLightClients(chain, serve, names, env, () => {});
  handlers.set(names.status, async () => encodeStatus((tweak.status ?? ((s) => s))(statusOf(chain))));
  await serve('headerRange', names.headerRange, (req) => answerHeaderRange(chain, req), { timeoutMs: 1_000, maxBytes: 16, onBadRequest: () => {} });
  handlers.set(names.headers, async (req) => {
    const { locator, max } = decodeGetHeaders(req);
    return encodeHeaders(await chain.byHeight.headersAfter(locator, max));
  });
  if (tweak.proofs) handlers.set(names.proofs, tweak.proofs);
  net.peers.set(id, handlers);
}

export function statusOf(chain: Chain) {
  return { genesis: chain.db.genesis.header.hash, height: chain.tip.height, tipHash: chain.tip.hash, totalWork: chain.tip.totalWork, prunedHeight: 0 };
}

const [alice, bob] = FUNDED_KEYS;
export const carol = testKey(70);

export async function newChain(): Promise<Chain> {
  const db = await ChainDB.open(new MemoryDisk().open(), params);
  return Chain.open(db, { clock: () => NOW });
}

/** An env whose waits of `fromMs` or more never end (their timers unreferenced, so that a failure cannot hold the run open). */
export function waitsNeverEnd(fromMs: number): Env {
  return {
    ...env,
    setTimeout: (run, ms) => {
      const timer = realEnv.setTimeout(run, ms < fromMs ? ms : 2 ** 31 - 1);
      if (ms >= fromMs) (timer as { unref?: () => void }).unref?.();
      return timer;
    },
  };
}

/** An env whose waits of 10 s or more never end. */
export const longWaitsNeverEnd: Env = waitsNeverEnd(10_000);

/** Two chains whose first `n` blocks are the same (miner 50; the first pays carol with `payCarol`). */
export async function sharing(n: number, payCarol = false): Promise<{ a: Chain; b: Chain; common: Block[] }> {
  const a = await newChain();
  const b = await newChain();
  const common = await extend(a, n, 50, payCarol);
  for (const block of common) await b.processBlock(block);
  return { a, b, common };
}

/**
 * Mines `n` blocks on `chain`'s tip (the first pays carol 500 from alice), returning them;
 * `spacing`: seconds between them (the test network's block time by default).
 */
export async function extend(chain: Chain, n: number, miner: number, payCarol = false, spacing?: number): Promise<Block[]> {
  const out: Block[] = [];
  for (let i = 0; i < n; i++) {
    const tip = chain.tip;
    const txs = payCarol && i === 0 ? [transfer(alice!, carol.address, 500n, 0n), transfer(bob!, carol.address, 7n, 0n)] : [];
    const block = mineChild(params, { hash: tip.hash, height: tip.height, header: tip.header, anchorTimestamp: tip.anchorTimestamp }, txs, { miner: testKey(miner).address, ...(spacing === undefined ? {} : { spacing }) });
    assert.equal(await chain.processBlock(block), 'connected');
    out.push(block);
  }
  return out;
}

/**
 * The capture's two chains: `cheap`, longer than the headers a light client keeps whole, at the
 * easiest targets; `honest`, fewer headers with more work, forking from it at genesis.
 */
export async function captureChains(): Promise<{ cheap: Chain; honest: Chain; cheapBlocks: Block[] }> {
  const cheap = await newChain();
  const cheapBlocks = await extend(cheap, RECENT_HEADERS + 60, 60);
  const honest = await newChain();
  await extend(honest, 1, 61, true);
  await extend(honest, 400, 61, false, 1); // ahead of schedule: harder targets
  assert.ok(honest.tip.totalWork > cheap.tip.totalWork);
  return { cheap, honest, cheapBlocks };
}

/**
 * A cheap chain longer than the headers a light client keeps whole, at the easiest targets, and
 * a heavier, shorter one sharing its first `shared` blocks (then paying carol, and mined ahead of
 * schedule: harder targets), each served by a full node on `net` ('cheap', 'heavier').
 */
export async function cheapThenHeavier(net: FakeNet, shared: number): Promise<{ cheap: Chain; heavier: Chain }> {
  const cheap = await newChain();
  const cheapBlocks = await extend(cheap, RECENT_HEADERS + 60, 60);
  const heavier = await newChain();
  for (const block of cheapBlocks.slice(0, shared)) await heavier.processBlock(block);
  await extend(heavier, 1, 61, true);
  await extend(heavier, 400, 61, false, 1);
  assert.ok(heavier.tip.totalWork > cheap.tip.totalWork && heavier.tip.height < cheap.tip.height);
  await fullNode(net, 'cheap', cheap);
  await fullNode(net, 'heavier', heavier);
  return { cheap, heavier };
}

/**
 * For a mocha `describe`: a datadir and a FakeNet of its own for each test, light clients started
 * on them over a FakeTransport (each stopped after the test, the last started first: a stop is
 * once only, so a test may stop one itself), and `meet`: a peer connects, its status is heard,
 * and a sync round runs.
 */
export function useLightClients(prefix: string) {
  let dir: ReturnType<typeof tempDir>;
  let net: FakeNet;
  let transport: FakeTransport;
  const clients: LightClient[] = [];
  beforeEach(() => {
    dir = tempDir(prefix);
    net = new FakeNet();
  });
  afterEach(async () => {
    for (const client of clients.splice(0).reverse()) await client.stop();
    dir.remove();
  });
  return {
    get datadir() {
      return dir.path;
    },
    get net() {
      return net;
    },
    /** The transport of the client started last. */
    get transport() {
      return transport;
    },
    async start(clientEnv: Env = env): Promise<LightClient> {
      const client = new LightClient({ params, env: clientEnv, datadir: dir.path, bootstrap: [], statusIntervalMs: 3_600_000, createTransport: async (gate) => (transport = new FakeTransport(net, gate)) });
      clients.push(client);
      await client.start();
      return client;
    },
    async meet(client: LightClient, peer: string): Promise<void> {
      transport.connect(peer);
      await waitFor(() => client.statuses.has(peer) || client.peers.isBanned(peer), 10_000, `${peer}'s status`);
      await client.requestSync();
    },
  };
}
