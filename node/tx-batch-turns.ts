import type { PeerManager } from './peers.ts';
import type { NetworkStats, PeerRecords } from './peer-records.ts';
import type { Verdict } from './transport.ts';

/**
 * Bytes of transaction batches one address group may have waiting for its turn: six full batches
 * (166 KB each), or a busy honest relay's backlog of small ones (MAX_WAITING_BATCHES).
 */
export const MAX_WAITING_BATCH_BYTES = 1 << 20;
/**
 * Batches of one address group validated at once. One at a time halved the devnet's confirmed rate
 * to a node that does not mine (1,766 and 2,471 tx/s against 2,820 with no limit and 3,480 with
 * four, one run each, side by side): a relay's stream waited out each batch's signature round trip
 * and its turn of the mempool's queue in series, and what overflowed the waiting room was lost.
 * Four bound a flood as well: a group's forged batches cost at most four first rounds of checks.
 */
export const BATCHES_AT_ONCE_PER_GROUP = 4;
/** Batches one address group may have waiting, however small: each holds gossipsub's state for its message. */
export const MAX_WAITING_BATCHES = 64;
/** Bytes waiting from every group together: what all the inbound slots' groups may hold at once. */
export const MAX_WAITING_BATCH_BYTES_IN_ALL = 16 << 20;

/**
 * A batch's validation, given `park`: called when what is left of it only waits (for blocks still
 * arriving), it hands the group's turn to the next batch, if the node's room for parked batches
 * holds it (else the batch keeps its turn, as every batch did before parking); `group` is its
 * sender's address group as it was when the batch came (the sender may have gone since).
 */
export type TurnValidation = (park: () => void, group: string) => Promise<Verdict>;

interface Waiting {
  readonly bytes: number;
  readonly validate: TurnValidation;
  readonly welcome: () => boolean;
  readonly resolve: (verdict: Verdict | Promise<Verdict>) => void;
}

interface GroupTurns {
  /** Batches of the group validating now: at most BATCHES_AT_ONCE_PER_GROUP. */
  running: number;
  readonly waiting: Waiting[];
  waitingBytes: number;
}

/**
 * Gossiped transaction batches validated a few at a time per address group (BATCHES_AT_ONCE_PER_GROUP;
 * a subnet's identities together, as the serving budgets count them), with a bounded few waiting
 * behind and the rest ignored unread. gossipsub starts a validation for every message as it is
 * read, without waiting for the last: a batch of unfunded senders costs its sender nothing (no
 * signature is checked, no score) and admission tens of milliseconds of store reads, so one peer
 * sending faster than that held a validation per message in memory, without bound. Checked a few
 * at a time, a group's forged batches also cost those few's first signature rounds, not each
 * one's: those waiting behind find their sender, or its address, banned. What is ignored costs the
 * sender nothing: an honest relay's burst is no offence.
 */
export class TxBatchTurns {
  private readonly groupOf: (peer: string) => string;
  private readonly groups = new Map<string, GroupTurns>();
  private waitingBytes = 0;
  /** Bytes of batches that handed on their turn to wait for blocks: at most MAX_WAITING_BATCH_BYTES_IN_ALL. */
  private parkedBytes = 0;
  /** Where the batches ignored unvalidated are counted (cairn_ignored_tx_batches_total). */
  private readonly stats: Pick<NetworkStats, 'ignoredTxBatches'>;

  constructor(groupOf: (peer: string) => string, stats: Pick<NetworkStats, 'ignoredTxBatches'> = { ignoredTxBatches: 0 }) {
    this.groupOf = groupOf;
    this.stats = stats;
  }

  /**
   * `validate` of a batch of `bytes` from `peer`, once its group's turn comes; 'ignore' at once if
   * the group's (or the node's) waiting room is full, and at its turn if `welcome()` no longer
   * holds (its sender banned meanwhile, the node stopping).
   */
  run(peer: string, bytes: number, validate: TurnValidation, welcome: () => boolean): Promise<Verdict> {
    const key = this.groupOf(peer);
    let group = this.groups.get(key);
    if (!group) {
      group = { running: 0, waiting: [], waitingBytes: 0 };
      this.groups.set(key, group);
    }
    if (group.running < BATCHES_AT_ONCE_PER_GROUP) return this.turn(key, group, bytes, validate);
    const full =
      group.waiting.length >= MAX_WAITING_BATCHES || group.waitingBytes + bytes > MAX_WAITING_BATCH_BYTES || this.waitingBytes + bytes > MAX_WAITING_BATCH_BYTES_IN_ALL;
    if (full) {
      this.stats.ignoredTxBatches++;
      return Promise.resolve('ignore');
    }
    group.waitingBytes += bytes;
    this.waitingBytes += bytes;
    return new Promise<Verdict>((resolve) => group.waiting.push({ bytes, validate, welcome, resolve }));
  }

  /**
   * One batch's turn. A batch that only waits for blocks still arriving (a compact block whose
   * forwarder stalls may take many seconds) parks and hands on the turn: held, it kept every later
   * batch of its group waiting, honest ones too, until the waiting room overflowed and they were
   * ignored, which gossip never delivers again.
   */
  private async turn(key: string, group: GroupTurns, bytes: number, validate: TurnValidation): Promise<Verdict> {
    group.running++;
    let handedOn = false;
    let parked = false;
    const handOn = () => {
      if (handedOn) return;
      handedOn = true;
      this.next(key, group);
    };
    const park = () => {
      if (handedOn || this.parkedBytes + bytes > MAX_WAITING_BATCH_BYTES_IN_ALL) return;
      parked = true;
      this.parkedBytes += bytes;
      handOn();
    };
    try {
      return await validate(park, key);
    } finally {
      if (parked) this.parkedBytes -= bytes;
      handOn();
    }
  }

  /** The group's next welcome batch begins; those no longer welcome are ignored on the way. */
  private next(key: string, group: GroupTurns): void {
    group.running--;
    for (let w = group.waiting.shift(); w; w = group.waiting.shift()) {
      group.waitingBytes -= w.bytes;
      this.waitingBytes -= w.bytes;
      if (w.welcome()) return w.resolve(this.turn(key, group, w.bytes, w.validate));
      this.stats.ignoredTxBatches++;
      w.resolve('ignore');
    }
    if (group.running === 0) this.groups.delete(key);
  }
}

/**
 * The address group `peer` sends from, as the serving budgets count it: its subnet; a peer whose
 * IP PeerManager does not limit (loopback, an address of another kind) is a group of its own.
 */
export function senderGroup(peers: Pick<PeerManager, 'ipOf'>, records: Pick<PeerRecords, 'get'> | undefined, peer: string): string {
  const ip = peers.ipOf(peer);
  return ip === undefined ? `peer ${peer}` : (records?.get(peer)?.group?.subnet ?? ip);
}

/** Whether `peer`, or the address it is connected from (another identity's offence), is banned. */
export function bannedSender(peers: Pick<PeerManager, 'isBanned' | 'addressBanned'>, records: Pick<PeerRecords, 'get'> | undefined, peer: string): boolean {
  const addr = records?.get(peer)?.remoteAddr;
  return peers.isBanned(peer) || (addr !== undefined && peers.addressBanned(addr));
}
