import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import { EMPTY_ACCOUNT } from '../ledger/state.ts';
import { LightClient } from '../node/light/client.ts';
import { SimEnv } from './env.ts';
import { Random } from './random.ts';
import type { SimNode } from './sim-node.ts';
import { SIM_EPOCH_MS, type World } from './world.ts';

/** A light client's part in a run: when it joins, whom it asks first, and how it goes down and back once, if it does. */
export interface LightClientSpec {
  readonly id: string;
  readonly joinAtMs: number;
  /** Full nodes it bootstraps off, honest or not. */
  readonly bootstrapTo: readonly string[];
  readonly skewMs: number;
  readonly restart?: { readonly atMs: number; readonly kind: 'crash' | 'stop'; readonly downMs: number };
}

/**
 * A block connected this recently may not have reached a light client yet: one status round (5 s)
 * and its header's trip over a link with jitter. Its tip may then be this many blocks short.
 */
const FRESH_MS = 15_000;
const FRESH_BLOCKS = 2;
/** How often a running light client is asked for an account while the network mines, reorganises and fails. */
const QUERY_EVERY_MS = 12_000;

/**
 * The seed's light clients, from a stream of their own (`light-clients:SEED`), so that a run
 * without them draws exactly what it drew before they existed.
 */
export function lightClientSpecs(seed: string, count: number, fullNodes: readonly string[], durationMs: number): LightClientSpec[] {
  const rng = new Random(`light-clients:${seed}`);
  return Array.from({ length: count }, (_, i) => {
    const joinAtMs = rng.chance(0.4) ? rng.int(Math.floor(durationMs * 0.6)) : 100 + i * 100;
    const latest = durationMs - 20_000;
    const restarts = rng.chance(0.5) && latest > joinAtMs + 5_000;
    return {
      id: `light${i}`,
      joinAtMs,
      bootstrapTo: rng.shuffle(fullNodes).slice(0, 1 + rng.int(3)),
      skewMs: rng.range(-20_000, 20_000),
      restart: restarts ? { atMs: rng.range(joinAtMs + 5_000, latest), kind: rng.chance(0.5) ? 'crash' : 'stop', downMs: rng.range(1_000, 20_000) } : undefined,
    };
  });
}

/**
 * Light clients (node/light/client.ts) in the world: each a real LightClient over the simulated
 * network, its clock and timers the scheduler's, its randomness the seed's. Its header file is a
 * real one, in a directory of the run's, written synchronously as it syncs, and so is its saved
 * tip, at each commit and at a clean stop: the next life, after a crash too, reads what it left.
 */
export class SimLightClients {
  private readonly world: World;
  readonly specs: readonly LightClientSpec[];
  private readonly dir: string;
  readonly clients = new Map<string, LightClient>();
  private readonly envs = new Map<string, SimEnv>();
  private readonly lives = new Map<string, number>();
  /** The tip a clean stop or a crash left, for the next life to start from. */
  private readonly saved = new Map<string, { height: number; hash: Uint8Array; how: 'a clean stop' | 'a crash' }>();
  /** What a light client did that it must not: ban or penalise an honest full node. */
  readonly wrongs: string[] = [];
  /** What was judged at the end: clients on an honest node's tip, accounts proven; and the restarts. */
  readonly counts = { checked: 0, proofs: 0, crashes: 0, stops: 0, queries: 0, queriesProven: 0, queriesCompared: 0, adversariesBanned: 0, onWithheldChain: 0, ties: 0 };
  /** When an honest full node last connected a block (FRESH_MS). */
  private lastBlockAt = 0;

  constructor(world: World, specs: readonly LightClientSpec[]) {
    this.world = world;
    this.specs = specs;
    this.dir = mkdtempSync(join(tmpdir(), 'cairn-sim-light-'));
    world.observe({
      onNode: (sim, node) => {
        if (!sim.honest) return;
        node.on('block', () => (this.lastBlockAt = world.scheduler.now));
        // A light client breaks no rule: an honest node that punishes one cuts a user off.
        const light = (peer: string) => this.specs.some((spec) => spec.id === peer);
        node.peers.on('penalty', (peer, score, reason) => light(peer) && this.wrongs.push(`at ${this.at()} s: ${sim.id} penalised light client ${peer} by ${score}: ${reason}`));
        node.peers.on('ban', (peer, reason) => light(peer) && this.wrongs.push(`at ${this.at()} s: ${sim.id} banned light client ${peer}: ${reason}`));
      },
    });
  }

  schedule(): void {
    const s = this.world.scheduler;
    for (const spec of this.specs) {
      mkdirSync(join(this.dir, spec.id));
      // Held as a stop is: a start reads real files.
      s.at(SIM_EPOCH_MS + spec.joinAtMs, () => s.hold(this.start(spec)));
      const r = spec.restart;
      if (!r) continue;
      s.at(SIM_EPOCH_MS + r.atMs, () => {
        this.world.record(`${spec.id} ${r.kind}`);
        this.counts[r.kind === 'crash' ? 'crashes' : 'stops']++;
        if (r.kind === 'crash') this.crash(spec.id);
        // The scheduler waits for the stop: its last write is a real file's (the saved tip).
        else s.hold(this.stop(spec.id));
        s.after(r.downMs, () => s.hold(this.start(spec)));
      });
    }
  }

  private async start(spec: LightClientSpec): Promise<void> {
    if (this.clients.has(spec.id)) return;
    const life = (this.lives.get(spec.id) ?? 0) + 1;
    this.lives.set(spec.id, life);
    // On its first bootstrap node's side of every partition, as a user's client on that node's network.
    if (spec.bootstrapTo[0]) this.world.net.place(spec.id, { sideOf: spec.bootstrapTo[0] });
    const env = new SimEnv(this.world.scheduler, new Random(`light-env:${this.world.o.seed}:${spec.id}:${life}`), spec.skewMs);
    const client = new LightClient({
      params: this.world.o.params,
      env,
      datadir: join(this.dir, spec.id),
      bootstrap: spec.bootstrapTo.map((id) => this.world.net.address(id)),
      createTransport: async (gate) => this.world.net.attach(spec.id, gate),
    });
    this.clients.set(spec.id, client);
    this.envs.set(spec.id, env);
    client.peers.on('ban', (peer, reason) => {
      if (this.judge(spec.id, peer, `banned honest ${peer}: ${reason}`) === false) this.counts.adversariesBanned++;
    });
    client.peers.on('penalty', (peer, score, reason) => this.judge(spec.id, peer, `penalised honest ${peer} by ${score}: ${reason}`));
    // Its chain only ever moves to one with more work, in a life and across a clean stop or a
    // crash, or to one of as much when it takes a tie, which it does only away from a tip nobody
    // proved against (a withholder's: test/light-ties.test.ts).
    let work = 0n;
    client.on('tip', (_height, tie) => {
      const now = client.headers.tip.totalWork;
      if (tie) this.counts.ties++;
      if (now < work || (now === work && !tie)) this.wrongs.push(`at ${this.at()} s: ${spec.id} moved to a chain of work ${now} from one of ${work}`);
      work = now;
    });
    this.world.record(`start ${spec.id} life ${life}`);
    await client.start().catch((err: Error) => this.world.crashes.push(`${spec.id} start: ${err.stack ?? err.message}`));
    work = client.headers.tip.totalWork;
    const saved = this.saved.get(spec.id);
    this.saved.delete(spec.id);
    if (saved && !bytesEqual(client.headers.tip.header.hash, saved.hash)) this.wrongs.push(`at ${this.at()} s: ${spec.id} started at ${client.headers.height} after ${saved.how} at ${saved.height}`);
    this.query(spec.id, client, new Random(`light-queries:${this.world.o.seed}:${spec.id}:${life}`));
  }

  private at(): string {
    return ((this.world.scheduler.now - SIM_EPOCH_MS) / 1000).toFixed(1);
  }

  /**
   * Asks `client` for an account now and then while it runs (through reorganisations, partitions,
   * its peers' crashes): an answer must be what an honest node holds, if one is at the block proven
   * then; no answer (no peer could prove yet) is allowed, any error but that is not.
   */
  private query(id: string, client: LightClient, rng: Random): void {
    const keys = this.world.o.wallets.keys;
    const ask = async () => {
      if (this.clients.get(id) !== client || this.world.scheduler.now >= SIM_EPOCH_MS + this.world.o.durationMs) return;
      this.world.scheduler.after(QUERY_EVERY_MS, () => void ask());
      const address = rng.pick(keys).address;
      this.counts.queries++;
      let proven;
      try {
        proven = await client.getAccount(address);
      } catch (err) {
        const down = this.clients.get(id) !== client;
        if (!down && !(err instanceof CairnError && err.code === 'LIGHT_NO_PROOF')) this.wrongs.push(`at ${this.at()} s: ${id}: getAccount threw ${(err as Error).stack ?? String(err)}`);
        return;
      }
      this.counts.queriesProven++;
      const holder = this.world.nodes.find((n) => n.honest && n.node && bytesEqual(n.node.chain.tip.header.hash, proven.blockHash));
      if (!holder) return;
      const node = holder.node!;
      const want = await node.chain.withImportsPaused(async () => (bytesEqual(node.chain.tip.header.hash, proven.blockHash) ? ((await node.db.getAccount(address)) ?? EMPTY_ACCOUNT) : undefined));
      if (!want) return;
      this.counts.queriesCompared++;
      const got = proven.account ?? EMPTY_ACCOUNT;
      if (got.balance !== want.balance || got.nonce !== want.nonce) this.wrongs.push(`at ${this.at()} s: ${id} proved ${toHex(address).slice(0, 12)} at ${proven.height} as ${got.balance}/${got.nonce}, ${holder.id} holds ${want.balance}/${want.nonce} there`);
    };
    this.world.scheduler.after(rng.int(QUERY_EVERY_MS), () => void ask());
  }

  /** Whether `peer` is an honest node (then `what` is a wrong), an adversary (false), or neither. */
  private judge(id: string, peer: string, what: string): boolean | undefined {
    const owner = this.world.nodes.find((n) => n.id === peer || peer.startsWith(`${n.id}-`));
    if (owner?.honest) this.wrongs.push(`at ${this.at()} s: ${id} ${what}`);
    return owner?.honest;
  }

  /** A kill -9: its timers never fire, its connections drop, nothing more is saved. */
  crash(id: string): void {
    const client = this.clients.get(id);
    // Killed as it stands: the chain it committed last is what the next life must open at.
    if (client?.headers) this.saved.set(id, { height: client.headers.height, hash: client.headers.tip.header.hash, how: 'a crash' });
    this.envs.get(id)?.kill();
    (this.clients.get(id)?.transport as { goDown?: () => void } | undefined)?.goDown?.();
    this.clients.delete(id);
    this.envs.delete(id);
  }

  private async stop(id: string): Promise<void> {
    const client = this.clients.get(id);
    this.clients.delete(id);
    await client?.stop();
    if (client) this.saved.set(id, { height: client.headers.height, hash: client.headers.tip.header.hash, how: 'a clean stop' });
    this.envs.get(id)?.kill();
    this.envs.delete(id);
  }

  /** Whether a dishonest full node holds block `hash` on its main chain. */
  private heldByAdversary(hash: Uint8Array): boolean {
    return this.world.nodes.some((n) => {
      const entry = !n.honest ? n.node?.chain.getEntry(hash) : undefined;
      return entry !== undefined && n.node!.chain.isMain(entry);
    });
  }

  /** Every client down (the run is over) and its files removed. */
  shutdown(): void {
    for (const id of [...this.clients.keys()]) this.crash(id);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * At the end of the quiet period, each light client connected to an honest full node: its tip
   * is the honest nodes' (a block or two short only if the last one is fresh), and the accounts
   * of users and miners it proves are exactly what the honest nodes hold at that tip.
   */
  async final(fail: (message: string) => void): Promise<void> {
    for (const w of this.wrongs) fail(w);
    const honest = this.world.nodes.filter((n) => n.honest && n.node);
    const reference = honest[0]?.node;
    if (!reference) return;
    const drive = <T>(work: Promise<T>) => this.world.scheduler.drive(work, 60_000);
    const tip = reference.chain.tip;
    const fresh = this.world.scheduler.now - this.lastBlockAt < FRESH_MS;
    const addresses = [...this.world.o.wallets.keys.slice(0, 3).map((k) => k.address), ...this.world.nodes.slice(0, 2).map((n) => this.world.o.wallets.minerAddress(n.spec.minerKey))];
    for (const [id, client] of this.clients) {
      const connected = client.transport.peers().filter((p) => honest.some((n: SimNode) => n.id === p));
      if (connected.length === 0) continue;
      const own = client.headers.tip.header;
      const behind = tip.height - own.height;
      const onChain = await drive(reference.db.getHashAtHeight(own.height));
      const ancestor = onChain?.value !== undefined && bytesEqual(onChain.value, own.hash);
      // A withholder's chain, its bodies never published: no honest node can take it, but its
      // headers are valid, and a light client rightly holds it when it has as much work as the
      // honest chain (first seen wins a tie). Its accounts are the withholder's, not theirs.
      const withheld = !ancestor && client.headers.tip.totalWork >= tip.totalWork && this.heldByAdversary(own.hash);
      if (withheld) {
        this.counts.onWithheldChain++;
        continue;
      }
      if (!(ancestor && (behind === 0 || (fresh && behind > 0 && behind <= FRESH_BLOCKS)))) {
        fail(`${id} (peers ${client.transport.peers().join(',')}) has tip ${own.height} ${toHex(own.hash).slice(0, 16)}, the honest nodes ${tip.height} ${tip.hashHex.slice(0, 16)}`);
        continue;
      }
      this.counts.checked++;
      for (const address of addresses) {
        const label = toHex(address).slice(0, 12);
        let proven;
        try {
          proven = await drive(client.getAccount(address));
        } catch (err) {
          fail(`${id} could not prove ${label}: ${(err as Error).message}`);
          continue;
        }
        if (!proven) {
          fail(`${id}: proving ${label} did not finish`);
          continue;
        }
        const p = proven.value;
        if (!bytesEqual(p.blockHash, reference.chain.tip.header.hash)) {
          fail(`${id} proved ${label} at ${p.height} ${toHex(p.blockHash).slice(0, 16)}, the honest tip is ${reference.chain.tip.height}`);
          continue;
        }
        const want = (await drive(reference.db.getAccount(address)))?.value ?? EMPTY_ACCOUNT;
        const got = p.account ?? EMPTY_ACCOUNT;
        this.counts.proofs++;
        if (got.balance !== want.balance || got.nonce !== want.nonce) fail(`${id} proved ${label} as ${got.balance}/${got.nonce}, the honest nodes hold ${want.balance}/${want.nonce}`);
      }
    }
  }
}
