import { setTimeout as sleep } from 'node:timers/promises';
import type { Block } from '../ledger/block.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { Chain } from '../consensus/chain.ts';
import { createNode, type NodeConfig } from '../node/launch.ts';
import { stopAll, type TestNode } from '../test/helpers/network.ts';
import type { TempDir } from './report.ts';

/**
 * An in-process CairnNode on 127.0.0.1 without mDNS, so it meets only the peers it is told about,
 * in the runner's temporary directory (swept even if the bench dies before `stopNodes`). `live`
 * lists every node a suite must stop; the node joins it before starting, so one that fails
 * halfway through its start is stopped too.
 */
export async function startBenchNode(dir: TempDir, params: ChainParams, live: TestNode[], extra: Partial<NodeConfig> = {}): Promise<TestNode> {
  const config: NodeConfig = { datadir: dir.path, params, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, ...extra };
  const node = createNode(config);
  const t: TestNode = { node, config, addr: '', remove: dir.remove };
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

/** Rejects with `what()` if `promise` has not settled in `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolves once `shape()` (the nodes' connections and gossip meshes, say) has not changed for
 * `quietMs`; throws if it keeps changing for `timeoutMs`.
 */
export async function untilQuiet(shape: () => string | Promise<string>, quietMs: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = await shape();
  let since = performance.now();
  while (performance.now() - since < quietMs) {
    if (performance.now() > deadline) throw new Error(`the nodes' connections kept changing for ${timeoutMs} ms`);
    await sleep(100);
    const now = await shape();
    if (now !== last) {
      last = now;
      since = performance.now();
    }
  }
}

/** Calls `onImport` with the start and end (performance.now()) of every Chain.processBlock and processSaneBlock call. */
export function watchImports(chain: Chain, onImport: (block: Block, startMs: number, endMs: number) => void): void {
  const processBlock = chain.processBlock.bind(chain);
  chain.processBlock = async (block) => {
    const start = performance.now();
    try {
      return await processBlock(block);
    } finally {
      onImport(block, start, performance.now());
    }
  };
  // Sync and compact blocks import through the other entry, their sanity already checked.
  const processSaneBlock = chain.processSaneBlock.bind(chain);
  chain.processSaneBlock = async (block) => {
    const start = performance.now();
    try {
      return await processSaneBlock(block);
    } finally {
      onImport(block, start, performance.now());
    }
  };
}
