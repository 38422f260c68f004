/**
 * What the issue-#7 suites share: the targets, fast signing of bench transactions, the machine's
 * limit (libsecp256k1 on one core × cores), and small helpers.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import { type ChainParams } from '../ledger/genesis.ts';
import { sha256 } from '../ledger/hash.ts';
import { addressOf, publicKeyOf, signHash } from '../ledger/keys.ts';
import { libsecp256k1Backend, opensslBackend, type SignatureBackend } from '../ledger/signature-backends.js';
import {
  TX_BYTES,
  UNSIGNED_TX_BYTES,
  decodeTransaction,
  encodeUnsignedTransaction,
  type Transaction,
} from '../ledger/transaction.ts';
import type { CairnNode } from '../node/node.ts';
import { verifyPoolOf } from '../test/helpers/network.ts';
import { VerifyPool, type VerifyItem } from '../node/verify-pool.ts';
import { seededRandom } from '../test/helpers/fixtures.ts';
import { atLeast, below, measureRate, median, type SuiteContext } from './report.ts';

// ---------------------------------------------------------------------------------------------
// Issue #19's targets (on the 2-core development machine; issue #7's, met, were lower).

export const TARGETS = {
  /** Pooled verification as a share of the machine limit measured in the same run. */
  verifyShareOfLimit: 0.95,
  rpcAdmitTxPerSec: atLeast(30_000),
  syncTxPerSec: atLeast(25_000),
  /** From three peers, and no slower than from one (`syncThreePeersVsOnePeer`). */
  syncTxPerSecThreePeers: atLeast(25_000),
  devnetConfirmedTxPerSec: atLeast(8_000),
  propagationP50Ms: below(30),
  rssMb: below(200),
} as const;

export const CORES = availableParallelism();

// ---------------------------------------------------------------------------------------------
// Fast signing. Every figure here needs tens to hundreds of thousands of signed transactions;
// noble signs ~1,500 a second, so they are signed with libsecp256k1 (the optional `secp256k1`
// package) when it loads. Signing is never timed.

export interface NativeSigner {
  ecdsaSign(msg32: Uint8Array, secretKey: Uint8Array): { signature: Uint8Array; recid: number };
  publicKeyCreate(secretKey: Uint8Array, compressed?: boolean): Uint8Array;
}

export function loadNativeSigner(): NativeSigner | undefined {
  try {
    return createRequire(import.meta.url)('secp256k1/bindings') as NativeSigner;
  } catch {
    return undefined;
  }
}
export const native = loadNativeSigner();

export interface BenchKey {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly address: Uint8Array;
}

/** Deterministic, and distinct from the test keys (`testKey`) so no fixture collides with them. */
export function benchKey(n: number): BenchKey {
  const privateKey = sha256(new TextEncoder().encode(`cairn bench key ${n}`));
  const publicKey = native ? Uint8Array.from(native.publicKeyCreate(privateKey, true)) : publicKeyOf(privateKey);
  return { privateKey, publicKey, address: addressOf(publicKey) };
}

export const benchKeys = (from: number, count: number): BenchKey[] => Array.from({ length: count }, (_, i) => benchKey(from + i));

export interface TransferFields {
  readonly chainId: number;
  readonly to: Uint8Array;
  readonly amount: bigint;
  readonly fee: bigint;
  readonly nonce: bigint;
}

/** The signed encoding of a transfer: unsigned fields ‖ public key ‖ signature (low S, as consensus wants). */
export function signedBytes(key: BenchKey, fields: TransferFields): Uint8Array {
  const unsigned = encodeUnsignedTransaction({ ...fields, from: key.address });
  const hash = sha256(unsigned);
  // libsecp256k1 signs with low S already; noble with lowS: true.
  const signature = native ? native.ecdsaSign(hash, key.privateKey).signature : signHash(hash, key.privateKey);
  const bytes = new Uint8Array(TX_BYTES);
  bytes.set(unsigned, 0);
  bytes.set(key.publicKey, UNSIGNED_TX_BYTES);
  bytes.set(signature, UNSIGNED_TX_BYTES + key.publicKey.length);
  return bytes;
}

export const signedTx = (key: BenchKey, fields: TransferFields): Transaction => decodeTransaction(signedBytes(key, fields));

/**
 * `rounds` transfers from each of `senders`, round by round (every sender's nonce k before
 * anyone's k + 1), so that any prefix keeps each sender's pending nonces within the mempool's
 * gap limit. Half pay another sender, half a new address (so accounts are created too), drawn
 * from `newAddresses` when given, so that the number of accounts stays bounded.
 */
export function* transfers(
  senders: readonly BenchKey[],
  chainId: number,
  rounds: number,
  o: { firstNonce?: number; seed?: number; newAddresses?: readonly Uint8Array[] } = {},
): Generator<{ key: BenchKey; fields: TransferFields }> {
  const random = seededRandom(o.seed ?? 11);
  const firstNonce = o.firstNonce ?? 0;
  const fresh = () => (o.newAddresses ? o.newAddresses[random.int(o.newAddresses.length)]! : random.bytes(20));
  for (let r = 0; r < rounds; r++) {
    for (const key of senders) {
      const to = random.int(2) === 0 ? senders[random.int(senders.length)]!.address : fresh();
      yield { key, fields: { chainId, to, amount: 1n + BigInt(random.int(1000)), fee: 1n + BigInt(random.int(10)), nonce: BigInt(firstNonce + r) } };
    }
  }
}

export const SENDER_BALANCE = 1_000_000_000_000n;

export function allocFor(senders: readonly BenchKey[]): ChainParams['alloc'] {
  return senders.map((k) => ({ address: k.address, balance: SENDER_BALANCE })).sort((a, b) => Buffer.compare(a.address, b.address));
}

export function signerNote(): string {
  return native ? 'pre-signed with libsecp256k1 (untimed)' : 'pre-signed with noble (untimed; install the optional secp256k1 package for a faster setup)';
}

// ---------------------------------------------------------------------------------------------
// The machine's limit: libsecp256k1 on one core, × cores. Measured once per process, by the
// first suite that needs it, so that every figure of a run is compared with the same run's.

export interface MachineLimit {
  readonly backend: SignatureBackend['name'];
  readonly singleRuns: readonly number[];
  readonly single: number;
  readonly cores: number;
  readonly limit: number;
}

/**
 * The bench runs each suite in a process of its own (bench/run.ts): the limit a suite measured
 * reaches the later suites' processes through this variable, as JSON.
 */
export const MACHINE_LIMIT_ENV = 'CAIRN_BENCH_MACHINE_LIMIT';

let machineLimitCache: Promise<MachineLimit> | undefined = process.env[MACHINE_LIMIT_ENV]
  ? Promise.resolve(JSON.parse(process.env[MACHINE_LIMIT_ENV]) as MachineLimit)
  : undefined;

/** The limit this process measured or was given, if any. */
export function currentMachineLimit(): Promise<MachineLimit | undefined> {
  return machineLimitCache ?? Promise.resolve(undefined);
}

/** The verify suite measures the limit itself: the suites after it compare with that figure. */
export function setMachineLimit(limit: MachineLimit): void {
  machineLimitCache ??= Promise.resolve(limit);
}

export function verifyItems(count: number, chainId = 1): VerifyItem[] {
  const keys = benchKeys(900_000, 64);
  const items: VerifyItem[] = [];
  let i = 0;
  for (const { key, fields } of transfers(keys, chainId, Math.ceil(count / keys.length), { seed: 5 })) {
    if (i++ >= count) break;
    const bytes = signedBytes(key, fields);
    items.push({ message: bytes.subarray(0, UNSIGNED_TX_BYTES), publicKey: key.publicKey, signature: bytes.subarray(UNSIGNED_TX_BYTES + key.publicKey.length) });
  }
  return items;
}

export function machineLimit(ctx: SuiteContext): Promise<MachineLimit> {
  machineLimitCache ??= (async () => {
    const backend = libsecp256k1Backend() ?? opensslBackend;
    const items = verifyItems(4000);
    let next = 0;
    ctx.log(`perf: machine limit: ${backend.name} on one core (inline, the calling thread)`);
    const singleRuns = await measureRate(
      () => {
        for (let i = 0; i < 100; i++) {
          const it = items[next++ % items.length]!;
          if (!backend.verify(it.signature, it.message, it.publicKey)) throw new Error('a pre-signed signature failed to verify');
        }
        return 100;
      },
      { runs: ctx.runs, minMs: 1000, warmupMs: 300 },
    );
    const single = median(singleRuns);
    return { backend: backend.name, singleRuns, single, cores: CORES, limit: single * CORES };
  })();
  return machineLimitCache;
}

// ---------------------------------------------------------------------------------------------
// Small shared helpers.

export { within } from './nodes.ts';

/**
 * VerifyPool's workers are unref'd, so a process whose only pending work is a pool job exits in
 * the middle of it (Node: "unsettled top-level await"). A node always has sockets open; the bench
 * process, between suites, may not. This keeps the loop alive while `work` runs.
 */
export async function keepAlive<T>(work: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1 << 30);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/**
 * With CAIRN_BENCH_PROFILE=DIR, the main thread's CPU profile of `work` goes to DIR/NAME.cpuprofile
 * (open it in Chrome DevTools or speedscope): what the timed part of a suite spends its time on,
 * without the setup around it. Worker threads (signature verification) are not in it.
 */
export async function profiled<T>(name: string, work: () => Promise<T>): Promise<T> {
  const dir = process.env.CAIRN_BENCH_PROFILE;
  if (!dir) return work();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await work();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

export const s1 = (ms: number): string => (ms / 1000).toFixed(1);
export const ms0 = (ms: number): string => ms.toFixed(0);
export const k = (n: number): string => Math.round(n).toLocaleString('en-US');


export function verifierOf(node: CairnNode): string {
  const { backend, threads } = verifyPoolOf(node);
  return threads === 0 ? `${backend} on the main thread` : `${backend} on ${threads} worker thread${threads === 1 ? '' : 's'}`;
}
