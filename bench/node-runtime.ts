/**
 * Imported first by bench/run.ts: the bench process runs with the settings `cairn node` runs
 * with (cli/runtime.ts), so that the nodes it times in-process (rpc, sync, propagation) have the
 * heap a real node has. It re-executes itself once to get them, as `cairn node` does.
 */
import { NODE_RUNTIME, execWithRuntime } from '../cli/runtime.ts';

execWithRuntime(NODE_RUNTIME);
