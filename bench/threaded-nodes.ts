/**
 * Nodes in worker threads (bench/node-thread.ts): each its own event loop, as on separate
 * machines, but started, fed and timed from the bench process.
 */
import { Worker } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChainParams } from '../ledger/genesis.ts';
import { untilQuiet } from './nodes.ts';
import type { TempDir } from './report.ts';

export interface ThreadNodeState {
  readonly mempool: number;
  readonly peers: number;
  readonly mesh: number;
  readonly shape: string;
  readonly height: number;
  readonly tip: string;
  /** The node thread's own CPU time so far (ms). */
  readonly cpuMs: number;
}

export class ThreadNode {
  readonly addr: string;
  /** When this node connected each block (absolute ms, comparable across threads). */
  readonly connects = new Map<string, number>();
  /** When this node's Chain.processBlock started and ended for each block. */
  readonly imports = new Map<string, { start: number; end: number }>();
  private readonly worker: Worker;
  private readonly dir: TempDir;
  private readonly waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  private constructor(worker: Worker, dir: TempDir, addr: string) {
    this.worker = worker;
    this.dir = dir;
    this.addr = addr;
    worker.on('message', (m: { id?: number; result?: unknown; error?: string; event?: string; hash?: string; at?: number; start?: number; end?: number }) => {
      if (m.event === 'connect') this.connects.set(m.hash!, m.at!);
      if (m.event === 'import') this.imports.set(m.hash!, { start: m.start!, end: m.end! });
      if (m.id === undefined) return;
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(m.error));
      else w?.resolve(m.result);
    });
    worker.on('exit', () => {
      for (const w of this.waiting.values()) w.reject(new Error('the node thread exited'));
      this.waiting.clear();
    });
  }

  /** `unlimited`: the node serves with no budgets (node/serving.ts UNLIMITED_SERVING), as before them. */
  static start(dir: TempDir, params: ChainParams, bootstrap: readonly string[], o: { unlimited?: boolean } = {}): Promise<ThreadNode> {
    const worker = new Worker(new URL('./node-thread.ts', import.meta.url), { workerData: { datadir: dir.path, params, bootstrap: [...bootstrap], unlimited: o.unlimited ?? false } });
    return new Promise((resolve, reject) => {
      const onMessage = (m: { event?: string; addr?: string; error?: string }) => {
        if (m.event === 'started') {
          worker.off('message', onMessage);
          resolve(new ThreadNode(worker, dir, m.addr!));
        } else if (m.event === 'failed') {
          void worker.terminate();
          reject(new Error(m.error));
        }
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
  }

  private call<T>(cmd: string, arg?: unknown): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, cmd, arg });
    });
  }

  submit(txs: readonly Uint8Array[]): Promise<number> {
    return this.call('submit', txs);
  }

  state(): Promise<ThreadNodeState> {
    return this.call('state');
  }

  /** Bytes the node has served so far, and requests it answered busy, all request protocols together. */
  served(): Promise<{ bytes: number; throttled: number }> {
    return this.call('served');
  }

  /**
   * Resolves once the node has made the state snapshots it keeps and indexed every block by
   * address. A node opened on a chain whose tip is past a snapshot height makes its copy at start
   * (O(accounts)), once; one opened on a datadir built without the address index backfills it.
   */
  backgroundIdle(): Promise<boolean> {
    return this.call('backgroundIdle');
  }

  /** Mines a block on the node's tip; `found` is when its nonce was found (performance.timeOrigin + now()). */
  mine(minerKey: number): Promise<{ hash: string; txs: number; found: number }> {
    return this.call('mine', minerKey);
  }

  profileStart(): Promise<boolean> {
    return this.call('profileStart');
  }

  profileStop(name: string): Promise<boolean> {
    return this.call('profileStop', name);
  }

  async stop(): Promise<void> {
    await Promise.race([this.call('stop').catch(() => {}), sleep(15_000)]);
    await this.worker.terminate();
    this.dir.remove();
  }
}

/** Polls every node's state until `ok` holds for all, or throws after `timeoutMs`. */
export async function waitForAll(nodes: readonly ThreadNode[], ok: (s: ThreadNodeState) => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const states = await Promise.all(nodes.map((n) => n.state()));
    if (states.every(ok)) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Resolves once no node has opened or closed a connection, or changed a gossip mesh, for `quietMs`. */
export async function settledThreads(nodes: readonly ThreadNode[], quietMs: number, timeoutMs: number): Promise<void> {
  await untilQuiet(async () => (await Promise.all(nodes.map((n) => n.state()))).map((s) => s.shape).join('|'), quietMs, timeoutMs);
}
