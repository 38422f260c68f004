/**
 * A simulated world where a node joins by snapshot sync (node/snapshot-sync.ts): n0 mines a chain
 * of 130 blocks and more, n1 serves it too, n2 starts a minute in with --snapshot-sync; and a way
 * to wrap what a node answers to getSnapshotChunk.
 */
import type { ChainParams } from '../../ledger/genesis.ts';
import type { Transaction } from '../../ledger/transaction.ts';
import { mineHistory } from '../../sim/mining.ts';
import type { SimTransport } from '../../sim/network.ts';
import { Random } from '../../sim/random.ts';
import { scenario, simParams } from '../../sim/scenario.ts';
import { World } from '../../sim/world.ts';

/** The snapshot interval and reorg depth of these worlds: a chain of 130 blocks gives the pivot 100. */
export const INTERVAL = 20;
export const DEPTH = 16;

/**
 * `pruned`: n0, the miner and the one peer holding the chain at first, prunes at the reorg depth.
 * `historyTxs`: the transactions of the history's blocks by height (else coinbases only), and no users' transactions during the run.
 */
export function joinWorld(name: string, extra: { hostile?: boolean; pruned?: boolean; historyTxs?: (height: number, params: ChainParams) => Transaction[] } = {}) {
  const base = scenario(name, { calm: true, nodes: extra.hostile ? 4 : 3, minutes: 3 });
  const pruneKeep = extra.pruned ? DEPTH : undefined;
  const nodes: (typeof base.nodes)[number][] = [
    { ...base.nodes[0]!, hashShare: 1, pruneKeep },
    { ...base.nodes[1]!, hashShare: 0, pruneKeep: undefined },
    { ...base.nodes[2]!, hashShare: 0, joinAtMs: 60_000, snapshotSync: true, bootstrapTo: extra.hostile ? ['n3', 'n1'] : ['n0', 'n1'] },
  ];
  if (extra.hostile) nodes.push({ ...base.nodes[3]!, hashShare: 0, role: 'tamperer' as const, joinAtMs: 0 });
  const params = simParams(new Random(name), 130);
  return new World({
    ...base,
    params,
    history: 130,
    reorgDepth: DEPTH,
    window: 4,
    snapshotInterval: INTERVAL,
    nodes,
    ...(extra.historyTxs && {
      txPerMinute: 0,
      historyBlocks: () => mineHistory(params, 130, base.wallets.minerAddress(0), (height) => extra.historyTxs!(height, params)),
    }),
  });
}

export type Responder = (req: Uint8Array, peer: string) => Promise<Uint8Array>;

/** Wraps node `id`'s getSnapshotChunk answers, each life. */
export function wrapSnapshots(world: World, id: string, wrap: (honest: Responder) => Responder): void {
  world.observe({
    onStarted(sim, node) {
      if (sim.id !== id) return;
      const transport = node.transport as SimTransport;
      const honest = (transport as unknown as { handlers: Map<string, { respond: Responder }> }).handlers.get(node.names.snapshot)!.respond;
      transport.override(node.names.snapshot, wrap(honest));
    },
  });
}
