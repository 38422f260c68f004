/** A worker thread of sim-threads.ts: runs the jobs it is sent, one at a time, and answers each. */
import { parentPort } from 'node:worker_threads';
import { SIM_JOBS, type SimAnswer, type SimJob } from './sim-threads.ts';

const port = parentPort!;
port.on('message', ({ job, args }: SimJob) => {
  const run = SIM_JOBS[job] as (...a: typeof args) => Promise<unknown>;
  run(...args).then(
    (result): SimAnswer => ({ result }),
    (err: unknown): SimAnswer => ({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  ).then((answer) => port.postMessage(answer));
});
