import { EventEmitter } from 'node:events';
import type { PeerId } from '@libp2p/interface';
import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import { decodeBlock, type Block } from '../ledger/block.ts';
import type { Chain } from '../consensus/chain.ts';
import { HeaderChainCheck } from '../consensus/headers.ts';
import type { Host } from './host.ts';
import type { PeerManager } from './peers.ts';
import type { NetworkNames } from './protocols.ts';
import { request, requestMany, serve } from './reqresp.ts';
import {
  MAX_BLOCKS_PER_REQUEST,
  MAX_HEADERS_PER_RESPONSE,
  decodeGetBlocks,
  decodeGetHeaders,
  decodeHeaders,
  decodeStatus,
  encodeGetBlocks,
  encodeGetHeaders,
  encodeHeaders,
  encodeStatus,
  type Status,
} from './wire.ts';

const STATUS_TIMEOUT_MS = 5_000;
const HEADERS_TIMEOUT_MS = 10_000;
const BLOCKS_TIMEOUT_MS = 20_000;
const BLOCK_BATCH = 32;
/**
 * Batches fetched (and their signatures checked) ahead of the import. Enough to keep the pool and
 * the network busy while a batch imports; more only holds blocks in memory and takes the main
 * thread from the import.
 */
const READ_AHEAD_BATCHES = 8;
/** Requests outstanding to one provider: one at a time leaves both ends idle for a round trip. */
const REQUESTS_PER_PEER = 2;
/** Misbehaviour scores (a ban is at 100): lying is a ban, slowness costs a little. */
const LIE = 100;
const SLOW = 25;

export interface SyncProgress {
  readonly height: number;
  readonly target: number;
  readonly peer: string;
}

export interface SyncEvents {
  progress: [progress: SyncProgress];
  /** A peer answered our status with another genesis, or does not speak our protocols. */
  foreign: [peer: string];
  /** Bodies are about to be downloaded, this many blocks of them. */
  download: [blocks: number];
  /** A sync ended: caught up with every peer known ahead, or nobody left to ask. */
  idle: [];
}

class PeerFault extends Error {
  readonly score: number;
  constructor(message: string, score: number) {
    super(message);
    this.score = score;
  }
}

/**
 * Catches this node up to the most-work chain its peers know, and answers their requests.
 *
 * Protocol (docs/PROTOCOL.md): status (genesis, height, tip, total work) on every new
 * connection; then headers first — the peer's chain is checked header by header for proof of
 * work, targets and total work before any body is fetched, so a long low-work chain costs only
 * headers — then bodies in batches from every peer that claims the chain, several at once,
 * imported in order through the one import queue. A peer that lies is banned; a slow one is
 * penalised and its batch goes to another.
 */
export class Sync extends EventEmitter<SyncEvents> {
  private readonly host: Host;
  private readonly names: NetworkNames;
  private readonly chain: Chain;
  private readonly peers: PeerManager;
  private readonly clock: () => number;
  private readonly maxBlockBytes: number;
  readonly statuses = new Map<string, { peer: PeerId; status: Status }>();
  private running: Promise<void> | undefined;
  private again = false;
  private lastTarget = 0;

  /** Verifies a batch's signatures on every core as it arrives, ahead of its import. */
  private readonly preverify: ((blocks: readonly Block[]) => Promise<void>) | undefined;

  constructor(o: { host: Host; names: NetworkNames; chain: Chain; peers: PeerManager; clock: () => number; preverify?: (blocks: readonly Block[]) => Promise<void> }) {
    super();
    this.host = o.host;
    this.names = o.names;
    this.chain = o.chain;
    this.peers = o.peers;
    this.clock = o.clock;
    this.maxBlockBytes = o.chain.params.maxBlockBytes;
    this.preverify = o.preverify;
  }

  /** True while a sync is running. */
  get syncing(): boolean {
    return this.running !== undefined;
  }

  /** The height the best peer claims; equals our height when caught up. */
  get targetHeight(): number {
    return Math.max(this.chain.tip.height, this.lastTarget);
  }

  async start(): Promise<void> {
    const onBadRequest = (peer: PeerId, err: unknown) => this.peers.badRequest(peer, err);
    const limits = { timeoutMs: STATUS_TIMEOUT_MS, maxBytes: 1024, onBadRequest };
    await serve(this.host, this.names.status, async () => encodeStatus(this.ourStatus()), limits);
    await serve(
      this.host,
      this.names.headers,
      async (req) => {
        const { locator, max } = decodeGetHeaders(req);
        return encodeHeaders(this.chain.headersAfter(locator, max).map((e) => e.header));
      },
      limits,
    );
    await serve(
      this.host,
      this.names.blocks,
      async (req) => {
        const stored = await this.chain.db.getBlocksBytes(decodeGetBlocks(req));
        const missing = stored.indexOf(undefined);
        // Up to the first we lack: the asker takes the rest from someone else.
        return (missing < 0 ? stored : stored.slice(0, missing)) as Uint8Array[];
      },
      { timeoutMs: STATUS_TIMEOUT_MS, maxBytes: 4096, onBadRequest },
    );
  }

  ourStatus(): Status {
    const tip = this.chain.tip;
    return { genesis: this.chain.db.genesis.header.hash, height: tip.height, tipHash: tip.hash, totalWork: tip.totalWork };
  }

  /** The handshake: learn the peer's chain, refuse it if it is another network, sync if it is ahead. */
  async handshake(peer: PeerId): Promise<Status | undefined> {
    let status: Status;
    try {
      status = decodeStatus(await request(this.host, peer, this.names.status, new Uint8Array(0), { timeoutMs: STATUS_TIMEOUT_MS, maxBytes: 1024 }));
    } catch (err) {
      if ((err as Error).name === 'UnsupportedProtocolError') this.emit('foreign', peer.toString());
      this.statuses.delete(peer.toString());
      return undefined;
    }
    if (!bytesEqual(status.genesis, this.chain.db.genesis.header.hash)) {
      this.emit('foreign', peer.toString());
      return undefined;
    }
    this.statuses.set(peer.toString(), { peer, status });
    if (status.totalWork > this.chain.tip.totalWork) this.requestSync();
    return status;
  }

  forget(peer: PeerId | string): void {
    this.statuses.delete(peer.toString());
  }

  /** Resolves when no sync is running. */
  async idle(): Promise<void> {
    await this.running?.catch(() => {});
  }

  /** Starts a sync round, or asks the running one to go round again. Resolves when idle. */
  requestSync(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.round();
        } while (this.again);
      } finally {
        this.running = undefined;
        this.emit('idle');
      }
    })();
    return this.running;
  }

  private async round(): Promise<void> {
    const ahead = [...this.statuses.values()]
      .filter(({ status, peer }) => status.totalWork > this.chain.tip.totalWork && !this.peers.isBanned(peer))
      .sort((a, b) => (b.status.totalWork > a.status.totalWork ? 1 : -1));
    for (const { peer, status } of ahead) {
      if (status.totalWork <= this.chain.tip.totalWork) continue;
      try {
        await this.syncFrom(peer, status);
      } catch (err) {
        this.blame(peer, err);
      }
    }
  }

  private blame(peer: PeerId, err: unknown): void {
    if (err instanceof PeerFault) this.peers.penalize(peer, err.score, err.message);
    else if (err instanceof CairnError) this.peers.penalize(peer, err.banScore, `sync: ${err.message}`);
    else this.peers.penalize(peer, SLOW, `sync: ${(err as Error).message}`); // timeouts, resets, garbage framing
    this.statuses.delete(peer.toString());
  }

  private async syncFrom(peer: PeerId, claimed: Status): Promise<void> {
    // 1. Headers, checked as they come; nothing stored.
    let check: HeaderChainCheck | undefined;
    for (;;) {
      const locator = check ? [check.tipHash, ...this.chain.locator()] : this.chain.locator();
      const bytes = await request(this.host, peer, this.names.headers, encodeGetHeaders({ locator, max: MAX_HEADERS_PER_RESPONSE }), {
        timeoutMs: HEADERS_TIMEOUT_MS,
        maxBytes: 16 + MAX_HEADERS_PER_RESPONSE * 120,
      });
      const headers = decodeHeaders(bytes);
      if (headers.length === 0) break;
      if (!check) {
        const fork = this.chain.getEntry(headers[0]!.prevHash);
        if (!fork || !fork.isValid) throw new PeerFault('headers do not start from a block we know', LIE);
        check = new HeaderChainCheck(this.chain.params, fork, this.clock());
      }
      check.extend(headers); // throws ConsensusError with its ban score
      this.lastTarget = check.tipHeight;
      if (check.tipHeight > claimed.height + MAX_HEADERS_PER_RESPONSE) throw new PeerFault('more headers than its status claimed', LIE);
      if (headers.length < MAX_HEADERS_PER_RESPONSE) break;
    }
    if (!check || check.totalWork <= this.chain.tip.totalWork) {
      if (claimed.totalWork > this.chain.tip.totalWork && (!check || check.totalWork < claimed.totalWork)) {
        throw new PeerFault('its headers do not add up to the work it claimed', LIE);
      }
      return;
    }
    // 2. Bodies we lack, from every peer that claims at least this much work.
    const wanted = check.headers.filter((h) => !this.chain.getEntry(h.hash)).map((h) => h.hash);
    const providers = [peer, ...[...this.statuses.values()].filter((s) => s.peer !== peer && s.status.totalWork >= check.totalWork).map((s) => s.peer)];
    await this.download(wanted, providers, check.tipHeight);
  }

  /**
   * Fetches `wanted` in batches, one outstanding batch per provider, and imports them strictly
   * in order as they arrive. A provider that fails or lacks a batch drops out of this download
   * and its batch goes back in line for the others.
   */
  private async download(wanted: readonly Uint8Array[], providers: PeerId[], target: number): Promise<void> {
    this.emit('download', wanted.length);
    const batches: Uint8Array[][] = [];
    for (let i = 0; i < wanted.length; i += BLOCK_BATCH) batches.push(wanted.slice(i, i + BLOCK_BATCH));
    const queue = batches.map((_, i) => i);
    const arrived = new Map<number, { blocks: Block[]; from: PeerId; verified: Promise<void> }>();
    const active = new Set(providers.filter((p) => !this.peers.isBanned(p)));
    let nextToImport = 0;
    let finished = false;
    let waiters: (() => void)[] = [];
    const changed = () => new Promise<void>((resolve) => waiters.push(resolve));
    const notify = () => {
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake();
    };

    const worker = async (peer: PeerId) => {
      while (!finished && active.has(peer)) {
        if (queue.length === 0 || queue[0]! >= nextToImport + READ_AHEAD_BATCHES) {
          await changed(); // everything is taken (a failed batch may come back), or far enough ahead
          continue;
        }
        const index = queue.shift()!;
        try {
          const blocks = await this.fetchBlocks(peer, batches[index]!);
          if (blocks.length < batches[index]!.length) throw new Error('lacks blocks of the chain it announced');
          // Signatures are checked on every core while earlier batches import.
          arrived.set(index, { blocks, from: peer, verified: this.preverify?.(blocks).catch(() => {}) ?? Promise.resolve() });
        } catch (err) {
          active.delete(peer);
          queue.unshift(index);
          if ((err as Error).message !== 'lacks blocks of the chain it announced') this.blame(peer, err);
        }
        notify();
      }
    };
    const workers = [...active].flatMap((peer) => Array.from({ length: REQUESTS_PER_PEER }, () => worker(peer)));

    try {
      while (nextToImport < batches.length) {
        const ready = arrived.get(nextToImport);
        if (!ready) {
          if (active.size === 0) return; // nobody left who can serve us; the next round retries
          await changed();
          continue;
        }
        arrived.delete(nextToImport++);
        notify(); // the read-ahead window moved
        await ready.verified;
        await this.importBlocks(ready.blocks, ready.from);
        this.emit('progress', { height: this.chain.tip.height, target, peer: ready.from.toString() });
      }
    } finally {
      finished = true;
      notify();
      await Promise.allSettled(workers);
    }
  }

  private async fetchBlocks(peer: PeerId, hashes: readonly Uint8Array[]): Promise<Block[]> {
    const frames = await requestMany(this.host, peer, this.names.blocks, encodeGetBlocks(hashes), hashes.length, {
      timeoutMs: BLOCKS_TIMEOUT_MS,
      maxBytes: this.maxBlockBytes,
    });
    return frames.map((bytes, i) => {
      const block = decodeBlock(bytes);
      if (!bytesEqual(block.header.hash, hashes[i]!)) throw new PeerFault(`sent block ${toHex(block.header.hash)} for ${toHex(hashes[i]!)}`, LIE);
      return block;
    });
  }

  private async importBlocks(blocks: readonly Block[], from: PeerId): Promise<void> {
    for (const block of blocks) {
      try {
        await this.chain.processBlock(block);
      } catch (err) {
        this.blame(from, err);
        throw err;
      }
    }
  }
}

export { MAX_BLOCKS_PER_REQUEST };
