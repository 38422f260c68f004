import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { bytesEqual, toHex } from '../../ledger/bytes.ts';
import { CairnError } from '../../ledger/errors.ts';
import type { BlockHeader } from '../../ledger/block.ts';
import { genesisBlock, type ChainParams } from '../../ledger/genesis.ts';
import type { Account } from '../../ledger/state.ts';
import { InterruptibleSleeps, secondsOf, type Env, type Timer } from '../env.ts';
import { PeerBook } from '../peer-book.ts';
import { PeerManager } from '../peers.ts';
import { PeerRecords } from '../peer-records.ts';
import { Slots } from '../slots.ts';
import { networkNames, type NetworkNames } from '../protocols.ts';
import { TransportError, waitingOutBusy, type RequestLimits, type Transport } from '../transport.ts';
import { decodeStatus, encodeStatus, type Status } from '../wire.ts';
import { LightHeaders } from './headers.ts';
import { holdCheckpoint, type Checkpoint } from './checkpoint.ts';
import { checkpointText } from '../../consensus/header-rules.ts';
import { REORGANISED, chooseProvers, proofFrom, proveFromAny, type Prover } from './proofs.ts';
import { SilentPeers } from './silent-peers.ts';
import { ProverOrder } from './prover-order.ts';
import { LightSync } from './sync.ts';
import type { LightClientEvents, LightClientParts, ProvenAccount } from './client-types.ts';

export type { LightClientEvents, LightClientParts, ProvenAccount };

const STATUS_TIMEOUT_MS = 5_000;
/**
 * Why a peer that does not speak our network is banned, said so that the user sees the fix: most
 * often a light client started without the --genesis of its node's network (the bundled devnet's).
 */
const ANOTHER_NETWORK = 'another network, or no Cairn node: it does not speak ours; a light client needs the genesis.json of its nodes\' network (cairn light --genesis FILE)';
/** Rounds of statuses and headers a proof waits for a peer with our tip (see getAccount). */
const TIP_ATTEMPTS = 3;
/**
 * Busy answers a sync or proof request waits out, and the longest retry-after (docs/PROTOCOL.md,
 * "Busy"): a peer busier than an honest node's budgets is a soft failure, and the next is asked.
 * Identities cost nothing, and each that answered busy for a minute, five times, held a getAccount
 * up for minutes: provers are asked a few at a time, and a sync round, which getAccount waits
 * for, follows the peers that claim more work one after another.
 */
const PATIENCE = { waits: 3, maxRetryAfterMs: 2_000 } as const;

/**
 * A light client: headers only, trusting no node. It follows the most-work header chain its
 * peers show it, every header checked as a full node's sync checks them, and learns accounts by
 * asking peers for proofs against the state root of a header it holds, checking each proof itself.
 * A peer that lies — headers that do not check or do not add up to the work it claimed, a proof
 * that does not hold (forged, or made against another block's state) — is banned.
 */
export class LightClient extends EventEmitter<LightClientEvents> {
  readonly params: ChainParams;
  readonly genesis: BlockHeader;
  private readonly parts: LightClientParts;
  private readonly env: Env;
  private readonly clock: () => number;
  readonly names: NetworkNames;
  readonly peers: PeerManager;
  headers!: LightHeaders;
  transport!: Transport;
  private book!: PeerBook;
  readonly statuses = new Map<string, Status>();
  private readonly timers: Timer[] = [];
  private readonly silent: SilentPeers;
  /** Which peers are asked for proofs first: those whose last proofs held, quickest first. */
  private readonly provers: ProverOrder;
  /** The sync rounds, made at start with the headers and the checkpoint. */
  private sync!: LightSync;
  private stopped = false;
  /** The checkpoint held (given, or kept in the datadir): no chain is ours that does not pass through it. */
  private checkpoint: Checkpoint | undefined;
  /** Busy answers' retry-afters being waited out: a stop ends them. */
  private readonly sleeps: InterruptibleSleeps;
  /**
   * Inbound connections per IP and subnet, as a full node keeps them (node/slots.ts): it listens on
   * every address by default, and identities from one address could take every connection it has.
   */
  private readonly records = new PeerRecords();
  private readonly slots: Slots;

  constructor(parts: LightClientParts) {
    super();
    this.parts = parts;
    this.params = parts.params;
    this.env = parts.env;
    this.sleeps = new InterruptibleSleeps(parts.env);
    this.silent = new SilentPeers(parts.env);
    this.provers = new ProverOrder(parts.env);
    this.clock = secondsOf(parts.env);
    this.genesis = genesisBlock(parts.params).header;
    this.names = networkNames(this.genesis.hash);
    this.peers = new PeerManager(this.clock, parts.banSeconds);
    // Keyed as a full node's (NetworkGuard): which subnets eviction protects is not for a peer to aim at.
    this.slots = new Slots(this.records, {}, new DataView(parts.env.randomBytes(4).buffer).getUint32(0));
  }

  async start(): Promise<void> {
    const headers = LightHeaders.open(join(this.parts.datadir, 'headers'), this.genesis);
    try {
      this.checkpoint = await holdCheckpoint(this.parts.datadir, headers, this.parts.checkpoint);
    } catch (err) {
      await headers.close(); // the tip saved again, which opening took: a refused start changes nothing
      throw err;
    }
    this.headers = headers;
    this.sync = new LightSync({
      params: this.params,
      names: this.names,
      clock: this.clock,
      request: (...args) => this.request(...args),
      checkpoint: this.checkpoint,
      headers,
      statuses: this.statuses,
      peers: this.peers,
      silent: this.silent,
      stopped: () => this.stopped,
      events: this,
    });
    this.transport = await this.parts.createTransport(
      {
        denied: (peer) => this.peers.isBanned(peer),
        deniedInbound: (addr, open) => this.peers.addressBanned(addr) || this.slots.refuse(addr, open) !== undefined,
        deniedDial: (addr) => this.peers.addressBanned(addr),
        deniedDialPeer: (peer) => this.book?.holdsOff(peer) ?? false,
      },
      this.names,
    );
    this.book = new PeerBook(this.env, this.transport, this.peers);
    // Full nodes ask every peer its status; a light client answers truthfully, as a chain of headers.
    await this.transport.handle(this.names.status, async () => encodeStatus(this.status()), {
      timeoutMs: STATUS_TIMEOUT_MS,
      maxBytes: 1024,
      onBadRequest: (peer, err) => this.peers.badRequest(peer, err),
    });
    this.peers.on('ban', (peer, reason) => {
      this.statuses.delete(peer);
      this.emit('log', 'warn', `banned peer ${peer}: ${reason}`);
      void this.transport.hangUp(peer);
    });
    this.transport.on('peer:ready', (peer, addrs) => {
      this.book.connected(peer, addrs);
      void this.handshake(peer);
    });
    // Where each peer came from, so that a ban covers its address, not only an identity (free to make).
    this.transport.on('peer:connect', (peer, info) => {
      this.peers.connectedFrom(peer, info.remoteAddr);
      this.records.connected(peer, info, this.env.monotonic());
      const out = this.slots.afterConnect(peer);
      if (out) void this.transport.hangUp(out.peer);
    });
    this.transport.on('peer:disconnect', (peer) => {
      this.records.disconnected(peer);
      this.statuses.delete(peer);
      this.silent.forget(peer);
      this.provers.forget(peer);
      this.sync.forget(peer);
      this.book.disconnected(peer);
      this.peers.disconnected(peer);
    });
    this.transport.on('peer:misbehaved', (peer, score, reason) => void this.peers.penalize(peer, score, reason));
    for (const addr of this.parts.bootstrap) this.book.remember(addr, 'bootstrap');
    this.timers.push(this.env.setInterval(() => this.stopped || this.book.redial(), 1_000));
    this.timers.push(this.env.setInterval(() => this.transport.peers().forEach((p) => void this.handshake(p)), this.parts.statusIntervalMs ?? 5_000));
    this.book.redial();
    this.emit('log', 'info', 'light client started', { peerId: this.transport.peerId, network: this.params.name, checkpoint: this.checkpoint && checkpointText(this.checkpoint) });
  }

  /** Our chain, as the status message says it: a light client keeps no bodies, so every one is "pruned". */
  status(): Status {
    const tip = this.headers.tip;
    return { genesis: this.genesis.hash, height: tip.header.height, tipHash: tip.header.hash, totalWork: tip.totalWork, prunedHeight: tip.header.height };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.sleeps.interrupt(); // a busy peer's retry-after is not sat out
    for (const t of this.timers) this.env.clearInterval(t);
    await this.transport?.stop();
    await this.sync?.running?.catch(() => {});
    await this.headers?.close();
  }

  /** Learns the peer's chain (undefined: it did not say, or is of another network), and follows it if it has more work. */
  private async handshake(peer: string): Promise<Status | undefined> {
    let status: Status;
    try {
      status = decodeStatus(await this.transport.request(peer, this.names.status, new Uint8Array(0), { timeoutMs: STATUS_TIMEOUT_MS, maxBytes: 1024 }));
    } catch (err) {
      this.silent.note(peer, err);
      if (err instanceof TransportError && err.code === 'TRANSPORT_UNSUPPORTED') this.peers.ban(peer, ANOTHER_NETWORK);
      else if (err instanceof CairnError && err.banScore > 0) this.peers.penalize(peer, err.banScore, `status: ${err.message}`);
      return undefined;
    }
    if (!bytesEqual(status.genesis, this.genesis.hash)) {
      this.peers.ban(peer, `${ANOTHER_NETWORK}; its genesis differs`);
      return undefined;
    }
    this.statuses.set(peer, status);
    if (status.totalWork > this.headers.tip.totalWork) void this.requestSync();
    return status;
  }

  /**
   * A request that waits out busy answers (docs/PROTOCOL.md, "Busy"): no fault of the peer's; the
   * client waits as long as it was told and asks again, a few times (PATIENCE), then gives up on
   * it (the caller moves on to another peer; SilentPeers leaves out one given up on again, until
   * it answers).
   */
  private async request(peer: string, protocol: string, message: Uint8Array, limits: RequestLimits): Promise<Uint8Array> {
    const answer = await waitingOutBusy((ms) => this.sleeps.sleep(ms), () => this.transport.request(peer, protocol, message, limits), () => this.stopped, PATIENCE.waits, PATIENCE.maxRetryAfterMs);
    this.silent.answered(peer);
    return answer;
  }

  /** Follows every peer that claims more work than our chain, one at a time (node/light/sync.ts). Resolves when caught up. */
  requestSync(): Promise<void> {
    return this.sync.requestSync();
  }

  /**
   * The account at `address` in the state of our tip, proven: every peer that has our tip is asked
   * at once (node/light/proofs.ts), each proof is checked against our tip's state root, a peer
   * whose proof does not hold is banned, and the answer is the first that holds, as soon as it
   * comes: any one honest peer is enough (the others' answers are still judged as they arrive).
   */
  async getAccount(address: Uint8Array): Promise<ProvenAccount> {
    let tip = this.headers.tip.header;
    let candidates: Prover[] = [];
    let answers: ({ account: Account | undefined } | string)[] = [];
    const ask = (peer: string, message: Uint8Array, limits: RequestLimits) => this.request(peer, this.names.proofs, message, limits);
    // Our tip first, as fresh as our peers can make it: a full node proves only near its own tip.
    // A block found between the statuses and the headers leaves every status short of our new tip,
    // and a reorganisation after them leaves our tip off the provers' chains: then the statuses
    // are asked again, and the chain they name followed (a few times at most; the chain may be fast).
    for (let attempt = 0; attempt < TIP_ATTEMPTS; attempt++) {
      await Promise.all(this.transport.peers().filter((peer) => this.silent.waitsOn(peer)).map((peer) => this.handshake(peer)));
      await this.requestSync();
      const at = this.headers.tip;
      tip = at.header;
      candidates = chooseProvers(this.statuses, this.peers, tip, at.totalWork, this.provers);
      answers = [];
      if (candidates.length === 0) continue;
      const prove = (c: Prover) => this.provers.timed(c.peer, proofFrom(ask, (peer) => this.handshake(peer), this.peers, c, at, address), (a) => typeof a !== 'string');
      const proven = await proveFromAny(candidates, prove);
      if (!Array.isArray(proven)) return { address, account: proven.account, height: tip.height, blockHash: tip.hash, peer: proven.peer };
      answers = proven;
      if (answers.includes(REORGANISED)) continue;
      this.sync.wantTie();
      await this.requestSync();
      if (bytesEqual(this.headers.tip.header.hash, tip.hash)) break;
    }
    const why = answers.map((a, i) => `${candidates[i]!.peer}: ${a as string}`);
    throw new CairnError('LIGHT_NO_PROOF', candidates.length === 0 ? `no peer has our tip (height ${tip.height}) yet` : `no peer served a proof that holds at height ${tip.height} (${why.join('; ')})`);
  }

  /**
   * The peers banned now, and why (a forged proof, headers that do not check, …): the bans in
   * force, as many as PeerManager keeps. Not a record of every ban ever: identities cost nothing,
   * and one kept per banned identity grew for as long as the client ran.
   */
  get bans(): Map<string, string> {
    return new Map(this.peers.records().flatMap((r) => (r.kind === 'peer' ? [[r.id, r.reason] as const] : [])));
  }

  /** What `cairn light`'s status shows. */
  summary() {
    const tip = this.headers.tip;
    return {
      network: this.params.name,
      unit: this.params.unit,
      decimals: this.params.decimals,
      genesis: toHex(this.genesis.hash),
      height: tip.header.height,
      head: toHex(tip.header.hash),
      totalWork: tip.totalWork.toString(),
      peers: this.transport.peers().length,
      peerId: this.transport.peerId,
      listen: this.transport.listenAddresses(),
      banned: [...this.bans].map(([peer, reason]) => ({ peer, reason })),
      headerMemoryBytes: this.headers.memoryBytes,
      syncing: this.sync.running !== undefined,
      checkpoint: this.checkpoint ? { height: this.checkpoint.height, hash: toHex(this.checkpoint.hash), passed: this.headers.height >= this.checkpoint.height } : null,
    };
  }
}

