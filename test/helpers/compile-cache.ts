/**
 * V8's code cache for the processes tests start. Every `cairn` process (and every helper process
 * run from a .ts file) type-strips and compiles what it imports before it does anything: for the
 * CLI, the whole node with libp2p, about a second on a loaded machine, a third of that from the
 * cache. Node keys entries by content hash and version, so a stale or shared cache is only slower.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const COMPILE_CACHE = join(tmpdir(), 'cairn-test-node-compile-cache');

/** `env` (by default ours) with the cache, unless it names a cache of its own. */
export function withCompileCache(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { NODE_COMPILE_CACHE: COMPILE_CACHE, ...env };
}
