/**
 * Imported first by bench/run.ts. The bench runs up to five nodes in one process (in worker
 * threads), and every thread of a process shares one libuv threadpool, 4 threads by default, which
 * is where LevelDB reads and writes wait. Five `cairn node` processes would have 4 each; with 4 in
 * all, one node's block write queued the others' account reads behind it, and a receiver's import
 * sat idle half the time. libuv reads this when its pool first starts, which is after every module
 * has loaded.
 */
const NODES_PER_PROCESS = 5;
process.env.UV_THREADPOOL_SIZE ??= String(4 * NODES_PER_PROCESS);
