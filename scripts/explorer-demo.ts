/**
 * A node with a small, lively chain behind its explorer, for the browser test and the screenshots
 * (scripts/screenshots.ts): the devnet's public key pays a few addresses over ~40 blocks mined at
 * uneven intervals, some transfers wait in the mempool, and the HTTP server serves it all.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromHex } from '../ledger/bytes.ts';
import { parseGenesis, type ChainParams } from '../ledger/genesis.ts';
import { addressOf, publicKeyOf } from '../ledger/keys.ts';
import { sha256 } from '../ledger/hash.ts';
import { signTransaction, type Transaction } from '../ledger/transaction.ts';
import { buildTemplate, completeBlock, searchNonce, targetBytes } from '../consensus/miner.ts';
import { createNode } from '../node/launch.ts';
import type { CairnNode } from '../node/node.ts';
import { HttpServer } from '../node/http/server.ts';

export const DEVNET_PRIVATE_KEY = fromHex('8010557e47b9eac54915c85a544ff38a80598f1ee6010fde2ef745789f9008c6');

/** A deterministic key for the demo's people. */
export function demoKey(n: number): { privateKey: Uint8Array; address: Uint8Array } {
  const privateKey = sha256(new TextEncoder().encode(`cairn explorer demo ${n}`));
  return { privateKey, address: addressOf(publicKeyOf(privateKey)) };
}

export interface Demo {
  readonly node: CairnNode;
  readonly http: HttpServer;
  readonly url: string;
  readonly params: ChainParams;
  readonly nonces: Map<string, bigint>;
  /** Mines one block on the tip, `seconds` after it, with what the mempool holds. */
  mine(seconds?: number): Promise<void>;
  pay(fromKey: Uint8Array, to: Uint8Array, amount: bigint, fee?: bigint): Promise<Transaction>;
  stop(): Promise<void>;
}

/**
 * `pruneKeep`: the node keeps the bodies of only that many blocks below its tip (its reorg depth
 * too, as the pruner requires), and the demo returns once those below are pruned.
 */
export async function startDemo(options: { blocks?: number; pruneKeep?: number } = {}): Promise<Demo> {
  const devnet = parseGenesis(readFileSync(new URL('../genesis.json', import.meta.url), 'utf8'));
  const blocks = options.blocks ?? 40;
  // Dated so that the last block lands a little before now, with the devnet's 5 s rhythm.
  const params: ChainParams = { ...devnet, target: (1n << 252n) - 1n, timestamp: Math.floor(Date.now() / 1000) - blocks * 6 - 60 };
  const datadir = mkdtempSync(join(tmpdir(), 'cairn-explorer-'));
  const node = createNode({ datadir, params, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, verifyThreads: 1, pruneKeep: options.pruneKeep, reorgDepth: options.pruneKeep });
  await node.start();
  const http = new HttpServer(node);
  const url = await http.start();
  const nonces = new Map<string, bigint>();
  const miner = demoKey(0).address;
  let step = 0;
  const demo: Demo = {
    node,
    http,
    url,
    params,
    nonces,
    async mine(seconds) {
      const spacing = seconds ?? [5, 3, 8, 4, 6, 2, 7, 5, 9, 4][step++ % 10]!;
      const time = Math.min(node.chain.tip.header.timestamp + spacing, Math.floor(Date.now() / 1000));
      const template = await buildTemplate(node.chain, node.mempool, miner, Math.max(time, node.chain.nextBlockRules().minTimestamp));
      const nonce = searchNonce(template.headerBytes, targetBytes(template.target), 0n, 10_000_000, sha256);
      if (nonce === undefined) throw new Error('no nonce');
      await node.importAndAnnounce(completeBlock(template, nonce));
    },
    async pay(fromKey, to, amount, fee = 1000n) {
      const from = Buffer.from(addressOf(publicKeyOf(fromKey))).toString('hex');
      const nonce = nonces.get(from) ?? (await node.mempool.nextNonce(addressOf(publicKeyOf(fromKey))));
      nonces.set(from, nonce + 1n);
      const tx = signTransaction({ chainId: params.chainId, to, amount, fee, nonce }, fromKey);
      await node.submitTransaction(tx);
      return tx;
    },
    async stop() {
      await http.stop();
      await node.stop();
      rmSync(datadir, { recursive: true, force: true });
    },
  };
  const people = [1, 2, 3, 4].map(demoKey);
  for (let i = 0; i < blocks; i++) {
    if (i % 3 === 0) await demo.pay(DEVNET_PRIVATE_KEY, people[i % 4]!.address, BigInt(1 + (i % 7)) * 100_000_000n, BigInt(1000 + i * 10));
    if (i % 5 === 2 && i > 3) await demo.pay(people[(i + 1) % 4]!.privateKey, people[(i + 2) % 4]!.address, 25_000_000n, 1500n);
    await demo.mine();
  }
  for (let i = 0; i < 6; i++) await demo.pay(DEVNET_PRIVATE_KEY, people[i % 4]!.address, 50_000_000n, BigInt(1000 + (i % 3) * 800));
  await node.pruner?.idle();
  return demo;
}
