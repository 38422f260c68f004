import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LevelKv } from '../ledger/kv-level.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { MempoolPolicy } from '../ledger/mempool-rules.ts';
import { realEnv, type Env, type Timer } from './env.ts';
import { Libp2pTransport } from './libp2p/transport.ts';
import { loadOrCreatePeerKey } from './libp2p/identity.ts';
import { checkPeerAddress } from './libp2p/addresses.ts';
import { mdnsRouteProblem } from './libp2p/multicast.ts';
import { banFile } from './ban-file.ts';
import { peerFile } from './peer-file.ts';
import type { ServingLimits } from './serving-limits.ts';
import type { SlotLimits } from './slots.ts';
import { loadMempool, saveMempool } from './mempool-file.ts';
import { CatchUpGate, Miner, PEER_WAIT_MS } from './miner.ts';
import { timedWrites } from './timed-store.ts';
import { checkpointFile } from './checkpoint.ts';
import { CairnNode, type NodeService } from './node.ts';
import { RpcServer } from './rpc.ts';
import { HttpServer, type HttpOptions } from './http/server.ts';
import { Metrics } from './metrics.ts';
import { VerifyPool } from './verify-pool.ts';
import { localUrl } from './http/local-url.ts';
import { CATCH_UP_BLOCKS, setHeapGrowth } from './heap-growth.ts';
import { LightClient } from './light/client.ts';
import { lightParamNames, lightRpcHandlers, type LightContext } from './light/rpc.ts';
import type { Checkpoint } from './light/checkpoint.ts';
import { JsonRpcServer } from './rpc.ts';

/** A real node's settings: a datadir on disk, libp2p on TCP, worker threads, the machine's clock. */
export interface NodeConfig {
  readonly datadir: string;
  readonly params: ChainParams;
  readonly listen?: readonly string[];
  readonly bootstrap?: readonly string[];
  readonly mdns?: boolean;
  readonly maxConnections?: number;
  /**
   * Mine to this address with this many worker threads; with peers to find at start, not before
   * one told its chain or `peerWaitMs` passed (default PEER_WAIT_MS, node/miner.ts).
   */
  readonly mine?: { readonly coinbase: Uint8Array; readonly threads: number; readonly peerWaitMs?: number };
  readonly mempool?: Partial<MempoolPolicy>;
  readonly banSeconds?: number;
  /** How often to ask every peer for its status again (ms): how a node notices it fell behind. */
  readonly statusIntervalMs?: number;
  /** Serve JSON-RPC here (port 0: any free port); the endpoint and token go to <datadir>/rpc.json. */
  readonly rpc?: { readonly host?: string; readonly port?: number };
  /** Serve the REST API, live events and the explorer here (node/http/). */
  readonly http?: HttpOptions;
  /** Serve Prometheus metrics at http://HOST:PORT/metrics (port 0: any free port). */
  readonly metrics?: { readonly port: number; readonly host?: string };
  /** Keep the address index (default: on; the explorer's address pages need it). */
  readonly addressIndex?: boolean;
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
  /** Keep the bodies of only this many blocks below the tip (node/pruner.ts); undefined keeps all. */
  readonly pruneKeep?: number;
  /** The deepest reorganisation followed (default 10,000): a convention of the network, small on test networks. */
  readonly reorgDepth?: number;
  /** Join a long chain from a snapshot of its state (node/snapshot-sync.ts) when the datadir is at genesis. */
  readonly snapshotSync?: boolean;
  /** A block the user trusts (node/checkpoint.ts): held, and kept in the datadir for later starts. */
  readonly checkpoint?: Checkpoint;
  /** Snapshot heights are its multiples (default 10,000): a convention of the network. */
  readonly snapshotInterval?: number;
  /** Re-execute the history below a snapshot's state in the background (default on; node/history-check.ts). */
  readonly historyCheck?: boolean;
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
  let metrics: Metrics | undefined;
  if (config.metrics) {
    const where = config.metrics;
    services.push((node) => {
      metrics = new Metrics(node, { now: () => env.now() });
      pool.onQueueWait = (seconds) => metrics?.verifyQueueWait.observe(seconds);
      return {
        async start() {
          const port = await metrics!.listen(where.port, where.host);
          node.emit('log', 'info', 'metrics', { url: localUrl(where.host ?? '127.0.0.1', port, '/metrics') });
        },
        async stop() {
          pool.onQueueWait = undefined;
          await metrics?.close();
        },
      };
    });
  }
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
        hold: () => gate?.reason(),
      });
      let gate: CatchUpGate | undefined;
      let peerWait: Timer | undefined;
      const onStatus = () => {
        gate?.noteStatus();
        miner.recheckHold();
      };
      const onIdle = () => {
        gate?.noteIdle();
        miner.recheckHold();
      };
      miner.on('error', (err) => node.emit('log', 'warn', `mining: ${err.message}`));
      miner.on('held', (reason) => node.emit('log', 'info', reason === undefined ? 'mining' : `mining waits: ${reason}`));
      return {
        async start() {
          gate = new CatchUpGate({ sync: node.sync, chain: node.chain, snapshotSync: config.snapshotSync === true, knownPeers: node.knownPeers });
          peerWait = env.setTimeout(() => {
            gate?.stopWaitingForPeers();
            miner.recheckHold();
          }, mine.peerWaitMs ?? PEER_WAIT_MS);
          node.sync.on('status', onStatus);
          node.sync.on('idle', onIdle);
          node.miner = miner;
          miner.start();
        },
        async stop() {
          node.miner = undefined;
          env.clearTimeout(peerWait);
          node.sync.off('status', onStatus);
          node.sync.off('idle', onIdle);
          await miner.stop();
        },
      };
    });
  }
  /** The explorer's address once its server listens, for the RPC port to send a browser there. */
  let explorerUrl: string | undefined;
  if (config.rpc) {
    const rpcOptions = config.rpc;
    const http = config.http;
    services.push((node) => {
      const rpc = new RpcServer(node, {
        datadir: config.datadir,
        ...rpcOptions,
        elsewhere: () => (http ? (explorerUrl ? `the explorer and REST API are at ${explorerUrl}` : 'the explorer and REST API are starting, on a port of their own') : 'this node serves no explorer or REST API (it was started with --no-http)'),
        observe: (method, seconds) => metrics?.rpcRequest.observe({ method }, seconds),
        log: (level, message, fields) => node.emit('log', level, message, fields),
      });
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
  if (config.http) {
    const httpOptions = config.http;
    services.push((node) => {
      const http = new HttpServer(node, httpOptions);
      return {
        async start() {
          await http.start();
          explorerUrl = http.url;
          node.emit('log', 'info', 'explorer and REST API', { url: http.url });
        },
        stop: () => http.stop(),
      };
    });
  }
  services.push((node) => ({
    async start() {
      pool.onThreadLost = (reason, threadsLeft) => node.emit('log', 'warn', 'a signature thread stopped; its work goes to the others', { reason, threadsLeft });
    },
    async stop() {
      pool.onThreadLost = undefined;
    },
  }));
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
      const store = await LevelKv.open(join(config.datadir, 'chain'));
      // Writes before the metrics service starts (the store's open) are nobody's scrape.
      return config.metrics ? timedWrites(store, () => env.monotonic(), (seconds) => metrics?.storeWrite.observe(seconds)) : store;
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
    peerStore: peerFile(config.datadir),
    serving: config.serving,
    connectionLimits: config.connectionLimits,
    banSeconds: config.banSeconds,
    statusIntervalMs: config.statusIntervalMs,
    pruneKeep: config.pruneKeep,
    reorgDepth: config.reorgDepth,
    snapshotSync: config.snapshotSync,
    snapshotInterval: config.snapshotInterval,
    checkpoint: config.checkpoint,
    checkpointStore: checkpointFile(config.datadir),
    historyStore: config.historyCheck === false ? undefined : {
      open: () => LevelKv.open(join(config.datadir, 'history-check')),
      remove: () => rm(join(config.datadir, 'history-check'), { recursive: true, force: true }),
    },
    noPeersWarningMs: config.noPeersWarningMs,
    addressIndex: config.addressIndex ?? true,
    stopwatch: () => performance.now(),
    services,
    release: () => pool.close(),
  });
}

/** A light client's settings: like a node's, without a store, mining or a mempool. */
export interface LightConfig {
  readonly datadir: string;
  readonly params: ChainParams;
  readonly bootstrap: readonly string[];
  readonly listen?: readonly string[];
  readonly mdns?: boolean;
  /** Serve JSON-RPC here; the endpoint and token go to <datadir>/rpc.json. */
  readonly rpc?: { readonly host?: string; readonly port?: number };
  readonly banSeconds?: number;
  readonly statusIntervalMs?: number;
  readonly env?: Env;
  /** A block the user trusts (node/light/checkpoint.ts): the datadir keeps it for the next start. */
  readonly checkpoint?: Checkpoint;
}

/** A light client as `cairn light` runs one: libp2p with its identity in the datadir, and its RPC. */
export function createLightClient(config: LightConfig, onStopRequested: () => void = () => {}) {
  const client = new LightClient({
    params: config.params,
    env: config.env ?? realEnv,
    datadir: config.datadir,
    bootstrap: config.bootstrap,
    banSeconds: config.banSeconds,
    statusIntervalMs: config.statusIntervalMs,
    checkpoint: config.checkpoint,
    createTransport: async (gate, names) =>
      Libp2pTransport.create({
        privateKey: await loadOrCreatePeerKey(config.datadir),
        listen: config.listen ?? ['/ip4/0.0.0.0/tcp/0'],
        bootstrap: [...config.bootstrap],
        mdns: config.mdns ?? true,
        maxConnections: 64,
        names,
        maxMessageBytes: config.params.maxBlockBytes + 64 * 1024,
        gate,
      }),
  });
  const context: LightContext = { client, requestStop: () => (config.env ?? realEnv).defer(onStopRequested) };
  const log = (level: 'warn', message: string, fields?: Record<string, unknown>) => client.emit('log', level, message, fields);
  const rpc = config.rpc ? new JsonRpcServer(context, lightRpcHandlers, { datadir: config.datadir, ...config.rpc, log, paramNames: lightParamNames }) : undefined;
  return {
    client,
    rpc,
    async start(): Promise<void> {
      await mkdir(config.datadir, { recursive: true });
      await client.start();
      await rpc?.start();
    },
    async stop(): Promise<void> {
      await rpc?.stop();
      await client.stop();
    },
  };
}
