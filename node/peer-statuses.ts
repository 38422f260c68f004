import { bytesEqual } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import type { Chain } from '../consensus/chain.ts';
import type { Env } from './env.ts';
import type { PeerManager } from './peers.ts';
import type { PeerRecords } from './peer-records.ts';
import { STATUS_REQUEST_MAX_BYTES } from './chain-server.ts';
import type { NetworkNames } from './protocols.ts';
import { TransportError, type BusyMemory, type Transport } from './transport.ts';
import { decodeStatus, type Status } from './wire.ts';

const STATUS_TIMEOUT_MS = 5_000;

export interface PeerStatusesOptions {
  readonly transport: Transport;
  readonly env: Env;
  readonly names: NetworkNames;
  readonly chain: Chain;
  readonly peers: PeerManager;
  readonly busy: BusyMemory;
  /** Where round trips are noted, for eviction. */
  readonly records?: PeerRecords;
  /** A peer answered with another genesis, or does not speak our protocols. */
  readonly onForeign: (peer: string) => void;
  /** A peer of our network told us its chain. */
  readonly onStatus: (peer: string, status: Status) => void;
}

/**
 * What each connected peer of our network last said of its chain (its status: height, tip, total
 * work, pruned height), asked on every new connection and when sync wants to know again.
 */
export class PeerStatuses {
  private readonly o: PeerStatusesOptions;
  readonly byPeer = new Map<string, { peer: string; status: Status }>();
  /** Status requests in flight, one per peer: handshakes asked for meanwhile share it. */
  private readonly asking = new Map<string, Promise<Status | undefined>>();
  /** Per peer, the request to follow the one in flight, for handshakes that need an answer made after they were asked (`fresh`). */
  private readonly following = new Map<string, Promise<Status | undefined>>();

  constructor(o: PeerStatusesOptions) {
    this.o = o;
  }

  /**
   * Learns the peer's chain. One status request per peer at a time: handshakes asked for
   * meanwhile (a burst of orphan blocks, the status poll) share it. A `fresh` one (an orphan block
   * the peer just sent) needs an answer made after it was asked: the one in flight may have been
   * made before the peer had that block (a connection's first status, crossing the peer's next
   * block), and then told of a chain with no more work than ours, and nothing was synced until
   * the next poll (simulator seed 80021: 5.6 s). It gets one more request after the one in
   * flight, shared by every fresh handshake asked for meanwhile.
   */
  handshake(peer: string, fresh = false): Promise<Status | undefined> {
    const inFlight = this.asking.get(peer);
    if (inFlight && fresh) {
      let next = this.following.get(peer);
      if (!next) {
        // Its own sending is the line: a fresh handshake asked for once it is sent needs another.
        next = inFlight.then(() => {
          this.following.delete(peer);
          return this.handshake(peer);
        });
        this.following.set(peer, next);
      }
      return next;
    }
    if (inFlight) return inFlight;
    const asking = this.askStatus(peer).finally(() => this.asking.delete(peer));
    this.asking.set(peer, asking);
    return asking;
  }

  private async askStatus(peer: string): Promise<Status | undefined> {
    const { transport, names, chain, env } = this.o;
    let status: Status;
    const sent = env.monotonic();
    try {
      status = decodeStatus(await this.o.busy.ask(peer, names.status, () => transport.request(peer, names.status, new Uint8Array(0), { timeoutMs: STATUS_TIMEOUT_MS, maxBytes: STATUS_REQUEST_MAX_BYTES })));
    } catch (err) {
      // Busy: what it said last still stands; ask again later.
      if (err instanceof TransportError && err.code === 'TRANSPORT_BUSY') return undefined;
      if (err instanceof TransportError && err.code === 'TRANSPORT_UNSUPPORTED') this.o.onForeign(peer);
      else if (err instanceof CairnError && err.banScore > 0) this.o.peers.penalize(peer, err.banScore, `status: ${err.message}`);
      this.byPeer.delete(peer);
      return undefined;
    }
    const record = this.o.records?.get(peer);
    if (record) record.rttMs = env.monotonic() - sent;
    if (!bytesEqual(status.genesis, chain.db.genesis.header.hash)) {
      this.o.onForeign(peer);
      return undefined;
    }
    this.byPeer.set(peer, { peer, status });
    this.o.onStatus(peer, status);
    return status;
  }

  /**
   * `peer` gave us block `hash`, now connected: it has that chain, whatever its last status said.
   * A status is asked for every 15 s, and answered busy when asked too often, so a peer relaying a
   * fast chain would otherwise be shown (and chosen as a body provider) at a height long past.
   */
  peerHas(peer: string, hash: Uint8Array): void {
    const known = this.byPeer.get(peer);
    const entry = this.o.chain.getEntry(hash);
    if (!known || !entry || entry.totalWork <= known.status.totalWork) return;
    this.byPeer.set(peer, { peer, status: { ...known.status, height: entry.height, tipHash: entry.hash, totalWork: entry.totalWork } });
  }
}
