import { createRequire } from 'node:module';
import { sha256Js64Into } from './sha256.ts';

/**
 * The hashes of a tree update's new inner nodes, taken a level at a time. An inner node's hash is
 * SHA-256 of its 64 bytes after the prefix (ledger/smt.ts), and a level's nodes do not depend on
 * each other, so a whole level goes to a native SHA-256 (SHA-NI where the CPU has it) in one call:
 * ~40 ns a node in a batch, against ~500 ns in JavaScript and ~160 ns for a native call per node.
 * Where the native hash cannot load, the same hashes are made in JavaScript.
 */

/** SHA-256 of each 64 bytes of `input` into each 32 bytes of `output`. */
export type HashMany = (input: Uint8Array, output: Uint8Array) => void;

/**
 * `candidate` if it hashes as SHA-256 does, else undefined: a native hash that loads but hashes
 * wrongly would fork this node off the chain, so it is checked once against the JavaScript one.
 */
export function checkedHashMany(candidate: HashMany): HashMany | undefined {
  // Two messages one byte into their buffer, as the queue hands them over.
  const buffer = new Uint8Array(129).map((_, i) => (i * 131 + 7) & 0xff);
  const output = new Uint8Array(64);
  const expected = new Uint8Array(64);
  try {
    candidate(buffer.subarray(1), output);
  } catch {
    return undefined;
  }
  sha256Js64Into(buffer, 1, expected, 0);
  sha256Js64Into(buffer, 65, expected, 32);
  for (let i = 0; i < 64; i++) if (output[i] !== expected[i]) return undefined;
  return candidate;
}

function loadNative(): HashMany | undefined {
  try {
    return checkedHashMany((createRequire(import.meta.url)('@chainsafe/hashtree') as { hashInto: HashMany }).hashInto);
  } catch {
    return undefined; // no prebuilt binary for this platform
  }
}

const native = loadNative();
let useNative = native !== undefined;

/** Which SHA-256 hashes the levels: tests run both and compare. */
export function innerHashBackend(): 'native' | 'js' {
  return useNative ? 'native' : 'js';
}

/** Chooses the JavaScript hash, or the native one where it loaded; returns the one now in use. */
export function useInnerHashBackend(backend: 'native' | 'js'): 'native' | 'js' {
  useNative = backend === 'native' && native !== undefined;
  return innerHashBackend();
}

/** SHA-256 of each 64 bytes of `input` into each 32 bytes of `output`, by the backend in use: many inner nodes' hashes at once. */
export function hashInnerBodies(input: Uint8Array, output: Uint8Array): void {
  if (input.length === 0) return;
  if (useNative) native!(input, output);
  else for (let i = 0; 64 * i < input.length; i++) sha256Js64Into(input, 64 * i, output, 32 * i);
}

/** One level's jobs: hash `nodes[i]` (an inner node, 65 bytes) into `outs[i]` at `ats[i]`. */
interface Level {
  nodes: Uint8Array[];
  outs: Uint8Array[];
  ats: number[];
}

function emptyLevel(level: Level): void {
  level.nodes.length = 0;
  level.outs.length = 0;
  level.ats.length = 0;
}

/**
 * Jobs by depth, run deepest first: a node's hash goes into its parent, one level up, whose own
 * hash is then taken with it in place. Phase 2 of an update is synchronous, so one set of levels
 * serves every update, reused.
 */
export class InnerHashQueue {
  private readonly levels: Level[] = [];
  private deepest = -1;
  // One byte before the first message: each node is copied whole, prefix included, onto the
  // previous message's last byte, last node first, so the prefix is overwritten (see runNative).
  private input = new Uint8Array(1 + 64 * 256);
  private output = new Uint8Array(32 * 256);

  add(depth: number, node: Uint8Array, out: Uint8Array, at: number): void {
    const level = (this.levels[depth] ??= { nodes: [], outs: [], ats: [] });
    level.nodes.push(node);
    level.outs.push(out);
    level.ats.push(at);
    if (depth > this.deepest) this.deepest = depth;
  }

  /** Takes every hash queued, deepest level first, and empties the queue. */
  run(): void {
    for (let depth = this.deepest; depth >= 0; depth--) {
      const level = this.levels[depth];
      if (level === undefined || level.nodes.length === 0) continue;
      if (useNative) this.runNative(level);
      else for (let i = 0; i < level.nodes.length; i++) sha256Js64Into(level.nodes[i]!, 1, level.outs[i]!, level.ats[i]!);
      emptyLevel(level);
    }
    this.deepest = -1;
  }

  private runNative(level: Level): void {
    const n = level.nodes.length;
    if (this.output.length < 32 * n) {
      this.input = new Uint8Array(1 + 64 * 2 * n);
      this.output = new Uint8Array(32 * 2 * n);
    }
    const input = this.input;
    for (let i = n - 1; i >= 0; i--) input.set(level.nodes[i]!, 64 * i);
    native!(input.subarray(1, 1 + 64 * n), this.output.subarray(0, 32 * n));
    const output = this.output;
    for (let i = 0; i < n; i++) {
      const out = level.outs[i]!;
      const at = level.ats[i]!;
      for (let j = 0; j < 32; j++) out[at + j] = output[32 * i + j]!;
    }
  }

  /** Drops the jobs queued: an update that failed part way leaves none behind for the next. */
  clear(): void {
    for (const level of this.levels) if (level !== undefined) emptyLevel(level);
    this.deepest = -1;
  }

  /** Jobs not yet run: none between updates. */
  get size(): number {
    let n = 0;
    for (const level of this.levels) n += level?.nodes.length ?? 0;
    return n;
  }
}
