import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { asertTarget, nextTarget, type DifficultyParams } from '../consensus/difficulty.ts';
import { MAX_TARGET, blockWork } from '../consensus/pow.ts';
import { genesisBlock, parseGenesis } from '../ledger/genesis.ts';
import { seededRandom, testParams } from './helpers/fixtures.ts';

// Bitcoin Cash mainnet constants the published aserti3-2d vectors were generated with.
const BCH_POW_LIMIT = (1n << 224n) - 1n;
const BCH_POW_LIMIT_BITS = 0x1d00ffff;
const BCH_SPACING = 600;
const BCH_HALF_LIFE = 2 * 24 * 3600;

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/**
 * arith_uint256::SetCompact. The vectors only carry valid nBits, so the sign bit and overflowing
 * forms are refused instead of being reproduced.
 */
function decodeCompact(bits: number): bigint {
  const size = bits >>> 24;
  const word = bits & 0x007fffff;
  if (word !== 0 && (bits & 0x00800000) !== 0) throw new Error(`negative nBits 0x${bits.toString(16)}`);
  if (word !== 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32))) {
    throw new Error(`overflowing nBits 0x${bits.toString(16)}`);
  }
  return size <= 3 ? BigInt(word >>> (8 * (3 - size))) : BigInt(word) << BigInt(8 * (size - 3));
}

/** arith_uint256::GetCompact: BCH stores only the top 3 significant bytes, truncating the rest. */
function encodeCompact(target: bigint): number {
  assert.ok(target >= 0n);
  let size = (bitLength(target) + 7) >> 3;
  let word = Number(size <= 3 ? target << BigInt(8 * (3 - size)) : target >> BigInt(8 * (size - 3)));
  // The 0x00800000 bit is the sign: a mantissa that would set it moves down a byte instead.
  if (word & 0x00800000) {
    word >>>= 8;
    size += 1;
  }
  return size * 0x1000000 + word;
}

const hex32 = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

interface VectorRun {
  readonly file: string;
  readonly description: string;
  readonly anchorHeight: bigint;
  readonly anchorParentTime: bigint;
  readonly anchorBits: number;
  readonly startHeight: bigint;
  readonly startTime: bigint;
  readonly iterations: number;
  readonly excerpt: boolean;
  readonly vectors: ReadonlyArray<{ iteration: number; height: bigint; time: bigint; bits: number }>;
}

const VECTOR_DIR = new URL('./vectors/asert/', import.meta.url);

function parseRun(file: string, text: string): VectorRun {
  const header = new Map<string, string>();
  const vectors: Array<{ iteration: number; height: bigint; time: bigint; bits: number }> = [];
  let excerpt = false;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('## excerpt:')) {
      excerpt = true;
    } else if (line.startsWith('##')) {
      const m = /^##\s+([a-zA-Z ]+):\s*(.*)$/.exec(line);
      assert.ok(m, `${file}: unreadable header line ${JSON.stringify(line)}`);
      header.set(m[1]!.trim(), m[2]!.trim());
    } else if (!line.startsWith('#')) {
      const fields = line.trim().split(/\s+/);
      assert.equal(fields.length, 4, `${file}: bad vector line ${JSON.stringify(line)}`);
      const [iteration, height, time, bits] = fields as [string, string, string, string];
      assert.match(bits, /^0x[0-9a-f]{8}$/);
      vectors.push({ iteration: Number(iteration), height: BigInt(height), time: BigInt(time), bits: Number(bits) });
    }
  }
  const get = (key: string): string => {
    const value = header.get(key);
    assert.ok(value !== undefined, `${file}: missing header "${key}"`);
    return value;
  };
  // Runs 1-10 were published with "anchor ancestor time", 11-12 with "anchor parent time": same datum.
  const parentTime = header.get('anchor parent time') ?? get('anchor ancestor time');
  return {
    file,
    description: get('description'),
    anchorHeight: BigInt(get('anchor height')),
    anchorParentTime: BigInt(parentTime),
    anchorBits: Number(get('anchor nBits')),
    startHeight: BigInt(get('start height')),
    startTime: BigInt(get('start time')),
    iterations: Number(get('iterations')),
    excerpt,
    vectors,
  };
}

function loadRuns(): VectorRun[] {
  return readdirSync(VECTOR_DIR)
    .filter((name) => /^run\d\d$/.test(name))
    .sort()
    .map((name) => parseRun(name, readFileSync(new URL(name, VECTOR_DIR), 'utf8')));
}

/** What BCHN's generator does per vector, with asertTarget in place of CalculateASERT. */
function vectorBits(run: VectorRun, height: bigint, time: bigint): number {
  const refTarget = decodeCompact(run.anchorBits);
  const target = asertTarget(
    refTarget,
    BCH_SPACING,
    Number(time - run.anchorParentTime),
    Number(height - run.anchorHeight),
    BCH_HALF_LIFE,
    BCH_POW_LIMIT,
  );
  return encodeCompact(target);
}

describe('difficulty: compact nBits helpers (test-only)', () => {
  it('round-trip the forms BCH uses and truncate like GetCompact', () => {
    assert.equal(decodeCompact(BCH_POW_LIMIT_BITS), 0xffffn << 208n);
    assert.equal(encodeCompact(BCH_POW_LIMIT), BCH_POW_LIMIT_BITS);
    assert.equal(encodeCompact(1n), 0x01010000);
    assert.equal(decodeCompact(0x01010000), 1n);
    assert.equal(encodeCompact(0x80n), 0x02008000); // sign bit avoided by growing the size
    assert.equal(encodeCompact(0x123456789n), 0x05012345);
    assert.equal(decodeCompact(0x1802aee8), 0x02aee8n << 168n);
    for (const bits of [0x1a2b3c4d, 0x1802aee8, 0x01010000, 0x1d00ffff, 0x13647d71]) {
      assert.equal(encodeCompact(decodeCompact(bits)), bits);
    }
  });
});

describe('difficulty: aserti3-2d reference vectors (Bitcoin Cash Node)', () => {
  const runs = loadRuns();

  it('finds the vendored runs and they are well formed', () => {
    assert.deepEqual(
      runs.map((r) => r.file),
      ['run01', 'run02', 'run03', 'run04', 'run05', 'run06', 'run07', 'run08', 'run09', 'run10', 'run11', 'run12'],
    );
    for (const run of runs) {
      if (!run.excerpt) assert.equal(run.vectors.length, run.iterations, run.file);
      assert.ok(run.vectors.length > 0, run.file);
      const first = run.vectors[0]!;
      assert.equal(first.iteration, 1, run.file);
      assert.equal(first.height, run.startHeight, run.file);
      assert.equal(first.time, run.startTime, run.file);
      // The generator asserts that the anchor nBits survives SetCompact/GetCompact; so do we.
      assert.equal(encodeCompact(decodeCompact(run.anchorBits)), run.anchorBits, run.file);
    }
    assert.equal(
      runs.reduce((n, r) => n + r.vectors.length, 0),
      685,
    );
  });

  for (const run of runs) {
    it(`${run.file}: ${run.description}`, () => {
      const mismatches: string[] = [];
      for (const v of run.vectors) {
        const got = vectorBits(run, v.height, v.time);
        if (got !== v.bits) mismatches.push(`iteration ${v.iteration} (h=${v.height} t=${v.time}): ${hex32(got)}, want ${hex32(v.bits)}`);
      }
      assert.deepEqual(mismatches.slice(0, 5), [], `${mismatches.length} of ${run.vectors.length} vectors differ`);
    });
  }

  // BCHN src/test/pow_tests.cpp, calculate_asert_test: these compare the full 256-bit target, which
  // the nBits of the runs above cannot (GetCompact drops everything below the top 3 bytes).
  it('matches BCHN calculate_asert_test, full targets and nBits', () => {
    const parentTimeDiff = 600; // the anchor's parent is taken to be one spacing before it
    const SINGLE_300_TARGET = 0x00000000ffb1ffffffffffffffffffffffffffffffffffffffffffffffffffffn;
    const FUNNY_REF_TARGET = 0x000000008000000000000000000fffffffffffffffffffffffffffffffffffffn;
    const P = BCH_POW_LIMIT;
    const cases: ReadonlyArray<readonly [bigint, number, number, number, bigint, number]> = [
      // refTarget, spacing, timeDiff (without parentTimeDiff), heightDiff, expected target, expected nBits
      [P, 600, 0, 2 * 144, P >> 1n, 0x1c7fffff],
      [P, 600, 0, 4 * 144, P >> 2n, 0x1c3fffff],
      [P >> 1n, 600, 0, 2 * 144, P >> 2n, 0x1c3fffff],
      [P >> 2n, 600, 0, 2 * 144, P >> 3n, 0x1c1fffff],
      [P >> 3n, 600, 0, 2 * 144, P >> 4n, 0x1c0fffff],
      [P, 600, 0, 2 * (256 - 34) * 144, 3n, 0x01030000],
      [P, 600, 0, 2 * (256 - 34) * 144 + 119, 3n, 0x01030000],
      [P, 600, 0, 2 * (256 - 34) * 144 + 120, 2n, 0x01020000],
      [P, 600, 0, 2 * (256 - 33) * 144 - 1, 2n, 0x01020000],
      [P, 600, 0, 2 * (256 - 33) * 144, 1n, 0x01010000],
      [P, 600, 0, 2 * (256 - 32) * 144, 1n, 0x01010000],
      [1n, 600, 0, 2 * (256 - 32) * 144, 1n, 0x01010000],
      [P, 600, 2 * (512 - 32) * 144, 0, P, BCH_POW_LIMIT_BITS],
      [1n, 600, (512 - 64) * 144 * 600, 0, P, BCH_POW_LIMIT_BITS],
      [P, 600, 300, 1, SINGLE_300_TARGET, 0x1d00ffb1],
      [FUNNY_REF_TARGET, 600, 600 * 2 * 33 * 144, 0, P, BCH_POW_LIMIT_BITS],
      [1n, 600, 600 * 2 * 256 * 144, 0, P, BCH_POW_LIMIT_BITS],
      [1n, 600, 600 * 2 * 224 * 144 - 1, 0, 0xffff8n << 204n, BCH_POW_LIMIT_BITS],
    ];
    for (const [ref, spacing, timeDiff, heightDiff, want, wantBits] of cases) {
      const got = asertTarget(ref, spacing, parentTimeDiff + timeDiff, heightDiff, BCH_HALF_LIFE, P);
      const label = `ref=${ref.toString(16)} timeDiff=${timeDiff} heightDiff=${heightDiff}`;
      assert.equal(got.toString(16), want.toString(16), label);
      assert.equal(hex32(encodeCompact(got)), hex32(wantBits), label);
    }

    // The same test's sequence: steady, a 300 s block, then a 900 s block that restores the target.
    const initial = P >> 4n;
    assert.equal(asertTarget(initial, 600, parentTimeDiff + 600, 1, BCH_HALF_LIFE, P), initial);
    const fast = asertTarget(initial, 600, parentTimeDiff + 600 + 300, 2, BCH_HALF_LIFE, P);
    assert.ok(fast < initial);
    assert.equal(asertTarget(initial, 600, parentTimeDiff + 600 + 300 + 900, 3, BCH_HALF_LIFE, P), initial);
  });
});

describe('difficulty: asertTarget invariants', () => {
  const shapes = [
    { blockTime: 5, halfLife: 120 },
    { blockTime: 600, halfLife: 172_800 },
    { blockTime: 1, halfLife: 1 },
    { blockTime: 7, halfLife: 1000 },
  ];
  const targets = [1n, 2n, 3n, 0xffffn, (1n << 100n) + 7n, BCH_POW_LIMIT, (1n << 234n) - 1n, MAX_TARGET >> 1n, MAX_TARGET];
  const heights = [0, 1, 287, 1_000_000];

  it('keeps the anchor target while blocks arrive exactly on schedule', () => {
    for (const { blockTime, halfLife } of shapes) {
      for (const target of targets) {
        for (const h of heights) {
          assert.equal(asertTarget(target, blockTime, blockTime * (h + 1), h, halfLife), target);
        }
      }
    }
  });

  // At a whole number of half-lives the fraction is 0 and the factor exactly 65536, so the cubic
  // approximation contributes no rounding: the result is exactly doubled or (floor-)halved.
  it('doubles the target a half-life behind schedule and halves it a half-life ahead', () => {
    for (const { blockTime, halfLife } of shapes) {
      for (const target of targets) {
        for (const h of heights) {
          const onTime = blockTime * (h + 1);
          const behind = asertTarget(target, blockTime, onTime + halfLife, h, halfLife);
          const ahead = asertTarget(target, blockTime, onTime - halfLife, h, halfLife);
          assert.equal(behind, target * 2n > MAX_TARGET ? MAX_TARGET : target * 2n);
          assert.equal(ahead, target === 1n ? 1n : target >> 1n);
          for (const k of [2, 3, 10]) {
            const kBehind = target << BigInt(k);
            assert.equal(asertTarget(target, blockTime, onTime + k * halfLife, h, halfLife), kBehind > MAX_TARGET ? MAX_TARGET : kBehind);
            const kAhead = target >> BigInt(k);
            assert.equal(asertTarget(target, blockTime, onTime - k * halfLife, h, halfLife), kAhead === 0n ? 1n : kAhead);
          }
        }
      }
    }
  });

  it('approximates 2^x within 0.013% and never decreases across the 65536 fractions', () => {
    // With anchor 2^16, halfLife 2^16 and blockTime 1, timeDelta 1 + f gives exponent f / 2^16 and
    // the result is the approximation's factor itself.
    let previous = 65536n;
    let worst = 0;
    for (let frac = 0; frac < 65536; frac++) {
      const factor = asertTarget(65536n, 1, 1 + frac, 0, 65536);
      // The factor has 16 fractional bits like the exponent, so neighbouring fractions may share one.
      assert.ok(factor >= previous && factor - previous <= 2n, `step at frac ${frac}: ${previous} -> ${factor}`);
      previous = factor;
      worst = Math.max(worst, Math.abs(Number(factor) / 65536 / 2 ** (frac / 65536) - 1));
    }
    assert.equal(asertTarget(65536n, 1, 1, 0, 65536), 65536n);
    assert.ok(previous < 131072n, 'the last fraction must stay below the next doubling');
    assert.ok(worst < 1.3e-4, `worst relative error ${worst}`);
  });

  it('is monotonic in time and in height, and clamps to [1, maxTarget]', () => {
    const rng = seededRandom(20240611);
    for (let i = 0; i < 3000; i++) {
      const blockTime = 1 + rng.int(1000);
      const halfLife = 1 + rng.int(200_000);
      const maxTarget = i % 2 ? MAX_TARGET : (1n << BigInt(8 + rng.int(248))) - 1n;
      const anchor = 1n + (BigInt('0x' + Buffer.from(rng.bytes(32)).toString('hex')) % maxTarget);
      const h = rng.int(100_000);
      const timeDelta = blockTime * (h + 1) + (rng.int(2 * 40 * halfLife + 1) - 40 * halfLife);
      const t = asertTarget(anchor, blockTime, timeDelta, h, halfLife, maxTarget);
      assert.ok(t >= 1n && t <= maxTarget);
      assert.ok(asertTarget(anchor, blockTime, timeDelta + 1 + rng.int(halfLife), h, halfLife, maxTarget) >= t);
      assert.ok(asertTarget(anchor, blockTime, timeDelta, h + 1 + rng.int(100), halfLife, maxTarget) <= t);
    }
    // Far behind schedule: saturates at maxTarget, including past 2^256 internally.
    assert.equal(asertTarget(1n, 600, 600 + 600 * 2 * 256 * 144, 0, BCH_HALF_LIFE), MAX_TARGET); // exactly 2^256
    assert.equal(asertTarget(1n, 600, 600 * 2 * 256 * 144, 0, BCH_HALF_LIFE) < MAX_TARGET, true); // 600 s short of it
    assert.equal(asertTarget(MAX_TARGET, 5, 5 + 120, 0, 120), MAX_TARGET);
    assert.equal(asertTarget(1000n, 5, 5 + 120 * 20, 0, 120, 5000n), 5000n);
    // Far ahead: never below 1, however many blocks.
    assert.equal(asertTarget(MAX_TARGET, 5, 0, 1_000_000, 120), 1n);
    assert.equal(asertTarget(1n, 5, -1_000_000, 0, 120), 1n);
    // A gap of 2^50 s at a half-life of 1 s is a shift of 2^50 bits, more than any bigint holds:
    // PROTOCOL.md's clamp (a shift over 256 bits gives 2^256 − 1) must come before the shift.
    assert.equal(asertTarget(1n, 1, 2 ** 50, 0, 1), MAX_TARGET);
    assert.equal(asertTarget(MAX_TARGET, 1, -(2 ** 50), 0, 1), 1n);
  });

  it('refuses targets and parameters outside its domain', () => {
    assert.throws(() => asertTarget(0n, 5, 5, 0, 120), RangeError);
    assert.throws(() => asertTarget(-1n, 5, 5, 0, 120), RangeError);
    assert.throws(() => asertTarget(MAX_TARGET + 1n, 5, 5, 0, 120), RangeError);
    assert.throws(() => asertTarget(101n, 5, 5, 0, 120, 100n), RangeError);
    assert.throws(() => asertTarget(100n, 5, 5, -1, 120), RangeError);
    assert.throws(() => asertTarget(100n, 5, 5, 0, 0), RangeError);
    assert.throws(() => asertTarget(100n, 0, 5, 0, 120), RangeError);
  });
});

describe('difficulty: nextTarget', () => {
  const genesisParams = parseGenesis(readFileSync(new URL('../genesis.json', import.meta.url), 'utf8'));

  it('gives the genesis target to blocks 1 and 2, and keeps it on the schedule block 1 starts', () => {
    for (const params of [genesisParams, testParams()]) {
      const genesis = genesisBlock(params).header;
      assert.equal(nextTarget(params, genesis, undefined), params.target);
      assert.equal(nextTarget(params, genesis, undefined), genesis.target);
      const t1 = params.timestamp + 86_400 * 30; // the network starts a month after its genesis file
      assert.equal(nextTarget(params, { height: 1, timestamp: t1 }, t1), params.target, 'block 2');
      for (const h of [2, 100, 123_456]) {
        assert.equal(nextTarget(params, { height: h, timestamp: t1 + (h - 1) * params.blockTime }, t1), params.target);
      }
    }
  });

  it('anchors at block 1, whose virtual parent is one block time earlier; a late start is no backlog', () => {
    const p = genesisParams;
    const t1 = p.timestamp + 20 * 86_400;
    for (const [h, dt] of [[1, 0], [2, 17], [50, -90], [500, 4000]] as const) {
      const parent = { height: h, timestamp: t1 + (h - 1) * p.blockTime + dt };
      assert.equal(nextTarget(p, parent, t1), asertTarget(p.target, p.blockTime, parent.timestamp - (t1 - p.blockTime), h - 1, p.asertHalfLife));
    }
    // A block one half-life ahead of schedule halves the target of its child, one behind doubles it.
    const early = { height: 100, timestamp: t1 + 99 * p.blockTime - p.asertHalfLife };
    assert.equal(nextTarget(p, early, t1), p.target >> 1n);
    const late = { height: 100, timestamp: t1 + 99 * p.blockTime + p.asertHalfLife };
    assert.equal(nextTarget(p, late, t1), p.target << 1n);
    assert.throws(() => nextTarget(p, early, undefined), RangeError, 'above height 0 the anchor is required');
  });
});

interface PhaseResult {
  readonly multiplier: number;
  /** Blocks after the step until the target first put the expected interval within ±10% of blockTime. */
  readonly settleBlocks: number;
  readonly meanInterval: number;
}

/**
 * A chain mined by a hash rate that changes in steps. Each solve time is Exp(1) × work / rate,
 * drawn by inverse transform from a seeded uniform, and the timestamp written is the integer second
 * the block was found, raised when needed to stay above the median of the previous 11 (the
 * consensus rule). Each phase skips `settle` blocks and then measures the mean interval of the
 * next `window` blocks from their timestamps.
 */
function simulate(params: DifficultyParams, multipliers: readonly number[], settle: number, window: number, seed: number): PhaseResult[] {
  const rng = seededRandom(seed);
  const uniform = (): number => (rng.int(2 ** 53) + 0.5) / 2 ** 53;
  const baseRate = Number(blockWork(params.target)) / params.blockTime;
  let parent = { height: 0, timestamp: params.timestamp };
  let anchor: number | undefined;
  let now = params.timestamp;
  const recent: number[] = [params.timestamp];
  const results: PhaseResult[] = [];
  for (const multiplier of multipliers) {
    const rate = baseRate * multiplier;
    let settleBlocks = -1;
    let windowStart = 0;
    for (let i = 0; i < settle + window; i++) {
      if (i === settle) windowStart = parent.timestamp;
      const target = nextTarget(params, parent, anchor);
      const expected = Number(blockWork(target)) / rate;
      if (settleBlocks < 0 && Math.abs(expected / params.blockTime - 1) <= 0.1) settleBlocks = i;
      now += -Math.log(uniform()) * expected;
      const median = [...recent].sort((a, b) => a - b)[recent.length >> 1]!;
      const timestamp = Math.max(Math.floor(now), median + 1);
      parent = { height: parent.height + 1, timestamp };
      anchor ??= timestamp; // block 1
      recent.push(timestamp);
      if (recent.length > 11) recent.shift();
    }
    results.push({ multiplier, settleBlocks, meanInterval: (parent.timestamp - windowStart) / window });
  }
  return results;
}

describe('difficulty: simulation of a 10x hash-rate step up and back down', () => {
  const genesisParams = parseGenesis(readFileSync(new URL('../genesis.json', import.meta.url), 'utf8'));
  const sets: ReadonlyArray<{ name: string; params: DifficultyParams }> = [
    { name: 'genesis.json (5 s, half-life 120 s)', params: genesisParams },
    { name: 'BCH-like (600 s, half-life 2 days)', params: { ...genesisParams, blockTime: 600, asertHalfLife: 172_800 } },
  ];
  for (const { name, params } of sets) {
    it(`returns the mean interval to within ±10% of blockTime: ${name}`, () => {
      const blocksPerHalfLife = params.asertHalfLife / params.blockTime;
      // A 10x step needs log2(10) ≈ 3.3 half-lives of schedule offset, and the last part of the
      // approach is exponential with a time constant of blocksPerHalfLife / ln 2 blocks, so
      // reaching ±10% takes about 8 half-lives' worth of blocks; 20 leave ample margin.
      const settle = Math.ceil(20 * blocksPerHalfLife);
      const window = 2000;
      const phases = simulate(params, [1, 10, 1], settle, window, 7);
      for (const p of phases) {
        console.log(
          `      ${p.multiplier}x rate: mean interval ${p.meanInterval.toFixed(3)} s over ${window} blocks ` +
            `(blockTime ${params.blockTime} s); settled after ${p.settleBlocks} blocks (skipped ${settle})`,
        );
      }
      for (const p of phases) {
        assert.ok(p.settleBlocks >= 0 && p.settleBlocks < settle, `${p.multiplier}x: did not settle within ${settle} blocks`);
        assert.ok(
          Math.abs(p.meanInterval - params.blockTime) <= 0.1 * params.blockTime,
          `${p.multiplier}x: mean interval ${p.meanInterval} s, blockTime ${params.blockTime} s`,
        );
      }
      // The step up must have been a real disturbance: without adjustment blocks would come 10x fast.
      assert.ok(phases[1]!.settleBlocks > blocksPerHalfLife);
    });
  }
});
