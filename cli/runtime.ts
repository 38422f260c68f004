/**
 * The process settings a long-running node runs with. V8 and glibc size themselves for a
 * short-lived program on a big machine: on this 24 GiB machine V8 lets the heap grow to four
 * times what is live before collecting, and glibc gives each of a node's threads its own malloc
 * arena. Under the devnet benchmark's load (bench/devnet.ts) that was 500–630 MB of RSS per node
 * for 60–100 MB of live objects.
 *
 * Both must be in place when the process starts, so `cairn node` and `cairn light` (whose young
 * generation grew to 128 MB while it checked headers) re-execute themselves once with them
 * (process.execve: same pid, same arguments, same stdio). Flags the user passed to Node
 * themselves win, as do malloc variables already in the environment.
 */
export interface Runtime {
  readonly v8Flags: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

export const NODE_RUNTIME: Runtime = {
  v8Flags: [
    // The heap's ceiling, and with it V8's heap-growing factor: below 2 GiB it scales down from 4
    // towards 1.3, so the heap stays nearer what is live (measured: 60–95 MB of heap for 40–80 MB
    // live, against 200–320 MB). Far above what a node holds today (`cairn status` shows the
    // heap and its limit); NODE_OPTIONS=--max-old-space-size=N raises it.
    '--max-old-space-size=768',
    // The young generation of each thread (the node's, its verifiers' and its miner's): 16 MiB
    // semi-spaces by default, half that here. At 4 MiB, importing a block took a third longer.
    '--max-semi-space-size=6',
  ],
  env: {
    // Two malloc arenas for the whole process instead of up to eight per core.
    MALLOC_ARENA_MAX: '2',
    // Allocations of 128 KiB and more always get their own mapping, returned when freed. By
    // default glibc raises this threshold to the size of each large block it frees (up to 32 MiB),
    // after which blocks, batches and messages of a few megabytes are carved from the arenas and
    // leave them fragmented (measured on the devnet's miner: 295-309 MB, then 281-300 MB).
    MALLOC_MMAP_THRESHOLD_: '131072',
  },
};

/**
 * A light client's: the node's, with a young generation a third the size, and V8 set to favour
 * memory over speed (smaller heap growth steps). Checking a million headers in bench/light.ts,
 * whose process holds as much code and heap as a client's, the process grew by 51 MB under the
 * node's settings, 51 MB with 2 MiB semi-spaces alone, and 19–22 MB with both; it checked 58,000
 * headers a second against 71,000, more than a peer sends them. The node keeps its own: a block of
 * megabytes to import is what its young generation is sized for.
 */
export const LIGHT_RUNTIME: Runtime = {
  v8Flags: [...NODE_RUNTIME.v8Flags.map((flag) => (flag.startsWith('--max-semi-space-size=') ? '--max-semi-space-size=2' : flag)), '--optimize-for-size'],
  env: NODE_RUNTIME.env,
};

export const flagName = (flag: string) => flag.split('=')[0]!;

/** Node flags in effect: the command line's and NODE_OPTIONS'. */
function givenFlags(): Set<string> {
  const fromEnv = (process.env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  return new Set([...process.execArgv, ...fromEnv].map(flagName));
}

/**
 * Re-executes this process with `runtime` unless it already runs with it; returns only then
 * (or when it cannot: no process.execve on this platform or Node). A flag or variable the user
 * set is kept, not replaced. `CAIRN_NODE_RUNTIME=off` in the environment keeps Node's defaults.
 */
export function execWithRuntime(runtime: Runtime): void {
  if (process.env.CAIRN_NODE_RUNTIME === 'off' || typeof process.execve !== 'function') return;
  const given = givenFlags();
  const flags = runtime.v8Flags.filter((flag) => !given.has(flagName(flag)));
  const env = { ...runtime.env, ...process.env };
  if (flags.length === 0 && Object.keys(runtime.env).every((name) => process.env[name] !== undefined)) return;
  try {
    process.execve(process.execPath, [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)], env);
  } catch (err) {
    process.stderr.write(`cairn: running with Node's default memory settings (re-executing failed: ${(err as Error).message})\n`);
  }
}
