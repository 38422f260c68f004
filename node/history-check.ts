import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { StoreError } from '../ledger/errors.ts';
import type { KvStore } from '../ledger/kv.ts';
import type { ChainHistory, HistoryVerdict } from '../ledger/history.ts';
import { Chain } from '../consensus/chain.ts';
import type { SaneBlock } from '../consensus/sanity.ts';
import { BodyDownload, InvalidChain } from './body-download.ts';
import type { AskedHeights } from './asked-heights.ts';
import { secondsOf, type Env, type Timer } from './env.ts';
import { importBlocks } from './import-blocks.ts';
import { Pruner } from './pruner.ts';
import { TxSignatureVerifier, type SignatureVerifier } from './tx-signatures.ts';

/** How long to wait before asking again when nobody could serve the history. */
const RETRY_MS = 10_000;
/** After a run that failed on our side (its store locked, a write refused, a bug), the next starts this much later. */
const RESTART_MS = 60_000;

/** Where the check keeps its own chain: a store of its own, removed once a verdict is reached. */
export interface HistoryStore {
  open(): Promise<KvStore>;
  remove(): Promise<void>;
}

export interface HistoryCheckParts {
  readonly env: Env;
  /** The node's chain, whose state was taken from a snapshot at `db.history.stateBase`. */
  readonly chain: Chain;
  readonly store: HistoryStore;
  /** The node's signature pool; the check keeps its own cache of verdicts. */
  readonly verifier: SignatureVerifier;
  /** Peers whose status says they hold every body from height 1 up to `base`. */
  providers(base: number): string[];
  /** A batch of bodies from one peer, each checked against the header asked for (node/sync.ts). */
  fetch(peer: string, hashes: readonly Uint8Array[]): Promise<SaneBlock[]>;
  /**
   * The heights asked of each peer on its connection, the sync's and the check's: its server
   * counts a block asked again past an allowance as a re-download, trickled, so a batch asked
   * again then goes one block a request (node/asked-heights.ts).
   */
  readonly asked?: AskedHeights;
  blame(peer: string, err: unknown): void;
  isBanned(peer: string): boolean;
  /** Resolves when the node's own sync is idle: the check only imports between syncs. */
  syncIdle(): Promise<void>;
  log(level: 'info' | 'warn' | 'debug', message: string, fields?: Record<string, unknown>): void;
}

/** What the check reads of the node's sync and peers (node/sync.ts, node/peers.ts). */
export interface HistorySources {
  readonly statuses: ReadonlyMap<string, { readonly peer: string; readonly status: { readonly height: number; readonly prunedHeight: number } }>;
  fetchBodies(peer: string, hashes: readonly Uint8Array[]): Promise<SaneBlock[]>;
  readonly askedHeights: AskedHeights;
  blame(peer: string, err: unknown): void;
  idle(): Promise<void>;
}

/**
 * The parts a check takes from the node's sync: bodies from height 1 come from peers that pruned
 * none and whose chain reaches the base, and the check imports only while the sync is idle.
 */
export function partsFromSync(sync: HistorySources, peers: { isBanned(peer: string): boolean }): Pick<HistoryCheckParts, 'providers' | 'fetch' | 'asked' | 'blame' | 'isBanned' | 'syncIdle'> {
  return {
    providers: (base) => [...sync.statuses.values()].filter((s) => s.status.prunedHeight === 0 && s.status.height >= base && !peers.isBanned(s.peer)).map((s) => s.peer),
    fetch: (peer, hashes) => sync.fetchBodies(peer, hashes),
    asked: sync.askedHeights,
    blame: (peer, err) => sync.blame(peer, err),
    isBanned: (peer) => peers.isBanned(peer),
    syncIdle: () => sync.idle(),
  };
}

/** Where the check stands (the RPC's status shows it): `checking` up to `height` of `target`, or its verdict. */
export interface HistoryCheckStatus {
  /** `off`: the state came from a snapshot and this node does not check below it (--no-history-check). */
  readonly state: 'checking' | 'valid' | 'invalid' | 'off';
  /** Checked up to (checking), the base (valid), the block that broke a rule (invalid). */
  readonly height: number;
  /** The base: the block whose state the node took. */
  readonly target: number;
  /** Why it is invalid, or why a check makes no progress (no peer keeps the blocks); empty otherwise. */
  readonly reason: string;
}

/** The check's status for a store whose state began at `history.stateBase`; undefined when that is genesis. */
export function historyCheckStatus(history: ChainHistory, check: Pick<HistoryCheck, 'checkedHeight' | 'waitingFor'> | undefined): HistoryCheckStatus | undefined {
  const verdict = history.historyVerdict;
  const target = history.stateBase;
  if (verdict) return { state: verdict.valid ? 'valid' : 'invalid', height: verdict.height, target, reason: verdict.reason };
  if (target === 0) return undefined;
  return check ? { state: 'checking', height: check.checkedHeight, target, reason: check.waitingFor } : { state: 'off', height: 0, target, reason: '' };
}

/**
 * Background validation of the history below a snapshot's state (Bitcoin Core's assumeutxo). A
 * node that joined by snapshot sync, or imported a snapshot file, follows the tip from a state it
 * checked only against a header's state root: the blocks below it were never executed here. This
 * re-executes them from genesis into a chain of its own, in its own store — every rule, every
 * signature, every block's state root — fetching the bodies from peers that keep them, only while
 * the node's own sync is idle. Reaching the base block is the proof: its header commits to the
 * state the node took. The verdict stays in the node's store and the check's store is removed;
 * a restart resumes from the check's own tip.
 *
 * A block that breaks a rule means the most-work chain is invalid below the snapshot: there is
 * no undo data to reorganise below it, so the node says so loudly (a log line at every start and
 * its status) and keeps running for its operator to decide; a resync from genesis without
 * snapshot sync then follows the valid chain.
 */
export class HistoryCheck {
  private readonly p: HistoryCheckParts;
  private running: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private checkChain: Chain | undefined;
  /** The round's download: a stop ends it rather than wait out a busy provider's retry-after. */
  private download: BodyDownload | undefined;
  private warned = false;
  private removed = false;
  /** The next run after one that failed: once set, a sync's idle does not start it sooner. */
  private restart: Timer | undefined;
  /** What the check waits for while no peer can give it the blocks; empty while it has a provider. */
  private waiting = '';

  constructor(parts: HistoryCheckParts) {
    this.p = parts;
  }

  /** The block whose state the node took: the check ends there (no fork reaches below it). */
  private get base(): number {
    return this.p.chain.db.history.stateBase;
  }

  /** The height the check has executed up to (0 until its store is open). */
  get checkedHeight(): number {
    return this.checkChain?.tip.height ?? 0;
  }

  /**
   * Why the check makes no progress, empty if it does: peers that pruned the blocks (the only
   * kind a network of pruned nodes has) serve none, and the status said only "0 done" for ever.
   */
  get waitingFor(): string {
    return this.waiting;
  }

  /** Starts the check if the state came from a snapshot and has no verdict yet (called again: no-op). */
  start(): void {
    if (this.running || this.stopped || this.restart !== undefined) return;
    const { history } = this.p.chain.db;
    if (history.stateBase === 0) return;
    const verdict = history.historyVerdict;
    if (verdict) {
      if (!verdict.valid && !this.warned) this.warnInvalid(verdict);
      // A kill between keeping the verdict and removing the check's store leaves the store behind.
      if (!this.removed) {
        this.removed = true;
        this.p.store.remove().catch((err: Error) => this.p.log('warn', `cannot remove the history check's store: ${err.message}`));
      }
      return;
    }
    this.running = this.run().catch((err: Error) => {
      if (this.stopped) return;
      // Tried again: a failure that passes (a lock another process held, a full disk freed) must
      // not leave the check stopped, its status "checking", until the node restarts.
      this.p.log('warn', `history check stopped: ${err.message}; it starts again in ${RESTART_MS / 1000} s`);
      this.running = undefined;
      this.restart = this.p.env.setTimeout(() => {
        this.restart = undefined;
        this.start();
      }, RESTART_MS);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.p.env.clearTimeout(this.restart);
    this.wake?.();
    this.download?.end();
    await this.running;
  }

  private async run(): Promise<void> {
    const { env, chain } = this.p;
    const db = await this.openStore();
    let verdict: HistoryVerdict | undefined;
    let pruner: Pruner | undefined;
    try {
      // Not urgent: the tip's blocks, and the transactions of peers, go first.
      const signatures = new TxSignatureVerifier(this.p.verifier, undefined, { blocksUrgent: false });
      const check = await Chain.open(db, { clock: secondsOf(env), signatures, reorgDepth: chain.reorgDepth });
      check.on('tip', (e) => {
        for (const block of e.connected) signatures.confirmed(block.txs);
      });
      // The blocks executed are needed no more once deeper than any reorganisation: their bodies,
      // undo data and transaction index go as a pruned node's do, or the check's store would hold
      // the whole history below the snapshot until the verdict (a pruned node's many times over).
      // A chunk at a time (the store holds twice the reorg depth at most): pruned at every tip, as
      // a node following the network is, the check held its imports for a prune every batch.
      const report = (height: number, err?: Error) => err && this.p.log('warn', `the history check's store is not pruned past ${height}: ${err.message}`);
      pruner = new Pruner(check, env, check.reorgDepth, report, undefined, { chunksOnly: true });
      pruner.start();
      this.checkChain = check;
      this.p.log('info', 'checking the history below the snapshot', { from: check.tip.height + 1, to: this.base });
      while (!this.stopped && check.tip.height < this.base) {
        verdict = await this.round(check, signatures);
        if (verdict) break;
        if (check.tip.height < this.base) await this.pause(RETRY_MS);
      }
      if (!verdict && check.tip.height >= this.base) {
        const [mainHash] = await chain.db.history.mainHashes(this.base, this.base + 1);
        verdict = mainHash && bytesEqual(check.tip.hash, mainHash)
          ? { valid: true, height: this.base, reason: '' }
          : { valid: false, height: this.base, reason: `executes to block ${toHex(check.tip.hash)}, not the main chain's ${mainHash ? toHex(mainHash) : '(none)'}` };
      }
      await check.idle();
    } finally {
      await pruner?.stop();
      await db.close();
    }
    if (!verdict) return; // stopped: the next start resumes from the check's tip
    this.checkChain = undefined; // its store is closed: nothing of it to keep
    await chain.db.history.recordHistoryVerdict(verdict);
    this.removed = true;
    await this.p.store.remove();
    if (verdict.valid) this.p.log('info', 'history below the snapshot checked: every block valid, and the state at the base is the one taken', { height: verdict.height });
    else this.warnInvalid(verdict);
  }

  /**
   * The check's store, or a new one in its place when it does not open as a store of this network
   * and layout (damaged, copied from a node that was writing it, left by a later version): it holds
   * nothing that peers cannot give again, and kept, it stopped the check at every start for good.
   */
  private async openStore(): Promise<ChainDB> {
    const { env, chain } = this.p;
    const open = async () => ChainDB.open(await this.p.store.open(), chain.params, { scheduleFlush: (start) => env.defer(start) });
    try {
      return await open();
    } catch (err) {
      if (!(err instanceof StoreError) || err.code === 'STORE_LOCKED' || err.code === 'STORE_WRITE_FAILED' || err.code === 'STORE_DISK_FULL') throw err;
      this.p.log('warn', `the history check's store cannot be used (${err.message}): the check starts again from genesis`);
      await this.p.store.remove();
      return open();
    }
  }

  /** Once a life (start() runs at every idle sync). */
  private warnInvalid(verdict: HistoryVerdict): void {
    this.warned = true;
    this.p.log('warn', `the chain this node follows is invalid below its snapshot: block ${verdict.height} ${verdict.reason}; resync from genesis without snapshot sync to leave it`);
  }

  /** One download of the bodies still unchecked from the peers that have them; a verdict if a block broke a rule. */
  private async round(check: Chain, signatures: TxSignatureVerifier): Promise<HistoryVerdict | undefined> {
    const { env, chain } = this.p;
    await this.p.syncIdle();
    const providers = this.p.providers(this.base);
    if (providers.length === 0 && !this.stopped && this.waiting === '') {
      this.waiting = `waiting for a peer that keeps blocks ${check.tip.height + 1} to ${this.base}: no peer connected has them (a node run with --prune-keep keeps only its last blocks)`;
      this.p.log('warn', `the history check is ${this.waiting}`);
    }
    if (providers.length === 0 || this.stopped) return undefined;
    this.waiting = '';
    let told = check.tip.height;
    const download = new BodyDownload({
      env,
      first: check.tip.height + 1,
      last: this.base,
      batchHashes: (start, count) => chain.db.history.mainHashes(start, start + count),
      fetch: (peer, hashes) => this.p.fetch(peer, hashes),
      asked: this.p.asked,
      preverify: (blocks) => signatures.preverify(blocks.flatMap((b) => b.txs)),
      importBatch: async (blocks) => {
        if (this.stopped) throw new Error('stopped');
        await this.p.syncIdle();
        await importBlocks(check, blocks, env);
        if (check.tip.height - told >= Math.max(1, Math.ceil(this.base / 10))) {
          told = check.tip.height;
          this.p.log('info', 'checking the history below the snapshot', { height: told, target: this.base });
        }
      },
      blame: (peer, err) => this.p.blame(peer, err),
      isBanned: (peer) => this.p.isBanned(peer),
    });
    for (const peer of providers) download.join(peer);
    this.download = download;
    try {
      await download.run();
    } catch (err) {
      if (err instanceof InvalidChain) {
        // A block ahead of our clock is no verdict on it (the rule bans nobody): it is this clock
        // that is behind, e.g. a machine that started before its clock was set. Asked again later.
        if (err.reason.code !== 'HEADER_TIME_TOO_NEW') return { valid: false, height: err.height, reason: `breaks a rule: ${err.message}` };
        this.p.log('warn', `the history check waits: block ${err.height} is ahead of this node's clock (${err.message}); is the clock right?`);
      } else if (!this.stopped) throw err;
    } finally {
      this.download = undefined;
    }
    return undefined;
  }

  /** Waits `ms`, or less if the check is stopped meanwhile (or was, as its round ended). */
  private pause(ms: number): Promise<void> {
    const { env } = this.p;
    if (this.stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = env.setTimeout(() => resolve(), ms);
      this.wake = () => {
        env.clearTimeout(timer);
        resolve();
      };
    });
  }
}
