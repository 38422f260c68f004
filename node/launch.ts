import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LevelKv } from '../ledger/kv-level.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { MempoolPolicy } from '../ledger/mempool.ts';
import { realEnv, type Env } from './env.ts';
import { Libp2pTransport } from './libp2p/transport.ts';
import { loadOrCreatePeerKey } from './libp2p/identity.ts';
import { checkPeerAddress } from './libp2p/addresses.ts';
import { mdnsRouteProblem } from './libp2p/multicast.ts';
import { banFile } from './ban-file.ts';
import type { ServingLimits } from './serving.ts';
import type { SlotLimits } from './slots.ts';
import { loadMempool, saveMempool } from './mempool-file.ts';
import { Miner } from './miner.ts';
import { CairnNode, type NodeService } from './node.ts';
import { RpcServer } from './rpc.ts';
import { VerifyPool } from './verify-pool.ts';
import { CATCH_UP_BLOCKS, setHeapGrowth } from './heap-growth.ts';

/** A real node's settings: a datadir on disk, libp2p on TCP, worker threads, the machine's clock. */
export interface NodeConfig {
  readonly datadir: string;
  readonly params: ChainParams;
  readonly listen?: readonly string[];
  readonly bootstrap?: readonly string[];
  readonly mdns?: boolean;
  readonly maxConnections?: number;
  /** Mine to this address with this many worker threads. */
  readonly mine?: { readonly coinbase: Uint8Array; readonly threads: number };
  readonly mempool?: Partial<MempoolPolicy>;
  readonly banSeconds?: number;
  /** How often to ask every peer for its status again (ms): how a node notices it fell behind. */
  readonly statusIntervalMs?: number;
  /** Serve JSON-RPC here (port 0: any free port); the endpoint and token go to <datadir>/rpc.json. */
  readonly rpc?: { readonly host?: string; readonly port?: number };
  /** Signature-verification threads (default: one per core). */
  readonly verifyThreads?: number;
  /** Time and randomness (default: the machine's). */
  readonly env?: Env;
  /** How long the node may be without a peer before it warns (ms; default 30 s). */
  readonly noPeersWarningMs?: number;
  /** Per-peer budgets on the request protocols (node/serving.ts). */
  readonly serving?: Partial<ServingLimits>;
  /** Inbound connections in all, per IP and per subnet (node/slots.ts). */
  readonly connectionLimits?: Partial<SlotLimits>;
  /** Lets V8's heap grow further while downloading a long chain (a process-wide setting: off for several nodes in one process). */
  readonly heapGrowth?: boolean;
}

/**
 * A node as a user runs one: LevelDB in `<datadir>/chain`, libp2p with the identity kept in the
 * datadir, signatures and mining on worker threads, the mempool saved across restarts, and the
 * RPC server. Not started: call `start()`.
 */
export function createNode(config: NodeConfig): CairnNode {
  // A malformed bootstrap address is refused here, naming it, rather than never dialled.
  for (const addr of config.bootstrap ?? []) checkPeerAddress(addr);
  const env = config.env ?? realEnv;
  const pool = new VerifyPool(config.verifyThreads);
  const services: ((node: CairnNode) => NodeService)[] = [];
  if (config.mine) {
    const mine = config.mine;
    services.push((node) => {
      const miner = new Miner({
        chain: node.chain,
        mempool: node.mempool,
        coinbase: mine.coinbase,
        clock: node.clock,
        threads: mine.threads,
        pool,
        env,
        submit: (block) => node.importAndAnnounce(block),
      });
      miner.on('error', (err) => node.emit('log', 'warn', `mining: ${err.message}`));
      return {
        async start() {
          node.mining = true;
          miner.start();
        },
        async stop() {
          node.mining = false;
          await miner.stop();
        },
      };
    });
  }
  if (config.rpc) {
    const rpcOptions = config.rpc;
    services.push((node) => {
      const rpc = new RpcServer(node, { datadir: config.datadir, ...rpcOptions });
      return {
        async start() {
          await rpc.start();
          node.emit('log', 'info', 'rpc', { url: rpc.url });
        },
        stop: () => rpc.stop(),
      };
    });
  }
  if (config.mdns ?? true) {
    services.push((node) => ({
      async start() {
        const problem = await mdnsRouteProblem();
        if (problem) node.emit('log', 'warn', problem);
      },
      async stop() {},
    }));
  }
  if (config.heapGrowth) {
    services.push((node) => ({
      async start() {
        node.sync.on('download', (blocks) => blocks >= CATCH_UP_BLOCKS && setHeapGrowth('catch-up'));
        node.sync.on('idle', () => setHeapGrowth('follow'));
      },
      async stop() {},
    }));
  }
  return new CairnNode({
    params: config.params,
    env,
    openStore: async () => {
      await mkdir(config.datadir, { recursive: true });
      return LevelKv.open(join(config.datadir, 'chain'));
    },
    createTransport: async (gate, names) =>
      Libp2pTransport.create({
        privateKey: await loadOrCreatePeerKey(config.datadir),
        listen: config.listen ?? ['/ip4/0.0.0.0/tcp/0'],
        bootstrap: config.bootstrap ?? [],
        mdns: config.mdns ?? true,
        maxConnections: config.maxConnections ?? 64,
        names,
        maxMessageBytes: config.params.maxBlockBytes + 64 * 1024,
        gate,
      }),
    verifier: pool,
    bootstrap: config.bootstrap,
    mempool: config.mempool,
    mempoolStore: { load: (mempool, now) => loadMempool(config.datadir, mempool, now), save: async (mempool) => void (await saveMempool(config.datadir, mempool)) },
    banStore: banFile(config.datadir),
    serving: config.serving,
    connectionLimits: config.connectionLimits,
    banSeconds: config.banSeconds,
    statusIntervalMs: config.statusIntervalMs,
    noPeersWarningMs: config.noPeersWarningMs,
    services,
    release: () => pool.close(),
  });
}
