import { sha256 } from '../../ledger/hash.ts';
import type { Block } from '../../ledger/block.ts';
import type { ChainParams } from '../../ledger/genesis.ts';
import { buildTemplate, completeBlock, searchNonce, targetBytes } from '../../consensus/miner.ts';
import type { CairnNode } from '../../node/node.ts';
import { createNode, type NodeConfig } from '../../node/launch.ts';
import { Libp2pTransport } from '../../node/libp2p/transport.ts';
import type { Host } from '../../node/libp2p/host.ts';
import { VerifyPool } from '../../node/verify-pool.ts';
import { tempDir, testKey, testParams } from './fixtures.ts';

/**
 * A network genesis dated a month ago with a trivial target: blocks stamped one second after
 * their parent stay in the past however many are mined, and ASERT (far behind schedule) keeps
 * the target at its easiest, so every block has the same work.
 */
export function networkParams(overrides: Partial<ChainParams> = {}): ChainParams {
  return testParams({ name: 'cairn-net-test', timestamp: Math.floor(Date.now() / 1000) - 30 * 86_400, ...overrides });
}

export interface TestNode {
  readonly node: CairnNode;
  /** What the node was made from, to make it again (a restart). */
  readonly config: NodeConfig;
  readonly addr: string;
  readonly remove: () => void;
}

export async function startNode(params: ChainParams, bootstrap: string[] = [], extra: Partial<NodeConfig> = {}): Promise<TestNode> {
  const dir = tempDir('cairn-node-');
  const config: NodeConfig = {
    datadir: dir.path,
    params,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    mdns: false,
    statusIntervalMs: 1000,
    banSeconds: 600,
    ...extra,
  };
  const node = createNode(config);
  await node.start();
  return { node, config, addr: node.listenAddresses()[0]!, remove: dir.remove };
}

export async function stopAll(nodes: readonly (TestNode | undefined)[]): Promise<void> {
  await Promise.allSettled(nodes.map(async (n) => {
    if (!n) return;
    await n.node.stop();
    n.remove();
  }));
}

/**
 * Mines `count` blocks on the node's tip in-process (one second apart) and gossips each, as the
 * node's miner does; `onFound` hears of each block the moment its nonce is found.
 */
export async function mineOn(t: TestNode, count = 1, minerKey = 60, onFound?: (block: Block) => void): Promise<Block[]> {
  const { chain, mempool } = t.node;
  const out: Block[] = [];
  for (let i = 0; i < count; i++) {
    const template = await buildTemplate(chain, mempool, testKey(minerKey).address, chain.tip.header.timestamp + 1);
    const nonce = searchNonce(template.headerBytes, targetBytes(template.target), 0n, 1_000_000, sha256);
    if (nonce === undefined) throw new Error('no nonce');
    const block = completeBlock(template, nonce);
    onFound?.(block);
    await t.node.importAndAnnounce(block);
    out.push(block);
  }
  return out;
}

/** Polls `condition` until it holds or `timeoutMs` passes; returns the milliseconds it took. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const start = Date.now();
  while (!(await condition())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - start;
}

export function sameTip(nodes: readonly TestNode[]): boolean {
  const first = nodes[0]!.node.chain.tip.hashHex;
  return nodes.every((n) => n.node.chain.tip.hashHex === first);
}

/** The libp2p node under a real node's transport, for tests that look at connections and the mesh. */
export function libp2pHost(node: CairnNode): Host {
  if (!(node.transport instanceof Libp2pTransport)) throw new Error('not a libp2p node');
  return node.transport.host;
}

/** The worker pool a real node verifies signatures on. */
export function verifyPoolOf(node: CairnNode): VerifyPool {
  const pool = node.parts.verifier;
  if (!(pool instanceof VerifyPool)) throw new Error('this node verifies inline');
  return pool;
}
