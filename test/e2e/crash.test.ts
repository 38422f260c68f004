/**
 * Scenario 2 of the resilience suite: crash consistency. A mining `cairn node` (M) that imports
 * blocks — a long chain synced from a feeder node (P) that mines too, and its own and P's new
 * blocks, with the reorganisations two miners cause — is killed with SIGKILL at random (seeded)
 * moments 15 times. After every restart, before anything else, its stored state must equal a
 * from-scratch replay of its stored chain (the `auditState` RPC), its stored state tree must hash
 * to the root of that replay, which its head's header must carry, the sum of all balances must be
 * the genesis allocations plus one reward per block, and the head it reported just before the
 * kill must still be in its store. At the end it follows P to one head with the same state.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChainDB } from '../../ledger/chaindb.ts';
import { encodeAddress } from '../../ledger/keys.ts';
import { signTransaction, type Transaction } from '../../ledger/transaction.ts';
import type { ChainParams } from '../../ledger/genesis.ts';
import { Chain } from '../../consensus/chain.ts';
import { seededRandom, testKey, uncheckedSignatures } from '../helpers/fixtures.ts';
import { asParent, mineChild } from '../helpers/mining.ts';
import { cairnJson, clusters, commonHead, report, secs, waitFor } from '../helpers/cluster.ts';

const KILLS = 15;
const PREBUILT_BLOCKS = 2000;
const SENDERS = [0, 1, 2, 3].map((i) => testKey(500 + i));
/** One hash in 16: the in-process pre-build below costs nothing; the nodes' pace is set by timestamps. */
const EASY_TARGET = '0x0fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff';

/**
 * The feeder's chain, written into its datadir before it starts (a fixture, as a node restored
 * from a backup would be): `cairn init`, then blocks one second apart from the genesis on, every
 * third carrying a transfer, coinbases rotating over five addresses. Signatures were made here;
 * the node that syncs this chain checks every one.
 */
async function prebuildChain(datadir: string, genesisFile: string, params: ChainParams, blocks: number): Promise<{ height: number; ms: number }> {
  const started = Date.now();
  await cairnJson(['init', '--datadir', datadir, '--genesis', genesisFile]);
  const db = await ChainDB.open(join(datadir, 'chain'), params);
  try {
    const chain = await Chain.open(db, { clock: () => Math.floor(Date.now() / 1000), signatures: uncheckedSignatures });
    const nonces = SENDERS.map(() => 0n);
    let parent = asParent(db.genesis);
    for (let i = 0; i < blocks; i++) {
      const txs: Transaction[] = [];
      if (i % 3 === 0) {
        const s = (i / 3) % SENDERS.length;
        txs.push(signTransaction({ chainId: params.chainId, to: testKey(520 + (i % 7)).address, amount: BigInt(10 + (i % 100)), fee: 1n, nonce: nonces[s]!++ }, SENDERS[s]!.privateKey));
      }
      const block = mineChild(params, parent, txs, { miner: testKey(510 + (i % 5)).address });
      const outcome = await chain.processBlock(block);
      if (outcome !== 'connected') throw new Error(`pre-built block ${i + 1}: ${outcome}`);
      parent = asParent(block);
    }
    await chain.idle();
    return { height: chain.tip.height, ms: Date.now() - started };
  } finally {
    await db.close();
  }
}

describe('e2e: crash consistency', function () {
  this.timeout(240_000);
  const cluster = clusters();

  it(`a mining node importing blocks, killed with SIGKILL ${KILLS} times, reopens every time with state equal to a replay of its chain`, async () => {
    const started = Date.now();
    const c = cluster({
      name: 'crash',
      target: EASY_TARGET,
      ageSeconds: 3 * 3600,
      alloc: SENDERS.map((k) => ({ address: k.address, balance: 1_000_000_000n })),
    });
    const feeder = c.node('p');
    const built = await prebuildChain(feeder.datadir, c.genesisFile, c.params, PREBUILT_BLOCKS);
    await feeder.start({ coinbase: encodeAddress(testKey(530).address) });

    const m = c.node('m');
    const rand = seededRandom(20_241_121);
    const kills: { delayMs: number; height: number; head: string; syncing: boolean; feederHeight: number }[] = [];
    const reopened: { height: number; audited: number; startMs: number }[] = [];
    for (let k = 0; k <= KILLS; k++) {
      const last = kills.at(-1);
      await m.start({ coinbase: encodeAddress(testKey(531).address), bootstrap: [feeder.addr] });
      // First thing after opening: the audit (it pauses imports while it replays).
      const auditStart = Date.now();
      const audit = await m.call('auditState', {});
      assert.equal(audit.supply, audit.expectedSupply, `after kill ${k}: supply`);
      assert.equal(BigInt(audit.supply), c.supplyAt(audit.height), `after kill ${k}: supply = allocations + ${audit.height} rewards`);
      // The audit checked the stored tree against the replay; the head's header commits to the same root.
      assert.equal((await m.call('getBlock', { hash: audit.head })).stateRoot, audit.stateRoot, `after kill ${k}: the head's state root is its state's`);
      reopened.push({ height: audit.height, audited: Date.now() - auditStart, startMs: m.startMs });
      if (last) {
        const block = await m.call('getBlock', { hash: last.head });
        assert.equal(block.height, last.height, `after kill ${k}: the head reported before the kill is stored`);
      }
      if (k === KILLS) break;

      // A random moment: the delay is the experiment, not a wait for something.
      const delayMs = rand.int(800);
      await sleep(delayMs);
      const [seen, feederStatus] = await Promise.all([m.status(), feeder.status()]);
      const killed = await m.stop('SIGKILL');
      assert.equal(killed.signal, 'SIGKILL');
      kills.push({ delayMs, height: seen.height, head: seen.head, syncing: seen.syncing || seen.height + 12 < feederStatus.height, feederHeight: feederStatus.height });
    }

    // Finally M, no longer mining, follows P to one head with the same state.
    await m.restart({ bootstrap: [feeder.addr] });
    const followed = await waitFor('M and P on one head', 60_000, () => commonHead([feeder, m]));
    const audits = await waitFor('M and P audited at one head', 30_000, async () => {
      const [a, b] = await Promise.all([feeder.call('auditState', {}), m.call('auditState', {})]);
      return a.head === b.head ? ([a, b] as const) : undefined;
    }, 200);
    assert.equal(audits.value[0].digest, audits.value[1].digest, 'M and P hold the same state');
    assert.equal(audits.value[0].stateRoot, audits.value[1].stateRoot, 'and the same state root');

    const duringSync = kills.filter((x) => x.syncing).length;
    report(`feeder pre-built ${built.height} blocks in ${secs(built.ms)}; ${KILLS} SIGKILLs at seeded moments 0–800 ms after the reopened node's audit, ${duringSync} while it was still catching up with the feeder`);
    report(`heights at the kills: ${kills.map((x) => x.height).join(' ')}`);
    report(`heights on reopening (state = replay, supply = allocations + rewards each time): ${reopened.map((x) => x.height).join(' ')}`);
    report(`reopen to RPC: median ${reopened.map((x) => x.startMs).sort((a, b) => a - b)[Math.floor(reopened.length / 2)]} ms; audit replay: up to ${Math.max(...reopened.map((x) => x.audited))} ms; M followed P to height ${followed.value.height}; scenario ${secs(Date.now() - started)}`);
  });
});
