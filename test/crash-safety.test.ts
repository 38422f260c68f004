import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { toHex } from '../ledger/bytes.ts';
import { ChainDB, type ChainTip } from '../ledger/chaindb.ts';
import { auditChainDB } from '../ledger/audit.ts';
import { seededRandom, tempDir, testParams } from './helpers/fixtures.ts';

const WRITER = fileURLToPath(new URL('./helpers/crash-writer.ts', import.meta.url));
const KILLS = 30;
const MAX_EXTRA_DELAY_MS = 150;
/** How each kill picks its moment, in turn. */
const MODES = ['anywhere', 'connect', 'disconnect', 'connect'] as const;
/** An aimed kill lands this far into the operation, as a fraction of its typical duration. */
const AIM_FROM = 0.5;
const AIM_TO = 1.2;
/** Until some operations have been timed. */
const DEFAULT_OP_MS = 2;
const STARTUP_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 5_000;

interface TipLine {
  readonly height: number;
  readonly hash: string;
}

type Line =
  | ({ readonly kind: 'open' } & TipLine)
  | ({ readonly kind: 'begin'; readonly op: 'connect' | 'disconnect' } & TipLine)
  | ({ readonly kind: 'done' } & TipLine);

function parseLine(text: string): Line {
  const m = /^(open|done|begin (connect|disconnect)) (\d+) ([0-9a-f]{64})$/.exec(text);
  if (!m) throw new Error(`crash-writer printed an unexpected line: ${JSON.stringify(text)}`);
  const tip = { height: Number(m[3]), hash: m[4]! };
  if (m[1] === 'open') return { kind: 'open', ...tip };
  if (m[1] === 'done') return { kind: 'done', ...tip };
  return { kind: 'begin', op: m[2] as 'connect' | 'disconnect', ...tip };
}

/** One run of the writer: its parsed stdout, its stderr, and a way to wait for either. */
class Writer {
  readonly child: ChildProcess;
  readonly lines: Line[] = [];
  /** performance.now() when each line arrived. */
  readonly arrivals: number[] = [];
  stderr = '';
  private partial = '';
  private readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private changed: () => void = () => {};

  constructor(datadir: string, seed: number) {
    this.child = spawn(process.execPath, [WRITER, datadir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop()!;
      const now = performance.now();
      for (const part of parts) {
        this.lines.push(parseLine(part));
        this.arrivals.push(now);
      }
      this.changed();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    // 'close' rather than 'exit': it waits for both pipes to drain, so every line written is read.
    this.closed = new Promise((resolve) => this.child.on('close', (code, signal) => resolve({ code, signal })));
    this.closed.then(() => this.changed());
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  describe(): string {
    return `writer pid ${this.child.pid}, last lines ${JSON.stringify(this.lines.slice(-3))}, stderr:\n${this.stderr}`;
  }

  /** Resolves once `condition` holds over the lines; rejects if the writer exits first or time runs out. */
  async until(condition: (lines: readonly Line[]) => boolean, timeoutMs: number, what: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        const check = () => {
          if (condition(this.lines)) resolve();
          else if (this.exited) reject(new Error(`the writer exited before ${what}: ${this.describe()}`));
        };
        this.changed = check;
        timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms: ${this.describe()}`)), timeoutMs);
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
      timer = setTimeout(() => reject(new Error(`writer pid ${this.child.pid} still running ${EXIT_TIMEOUT_MS} ms after SIGKILL`)), EXIT_TIMEOUT_MS);
    });
    try {
      const { code, signal } = await Promise.race([this.closed, timeout]);
      // Any other ending means the writer failed on its own, which the test must not mistake for a kill.
      assert.equal(signal, 'SIGKILL', `writer ended with code ${code}, signal ${signal}: ${this.describe()}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function sameTip(line: TipLine, tip: ChainTip): boolean {
  return line.height === tip.height && line.hash === toHex(tip.hash);
}

describe('ChainDB crash safety', () => {
  const running = new Set<Writer>();
  let dir: ReturnType<typeof tempDir> | undefined;

  afterEach(() => {
    // A failed assertion leaves the current writer running; stop it by pid before anything else.
    for (const w of running) {
      if (!w.exited && w.child.pid !== undefined) process.kill(w.child.pid, 'SIGKILL');
    }
    running.clear();
  });

  after(() => dir?.remove());

  it(`reopens at the last committed operation, consistent, after ${KILLS} SIGKILLs mid-write`, async function () {
    this.timeout(120_000);
    dir = tempDir('cairn-crash-');
    const params = testParams();
    const rng = seededRandom(20240611);
    // begin -> done as the parent saw the lines arrive, per operation, over every writer so far.
    const timings = { connect: [] as number[], disconnect: [] as number[] };
    const inFlightAtKill = { connect: 0, disconnect: 0 };
    let committedUnreported = 0;
    let previous: ChainTip | undefined;

    for (let i = 0; i < KILLS; i++) {
      const mode = MODES[i % MODES.length]!;
      const writer = new Writer(dir.path, 1000 + i);
      running.add(writer);
      await writer.until((lines) => lines.some((l) => l.kind === 'done'), STARTUP_TIMEOUT_MS, 'first committed block');
      const delay = rng.int(MAX_EXTRA_DELAY_MS + 1);
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (mode !== 'anywhere') {
        // The commit is the last fraction of a millisecond of a loop that spends most of its
        // time signing, so a kill at a uniformly random moment rarely lands in it. Start at the
        // next "begin" of the chosen operation and go a random part of its typical duration in,
        // spinning because timers are too coarse for this.
        const seen = writer.lines.length;
        await writer.until(
          (lines) => lines.slice(seen).some((l) => l.kind === 'begin' && l.op === mode),
          STARTUP_TIMEOUT_MS,
          `"begin ${mode}"`,
        );
        const typical = median(timings[mode]) ?? DEFAULT_OP_MS;
        const end = performance.now() + typical * (AIM_FROM + ((AIM_TO - AIM_FROM) * rng.int(1001)) / 1000);
        while (performance.now() < end);
      }
      await writer.kill();
      running.delete(writer);

      const { lines, arrivals } = writer;
      const open = lines[0];
      assert.ok(open?.kind === 'open', `first line is not "open": ${writer.describe()}`);
      if (previous) {
        assert.ok(sameTip(open, previous), `kill ${i}: the writer opened at ${JSON.stringify(open)}, the parent last saw ${previous.height}`);
      }
      let lastDone: TipLine | undefined;
      let inFlight: (TipLine & { op: 'connect' | 'disconnect' }) | undefined;
      lines.forEach((line, j) => {
        if (line.kind === 'begin') inFlight = line;
        if (line.kind !== 'done') return;
        if (inFlight && arrivals[j]! > arrivals[j - 1]!) timings[inFlight.op].push(arrivals[j]! - arrivals[j - 1]!);
        lastDone = line;
        inFlight = undefined;
      });
      assert.ok(lastDone, 'the writer committed nothing');

      const db = await ChainDB.open(dir.path, params);
      try {
        // Throws STORE_CORRUPT if blocks, height index, tip or any account disagree with a replay.
        const report = await auditChainDB(db);
        assert.equal(report.height, db.tip.height);
        const atInFlight = inFlight !== undefined && sameTip(inFlight, db.tip);
        assert.ok(
          sameTip(lastDone, db.tip) || atInFlight,
          `kill ${i}: reopened at ${db.tip.height} ${toHex(db.tip.hash)}; the last committed tip was ${JSON.stringify(lastDone)}` +
            `, the operation in flight ${JSON.stringify(inFlight ?? null)}`,
        );
        if (inFlight) inFlightAtKill[inFlight.op]++;
        if (atInFlight) committedUnreported++;
        assert.ok(db.tip.height > (previous?.height ?? 0), `kill ${i}: the chain did not grow past ${previous?.height ?? 0}`);
        previous = db.tip;
      } finally {
        await db.close();
      }
    }

    console.log(
      `      crash safety: ${KILLS} kills, final height ${previous!.height}; in flight at the kill: ` +
        `${inFlightAtKill.connect} connects, ${inFlightAtKill.disconnect} disconnects, ${committedUnreported} of them already committed; ` +
        `typical connect ${median(timings.connect)?.toFixed(2)} ms, disconnect ${median(timings.disconnect)?.toFixed(2)} ms`,
    );
    assert.ok(previous!.height >= KILLS);
  });
});
