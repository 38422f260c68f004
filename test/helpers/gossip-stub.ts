/**
 * Gossip (node/gossip.ts) over a real chain in memory, its transport a stub and its timers a
 * scheduler's: what test/gossip.test.ts and test/orphans-awaited.test.ts drive it with.
 */
import { MemoryDisk } from '../../ledger/kv-memory.ts';
import { ChainDB } from '../../ledger/chaindb.ts';
import { Mempool } from '../../ledger/mempool.ts';
import { Chain } from '../../consensus/chain.ts';
import { Gossip } from '../../node/gossip.ts';
import type { GossipOptions } from '../../node/gossip-types.ts';
import { TransportError, type GossipValidator, type Transport } from '../../node/transport.ts';
import type { NetworkNames } from '../../node/protocols.ts';
import { TxSignatureVerifier } from '../../node/tx-signatures.ts';
import { InlineVerifier } from '../../node/inline-verifier.ts';
import { PeerManager } from '../../node/peers.ts';
import type { PeerRecords } from '../../node/peer-records.ts';
import { Scheduler } from '../../sim/scheduler.ts';
import { SimEnv } from '../../sim/env.ts';
import { Random } from '../../sim/random.ts';
import { testKey, testParams, transfer } from './fixtures.ts';
import { asParent, mineChild } from './mining.ts';

export const gossipNames = { blockTopic: '/blocks', compactBlockTopic: '/cblocks', txTopic: '/txs' } as NetworkNames;

/** What the stub transport's peers are, and how they answer requests (none, unless given). */
export interface StubNetwork {
  readonly peers?: readonly string[];
  readonly request?: (peer: string, protocol: string, body: Uint8Array) => Promise<Uint8Array>;
  /** The peers' records (their status round trips), if any. */
  readonly records?: PeerRecords;
}

/**
 * Gossip on `chain`, started; its validators by topic, the peers it scores, and the scheduler of
 * its env's timers, which run only when a test drives it.
 */
export function gossipOn(chain: Chain, db: ChainDB, now: number, network: StubNetwork = {}) {
  const signatures = new TxSignatureVerifier(new InlineVerifier());
  const mempool = new Mempool(db, chain.params, {}, (tx) => signatures.checkTx(tx));
  const validators = new Map<string, GossipValidator>();
  const transport = {
    subscribe: (topic: string, validate: GossipValidator) => void validators.set(topic, validate),
    peers: () => [...(network.peers ?? [])],
    request: (peer: string, protocol: string, body: Uint8Array) => (network.request ?? (() => Promise.reject(new TransportError('TRANSPORT_CLOSED', 'no such peer'))))(peer, protocol, body),
    publish: async () => 0,
  } as unknown as Transport;
  const peers = new PeerManager(() => 0);
  const scheduler = new Scheduler(now);
  const env = new SimEnv(scheduler, new Random('gossip'));
  const gossip = new Gossip({ transport, env, names: gossipNames, chain, mempool, peers, records: network.records, signatures, clock: () => now } as unknown as GossipOptions);
  gossip.start();
  return { gossip, peers, scheduler, whole: validators.get(gossipNames.blockTopic)!, compact: validators.get(gossipNames.compactBlockTopic)!, txs: validators.get(gossipNames.txTopic)! };
}

/** A chain in memory at genesis, and a block on it with one transfer that no mempool here holds. */
export async function atGenesis() {
  const params = testParams();
  const db = await ChainDB.open(new MemoryDisk().open(), params);
  const now = params.timestamp + 1_000_000;
  const chain = await Chain.open(db, { clock: () => now });
  const block = mineChild(params, asParent(db.genesis), [transfer(testKey(0), testKey(9).address, 5n, 0n)], { miner: testKey(1).address });
  return { params, db, now, chain, block };
}
