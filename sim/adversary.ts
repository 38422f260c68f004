import { toHex } from '../ledger/bytes.ts';
import { sha256 } from '../ledger/hash.ts';
import { decodeBlock, makeBlock, makeHeader, BLOCK_VERSION, type Block, type BlockHeader } from '../ledger/block.ts';
import { MemoryStateTree } from '../ledger/smt-memory.ts';
import type { CairnNode } from '../node/node.ts';
import { sleep } from '../node/env.ts';
import { TransportError } from '../node/transport.ts';
import { decodeGetBlocks, decodeHeaders, encodeGetBlocks, encodeGetHeaders, encodeHeaders, encodeStatus } from '../node/wire.ts';
import { proveAccountsAt } from '../consensus/state-proofs.ts';
import { decodeAccountProof, encodeAccountProof } from '../ledger/smt-proof.ts';
import { PROOF_DEPTH, decodeGetProofs, encodeProofs } from '../node/light/wire.ts';
import { craft, offend, treeOf } from './garbage.ts';
import { eclipse, equivocate, hostIdentities, mineWithheld, replayer, timewarp, withholdBodies } from './lawful-adversaries.ts';
import { stateAfter } from './mining.ts';
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
  const equivocators = new Map<string, ReturnType<typeof equivocate>>();
  // (A fork draws from the world's stream: only for these roles, so other seeds' draws stay as they were.)
  for (const sim of world.nodes) {
    if (sim.spec.role === 'timewarper') timewarp(world, sim, world.rng.fork(`timewarper-${sim.id}`));
    if (sim.spec.role === 'equivocator') equivocators.set(sim.id, equivocate(world, sim, world.rng.fork(`equivocator-${sim.id}`)));
    if (sim.spec.role === 'withholder') mineWithheld(world, sim);
  }
  world.observe({
    onStarted(sim, node) {
      const rng = world.rng.fork(`adversary-${sim.id}-${sim.lives}`);
      switch (sim.spec.role) {
        case 'garbage': {
          let offences = 0;
          return every(world, sim, 6_000, () => offend(world, checker, sim, node, rng, offences++));
        }
        case 'tamperer':
          forgeProofs(node);
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
        case 'equivocator': {
          const transport = node.transport as unknown as { override(protocol: string, respond: (req: Uint8Array, peer: string) => Promise<Uint8Array>): void };
          const equivocator = equivocators.get(sim.id)!;
          return transport.override(node.names.status, async (_req, peer) => equivocator.status(node, peer));
        }
        case 'withholder':
          return withholdBodies(world, sim, node);
        case 'replayer':
          return every(world, sim, 3_000, replayer(world, sim, node, rng));
        case 'eclipser':
          return every(world, sim, 5_000, eclipse(world, sim, node, rng));
        case 'timewarper':
        case 'capturer': // sim/capture.ts
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
      const block = craft(node, parent, anchor, miner, [], { state: own.state });
      if (block) {
        withheld.push(block);
        own.state = stateAfter(own.state, block.coinbase, []);
      }
      selfish.set(s.id, own);
    });
  }
}

/**
 * `act` every `ms` while this life of the node lasts, until the faults end. An adversary that
 * throws while its node runs is broken, and proves nothing: that fails the run, as a node's
 * throw does.
 */
function every(world: World, sim: SimNode, ms: number, act: () => Promise<void> | void): void {
  const life = sim.lives;
  const node = sim.node;
  const tick = () => {
    if (sim.node !== node || sim.lives !== life || world.scheduler.now >= SIM_EPOCH_MS + world.o.durationMs) return;
    void Promise.resolve()
      .then(act)
      .catch((err: Error) => void (sim.node === node && world.crashes.push(`${sim.id} (${sim.spec.role}) threw at ${((world.scheduler.now - SIM_EPOCH_MS) / 1000).toFixed(1)} s: ${err.stack ?? err.message}`)));
    world.scheduler.after(ms, tick);
  };
  world.scheduler.after(ms, tick);
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

/**
 * Answers light clients' proofs with lies they must catch, and ban for, taking turns: real proofs
 * made against the parent's state (at the block asked for, an account that changed in it would
 * show its old balance), and the block's own proofs with a richer account in them.
 * Only light clients ask: a run without them goes as it did.
 */
function forgeProofs(node: CairnNode): void {
  const transport = node.transport as unknown as { override(protocol: string, respond: (req: Uint8Array, peer: string) => Promise<Uint8Array | Uint8Array[]>): void };
  let asked = 0;
  transport.override(node.names.proofs, async (req) => {
    const { blockHash, addresses } = decodeGetProofs(req);
    const parentState = asked++ % 2 === 0;
    const at = await node.chain.withImportsPaused(async () => {
      const header = await node.chain.byHeight.mainHeader(blockHash);
      return header && parentState && header.height > 0 ? await node.chain.byHeight.mainHeader(header.prevHash) : header;
    });
    const proofs = at ? await proveAccountsAt(node.chain, at, addresses, PROOF_DEPTH) : 'not-on-main-chain';
    if (typeof proofs === 'string') return encodeProofs({ kind: 'unknown-block' });
    return encodeProofs({ kind: 'proofs', proofs: parentState ? proofs : proofs.map(richer) });
  });
}

/** The proof with its account's balance raised, if it ends in the account's leaf. */
function richer(bytes: Uint8Array): Uint8Array {
  const proof = decodeAccountProof(bytes);
  const end = proof.end;
  return end.kind === 'leaf' ? encodeAccountProof({ ...proof, end: { ...end, account: { ...end.account, balance: end.account.balance + 1_000n } } }) : bytes;
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
 * re-downloads, not its manners, can be held against it), asks fewer blocks after one, and moves
 * on when a peer cuts it off.
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
      // Re-downloads of more than a server's trickle holds are never served (PROTOCOL.md, "Budgets").
      let take = 64;
      for (let i = 0; i < headers.length && alive(); ) {
        const hashes = headers.slice(i, i + take).map((h) => h.hash);
        try {
          await node.transport.requestMany(peer, node.names.blocks, encodeGetBlocks(hashes), 64, { timeoutMs: 20_000, maxBytes: 1 << 20 });
          i += hashes.length;
        } catch (err) {
          if (!(err instanceof TransportError) || err.code !== 'TRANSPORT_BUSY') throw err;
          take = Math.max(1, take >> 1);
          await sleep(env, err.retryAfterMs);
        }
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
  hostIdentities(world, sim, node, 'sybil', ip, SYBIL_IDENTITIES, (t) => void t.dial([world.net.address(target.id)]).catch(() => {}));
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

