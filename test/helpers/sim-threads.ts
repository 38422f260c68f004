/**
 * The simulation's sweeps on every core: each seed is a world of its own (test/sim.test.ts runs a
 * seed twice in one process and gets the same trace), so seeds run on worker threads side by side
 * give the results the same seeds give one after another, and `npm run sim -- --seed S` still
 * replays any of them. 200 seeds one after another were a quarter of the suite's time.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { SimResult } from '../../sim/run.ts';
import type { ScenarioOptions } from '../../sim/scenario.ts';

const WORKER = new URL('./sim-worker.ts', import.meta.url);
/** A world of ten nodes peaks near half a gigabyte: more threads than this buy little and cost memory. */
const MAX_THREADS = 4;

export type SimAnswer = { readonly result: SimResult } | { readonly error: string };

/** `simulate(seed, options)` for every seed, on up to one thread per core; the results in the seeds' order. */
export async function simulateSeeds(seeds: readonly string[], options: ScenarioOptions = {}): Promise<SimResult[]> {
  const results: SimResult[] = new Array(seeds.length);
  let next = 0;
  const threads = Math.max(1, Math.min(availableParallelism(), MAX_THREADS, seeds.length));
  await Promise.all(Array.from({ length: threads }, async () => {
    const worker = new Worker(WORKER);
    try {
      while (next < seeds.length) {
        const i = next++;
        results[i] = await ask(worker, seeds[i]!, options);
      }
    } finally {
      await worker.terminate();
    }
  }));
  return results;
}

/** One seed on `worker`; a worker that throws or exits fails the seed with its reason. */
function ask(worker: Worker, seed: string, options: ScenarioOptions): Promise<SimResult> {
  return new Promise((resolve, reject) => {
    const done = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (answer: SimAnswer) => {
      done();
      if ('result' in answer) resolve(answer.result);
      else reject(new Error(`seed ${seed} threw: ${answer.error}\nreplay: npm run sim -- --seed ${seed}${options.calm ? ' --calm' : ''}`));
    };
    const onError = (err: Error) => {
      done();
      reject(new Error(`seed ${seed}: its thread failed: ${err.stack ?? err.message}`));
    };
    const onExit = (code: number) => {
      done();
      reject(new Error(`seed ${seed}: its thread exited with ${code}`));
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage({ seed, options });
  });
}
