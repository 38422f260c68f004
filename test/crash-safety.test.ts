import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { toHex } from '../ledger/bytes.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import type { ChainTip } from '../ledger/chaindb-types.ts';
import { auditChainDB } from '../ledger/audit.ts';
import { LevelKv } from '../ledger/kv-level.ts';
import { layout } from '../ledger/layout.ts';
import { STORED_TREE_DEPTH } from '../ledger/tree-memory.ts';
import { withCompileCache } from './helpers/compile-cache.ts';
import { seededRandom, tempDir, testParams } from './helpers/fixtures.ts';

const WRITER = fileURLToPath(new URL('./helpers/crash-writer.ts', import.meta.url));
const KILLS = 40;
const MAX_EXTRA_DELAY_MS = 150;
/** How each kill picks its moment, in turn: anywhere in the loop, or aimed at a commit. */
const MODES = ['anywhere', 'connect', 'connect', 'disconnect', 'connect', 'connect', 'disconnect', 'connect'] as const;
const STARTUP_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 5_000;

type Op = 'connect' | 'disconnect';

interface TipLine {
  readonly height: number;
  readonly hash: string;
}

type Line =
  | ({ readonly kind: 'open'; readonly topFrom: string } & TipLine)
  | ({ readonly kind: 'begin'; readonly op: Op } & TipLine)
  | ({ readonly kind: 'done' } & TipLine);

function parseLine(text: string): Line {
  const m = /^(open|done|begin (connect|disconnect)) (\d+) ([0-9a-f]{64})(?: (checkpoint|scan))?$/.exec(text);
  if (!m || (m[1] === 'open') !== (m[5] !== undefined)) throw new Error(`crash-writer printed an unexpected line: ${JSON.stringify(text)}`);
  const tip = { height: Number(m[3]), hash: m[4]! };
  if (m[1] === 'open') return { kind: 'open', topFrom: m[5]!, ...tip };
  if (m[1] === 'done') return { kind: 'done', ...tip };
  return { kind: 'begin', op: m[2] as Op, ...tip };
}

function sameTip(line: TipLine, tip: ChainTip): boolean {
  return line.height === tip.height && line.hash === toHex(tip.hash);
}

/** Blocks the parent for `ms` (fractions allowed) without taking a CPU from the writer. */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** One run of crash-writer.ts: its parsed stdout and stderr, and ways to wait on them. */
class Writer {
  readonly child: ChildProcess;
  readonly lines: Line[] = [];
  stderr = '';
  private partial = '';
  private readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private changed: () => void = () => {};

  constructor(datadir: string, seed: number) {
    this.child = spawn(process.execPath, [WRITER, datadir, String(seed)], { env: withCompileCache(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop()!;
      for (const part of parts) this.lines.push(parseLine(part));
      this.changed();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    // 'close' rather than 'exit': it waits for both pipes to drain, so every line written is read.
    this.closed = new Promise((resolve) => this.child.on('close', (code, signal) => resolve({ code, signal })));
    void this.closed.then(() => this.changed());
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  describe(): string {
    return `writer pid ${this.child.pid}, last lines ${JSON.stringify(this.lines.slice(-3))}, stderr:\n${this.stderr}`;
  }

  /** Resolves with the index of the first line from `from` on that matches; rejects if the writer exits first or time runs out. */
  async next(from: number, match: (line: Line) => boolean, what: string): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await new Promise<number>((resolve, reject) => {
        const check = () => {
          const found = this.lines.findIndex((line, i) => i >= from && match(line));
          if (found >= 0) resolve(found);
          else if (this.exited) reject(new Error(`the writer exited before ${what}: ${this.describe()}`));
        };
        this.changed = check;
        timer = setTimeout(() => reject(new Error(`no ${what} within ${STARTUP_TIMEOUT_MS} ms: ${this.describe()}`)), STARTUP_TIMEOUT_MS);
        check();
      });
    } finally {
      clearTimeout(timer);
      this.changed = () => {};
    }
  }

  async kill(): Promise<void> {
    if (!this.exited) this.child.kill('SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`writer pid ${this.child.pid} still running ${EXIT_TIMEOUT_MS} ms after SIGKILL`)),
        EXIT_TIMEOUT_MS,
      );
    });
    try {
      const { code, signal } = await Promise.race([this.closed, timeout]);
      // Any other ending means the writer failed on its own, which must not pass for a kill.
      assert.equal(signal, 'SIGKILL', `writer ended with code ${code}, signal ${signal}: ${this.describe()}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

describe('ChainDB crash safety', () => {
  const running = new Set<Writer>();
  let dir: ReturnType<typeof tempDir> | undefined;

  afterEach(() => {
    // A failed assertion leaves the current writer running: stop it by pid.
    for (const w of running) {
      if (!w.exited && w.child.pid !== undefined) process.kill(w.child.pid, 'SIGKILL');
    }
    running.clear();
  });

  after(() => dir?.remove());

  it(`reopens consistent at the last committed operation after ${KILLS} SIGKILLs of a writer`, async function () {
    this.timeout(120_000);
    dir = tempDir('cairn-crash-');
    const params = testParams();
    const rng = seededRandom(20240611);
    // A commit is the last fraction of a millisecond of a loop that spends most of its time
    // signing, so a kill at a uniformly random moment rarely lands in one. Aimed kills wait for a
    // "begin" and then this long (ms, per operation), which a staircase moves towards the moment
    // the commit lands: later when the kill came before it, earlier when after.
    const aim: Record<Op, number> = { connect: 0.8, disconnect: 0.5 };
    const aimedBefore: Record<Op, number> = { connect: 0, disconnect: 0 };
    const aimedAfter: Record<Op, number> = { connect: 0, disconnect: 0 };
    const inFlightAtKill: Record<Op, number> = { connect: 0, disconnect: 0 };
    let committedUnreported = 0;
    let previous: ChainTip | undefined;

    for (let i = 0; i < KILLS; i++) {
      const mode = MODES[i % MODES.length]!;
      const writer = new Writer(dir.path, 1000 + i);
      running.add(writer);
      await writer.next(0, (l) => l.kind === 'done', 'first committed operation');
      const delay = rng.int(MAX_EXTRA_DELAY_MS + 1);
      await new Promise((resolve) => setTimeout(resolve, delay));
      let aimedAt: number | undefined;
      if (mode !== 'anywhere') {
        aimedAt = await writer.next(writer.lines.length, (l) => l.kind === 'begin' && l.op === mode, `"begin ${mode}"`);
        // ±10% around the staircase: scheduling jitter spreads the kills more than that anyway.
        pause(aim[mode] * (0.9 + rng.int(201) / 1000));
      }
      await writer.kill();
      running.delete(writer);

      const { lines } = writer;
      const open = lines[0];
      assert.ok(open?.kind === 'open', `the first line is not "open": ${writer.describe()}`);
      if (previous) {
        assert.ok(sameTip(open, previous), `kill ${i}: the writer opened at ${JSON.stringify(open)}, the store was at ${previous.height}`);
        // The check below closed the store cleanly: the writer's open rebuilt the top from that.
        assert.equal(open.topFrom, 'checkpoint', `kill ${i}: the writer's open`);
      }
      let lastDone: TipLine | undefined;
      let inFlight: Extract<Line, { kind: 'begin' }> | undefined;
      for (const line of lines) {
        if (line.kind === 'begin') inFlight = line;
        if (line.kind === 'done') [lastDone, inFlight] = [line, undefined];
      }
      assert.ok(lastDone, 'the writer committed nothing');
      const context = `kill ${i} (${mode}): last committed ${JSON.stringify(lastDone)}, in flight ${JSON.stringify(inFlight ?? null)}`;
      const explain = (err: unknown): never => {
        throw new Error(`${context}: ${String(err)}`, { cause: err });
      };

      const db: ChainDB = await ChainDB.open(dir.path, params).catch(explain);
      try {
        // A kill leaves no checkpoint of the tip (the writer's open deleted the one it read, and one
        // left would be of an older tip, set aside): the top is rebuilt in full.
        assert.equal(db.topFrom, 'scan', `${context}: the open after the kill`);
        // Throws STORE_CORRUPT if blocks, height index, tip, any account or any state tree node
        // disagree with a replay (the replay's state root must be the tip header's).
        const report = await auditChainDB(db).catch(explain);
        const tip = await db.storedTip();
        assert.equal(report.height, tip.height);
        const tipBlock = await db.getBlock(tip.hash);
        assert.equal(toHex(await db.stateRoot()), toHex(tipBlock!.header.stateRoot), `${context}: the stored tree's root is the tip header's`);
        assert.equal(report.stateRoot, toHex(tipBlock!.header.stateRoot));
        const atInFlight = inFlight !== undefined && sameTip(inFlight, tip);
        assert.ok(sameTip(lastDone, tip) || atInFlight, `${context}: reopened at ${tip.height} ${toHex(tip.hash)}`);
        assert.ok(tip.height > (previous?.height ?? 0), `kill ${i}: the chain did not grow past ${previous?.height ?? 0}`);
        previous = tip;
        if (inFlight) inFlightAtKill[inFlight.op]++;
        if (atInFlight) committedUnreported++;
        if (mode !== 'anywhere' && aimedAt !== undefined) {
          const before = aimedAt === lines.length - 1 && !atInFlight;
          if (before) aimedBefore[mode]++;
          else aimedAfter[mode]++;
          aim[mode] = Math.min(50, Math.max(0.02, before ? aim[mode] * 1.15 : aim[mode] / 1.15));
        }
      } finally {
        await db.close();
      }
    }

    console.log(
      `      crash safety: ${KILLS} kills, final height ${previous!.height}; in flight at the kill: ${inFlightAtKill.connect} ` +
        `connects, ${inFlightAtKill.disconnect} disconnects, ${committedUnreported} of them committed but not yet reported; ` +
        `aimed kills before/after the commit: connect ${aimedBefore.connect}/${aimedAfter.connect} ` +
        `(aim now ${aim.connect.toFixed(2)} ms), disconnect ${aimedBefore.disconnect}/${aimedAfter.disconnect} (${aim.disconnect.toFixed(2)} ms)`,
    );
    assert.ok(previous!.height >= KILLS, `the chain reached only ${previous!.height}`);
    // The writer pays accounts whose paths leave the top: the kills landed on stored inner nodes too.
    const kv = await LevelKv.open(dir.path);
    let below = 0;
    for await (const key of kv.keys(layout.range('S'))) if (key[1]! > STORED_TREE_DEPTH) below++;
    await kv.close();
    assert.ok(below > 0, 'no tree node stored below the top');
  });
});
