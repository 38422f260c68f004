import { bytesEqual, toHex } from '../ledger/bytes.ts';
import type { Block } from '../ledger/block.ts';
import { maxFutureDrift } from '../consensus/header-rules.ts';
import type { CairnNode } from '../node/node.ts';
import { encodeStatus, encodeTxBatch } from '../node/wire.ts';
import { mineBlock } from './mining.ts';
import type { Random } from './random.ts';
import type { SimNode } from './sim-node.ts';
import type { World } from './world.ts';
import type { SimTransport } from './transport.ts';

/**
 * Adversaries whose every block and message is valid, and who hurt by when, to whom and what they
 * tell: a miner at the edges of the timestamp rules, an equivocator, a withholder of bodies, a
 * replayer of old blocks and transactions, an eclipser announcing identities of one host. Nothing
 * they send breaks a rule, so the invariants, not penalties, judge how the honest nodes fare.
 * What each does is counted in world.counts.acts, and its blocks traced, so a test can see it acted.
 */

/** Blocks whose timestamp sits at the edge of the future drift (up to 5 s short of it), or at the median time past + 1: half and half. */
export function timewarp(world: World, sim: SimNode, rng: Random): void {
  world.minedBy.set(sim.id, async (s) => {
    const node = s.node;
    if (!node) return;
    const future = rng.chance(0.5);
    // A `now` of 0 leaves the template at its earliest: the median time past + 1.
    const now = future ? node.clock() + maxFutureDrift(node.params.blockTime) - rng.int(6) : 0;
    const block = await mineBlock(node, world.o.wallets.minerAddress(s.spec.minerKey), now);
    if (!block) return;
    act(world, s, future ? 'future-edge' : 'past-edge', block);
    await node.importAndAnnounce(block).catch(() => {});
  });
}

/**
 * Two blocks at each height it mines, alike but for their coinbase, one gossiped to half its
 * peers and the other to the rest (equal work: each side keeps the one it saw first); and to each
 * peer a status naming the block that peer was given.
 */
export function equivocate(world: World, sim: SimNode, rng: Random): { status(node: CairnNode, peer: string): Uint8Array } {
  const told = new Map<string, Uint8Array>();
  world.minedBy.set(sim.id, async (s, block) => {
    const node = s.node;
    const t = s.transport;
    if (!node || !t) return;
    const twin = await mineBlock(node, rng.bytes(20), block.header.timestamp);
    await node.chain.processBlock(block).catch(() => {});
    if (!twin || !bytesEqual(twin.header.prevHash, block.header.prevHash)) {
      for (const peer of t.peers()) t.sendTo(peer, node.names.blockTopic, block.bytes);
      return;
    }
    await node.chain.processBlock(twin).catch(() => {});
    act(world, s, 'equivocation', twin);
    told.clear();
    for (const [i, peer] of rng.shuffle(t.peers()).entries()) {
      const given = i % 2 === 0 ? block : twin;
      told.set(peer, given.header.hash);
      t.sendTo(peer, node.names.blockTopic, given.bytes);
    }
  });
  return {
    status(node, peer) {
      const tip = node.chain.tip;
      const named = told.get(peer);
      // The twin stands for the tip it ties with; once the tip moves on, the truth.
      const twin = named && node.chain.getEntry(named);
      const tipHash = twin && twin.height === tip.height && twin.totalWork === tip.totalWork ? named : tip.hash;
      return encodeStatus({ genesis: node.db.genesis.header.hash, height: tip.height, tipHash, totalWork: tip.totalWork, prunedHeight: node.db.history.prunedHeight });
    },
  };
}

/**
 * Serves headers and statuses as any node does, and no body: its answers to block requests are
 * empty. What it mines it keeps to itself but for its status (and the headers it then serves), so
 * that the only road to its blocks' bodies is through it.
 */
export function withholdBodies(world: World, sim: SimNode, node: CairnNode): void {
  const transport = node.transport as unknown as { override(protocol: string, respond: (req: Uint8Array, peer: string) => Promise<Uint8Array | Uint8Array[]>): void };
  transport.override(node.names.blocks, async () => {
    act(world, sim, 'bodies-withheld');
    return [];
  });
}

/** The withholder mines: its blocks go on its own chain, announced by nothing but its status. */
export function mineWithheld(world: World, sim: SimNode): void {
  world.minedBy.set(sim.id, async (s, block) => {
    await s.node?.chain.processBlock(block).catch(() => {});
    act(world, s, 'block-withheld', block);
  });
}

/**
 * Every few seconds, a block gossiped again to every peer: an old one of its main chain, or one
 * a reorganisation took off it (a stale branch, valid but left behind); and a transaction of the
 * block, long mined. Returns the tick; the stale blocks are those of this life of its node.
 */
export function replayer(world: World, sim: SimNode, node: CairnNode, rng: Random): () => Promise<void> {
  const stale: Block[] = [];
  node.chain.on('disconnect', (block) => {
    stale.push(block);
    if (stale.length > 50) stale.shift();
  });
  return async () => {
    const t = sim.transport;
    const tip = node.chain.tip.height;
    if (!t || tip < 2) return;
    const block = stale.length > 0 && rng.chance(0.5) ? rng.pick(stale) : await node.db.getBlockAtHeight(1 + rng.int(tip - 1));
    if (!block) return;
    act(world, sim, stale.includes(block) ? 'stale-block-replayed' : 'block-replayed', block);
    for (const peer of t.peers()) t.sendTo(peer, node.names.blockTopic, block.bytes);
    const tx = block.txs.length > 0 ? rng.pick(block.txs) : undefined;
    if (!tx) return;
    act(world, sim, 'tx-replayed');
    for (const peer of t.peers()) t.sendTo(peer, node.names.txTopic, encodeTxBatch([tx]));
  };
}

/**
 * `count` identities of one host at `ip` (those of this life not made yet), each a bare transport
 * that answers the status handshake at genesis (so it is not refused as another network) and does
 * nothing else; `each` runs on each as it is made. The sybil and the eclipser are such hosts.
 */
export function hostIdentities(world: World, sim: SimNode, node: CairnNode, kind: string, ip: string, count: number, each?: (t: SimTransport) => void): string[] {
  const genesis = node.db.genesis.header;
  const status = encodeStatus({ genesis: genesis.hash, height: 0, tipHash: genesis.hash, totalWork: 1n, prunedHeight: 0 });
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = `${sim.id}-${kind}-${sim.lives}-${i}`;
    if (world.net.transport(id)) continue;
    world.net.place(id, { ip });
    const t = world.net.attach(id, { denied: () => false });
    void t.handle(node.names.status, async () => status, { timeoutMs: 5_000, maxBytes: 1024, onBadRequest: () => {} });
    each?.(t);
    ids.push(id);
  }
  return ids;
}

/** Identities an eclipser makes, all on one IP: four more than the peer book keeps of one subnet. */
export const ECLIPSE_IDENTITIES = 68;

/**
 * Identities of one host announced to one honest node (as a flood of mDNS answers or DHT records
 * would), again every 5 s, each answering the status handshake at genesis and nothing else: they
 * should take no more of its outbound connections (the ones it chooses, its defence against an
 * eclipse) than one host deserves. The most they held at once is its act 'outbound-held'.
 */
export function eclipse(world: World, sim: SimNode, node: CairnNode, rng: Random): () => void {
  const honest = world.nodes.filter((n) => n.honest && n.up);
  const target = honest.length > 0 ? rng.pick(honest) : undefined;
  const ip = `10.251.${sim.lives}.${1 + rng.int(250)}`;
  const ids = hostIdentities(world, sim, node, 'eclipse', ip, ECLIPSE_IDENTITIES);
  return () => {
    const t = target?.transport;
    if (!t) return;
    for (const id of ids) t.discover(id);
    const held = t.peers().filter((p) => ids.includes(p) && t.connectionInfo(p)?.direction === 'outbound').length;
    world.counts.acts['outbound-held'] = Math.max(world.counts.acts['outbound-held'] ?? 0, held);
  };
}

function act(world: World, sim: SimNode, what: string, block?: Block): void {
  world.counts.acts[what] = (world.counts.acts[what] ?? 0) + 1;
  if (block) world.record(`${sim.id} ${what} ${block.header.height} ${toHex(block.header.hash).slice(0, 16)}`);
}
