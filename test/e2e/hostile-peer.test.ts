/**
 * Scenario 5 of the resilience suite: hostile peers written with plain libp2p (TCP, noise, yamux,
 * identify, gossipsub — none of the node's code) against a mining `cairn node` process N that has
 * one honest follower F. They flood every gossip topic (blocks, compact blocks, transactions) with
 * random and truncated bytes, blocks with bad proof of work, forged transactions and oversized
 * messages; open the request protocols (status, headers, blocks, block transactions, transaction
 * push) with garbage; lie about their chain; or belong to another network. Each must be penalised and
 * dropped, while N stays up, keeps mining and serving RPC, and nothing they sent enters its chain
 * or mempool. Each hostile peer has its own identity, so each drop is that path's own doing.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createLibp2p, type Libp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify, type Identify } from '@libp2p/identify';
import { gossipsub, StrictNoSign, type GossipSub, type GossipsubOpts, type Message, type PublishResult } from '@libp2p/gossipsub';
import { lpStream } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import type { Stream } from '@libp2p/interface';
import { concatBytes, fromHex, toHex } from '../../ledger/bytes.ts';
import { encodeAddress } from '../../ledger/keys.ts';
import { genesisBlock } from '../../ledger/genesis.ts';
import { signTransaction } from '../../ledger/transaction.ts';
import { HEADER_BYTES, type Block } from '../../ledger/block.ts';
import { RPC_ERRORS } from '../../node/rpc-types.ts';
import { RpcClientError } from '../../cli/rpc-client.ts';
import { seededRandom, testKey } from '../helpers/fixtures.ts';
import { asParent, mineChain, mineChild } from '../helpers/mining.ts';
import { Cluster, commonHead, DEVNET_KEY, report, secs, waitFor, type NodeProc } from '../helpers/cluster.ts';

/** gossipsub's publish, which its exported interface leaves out. */
type HostilePubSub = GossipSub & { publish(topic: string, data: Uint8Array): Promise<PublishResult> };
type HostileHost = Libp2p<{ identify: Identify; pubsub: HostilePubSub }>;
type StatusAnswer = 'honest' | 'none' | 'foreign' | { readonly height: number; readonly totalWork: bigint; readonly headers: () => Uint8Array };

const sha256 = (data: Uint8Array) => new Uint8Array(createHash('sha256').update(data).digest());
const rand = seededRandom(5);

describe('e2e: hostile peers', function () {
  this.timeout(90_000);
  let c: Cluster;
  let n: NodeProc;
  let f: NodeProc;
  let hostiles: HostileHost[] = [];
  let genesis: Block;
  let sent = new Set<string>(); // ids of every transaction a hostile peer sent
  let badBlocks = new Set<string>(); // hashes of every block a hostile peer sent whole or cut

  before(async () => {
    c = new Cluster({ name: 'hostile' });
    genesis = genesisBlock(c.params);
    n = await c.startNode('n', { coinbase: encodeAddress(testKey(600).address) });
    f = await c.startNode('f', { bootstrap: [n.addr] });
    await waitFor('N and F on one head above 0', 30_000, async () => ((await commonHead([n, f]))?.height ?? 0) > 0);
  });
  afterEach(async function () {
    await Promise.allSettled(hostiles.map((h) => h.stop()));
    hostiles = [];
    if (this.currentTest?.state === 'failed') console.log(c.logs());
  });
  after(async () => {
    await c?.destroy();
  });

  const blockTopic = () => `/cairn/${c.ns}/blocks/1`;
  const compactTopic = () => `/cairn/${c.ns}/cblocks/1`;
  const txTopic = () => `/cairn/${c.ns}/txs/2`;
  /** A transaction gossip message: a batch (01 ‖ count ‖ transactions), here of one. */
  const txBatch = (tx: Uint8Array) => concatBytes(Uint8Array.of(1, 1), tx);
  const protocol = (name: string) => `/cairn/${c.ns}/${name}/1`;

  /** The status message of docs/PROTOCOL.md, written out by hand: 01 ‖ genesis ‖ u32 height ‖ tip ‖ u256 work. */
  function statusBytes(genesisHash: Uint8Array, height: number, tip: Uint8Array, totalWork: bigint): Uint8Array {
    const out = new Uint8Array(101);
    out[0] = 1;
    out.set(genesisHash, 1);
    new DataView(out.buffer).setUint32(33, height);
    out.set(tip, 37);
    out.set(fromHex(totalWork.toString(16).padStart(64, '0')), 69);
    return out;
  }

  /** A bare libp2p node with the node's gossip settings (unsigned messages, id = SHA-256 of the data). */
  async function hostile(status: StatusAnswer): Promise<HostileHost> {
    const pubsubOptions: Partial<GossipsubOpts> = {
      globalSignaturePolicy: StrictNoSign,
      msgIdFn: (m: Message) => sha256(m.data),
      allowPublishToZeroTopicPeers: true,
      maxInboundDataLength: 4 << 20,
    };
    const host = (await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), pubsub: gossipsub(pubsubOptions) },
    })) as unknown as HostileHost;
    hostiles.push(host);
    const answer = async (bytes: Uint8Array, stream: Stream) => {
      const lp = lpStream(stream);
      await lp.read({ signal: AbortSignal.timeout(5000) });
      await lp.write(bytes);
      await stream.close();
    };
    if (status === 'honest') {
      await host.handle(protocol('status'), (stream) => answer(statusBytes(genesis.header.hash, 0, genesis.header.hash, 1n), stream));
    } else if (status === 'foreign') {
      await host.handle(protocol('status'), (stream) => answer(statusBytes(sha256(new TextEncoder().encode('another network')), 5, rand.bytes(32), 1n << 40n), stream));
    } else if (status !== 'none') {
      await host.handle(protocol('status'), (stream) => answer(statusBytes(genesis.header.hash, status.height, rand.bytes(32), status.totalWork), stream));
      await host.handle(protocol('headers'), (stream) => answer(status.headers(), stream));
    }
    return host;
  }

  /** Dials N; with `subscribe`, joins every topic and waits to see N subscribed to them. */
  async function connect(h: HostileHost, subscribe: boolean): Promise<void> {
    const topics = [blockTopic(), compactTopic(), txTopic()];
    if (subscribe) for (const t of topics) h.services.pubsub.subscribe(t);
    await h.dial(multiaddr(n.addr));
    if (subscribe) {
      await waitFor('the hostile peer to see N on every topic', 10_000, () =>
        topics.every((t) => h.services.pubsub.getSubscribers(t).some((p) => p.toString() === n.peerId)));
    }
  }

  /** True once N lists no connection to `h` and `h` none to N. */
  async function dropped(h: HostileHost): Promise<boolean> {
    const peers = await n.call('getPeers', {});
    return !peers.some((p) => p.id === h.peerId.toString()) && h.getConnections().every((conn) => conn.remotePeer.toString() !== n.peerId);
  }

  interface Attack {
    readonly what: string;
    readonly dropped: boolean;
    readonly messages: number;
    /** From the first message to the drop, or to giving up. */
    readonly ms: number;
    /** N's misbehaviour score for the peer when it gave up (0: never penalised). */
    readonly banScore: number;
  }

  /**
   * Sends `message(i)` for i = 0, 1, … every 20 ms until N has dropped the peer, or `maxMs` has
   * passed; says how many it sent and how long the drop took.
   */
  async function attack(h: HostileHost, what: string, message: (i: number) => Promise<void>, maxMs = 15_000): Promise<Attack> {
    const start = Date.now();
    let messages = 0;
    let stop = false;
    const sending = (async () => {
      while (!stop && Date.now() - start < maxMs) {
        await message(messages++).catch(() => {}); // a refused write is what we are waiting for
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const { ms } = await waitFor(`N to drop the peer sending ${what}`, maxMs, () => dropped(h), 50);
      return { what, dropped: true, messages, ms, banScore: 0 };
    } catch {
      const peer = (await n.call('getPeers', {})).find((p) => p.id === h.peerId.toString());
      return { what, dropped: false, messages, ms: Date.now() - start, banScore: peer?.banScore ?? 0 };
    } finally {
      stop = true;
      await sending;
    }
  }

  function describeAttack(a: Attack): string {
    return a.dropped
      ? `${a.what}: dropped after ${a.messages} sent, ${a.ms} ms`
      : `${a.what}: NOT dropped after ${a.messages} sent in ${secs(a.ms)} (ban score ${a.banScore})`;
  }

  /** The peer was dropped, and a redial is refused. */
  async function expectDropped(h: HostileHost, a: Attack): Promise<void> {
    assert.ok(a.dropped, `N did not drop the peer sending ${a.what}: it sent ${a.messages} messages in ${secs(a.ms)}, and N still lists it with ban score ${a.banScore}`);
    await refusedAgain(h);
  }

  /** A dropped peer stays out: dialing again ends with no connection, and N does not list it. */
  async function refusedAgain(h: HostileHost): Promise<void> {
    await h.dial(multiaddr(n.addr), { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
    await waitFor('the redial to be refused', 10_000, () => dropped(h), 50);
  }

  /** N is alive, answers RPC, mines past `height`, and holds nothing the hostile peers sent. */
  async function nodeUnharmed(height: number): Promise<number> {
    assert.ok(n.alive, 'N is still running');
    const { value: now } = await waitFor(`N to keep mining past height ${height}`, 20_000, async () => {
      const s = await n.status();
      return s.height > height ? s : undefined;
    }, 100);
    const mempool = await n.call('getMempool', {});
    for (const tx of mempool.txs) assert.ok(!sent.has(tx.id), `hostile transaction ${tx.id} is in N's mempool`);
    for (const hash of badBlocks) {
      await assert.rejects(n.call('getBlock', { hash }), (err: unknown) => err instanceof RpcClientError && err.rpcCode === RPC_ERRORS.NOT_FOUND, `hostile block ${hash} is stored`);
    }
    const audit = await n.call('auditState', {});
    assert.equal(BigInt(audit.supply), c.supplyAt(audit.height));
    const peers = await n.call('getPeers', {});
    assert.ok(peers.some((p) => p.id === f.peerId), 'the honest follower is still connected');
    return now.height;
  }

  // Payloads: each call makes a different message (gossipsub drops a repeated one as seen).
  const validBlock = () => mineChild(c.params, asParent(genesis), [], { miner: testKey(610).address });
  function badPowBlock(i: number): Uint8Array {
    const block = mineChild(c.params, asParent(genesis), [], { badPow: true, miner: testKey(620 + (i % 50)).address, spacing: 1 + Math.floor(i / 50) });
    badBlocks.add(toHex(block.header.hash));
    return block.bytes;
  }
  /** The compact form (docs/PROTOCOL.md), by hand: 01 ‖ header ‖ coinbase to ‖ u64 amount ‖ count ‖ 8-byte short ids. */
  function compactBadPowBlock(i: number): Uint8Array {
    const block = mineChild(c.params, asParent(genesis), [], { badPow: true, miner: testKey(680 + (i % 50)).address, spacing: 1 + Math.floor(i / 50) });
    badBlocks.add(toHex(block.header.hash));
    const out = new Uint8Array(1 + HEADER_BYTES + 20 + 8 + 1);
    out[0] = 1;
    out.set(block.header.bytes, 1);
    out.set(block.coinbase.to, 1 + HEADER_BYTES);
    new DataView(out.buffer).setBigUint64(1 + HEADER_BYTES + 20, block.coinbase.amount);
    return out;
  }
  function truncatedBlock(i: number): Uint8Array {
    const block = validBlock();
    badBlocks.add(toHex(block.header.hash));
    return block.bytes.subarray(0, block.bytes.length - 1 - (i % (block.bytes.length - 1)));
  }
  function forgedTx(i: number): Uint8Array {
    const tx = signTransaction({ chainId: c.params.chainId, to: testKey(630).address, amount: 1n, fee: 1n, nonce: BigInt(i) }, DEVNET_KEY.privateKey);
    const bytes = tx.bytes.slice();
    bytes[bytes.length - 40]! ^= 1; // inside r: still canonical, no longer a signature of these fields
    sent.add(toHex(sha256(bytes)));
    return bytes;
  }
  function truncatedTx(i: number): Uint8Array {
    const tx = signTransaction({ chainId: c.params.chainId, to: testKey(631).address, amount: 1n, fee: 1n, nonce: BigInt(1000 + i) }, DEVNET_KEY.privateKey);
    sent.add(toHex(tx.id));
    return tx.bytes.subarray(0, tx.bytes.length - 1 - (i % 20));
  }
  const randomBytes = (i: number) => rand.bytes(1 + ((i * 7919) % 3000));
  const oversized = (i: number) => new Uint8Array(c.params.maxBlockBytes + 64 * 1024 + 1 + i).fill(i % 251);

  it('drops a peer of another network at once: one that does not speak the status protocol, one with another genesis', async () => {
    const height = (await n.status()).height;
    const lines: string[] = [];
    for (const kind of ['none', 'foreign'] as const) {
      const h = await hostile(kind);
      const start = Date.now();
      await connect(h, false);
      const { ms } = await waitFor(`N to drop the ${kind === 'none' ? 'mute' : 'foreign'} peer`, 15_000, () => dropped(h), 50);
      await refusedAgain(h);
      lines.push(`${kind === 'none' ? 'no status protocol' : 'another genesis'}: dropped ${ms} ms after connecting (${Date.now() - start} ms with the refused redial)`);
    }
    const now = await nodeUnharmed(height);
    report(`${lines.join('; ')}; N mined on to height ${now}`);
  });

  it('bans each peer that gossips random or truncated bytes, blocks with bad proof of work, or forged transactions', async () => {
    const height = (await n.status()).height;
    const kinds: [string, string, (i: number) => Uint8Array][] = [
      ['random bytes', 'blocks', randomBytes],
      ['random bytes', 'txs', randomBytes],
      ['truncated valid blocks', 'blocks', truncatedBlock],
      ['header-valid blocks with bad proof of work', 'blocks', badPowBlock],
      ['random bytes', 'cblocks', randomBytes],
      ['compact blocks with bad proof of work', 'cblocks', compactBadPowBlock],
      ['truncated signed transactions', 'txs', truncatedTx],
      ['transactions with forged signatures', 'txs', forgedTx],
      ['transactions on the block topic', 'blocks', forgedTx],
    ];
    const lines: string[] = [];
    for (const [what, topic, make] of kinds) {
      const h = await hostile('honest');
      await connect(h, true);
      const t = topic === 'blocks' ? blockTopic() : topic === 'cblocks' ? compactTopic() : txTopic();
      const wrap = topic === 'txs' ? txBatch : (bytes: Uint8Array) => bytes;
      const a = await attack(h, `${what} on /${topic}`, async (i) => void (await h.services.pubsub.publish(t, wrap(make(i)))));
      lines.push(describeAttack(a));
      await expectDropped(h, a);
    }
    const now = await nodeUnharmed(height);
    for (const line of lines) report(line);
    report(`N mined from height ${height} to ${now} meanwhile; none of ${sent.size} hostile transactions or ${badBlocks.size} hostile blocks stored`);
  });

  it('bans a sync peer that claims a huge chain and serves garbage headers, or headers with bad proof of work', async () => {
    const height = (await n.status()).height;
    const badPowHeaders = () => {
      const headers = mineChain(c.params, asParent(genesis), 20, { badPow: true, miner: testKey(640).address }).map((b) => b.header.bytes);
      const out = new Uint8Array(2 + headers.length * HEADER_BYTES);
      out[0] = 1;
      out[1] = headers.length;
      headers.forEach((h, i) => out.set(h, 2 + i * HEADER_BYTES));
      return out;
    };
    const lines: string[] = [];
    for (const [what, headers] of [['garbage headers', () => rand.bytes(4000)], ['headers with bad proof of work', badPowHeaders]] as const) {
      const h = await hostile({ height: 1_000_000, totalWork: 1n << 200n, headers });
      const start = Date.now();
      await connect(h, false);
      const { ms } = await waitFor(`N to ban the peer serving ${what}`, 20_000, () => dropped(h), 50);
      await refusedAgain(h);
      lines.push(`claimed 2^200 work and served ${what}: banned ${ms} ms after connecting (${Date.now() - start} ms with the refused redial)`);
    }
    const now = await nodeUnharmed(height);
    report(`${lines.join('; ')}; N mined on to height ${now}`);
  });

  it('drops a peer that floods everything at once: garbage, bad blocks, forged transactions, oversized messages, garbage sync requests', async () => {
    const height = (await n.status()).height;
    const h = await hostile('honest');
    await connect(h, true);
    const steps: ((i: number) => Promise<unknown>)[] = [
      (i) => h.services.pubsub.publish(blockTopic(), oversized(i)),
      (i) => h.services.pubsub.publish(compactTopic(), oversized(i)),
      (i) => h.services.pubsub.publish(txTopic(), oversized(i)),
      (i) => garbageRequest(h, 'headers', i),
      (i) => garbageRequest(h, 'blocks', i),
      (i) => h.services.pubsub.publish(blockTopic(), randomBytes(i)),
      (i) => h.services.pubsub.publish(txTopic(), randomBytes(i)),
      (i) => h.services.pubsub.publish(blockTopic(), truncatedBlock(i)),
      (i) => h.services.pubsub.publish(blockTopic(), badPowBlock(i)),
      (i) => h.services.pubsub.publish(compactTopic(), randomBytes(i)),
      (i) => h.services.pubsub.publish(compactTopic(), compactBadPowBlock(i)),
      (i) => h.services.pubsub.publish(txTopic(), txBatch(truncatedTx(i))),
      (i) => h.services.pubsub.publish(txTopic(), txBatch(forgedTx(i))),
    ];
    const a = await attack(h, 'every kind of bad message, oversized first', async (i) => void (await steps[i % steps.length]!(i)));
    const now = await nodeUnharmed(height);
    report(`${describeAttack(a)}; N kept mining, from ${height} to ${now}`);
    await expectDropped(h, a);
  });

  it('penalises and drops a peer that only sends oversized gossip messages', async () => {
    const height = (await n.status()).height;
    const h = await hostile('honest');
    await connect(h, true);
    const topics = [blockTopic(), compactTopic(), txTopic()];
    const a = await attack(h, `gossip messages over ${c.params.maxBlockBytes + 64 * 1024} bytes`, async (i) => void (await h.services.pubsub.publish(topics[i % 3]!, oversized(i))), 10_000);
    const now = await nodeUnharmed(height);
    report(`${describeAttack(a)}; N kept mining, from ${height} to ${now}`);
    await expectDropped(h, a);
  });

  it('penalises and drops a peer that opens the sync protocols with garbage', async () => {
    const height = (await n.status()).height;
    const h = await hostile('honest');
    await connect(h, false);
    const names = ['headers', 'blocks', 'blocktxs', 'status', 'txs'];
    const a = await attack(h, 'garbage requests on headers, blocks, blocktxs, status and txs', (i) => garbageRequest(h, names[i % names.length]!, i), 10_000);
    const now = await nodeUnharmed(height);
    report(`${describeAttack(a)}; N kept mining, from ${height} to ${now}`);
    await expectDropped(h, a);
  });

  /** Opens `name` on N and writes a garbage frame (random, or a length prefix claiming 2 GiB). */
  async function garbageRequest(h: HostileHost, name: string, i: number): Promise<void> {
    const stream = await h.dialProtocol(multiaddr(n.addr), protocol(name), { signal: AbortSignal.timeout(2000) });
    try {
      if (i % 3 === 2) {
        stream.send(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x07, 1, 2, 3]));
      } else {
        const lp = lpStream(stream);
        await lp.write(rand.bytes(1 + (i % 500)), { signal: AbortSignal.timeout(2000) });
        await lp.read({ signal: AbortSignal.timeout(2000) });
      }
    } finally {
      stream.abort(new Error('done'));
    }
  }
});
