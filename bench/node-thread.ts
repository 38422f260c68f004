/**
 * One CairnNode in a worker thread, driven by messages from the bench (bench/threaded-nodes.ts):
 * nodes that each have their own event loop, as separate processes or machines would, while the
 * bench still times them on one clock (performance.timeOrigin + performance.now() is absolute).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { ChainParams } from '../ledger/genesis.ts';
import { decodeTransaction } from '../ledger/transaction.ts';
import { createNode } from '../node/launch.ts';
import { UNLIMITED_SERVING } from '../node/serving-limits.ts';
import { libp2pHost, mineOn, type TestNode } from '../test/helpers/network.ts';
import { watchImports } from './nodes.ts';

const port = parentPort!;
/** A backfill of the bench's chains takes seconds; one that has not finished in this has stopped. */
const BACKFILL_TIMEOUT_MS = 300_000;
const { datadir, params, bootstrap, unlimited } = workerData as { datadir: string; params: ChainParams; bootstrap: string[]; unlimited: boolean };
const node = createNode({ datadir, params, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, bootstrap, serving: unlimited ? UNLIMITED_SERVING : undefined });
const at = () => performance.timeOrigin + performance.now();
/** This thread's own CPU time (not its verifier threads' or LevelDB's), in ms. */
const threadCpuMs = () => {
  const { user, system } = process.threadCpuUsage();
  return (user + system) / 1000;
};

let session: Session | undefined;

const handlers: Record<string, (arg: any) => Promise<unknown>> = {
  /** With CAIRN_BENCH_PROFILE set: this thread's CPU profile from `profileStart` to `profileStop`. */
  async profileStart() {
    if (!process.env.CAIRN_BENCH_PROFILE) return false;
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    return true;
  },
  async profileStop(name: string) {
    if (!session) return false;
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(process.env.CAIRN_BENCH_PROFILE!, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
    session = undefined;
    return true;
  },
  async submit(txs: Uint8Array[]) {
    const decoded = txs.map((bytes) => decodeTransaction(bytes));
    await node.signatures.preverify(decoded);
    for (const tx of decoded) await node.submitTransaction(tx);
    return decoded.length;
  },
  async state() {
    const pubsub = libp2pHost(node).services.pubsub;
    return {
      mempool: node.mempool.size,
      peers: node.sync.statuses.size,
      mesh: Math.min(pubsub.getMeshPeers(node.names.compactBlockTopic).length, pubsub.getMeshPeers(node.names.txTopic).length),
      shape: `${libp2pHost(node).getConnections().map((c) => c.id).sort().join(',')}:${pubsub.getMeshPeers(node.names.compactBlockTopic).length}:${pubsub.getMeshPeers(node.names.txTopic).length}`,
      height: node.chain.tip.height,
      tip: node.chain.tip.hashHex,
      cpuMs: threadCpuMs(),
    };
  },
  /** Bytes this node has served, and requests it answered busy, all protocols together. */
  async served() {
    const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
    return { bytes: sum(node.guard.stats.servedBytes), throttled: sum(node.guard.stats.throttled) };
  },
  /**
   * Resolves once the node's start-up work in the background is done: every state snapshot it
   * keeps (node/snapshots.ts) and its address index's backfill (a datadir built without the index
   * is indexed block by block after the start, writing ~40 records a block).
   */
  async backgroundIdle() {
    await node.snapshots?.idle();
    const deadline = performance.now() + BACKFILL_TIMEOUT_MS;
    while (node.addressIndex?.status().state === 'building') {
      if (performance.now() > deadline) throw new Error(`the address index was still being built after ${BACKFILL_TIMEOUT_MS / 1000} s: ${JSON.stringify(node.addressIndex.status())}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return true;
  },
  async mine(minerKey: number) {
    let found = 0;
    const [block] = await mineOn({ node } as TestNode, 1, minerKey, () => (found = at()));
    return { hash: Buffer.from(block!.header.hash).toString('hex'), txs: block!.txs.length, found };
  },
  async stop() {
    await node.stop();
    setImmediate(() => port.close());
    return true;
  },
};

port.on('message', async ({ id, cmd, arg }: { id: number; cmd: string; arg: unknown }) => {
  try {
    port.postMessage({ id, result: await handlers[cmd]!(arg) });
  } catch (err) {
    port.postMessage({ id, error: (err as Error).stack ?? String(err) });
  }
});

try {
  await node.start();
  node.chain.on('connect', (_block, entry) => port.postMessage({ event: 'connect', hash: entry.hashHex, at: at() }));
  watchImports(node.chain, (block, start, end) =>
    port.postMessage({ event: 'import', hash: Buffer.from(block.header.hash).toString('hex'), start: performance.timeOrigin + start, end: performance.timeOrigin + end }),
  );
  port.postMessage({ event: 'started', addr: node.listenAddresses()[0] });
} catch (err) {
  port.postMessage({ event: 'failed', error: (err as Error).stack ?? String(err) });
}
