// A Sync's body downloads (node/sync.ts): the one under way, which a stop ends and a peer whose
// status shows it can serve joins, and what lasts from one to the next: the heights asked of each
// peer, and when progress was last logged. The sync picks the chain and its providers; this runs
// body-download.ts over them and imports what arrives.

import type { EventEmitter } from 'node:events';
import type { SaneBlock } from '../consensus/sanity.ts';
import { AskedHeights } from './asked-heights.ts';
import { BodyDownload } from './body-download.ts';
import { importBlocks } from './import-blocks.ts';
import type { Status } from './wire.ts';
import type { SyncEvents, SyncOptions } from './sync-types.ts';
import { LogPace } from './log-pace.ts';

/** What the downloads are given: the sync's options, and what only the Sync knows. */
export interface SyncDownloadParts extends Pick<SyncOptions, 'env' | 'chain' | 'peers' | 'records' | 'preverify' | 'log'> {
  /** The Sync, whose listeners hear of each download ('download') and each batch imported ('progress'). */
  readonly events: EventEmitter<SyncEvents>;
  /** A peer's status asked again, else the last it gave (undefined: none, or it is gone). */
  statusOf(peer: string): Promise<Status | undefined>;
  /** A batch of bodies from one provider, each checked against what was asked. */
  fetch(peer: string, hashes: readonly Uint8Array[]): Promise<SaneBlock[]>;
  blame(peer: string, err: unknown): void;
  /** The sync was stopped: a download that starts after ends at once. */
  stopped(): boolean;
}

/** One download of a checked header chain's bodies (SyncDownloads.run). */
export interface ChainBodies {
  /** Heights [first, last] of the chain. */
  readonly first: number;
  readonly last: number;
  /** The peers asked first. */
  readonly providers: readonly string[];
  /** Whether a peer whose status arrives meanwhile can serve, and joins. */
  readonly canServe: (status: Status) => boolean;
  /** Asked before each batch's import: false ends the download there. */
  readonly keepGoing: (blocks: readonly SaneBlock[]) => Promise<boolean>;
  /** The peer whose headers these are, held to the bodies its status says it keeps (WITHHELD). */
  readonly claimant: string;
}

export class SyncDownloads {
  private readonly parts: SyncDownloadParts;
  /**
   * The block heights asked of each peer on its connection: whether its server's trickle would
   * refuse a batch asked again. The history check below a snapshot asks the same connections, and
   * its server counts both, so it records its asks here too.
   */
  readonly asked = new AskedHeights();
  /** The progress lines' pace, from one download to the next. */
  private readonly progressPace: LogPace;
  private underWay: { readonly download: BodyDownload; readonly canServe: (status: Status) => boolean } | undefined;

  constructor(parts: SyncDownloadParts) {
    this.parts = parts;
    this.progressPace = new LogPace(() => parts.env.monotonic());
  }

  /** `peer` said `status`: it joins the download under way if it can serve it. */
  offer(peer: string, status: Status): void {
    if (this.underWay?.canServe(status)) this.underWay.download.join(peer);
  }

  /** Ends the download under way at once (the sync stops). */
  end(): void {
    this.underWay?.download.end();
  }

  /** `peer`'s connection ended: its asks start over, and it leaves the download under way (it may join again). */
  forget(peer: string): void {
    this.asked.forget(peer);
    this.underWay?.download.gone(peer);
  }

  /**
   * Fetches the blocks of heights [first, last] of the checked header chain (hashes from the
   * scratch list, those we lack) in batches, a few outstanding per provider, and imports them
   * strictly in order as they arrive. Peers whose status shows they can serve (`canServe`) join
   * the download as their status arrives. What a short answer brought is kept, the rest asked
   * again; a provider that fails or has none of a batch drops out, the batch back in line for the
   * others; one that sent a body that does not match its header is also punished, and so is the
   * header peer (`claimant`) when it serves less of its own chain than it keeps (WITHHELD). A provider that
   * holds up the import (its batch is the next one, the read-ahead is full, and an idle provider
   * would have fetched it twice over meanwhile) sits out a pause, unpunished, and its batches go
   * to the others: the first copy of a batch to arrive is imported, so one slow peer costs a few
   * batches asked twice rather than a wait on every batch it holds (node/body-download.ts). A block that breaks a rule ends the download:
   * the chain is bad (InvalidChain, for the header peer). `keepGoing` may end it before a batch.
   */
  async run({ first, last, providers, canServe, keepGoing, claimant }: ChainBodies): Promise<void> {
    const { env, chain, peers, events } = this.parts;
    events.emit('download', last - first + 1);
    const download = new BodyDownload({
      env,
      first,
      last,
      // A busy answer leaves its last status standing, as everywhere: one gone leaves none.
      claimant: { peer: claimant, keepsBodies: async (height) => ((await this.parts.statusOf(claimant))?.prunedHeight ?? height) < height },
      asked: this.asked,
      batchHashes: async (start, count) => (await chain.db.history.pending(start, count)).filter((h) => !chain.getEntry(h)),
      fetch: (peer, hashes) => this.parts.fetch(peer, hashes),
      preverify: this.parts.preverify,
      importBatch: async (blocks, from) => {
        await importBlocks(chain, blocks, env);
        this.parts.records?.gave(from, 'block', env.monotonic());
        events.emit('progress', { height: chain.tip.height, target: last, peer: from });
        // A terminal draws a bar from 'progress'; a service's log had nothing from "node started"
        // to the first block after the catch-up, hours later. A line every so often, as Bitcoin Core's.
        if (this.progressPace.due()) this.parts.log?.('info', 'syncing', { height: chain.tip.height, target: last, peer: from });
      },
      // Once a stall, each pause four times the last: what an operator reads when a sync crawls.
      onStall: (peer, stalls, pauseMs) => this.parts.log?.('info', 'a peer held up the block download: it sits out a pause', { peer, stalls, pauseSeconds: pauseMs / 1000, height: chain.tip.height }),
      blame: (peer, err) => this.parts.blame(peer, err),
      isBanned: (peer) => peers.isBanned(peer),
      keepGoing,
    });
    for (const peer of providers) download.join(peer);
    this.underWay = { download, canServe };
    if (this.parts.stopped()) download.end();
    try {
      await download.run();
    } finally {
      this.underWay = undefined;
    }
  }
}
