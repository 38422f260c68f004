import { toHex } from '../ledger/bytes.ts';
import { sha256 } from '../ledger/hash.ts';
import { computeMerkleRoot, decodeBlock, makeBlock, makeHeader, BLOCK_VERSION, type Block, type BlockHeader } from '../ledger/block.ts';
import { decodeTransaction, UNSIGNED_TX_BYTES, type Transaction } from '../ledger/transaction.ts';
import { sign } from './wallets.ts';
import { concatBytes } from '../ledger/bytes.ts';
import { MAX_AMOUNT } from '../ledger/amount.ts';
import { nextTarget } from '../consensus/difficulty.ts';
import { searchNonce, targetBytes } from '../consensus/miner.ts';
import { medianTimePast } from '../consensus/block-index.ts';
import { stateKey } from '../ledger/smt.ts';
import { MemoryStateTree } from '../ledger/smt-memory.ts';
import type { CairnNode } from '../node/node.ts';
import { sleep } from '../node/env.ts';
import { TransportError } from '../node/transport.ts';
import { encodeCompactBlock } from '../node/compact.ts';
import { decodeGetBlocks, decodeHeaders, encodeGetBlocks, encodeGetHeaders, encodeHeaders, encodeStatus, encodeTxBatch } from '../node/wire.ts';
import type { Checker } from './invariants.ts';
import type { Random } from './random.ts';
import type { SimNode } from './sim-node.ts';
import { SIM_EPOCH_MS, type World } from './world.ts';

/**
 * The adversaries among the nodes. Each runs a real CairnNode (so it follows the chain and
 * speaks the protocol) and misbehaves with the real wire messages: invalid blocks and
 * transactions, bodies that do not match their headers, a chain of bad headers claiming more
 * work, withheld blocks, downloads without serving, request floods. What they make invalid on
 * purpose goes into the checker's registry, which no honest node may ever hold.
 */
/** A selfish miner's private chain, and the state after its last block. */
interface PrivateChain {
  readonly blocks: Block[];
  state: MemoryStateTree;
}

export function arm(world: World, checker: Checker): void {
  const selfish = new Map<string, PrivateChain>();
  world.observe({
    onStarted(sim, node) {
      const rng = world.rng.fork(`adversary-${sim.id}-${sim.lives}`);
      switch (sim.spec.role) {
        case 'garbage':
          return every(world, sim, 6_000, () => sendGarbage(world, checker, node, rng));
        case 'tamperer':
          return tamperBodies(node);
        case 'liar':
          return lieAboutChain(node);
        case 'freerider':
          refuseToServe(node);
          for (let i = 0; i < FREE_RIDE_LOOPS; i++) void freeRideLoop(world, sim, node, rng.fork(`loop-${i}`));
          return;
        case 'sybil':
          return sybils(world, sim, node, rng);
        case 'flooder':
          return every(world, sim, 500, () => flood(node));
        case 'selfish':
          return every(world, sim, 1_000, () => maybeRelease(node, selfish.get(sim.id)?.blocks ?? []));
        case 'honest':
          return;
      }
    },
  });
  // A selfish miner keeps what it finds, building a private chain on it.
  for (const sim of world.nodes.filter((n) => n.spec.role === 'selfish')) {
    world.minedBy.set(sim.id, async (s, _public) => {
      const node = s.node;
      if (!node) return;
      const own = selfish.get(s.id) ?? { blocks: [], state: MemoryStateTree.EMPTY };
      const withheld = own.blocks;
      // Give up a private chain the public one has caught up with.
      if (withheld.length > 0 && node.chain.tip.height >= withheld.at(-1)!.header.height) withheld.length = 0;
      let parent = withheld.at(-1)?.header;
      if (!parent) {
        // A new private chain starts from the public tip's state.
        const start = await node.chain.withImportsPaused(async () => ({ tip: node.chain.tip.header, state: await treeOf(node) }));
        parent = start.tip;
        own.state = start.state;
      }
      const anchor = parent.height === 0 ? undefined : (node.chain.tip.anchorTimestamp ?? withheld.find((b) => b.header.height === 1)?.header.timestamp);
      const miner = world.o.wallets.minerAddress(s.spec.minerKey);
      const key = stateKey(miner);
      const paid = own.state.get(key) ?? { balance: 0n, nonce: 0n };
      const state = own.state.with([{ key, account: { balance: paid.balance + node.params.reward, nonce: paid.nonce } }]);
      const block = craft(node, parent, anchor, miner, [], { stateRoot: state.root });
      if (block) {
        withheld.push(block);
        own.state = state;
      }
      selfish.set(s.id, own);
    });
  }
}

function every(world: World, sim: SimNode, ms: number, act: () => Promise<void> | void): void {
  const life = sim.lives;
  const tick = () => {
    if (!sim.node || sim.lives !== life || world.scheduler.now >= SIM_EPOCH_MS + world.o.durationMs) return;
    void Promise.resolve(act()).catch(() => {});
    world.scheduler.after(ms, tick);
  };
  world.scheduler.after(ms, tick);
}

/** Every account of the node's tip as a tree. */
async function treeOf(node: CairnNode): Promise<MemoryStateTree> {
  const changes = [];
  for await (const { address, account } of node.db.accounts()) changes.push({ key: stateKey(address), account });
  return MemoryStateTree.EMPTY.with(changes);
}

/**
 * A block on `parent` with a real proof of work at the target consensus expects, and whatever body
 * and state root it is given (by default its parent's: right only for a block that breaks a rule
 * checked before the state root).
 */
function craft(
  node: CairnNode,
  parent: BlockHeader,
  anchorTimestamp: number | undefined,
  miner: Uint8Array,
  txs: readonly Transaction[],
  o: { coinbaseAmount?: bigint; merkleRoot?: Uint8Array; stateRoot?: Uint8Array; target?: bigint; timestamp?: number; height?: number; version?: number } = {},
): Block | undefined {
  const params = node.params;
  const height = o.height ?? parent.height + 1;
  const fees = txs.reduce((s, tx) => s + tx.fee, 0n);
  const coinbase = { to: miner, amount: o.coinbaseAmount ?? params.reward + fees };
  const target = o.target ?? nextTarget(params, parent, anchorTimestamp);
  const parentEntry = node.chain.getEntry(parent.hash);
  const minTime = parentEntry ? medianTimePast(parentEntry) + 1 : parent.timestamp + 1;
  const header = makeHeader({
    version: o.version ?? BLOCK_VERSION,
    height,
    prevHash: parent.hash,
    merkleRoot: o.merkleRoot ?? computeMerkleRoot(height, coinbase, txs),
    stateRoot: o.stateRoot ?? parent.stateRoot,
    timestamp: o.timestamp ?? Math.max(node.clock(), minTime, parent.timestamp + 1),
    target,
    nonce: 0n,
  });
  const nonce = searchNonce(header.bytes, targetBytes(target), 0n, 1_000_000, sha256);
  if (nonce === undefined) return undefined;
  return makeBlock(makeHeader({ ...header, nonce }), coinbase, txs);
}

/** Invalid blocks of every kind on its tip, and forged transactions, gossiped as if valid. */
async function sendGarbage(world: World, checker: Checker, node: CairnNode, rng: Random): Promise<void> {
  const tip = node.chain.tip;
  const wallets = world.o.wallets;
  const payer = rng.pick(wallets.keys);
  const nonce = (await node.db.getAccount(payer.address))?.nonce ?? 0n;
  const chainId = node.params.chainId;
  const honestTx = sign({ chainId, to: rng.pick(wallets.keys).address, amount: 1n, fee: 1n, nonce }, payer);
  const forged = decodeTransaction(concatBytes(honestTx.bytes.subarray(0, UNSIGNED_TX_BYTES), honestTx.publicKey, rng.bytes(64)));
  const miner = rng.bytes(20);
  const on = (txs: Transaction[], o: Parameters<typeof craft>[5] = {}) => craft(node, tip.header, tip.anchorTimestamp, miner, txs, o);
  const transfer = (fields: { amount?: bigint; nonce?: bigint; chainId?: number }) =>
    sign({ chainId: fields.chainId ?? chainId, to: miner, amount: fields.amount ?? 1n, fee: 1n, nonce: fields.nonce ?? nonce }, payer);
  // One block per rule it breaks, chosen by the seed: body rules, header rules, state rules.
  const kinds: (() => Block | undefined)[] = [
    () => on([], { coinbaseAmount: node.params.reward + 1n }), // pays itself too much
    () => on([forged]), // a bad signature inside
    () => on([transfer({ nonce: nonce + 5n })]), // a nonce gap
    () => on([transfer({ amount: wallets.balance * 10n })]), // overspends
    () => on([honestTx], { merkleRoot: rng.bytes(32) }), // body does not match
    () => on([honestTx, honestTx]), // a transaction twice
    () => on([transfer({ chainId: chainId + 1 })]), // a transaction of another chain
    () => on([], { target: tip.header.target * 2n }), // claims an easier target than ASERT allows
    () => on([], { timestamp: tip.header.timestamp - 3_600 }), // before the median time past
    () => on([], { timestamp: node.clock() + 3_600 }), // too far in the future (not the sender's fault: no ban)
    () => on([], { height: tip.height + 2 }), // a height that does not follow its parent
    () => on([], { version: 99 }), // an unknown version
    () => on([], { stateRoot: rng.bytes(32) }), // a valid body, a state root it does not leave
  ];
  const block = rng.pick(kinds)();
  if (block) {
    checker.invalid.blocks.add(toHex(block.header.hash));
    // Half as compact blocks: one whose header holds is forwarded by honest nodes before its
    // import fails (BIP 152), and none of them may be blamed for it. A compact block whose
    // transactions the mempools lack cannot be rebuilt (this node serves none) and is synced.
    if (rng.chance(0.5)) await node.transport.publish(node.names.compactBlockTopic, encodeCompactBlock(block));
    else await node.transport.publish(node.names.blockTopic, block.bytes);
  }
  // And transactions that break a rule of their own: a forged signature, a key that is not the
  // sender's, another chain, an amount past the cap.
  const stranger = rng.pick(wallets.keys.filter((k) => k !== payer));
  const badKey = decodeTransaction(concatBytes(honestTx.bytes.subarray(0, UNSIGNED_TX_BYTES), stranger.publicKey, honestTx.signature));
  const overCap = sign({ chainId, to: miner, amount: MAX_AMOUNT, fee: 1n, nonce }, payer);
  for (const tx of [forged, badKey, transfer({ chainId: chainId + 1 }), overCap]) {
    checker.invalid.txs.add(tx.idHex);
    await node.transport.publish(node.names.txTopic, encodeTxBatch([tx]));
  }
}

/** Serves every block with a body that does not match its header (another coinbase recipient). */
function tamperBodies(node: CairnNode): void {
  const transport = node.transport as unknown as { override(protocol: string, respond: (req: Uint8Array, peer: string) => Promise<Uint8Array | Uint8Array[]>): void };
  transport.override(node.names.blocks, async (req) => {
    const stored = await node.db.getBlocksBytes(decodeGetBlocks(req));
    const out: Uint8Array[] = [];
    for (const bytes of stored) {
      if (!bytes) break;
      const b = decodeBlock(bytes);
      out.push(makeBlock(b.header, { to: sha256(b.header.hash).subarray(0, 20), amount: b.coinbase.amount }, b.txs).bytes);
    }
    return out;
  });
}

/** Claims far more work than it has, and answers headers with a chain whose proof of work is missing. */
function lieAboutChain(node: CairnNode): void {
  const transport = node.transport as unknown as { override(protocol: string, respond: (req: Uint8Array, peer: string) => Promise<Uint8Array | Uint8Array[]>): void };
  transport.override(node.names.status, async () => {
    const tip = node.chain.tip;
    return encodeStatus({ genesis: node.db.genesis.header.hash, height: tip.height + 500, tipHash: sha256(tip.hash), totalWork: tip.totalWork * 100n + 1n, prunedHeight: 0 });
  });
  transport.override(node.names.headers, async () => {
    const headers: BlockHeader[] = [];
    let parent = node.db.genesis.header;
    for (let i = 0; i < 50; i++) {
      // A header that links and carries the expected target, but whose hash misses it.
      const base = { version: BLOCK_VERSION, height: parent.height + 1, prevHash: parent.hash, merkleRoot: sha256(parent.hash), stateRoot: parent.stateRoot, timestamp: parent.timestamp + 10, target: parent.target };
      let h = makeHeader({ ...base, nonce: 0n });
      for (let n = 1n; BigInt('0x' + toHex(h.hash)) <= h.target; n++) h = makeHeader({ ...base, nonce: n });
      headers.push(h);
      parent = h;
    }
    return encodeHeaders(headers);
  });
}

/** A free rider serves nothing: no headers, no blocks. */
function refuseToServe(node: CairnNode): void {
  const transport = node.transport as unknown as { override(protocol: string, respond: (req: Uint8Array, peer: string) => Promise<Uint8Array | Uint8Array[]>): void };
  transport.override(node.names.headers, async () => encodeHeaders([]));
  transport.override(node.names.blocks, async () => []);
}

/** Downloads running at once in a free rider: as many as a peer may have in flight. */
export const FREE_RIDE_LOOPS = 4;

/**
 * Downloads the whole chain from genesis from a peer, again and again, as fast as it is given
 * it — a taker that knows the rules: it waits as long as a busy answer asks (so that only its
 * re-downloads, not its manners, can be held against it), and moves on when a peer cuts it off.
 */
async function freeRideLoop(world: World, sim: SimNode, node: CairnNode, rng: Random): Promise<void> {
  const life = sim.lives;
  const alive = () => sim.node === node && sim.lives === life && world.scheduler.now < SIM_EPOCH_MS + world.o.durationMs;
  const env = node.env;
  // Its own sync first: a free rider follows the chain like anyone.
  await sleep(env, 5_000);
  while (alive()) {
    const peers = node.transport.peers();
    if (peers.length === 0) {
      await sleep(env, 1_000);
      continue;
    }
    const peer = rng.pick(peers);
    try {
      const headers = decodeHeaders(await patiently(node, () => node.transport.request(peer, node.names.headers, encodeGetHeaders({ locator: [node.db.genesis.header.hash], max: 2000 }), { timeoutMs: 10_000, maxBytes: 1 << 20 })));
      if (headers.length === 0) await sleep(env, 1_000);
      for (let i = 0; i < headers.length && alive(); i += 64) {
        const hashes = headers.slice(i, i + 64).map((h) => h.hash);
        await patiently(node, () => node.transport.requestMany(peer, node.names.blocks, encodeGetBlocks(hashes), 64, { timeoutMs: 20_000, maxBytes: 1 << 20 }));
      }
    } catch {
      await sleep(env, 500); // cut off, or gone: another peer
    }
  }
}

/** `ask`, asked again after each busy answer's retry-after. */
async function patiently<T>(node: CairnNode, ask: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await ask();
    } catch (err) {
      if (!(err instanceof TransportError) || err.code !== 'TRANSPORT_BUSY') throw err;
      await sleep(node.env, err.retryAfterMs);
    }
  }
}

/** Identities a sybil makes, all from one IP. */
export const SYBIL_IDENTITIES = 50;

/**
 * Fifty identities from one IP, each a bare transport that answers the status handshake (so it
 * is not refused as another network) and does nothing else, all dialling one honest node (one of
 * those it bootstraps off, if it is told any): they must get no more inbound slots there than one
 * IP's share.
 */
function sybils(world: World, sim: SimNode, node: CairnNode, rng: Random): void {
  const honest = world.nodes.filter((n) => n.honest && n.up && (!sim.spec.bootstrapTo || sim.spec.bootstrapTo.includes(n.id)));
  if (honest.length === 0) return;
  const target = rng.pick(honest);
  const ip = `10.250.${sim.lives}.${1 + rng.int(250)}`;
  const genesis = node.db.genesis.header;
  const status = encodeStatus({ genesis: genesis.hash, height: 0, tipHash: genesis.hash, totalWork: 1n, prunedHeight: 0 });
  for (let i = 0; i < SYBIL_IDENTITIES; i++) {
    const id = `${sim.id}-sybil-${sim.lives}-${i}`;
    if (world.net.transport(id)) continue;
    world.net.place(id, { ip });
    const t = world.net.attach(id, { denied: () => false });
    void t.handle(node.names.status, async () => status, { timeoutMs: 5_000, maxBytes: 1024, onBadRequest: () => {} });
    void t.dial([world.net.address(target.id)]).catch(() => {});
  }
}

/** Status requests to every peer, twice a second, each a few times over. */
async function flood(node: CairnNode): Promise<void> {
  await Promise.allSettled(node.transport.peers().flatMap((peer) => Array.from({ length: 4 }, () => node.transport.request(peer, node.names.status, new Uint8Array(0), { timeoutMs: 2_000, maxBytes: 1024 }))));
}

/** Publishes the private chain once the public one comes within a block of it. */
async function maybeRelease(node: CairnNode, withheld: Block[]): Promise<void> {
  if (withheld.length === 0) return;
  const lead = withheld.at(-1)!.header.height - node.chain.tip.height;
  if (lead > 1) return;
  const blocks = withheld.splice(0);
  for (const block of blocks) {
    if (node.chain.getEntry(block.header.prevHash) === undefined) break;
    await node.chain.processBlock(block).catch(() => {});
    await node.transport.publish(node.names.blockTopic, block.bytes);
  }
}

