/**
 * Account proofs below the tip (consensus/state-proofs.ts) roll the tip's state back: seconds for
 * full blocks. They pause imports only to pin the state (a store snapshot and the tree's top), and
 * roll back from that while blocks go on connecting; the pin is let go however the proof ends.
 */
import assert from 'node:assert/strict';
import { Chain } from '../consensus/chain.ts';
import { proveAccountsAt } from '../consensus/state-proofs.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import type { KvStore } from '../ledger/kv.ts';
import { layout } from '../ledger/layout.ts';
import { verifyAccountProof } from '../ledger/smt-proof.ts';
import { FUNDED_KEYS, transfer } from './helpers/fixtures.ts';
import { kvOver } from './helpers/kv.ts';
import { carol, extend, names, NOW, params } from './helpers/light-net.ts';
import { mineChild } from './helpers/mining.ts';
import type { BlockIndexEntry } from '../consensus/block-index.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { fromHex } from '../ledger/bytes.ts';
import { serveLightClients } from '../node/light/serve.ts';
import { decodeProofs, encodeGetProofs } from '../node/light/wire.ts';
import { rpcHandlers } from '../node/rpc-methods.ts';
import type { Responder } from '../node/transport.ts';
import type { NodeView } from '../node/view.ts';

const [alice] = FUNDED_KEYS;
const UNDO = layout.undo(new Uint8Array(32))[0]!;

/** Undo reads held while `hold` is pending (`reached` told of the first), and the store snapshots open, now and at most. */
interface Held {
  hold?: Promise<void>;
  reached?: () => void;
  open: number;
  mostOpen: number;
}

/**
 * A chain of 20 blocks (the first pays carol) over a store whose undo reads, once `hold` is set,
 * wait for it: a roll-back caught part-way. It counts the store snapshots open.
 */
async function heldChain(): Promise<{ chain: Chain; held: Held }> {
  const held: Held = { open: 0, mostOpen: 0 };
  const waitIfHeld = async (key: Uint8Array) => {
    if (key[0] !== UNDO || !held.hold) return;
    held.reached?.();
    await held.hold;
  };
  const inner = new MemoryDisk().open();
  const kv: KvStore = kvOver(inner, {
    get: async (key) => (await waitIfHeld(key), inner.get(key)),
    snapshot: () => {
      const snapshot = inner.snapshot();
      held.mostOpen = Math.max(held.mostOpen, ++held.open);
      return {
        get: async (key) => (await waitIfHeld(key), snapshot.get(key)),
        getMany: (keys) => snapshot.getMany(keys),
        close: async () => (held.open--, snapshot.close()),
      };
    },
  });
  const chain = await Chain.open(await ChainDB.open(kv, params), { clock: () => NOW });
  await extend(chain, 20, 50, true);
  return { chain, held };
}

/** The two ways a proof is asked of a node: a light client's getProofs, and RPC getProof {block}. */
const askers: { name: string; ask: (chain: Chain) => (at: BlockIndexEntry, addresses: readonly Uint8Array[]) => Promise<Uint8Array[]> }[] = [
  {
    name: "a light client's getProofs",
    ask: (chain) => {
      let respond!: Responder;
      void serveLightClients(chain, async (name, _protocol, r) => void (name === 'proofs' && (respond = r)), names, { monotonic: () => 0 }, () => {});
      return async (at, addresses) => {
        const answer = decodeProofs((await respond(encodeGetProofs(at.hash, addresses), 'light')) as Uint8Array, addresses.length);
        assert.equal(answer.kind, 'proofs');
        return [...(answer as { proofs: readonly Uint8Array[] }).proofs];
      };
    },
  },
  {
    name: 'RPC getProof {block}',
    ask: (chain) => {
      const view = { params, chain, db: chain.db } as unknown as NodeView;
      return async (at, addresses) => Promise.all(addresses.map(async (a) => fromHex((await rpcHandlers.getProof(view, { address: encodeAddress(a), block: at.height })).proof)));
    },
  },
];

describe('state proofs below the tip', () => {
  for (const { name, ask } of askers) {
    it(`${name}: a block imports while a proof 16 blocks back is part-way, and the proof is the one made with imports still`, async () => {
      const { chain, held } = await heldChain();
      const prove = ask(chain);
      const at = chain.mainAt(chain.tip.height - 16)!;
      const addresses = [carol.address, alice!.address];
      const still = await prove(at, addresses);

      const events: string[] = [];
      let release!: () => void;
      held.hold = new Promise<void>((resolve) => (release = resolve));
      const reached = new Promise<void>((resolve) => (held.reached = resolve));
      const proving = prove(at, addresses).then((proofs) => (events.push('proved'), proofs));
      await reached;
      // A block that changes both accounts, and so the tree's top on their paths, under the proof.
      const tip = chain.tip;
      const block = mineChild(params, { hash: tip.hash, height: tip.height, header: tip.header, anchorTimestamp: tip.anchorTimestamp }, [transfer(alice!, carol.address, 3n, 1n)]);
      // Before, the proof held the import lock all the while: this import waited for it, and it for the import.
      assert.equal(await chain.processBlock(block), 'connected');
      events.push('imported');
      release();
      const proofs = await proving;
      assert.deepEqual(events, ['imported', 'proved']);
      assert.deepEqual(proofs, still, 'byte for byte the proofs made with imports still');
      assert.equal(verifyAccountProof(at.header.stateRoot, carol.address, proofs[0]!)?.balance, 500n + 7n);
      assert.equal(held.open, 0, 'the store snapshot is closed');
      await chain.db.close();
    });
  }

  it('the store snapshot is closed however the proof ends: proven, refused, or failed part-way', async () => {
    const { chain, held } = await heldChain();
    const tipHeight = chain.tip.height;
    assert.equal(typeof (await proveAccountsAt(chain, chain.mainAt(tipHeight - 3)!, [carol.address], 16)), 'object');
    assert.equal(await proveAccountsAt(chain, chain.mainAt(tipHeight - 17)!, [carol.address], 16), 'too-deep');
    assert.equal(held.open, 0);
    held.hold = Promise.reject(new Error('the disk failed'));
    held.hold.catch(() => {});
    await assert.rejects(proveAccountsAt(chain, chain.mainAt(tipHeight - 3)!, [carol.address], 16), /the disk failed/);
    assert.equal(held.open, 0);
    await chain.db.close();
  });

  it('RPC proofs are made one at a time, as when each held the import lock: callers at once hold one roll-back, not one each', async () => {
    const { chain, held } = await heldChain();
    const prove = askers.find((a) => a.name.startsWith('RPC'))!.ask(chain);
    const at = chain.mainAt(chain.tip.height - 16)!;
    let release!: () => void;
    held.hold = new Promise<void>((resolve) => (release = resolve));
    const reached = new Promise<void>((resolve) => (held.reached = resolve));
    const first = prove(at, [carol.address]);
    await reached;
    const second = prove(chain.mainAt(chain.tip.height - 15)!, [carol.address]);
    // The import lock turns once before the first goes on: the second, were it not queued, has its block and pins the state meanwhile.
    await chain.withImportsPaused(async () => {});
    release();
    await Promise.all([first, second]);
    assert.equal(held.mostOpen, 1);
    await chain.db.close();
  });
});
