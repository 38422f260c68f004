// A light client's sync rounds (node/light/client.ts): which peers' chains are followed, in what
// order, each held to the work its status claimed before its headers become ours, and who is blamed
// when one is not. The client keeps the connections, the statuses and the proofs; header-fetch.ts
// fetches a peer's headers into the staging.

import type { EventEmitter } from 'node:events';
import { bytesEqual, toHex } from '../../ledger/bytes.ts';
import { CairnError } from '../../ledger/errors.ts';
import { ConsensusError } from '../../consensus/errors.ts';
import { PeerFault } from '../header-sync.ts';
import type { PeerManager } from '../peers.ts';
import { isOwnFailure, ownFailureFields } from '../transport.ts';
import { MAX_HEADERS_PER_RESPONSE, type Status } from '../wire.ts';
import type { LightHeaders, HeaderView } from './headers.ts';
import { LIE, extendByRange, followBranch, type HeaderFetching } from './header-fetch.ts';
import type { SilentPeers } from './silent-peers.ts';
import type { LightClientEvents } from './client-types.ts';

/** What the rounds work on: the client's own parts, lent to them. */
export interface LightSyncParts extends Omit<HeaderFetching, 'apart'> {
  readonly headers: LightHeaders;
  /** What each peer last said of its chain (the client's); a peer blamed is dropped from it. */
  readonly statuses: Map<string, Status>;
  readonly peers: PeerManager;
  readonly silent: SilentPeers;
  readonly stopped: () => boolean;
  /** The client, whose listeners hear of each new tip and read its log. */
  readonly events: EventEmitter<LightClientEvents>;
}

export class LightSync {
  private readonly parts: LightSyncParts;
  private syncing: Promise<void> | undefined;
  /** Peers whose chains this client cannot follow (header-fetch.ts), left alone while they stay connected. */
  private readonly apart = new Set<string>();
  private again = false;
  /** The next sync round first takes a chain of as much work as ours on another tip (takeTie). */
  private tieWanted = false;

  constructor(parts: LightSyncParts) {
    this.parts = parts;
  }

  /** The rounds under way, if any. */
  get running(): Promise<void> | undefined {
    return this.syncing;
  }

  /** Nobody proved an account against our tip: the next round first takes a chain of as much work on another (takeTie). */
  wantTie(): void {
    this.tieWanted = true;
  }

  forget(peer: string): void {
    this.apart.delete(peer);
  }

  /** Follows every peer that claims more work than our chain, one at a time. Resolves when caught up. */
  requestSync(): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      try {
        do {
          this.again = false;
          await this.round(); // always a turn later, so `syncing` is set before this ends
        } while (this.again && !this.parts.stopped());
      } finally {
        this.syncing = undefined;
      }
    })();
    return this.syncing;
  }

  private async round(): Promise<void> {
    if (this.tieWanted) await this.takeTie();
    const ahead = this.ahead();
    ahead.sort(([, a], [, b]) => (b.totalWork > a.totalWork ? 1 : b.totalWork < a.totalWork ? -1 : 0));
    const tried = new Set<string>();
    for (const [peer, status] of ahead) {
      tried.add(peer);
      if (this.parts.stopped() || status.totalWork <= this.parts.headers.tip.totalWork) continue;
      try {
        await this.syncFrom(peer, status, tried);
      } catch (err) {
        this.blame(peer, err);
      }
    }
  }

  private blame(peer: string, err: unknown): void {
    const { peers, events } = this.parts;
    if (err instanceof PeerFault) peers.penalize(peer, err.score, err.message);
    else if (err instanceof CairnError && err.banScore > 0) peers.penalize(peer, err.banScore, `headers: ${err.message}`);
    else if (isOwnFailure(err)) events.emit('log', 'warn', `sync from ${peer} failed on our side, not the peer's: ${(err as Error)?.message ?? String(err)}`, ownFailureFields(err, { peer }));
    else events.emit('log', 'debug', `sync from ${peer} stopped: ${(err as Error).message}`);
    this.parts.silent.note(peer, err);
    this.parts.statuses.delete(peer);
  }

  /**
   * Catches up with `peer`: by height while its chain extends ours (getHeaderRange), else from
   * where its chain leaves ours (getHeaders and a locator). Every header is checked against the
   * one before it, and staged: its headers become our chain only once they show the work its
   * status claimed, as a full node's sync holds a peer to its claim before it takes any block
   * (docs/PROTOCOL.md, "Sync" 3). A sync that ends any other way (withheld, a bad header, a
   * timeout, a branch it will not follow) leaves our chain as it was.
   */
  private async syncFrom(peer: string, claimed: Status, tried: ReadonlySet<string>, tie = false): Promise<void> {
    const { headers, checkpoint } = this.parts;
    const staged = headers.stage();
    try {
      // Headers up to one answer past the height it claimed, as a full node's sync takes them: a
      // chain that moved since to a heavier branch may hold less work at that height.
      const upTo = claimed.height + MAX_HEADERS_PER_RESPONSE;
      const work = (await extendByRange(this.fetching, peer, staged, upTo)) ?? (await followBranch(this.fetching, peer, staged, upTo, tie));
      if (work === undefined) return;
      if (work < claimed.totalWork) throw new PeerFault('its headers do not add up to the work its status claimed (withheld)', LIE);
      // Its status said it passed the checkpoint's height (see ahead()).
      if (checkpoint && staged.height < checkpoint.height) throw new PeerFault(`its headers end at ${staged.height}, below the checkpoint its status claimed to pass`, LIE);
      this.commit(staged, tie);
    } catch (err) {
      // Headers before one ahead of our clock hold (a clock behind by more than the drift would
      // otherwise stay up to a batch behind for good), but prove no claim: taken as a full node
      // takes a chain cut short, only when no peer yet to be tried claims more work than they hold.
      const aheadOfClock = err instanceof ConsensusError && err.code === 'HEADER_TIME_TOO_NEW';
      if (aheadOfClock && !this.ahead().some(([p, s]) => !tried.has(p) && s.totalWork > staged.tip.totalWork)) this.commit(staged);
      throw err;
    } finally {
      headers.rollback(); // whatever was not committed
    }
  }

  /** What fetching a peer's headers (header-fetch.ts) needs of this client. */
  private get fetching(): HeaderFetching {
    const { params, names, clock, request, checkpoint } = this.parts;
    const apart = (peer: string, why: string) => {
      // Once a connection, as a full node says it: at every round (each status) it was said again.
      if (this.apart.has(peer)) return;
      this.apart.add(peer);
      this.parts.events.emit('log', 'warn', why);
    };
    return { params, names, clock, request, apart, checkpoint };
  }

  /**
   * Peers not banned nor silent whose status claims more work than our chain (or what `claims`
   * asks), and a chain that reaches the checkpoint's height: one that does not could not be ours (no fault: a node still
   * syncing says so too).
   */
  private ahead(claims = (s: Status) => s.totalWork > this.parts.headers.tip.totalWork): [string, Status][] {
    const { checkpoint, statuses, peers, silent } = this.parts;
    const reaches = (s: Status) => !checkpoint || s.height >= checkpoint.height;
    return [...statuses].filter(([p, s]) => claims(s) && reaches(s) && !peers.isBanned(p) && silent.waitsOn(p) && !this.apart.has(p));
  }

  /**
   * Nobody proved an account against our tip: a peer's chain of as much work on another tip
   * becomes ours if its headers show it. First seen wins a tie only while it can be proven: a
   * withholder's branch (headers shown, proofs and bodies not) held the client until the honest
   * chain it tied with outgrew it.
   */
  private async takeTie(): Promise<void> {
    this.tieWanted = false;
    const { headers } = this.parts;
    const tip = headers.tip.header;
    for (const [peer, status] of this.ahead((s) => s.totalWork === headers.tip.totalWork && !bytesEqual(s.tipHash, tip.hash))) {
      if (this.parts.stopped() || !bytesEqual(headers.tip.header.hash, tip.hash)) return;
      try {
        await this.syncFrom(peer, status, new Set([peer]), true);
      } catch (err) {
        this.blame(peer, err);
      }
    }
  }

  /**
   * The staged headers become our chain, if they hold more work than it and reach the
   * checkpoint's height (header-fetch.ts refused any other block there).
   */
  private commit(staged: HeaderView, tie = false): void {
    const { headers, checkpoint, events } = this.parts;
    const ours = headers.tip;
    if (staged.tip.totalWork < ours.totalWork || (staged.tip.totalWork === ours.totalWork && (!tie || bytesEqual(staged.tip.header.hash, ours.header.hash)))) return;
    if (checkpoint && staged.height < checkpoint.height) return;
    const tied = tie && staged.tip.totalWork === ours.totalWork;
    headers.commit();
    events.emit('tip', headers.height, tied);
    events.emit('log', 'info', 'headers', { height: headers.height, tip: toHex(headers.tip.header.hash) });
  }
}
