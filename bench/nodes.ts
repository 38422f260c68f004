import type { ChainParams } from '../ledger/genesis.ts';
import { CairnNode, type NodeConfig } from '../node/node.ts';
import { stopAll, type TestNode } from '../test/helpers/network.ts';
import type { TempDir } from './report.ts';

/**
 * An in-process CairnNode on 127.0.0.1 without mDNS, so it meets only the peers it is told about,
 * in the runner's temporary directory (swept even if the bench dies before `stopNodes`). `live`
 * lists every node a suite must stop; the node joins it before starting, so one that fails
 * halfway through its start is stopped too.
 */
export async function startBenchNode(dir: TempDir, params: ChainParams, live: TestNode[], extra: Partial<NodeConfig> = {}): Promise<TestNode> {
  const node = new CairnNode({ datadir: dir.path, params, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, ...extra });
  const t: TestNode = { node, addr: '', remove: dir.remove };
  live.push(t);
  await node.start();
  const started = { ...t, addr: node.listenAddresses()[0]! };
  live[live.indexOf(t)] = started;
  return started;
}

export async function stopNodes(live: TestNode[], which: readonly TestNode[]): Promise<void> {
  await stopAll(which);
  for (const t of which) {
    const i = live.indexOf(t);
    if (i >= 0) live.splice(i, 1);
  }
}
