/**
 * The contract between the miner (node/miner.ts) and the threads that hash for it
 * (node/verify-pool.ts, node/pool-worker.js): what a thread is given and what it reports. Kept
 * apart so that neither side imports the other.
 */

/** What the miner gives each hashing thread. */
export interface MiningJob {
  readonly jobId: number;
  readonly headerBytes: Uint8Array;
  readonly target: Uint8Array;
  readonly startNonce: bigint;
}

/** What a hashing thread reports back. */
export type WorkerReport =
  | { readonly kind: 'found'; readonly jobId: number; readonly nonce: bigint; readonly hashes: number }
  | { readonly kind: 'progress'; readonly jobId: number; readonly hashes: number };

/** What a miner gets from its threads' owner: how many threads hash for it, and how to give one a job. */
export interface HashingThreads {
  /** How many hash now: fewer once one died and no other could take its place. */
  readonly threads: number;
  post(thread: number, job: MiningJob): void;
}

/** Who lends threads to a miner (the VerifyPool). */
export interface ThreadLender {
  /** `onLost`: one of its threads died (another may have taken its place): the job must be given again. */
  hashFor(jobCounter: SharedArrayBuffer, threads: number, onReport: (report: WorkerReport) => void, onLost?: () => void): HashingThreads;
  stopHashing(): void;
}
