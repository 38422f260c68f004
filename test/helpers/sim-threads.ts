/**
 * The simulation's runs on every core. Each run is a world of its own (test/sim.test.ts runs a seed
 * twice in one process and gets the same trace), so runs on worker threads side by side give the
 * results they give one after another, and `npm run sim -- --seed S` still replays any seed. The
 * 200-seed sweep one seed after another was a quarter of the suite's time.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { measureFreeRider } from '../../sim/fair-share.ts';
import { simulate, type SimResult } from '../../sim/run.ts';
import type { ScenarioOptions } from '../../sim/scenario.ts';

/** What a thread can be asked to run (sim-worker.ts): functions of plain data, to plain data. */
export const SIM_JOBS = { simulate, measureFreeRider };
type Jobs = typeof SIM_JOBS;
export type SimJob = { [K in keyof Jobs]: { readonly job: K; readonly args: Parameters<Jobs[K]> } }[keyof Jobs];
type Result<J> = J extends SimJob ? Awaited<ReturnType<Jobs[J['job']]>> : never;
export type SimAnswer = { readonly result: unknown } | { readonly error: string };

const WORKER = new URL('./sim-worker.ts', import.meta.url);
/** A world of ten nodes peaks near half a gigabyte: more threads than this buy little and cost memory. */
const MAX_THREADS = 4;

/** Every job, on up to one thread per core; the results in the jobs' order. */
export async function onThreads<const J extends readonly SimJob[]>(jobs: J): Promise<{ -readonly [I in keyof J]: Result<J[I]> }> {
  const results: unknown[] = new Array(jobs.length);
  let next = 0;
  const threads = Math.max(1, Math.min(availableParallelism(), MAX_THREADS, jobs.length));
  await Promise.all(Array.from({ length: threads }, async () => {
    const worker = new Worker(WORKER);
    try {
      while (next < jobs.length) {
        const i = next++;
        results[i] = await ask(worker, jobs[i]!);
      }
    } finally {
      await worker.terminate();
    }
  }));
  return results as { -readonly [I in keyof J]: Result<J[I]> };
}

/** `simulate(seed, options)` for every seed, on threads; the results in the seeds' order. */
export function simulateSeeds(seeds: readonly string[], options: ScenarioOptions = {}): Promise<SimResult[]> {
  return onThreads(seeds.map((seed): SimJob => ({ job: 'simulate', args: [seed, options] }))) as Promise<SimResult[]>;
}

/** One job on `worker`; a job that throws, or a thread that fails or exits, fails it with the reason. */
function ask(worker: Worker, job: SimJob): Promise<unknown> {
  const what = job.job === 'simulate' ? `seed ${job.args[0]} (replay: npm run sim -- --seed ${job.args[0]}${job.args[1]?.calm ? ' --calm' : ''})` : `${job.job}(${JSON.stringify(job.args)})`;
  return new Promise((resolve, reject) => {
    const done = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (answer: SimAnswer) => {
      done();
      if ('result' in answer) resolve(answer.result);
      else reject(new Error(`${what} threw: ${answer.error}`));
    };
    const onError = (err: Error) => {
      done();
      reject(new Error(`${what}: its thread failed: ${err.stack ?? err.message}`));
    };
    const onExit = (code: number) => {
      done();
      reject(new Error(`${what}: its thread exited with ${code}`));
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage(job);
  });
}
