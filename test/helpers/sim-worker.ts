/** A worker thread of sim-threads.ts: runs the seeds it is sent, one at a time, and answers each. */
import { parentPort } from 'node:worker_threads';
import { simulate } from '../../sim/run.ts';
import type { ScenarioOptions } from '../../sim/scenario.ts';
import type { SimAnswer } from './sim-threads.ts';

const port = parentPort!;
port.on('message', ({ seed, options }: { seed: string; options: ScenarioOptions }) => {
  simulate(seed, options).then(
    (result): SimAnswer => ({ result }),
    (err: unknown): SimAnswer => ({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  ).then((answer) => port.postMessage(answer));
});
