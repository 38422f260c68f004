import type { Env } from './env.ts';
import type { BanRecord, BanStore, PeerManager } from './peers.ts';
import { NetworkStats, PeerRecords, banKind, type ServedProtocol } from './peer-records.ts';
import { Serving } from './serving.ts';
import type { ServingLimits } from './serving-limits.ts';
import { Slots, type SlotLimits } from './slots.ts';
import { isOwnFailure, ownFailureFields, type ConnectionGate, type Responder, type ServeOptions, type Transport } from './transport.ts';
import { fileReasonAt } from './file-errors.ts';

export interface NetworkGuardOptions {
  readonly env: Env;
  readonly peers: PeerManager;
  readonly serving?: Partial<ServingLimits>;
  readonly slots?: Partial<SlotLimits>;
  readonly banStore?: BanStore;
  readonly log: (level: 'info' | 'warn' | 'debug', message: string, fields?: Record<string, unknown>) => void;
}

/**
 * What stands between a node and peers that take more than their share: who may connect (bans
 * by id and address, inbound slots per IP and subnet, eviction when full), what each may ask
 * (budgets per protocol, node/serving.ts), and the records both read — what each peer gave and
 * took. Bans are saved as they happen and restored at start.
 */
export class NetworkGuard {
  readonly records = new PeerRecords();
  readonly stats = new NetworkStats();
  readonly serving: Serving;
  readonly slots: Slots;
  private readonly o: NetworkGuardOptions;
  private transport: Transport | undefined;
  private saving: Promise<void> = Promise.resolve();
  /** The save waiting behind the one being written, which every ban meanwhile shares. */
  private waiting: Promise<void> | undefined;

  constructor(o: NetworkGuardOptions) {
    this.o = o;
    this.serving = new Serving({ env: o.env, peers: o.peers, records: this.records, stats: this.stats, limits: o.serving });
    const salt = new DataView(o.env.randomBytes(4).buffer).getUint32(0);
    this.slots = new Slots(this.records, o.slots, salt);
    o.peers.on('ban', (_peer, reason) => {
      const kind = banKind(reason);
      this.stats.bans[kind] = (this.stats.bans[kind] ?? 0) + 1;
      this.saveBans();
    });
  }

  /** Restores the bans saved before a restart. */
  /** `lift`: bans kept that no longer hold (made for a checkpoint since put right), dropped and said. */
  async restoreBans(lift?: { readonly why: string; readonly applies: (ban: BanRecord) => boolean }): Promise<void> {
    if (!this.o.banStore) return;
    let kept: readonly BanRecord[];
    try {
      kept = await this.o.banStore.load();
    } catch (err) {
      this.o.log('warn', `${(err as Error).message}: the node starts with no bans, and the next ban replaces the file`);
      return;
    }
    const lifted = lift ? kept.filter(lift.applies) : [];
    if (lifted.length > 0) kept = kept.filter((b) => !lift!.applies(b));
    const restored = this.o.peers.restore(kept);
    if (restored > 0) this.o.log('info', 'restored bans', { bans: restored });
    if (lifted.length > 0) {
      // Saved at once, so that the file says what holds; should the save fail (it is logged), or
      // a kill come first, the next start lifts them again (node/checkpoint.ts).
      await this.saveBans();
      this.o.log('info', `lifted ${lifted.length} ban${lifted.length === 1 ? '' : 's'} ${lift!.why}`, { peers: lifted.map((b) => b.id) });
    }
  }

  /**
   * Saves the bans in force, one save after another, and at most one waiting: it reads the bans
   * when it starts, so it holds every ban made while it waited. One save a ban queued a write of
   * the whole file (up to 10,000 bans, synced) per ban: a peer of another network, banned by
   * identity only, came back as a new one at once, faster than the disk wrote.
   */
  saveBans(): Promise<void> {
    const store = this.o.banStore;
    if (!store) return Promise.resolve();
    if (this.waiting) return this.waiting;
    const next = this.saving
      .then(() => {
        this.waiting = undefined;
        return store.save(this.o.peers.records());
      })
      .catch((err: Error) => this.o.log('warn', `cannot save bans: ${fileReasonAt(err)}`));
    this.waiting = next;
    this.saving = next;
    return next;
  }

  /** The transport's gate: banned ids, banned addresses, and addresses that hold their share. */
  gate(): ConnectionGate {
    const peers = this.o.peers;
    return {
      denied: (peer) => peers.isBanned(peer),
      deniedDial: (addr) => peers.addressBanned(addr),
      deniedInbound: (addr, open) => {
        const why = peers.addressBanned(addr) ? 'banned address' : this.slots.refuse(addr, open);
        if (why) {
          this.stats.refusedInbound++;
          this.o.log('debug', 'refused inbound connection', { address: addr, reason: why });
        }
        return why !== undefined;
      },
    };
  }

  /** Keeps the records from the transport's events, and enforces the slots as connections come up. */
  attach(transport: Transport): void {
    this.transport = transport;
    const { env, peers } = this.o;
    transport.on('peer:connect', (peer, info) => {
      this.records.connected(peer, info, env.monotonic());
      peers.connectedFrom(peer, info.remoteAddr);
      const out = this.slots.afterConnect(peer);
      if (!out) return;
      if (out.eviction) this.stats.evictions++;
      else this.stats.refusedInbound++;
      this.o.log(out.eviction ? 'info' : 'debug', out.eviction ? 'evicted peer' : 'refused inbound connection', { peer: out.peer, reason: out.reason });
      void transport.hangUp(out.peer);
    });
    transport.on('peer:disconnect', (peer) => {
      this.records.disconnected(peer);
      peers.disconnected(peer);
      this.serving.disconnected(peer);
    });
    transport.on('peer:bytes', (peer, bytes) => {
      const r = this.records.get(peer);
      if (r) r.bytesIn += bytes;
    });
  }

  /** Serves `protocol` within each asker's budget (answers busy when it is spent). */
  handle(name: ServedProtocol, protocol: string, respond: Responder, options: ServeOptions): Promise<void> {
    if (!this.transport) throw new Error('NetworkGuard.handle before attach');
    const guarded = this.serving.guard(name, respond);
    // The transport ends the stream on any error and charges the asker what its error's ban
    // score says: a bug of ours there has none, so it would cost nobody and be told to nobody.
    const told: Responder = async (request, peer) => {
      try {
        return await guarded(request, peer);
      } catch (err) {
        if (isOwnFailure(err)) this.o.log('warn', `answering ${name} failed on our side, not the peer's: ${(err as Error)?.message ?? String(err)}`, ownFailureFields(err, { peer }));
        throw err;
      }
    };
    return this.transport.handle(protocol, told, options);
  }

  async stop(): Promise<void> {
    await this.saveBans();
  }
}
