import type { Env } from './env.ts';
import { PeerBook } from './peer-book.ts';
import { MAX_SAVED_PEERS, type PeerStore } from './peer-file.ts';
import type { PeerManager } from './peers.ts';
import type { Transport } from './transport.ts';
import { fileReasonAt } from './file-errors.ts';

/** How long a node may be without a peer before it says so (and how often it repeats it). */
const NO_PEERS_WARNING_MS = 30_000;

export interface KeepConnectedOptions {
  readonly env: Env;
  readonly transport: Transport;
  readonly peers: PeerManager;
  readonly bootstrap?: readonly string[];
  /** The peers it was connected to, across restarts (peers.json); none in the simulator. */
  readonly peerStore?: PeerStore;
  readonly noPeersWarningMs?: number;
  readonly log: (level: 'info' | 'warn' | 'debug', message: string, fields?: Record<string, unknown>) => void;
}

/**
 * A node's side of staying on the network: the book of peers it dials (node/peer-book.ts), filled
 * from --bootstrap and from peers.json at start and saved again as it goes, redialled every second,
 * and a warning that says what to check when no peer has been connected for a while.
 */
export class KeepConnected {
  readonly book: PeerBook;
  private readonly o: KeepConnectedOptions;
  private lonelySince: number | undefined;
  /** The file was read: only then may a save write it (a start that failed before has an empty book). */
  private restored = false;

  constructor(o: KeepConnectedOptions) {
    this.o = o;
    this.book = new PeerBook(o.env, o.transport, o.peers);
    this.book.onDialFailed = (peer, source, addrs, err) => {
      if (source === 'bootstrap' || source === 'user') o.log('warn', `cannot reach ${source} peer ${peer}: ${err.message} (retrying with backoff)`, { peer, addrs });
      else o.log('debug', `cannot reach ${source} peer ${peer}: ${err.message}`, { peer, addrs });
    };
  }

  /** The bootstrap peers, and those known before a restart. */
  async start(): Promise<void> {
    for (const addr of this.o.bootstrap ?? []) this.book.remember(addr, 'bootstrap');
    if (!this.o.peerStore) return;
    const saved = await this.o.peerStore.load();
    const { taken, unreachable, passedOver } = this.book.restore(saved);
    this.restored = true;
    if (passedOver.size > 0) {
      const why = [...passedOver].map(([reason, n]) => `${n}× ${reason}`).join(', ');
      const left = unreachable > 0 ? `; ${unreachable} of its ${saved.length} peers had nothing else to dial` : '';
      this.o.log('warn', `passed over in the peers known from before the restart (peers.json), as no dial could reach them: ${why}${left}`);
    }
    if (taken > 0) this.o.log('info', 'known peers from before the restart', { peers: taken });
  }

  /** Once a second: dials who is due, and warns when the node has been alone too long. */
  tick(): void {
    this.book.redial();
    if (this.o.transport.peers().length > 0) {
      this.lonelySince = undefined;
      return;
    }
    const now = this.o.env.monotonic();
    this.lonelySince ??= now;
    if (now - this.lonelySince < (this.o.noPeersWarningMs ?? NO_PEERS_WARNING_MS)) return;
    this.lonelySince = now;
    this.o.log('warn', this.lonelyWarning());
  }

  /**
   * What to check when alone. A banned peer is not dialled: "check that they run" about a peer
   * that answered and was banned (most often another network's: another genesis.json) sent the
   * user after the wrong fault.
   */
  private lonelyWarning(): string {
    const known = this.book.size;
    if (known === 0) return 'no peers: give one with --bootstrap MULTIADDR (mDNS finds peers only on the local network)';
    const banned = this.book.bannedCount;
    const why = 'the log and cairn status say why';
    if (banned === known) return `no peers: ${known === 1 ? 'the one known peer is' : `all ${known} known peers are`} banned (${why})`;
    const silent = `none of the ${known - banned} known peers answers; check that they run and that --bootstrap names them right`;
    return banned === 0 ? `no peers: ${silent}` : `no peers: ${silent}; ${banned} more ${banned === 1 ? 'is' : 'are'} banned (${why})`;
  }

  /** A connection came up: the lonely clock starts over. */
  connected(): void {
    this.lonelySince = undefined;
  }

  /** Saves the peers worth keeping; a save that fails (a full disk) is told, and the last file stays. */
  async save(): Promise<void> {
    if (!this.restored) return;
    await this.o.peerStore!.save(this.book.worthKeeping(MAX_SAVED_PEERS)).catch((err: Error) => this.o.log('warn', `cannot save the known peers: ${fileReasonAt(err)}`));
  }
}
