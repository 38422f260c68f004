import assert from 'node:assert/strict';
import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { DecodeError, ProofError } from '../ledger/errors.ts';
import type { Account } from '../ledger/state.ts';
import { EMPTY_HASH, StateKeys, positionBytes, stateKey, type StateChange, type TreeNodeReader, type TreeUpdate, type TreeWrite } from '../ledger/smt.ts';
import { prepareTreeUpdate, updateTree } from '../ledger/smt-update.ts';
import { useInnerHashBackend } from '../ledger/inner-hashes.ts';
import { INNER_HASH_BACKENDS, backendLabel, useBackendOrSkip } from './helpers/inner-hash-backend.ts';
import { decodeAccountProof, encodeAccountProof, proveAccount, proveKeys, verifyAccountProof } from '../ledger/smt-proof.ts';
import { MemoryStateTree } from '../ledger/smt-memory.ts';
import { seededRandom } from './helpers/fixtures.ts';
import { referenceNodes, referenceRoot } from './helpers/smt-reference.ts';

/** The store side of the tree in a Map, as ChainDB keeps it in LevelDB (position → node). */
class MapTree implements TreeNodeReader {
  readonly nodes = new Map<string, Uint8Array>();
  reads = 0;
  /** Levels to read ahead below a depth (as ChainDB reads below its in-memory top): 0 reads a level at a time. */
  ahead = 0;

  /** Levels answered at once from memory (`readNow`, as ChainDB answers its top): 0, none. */
  inMemory = 0;

  readAhead(depth: number): number {
    return depth >= 4 ? this.ahead : 0;
  }

  /** The node itself, not a copy, as ChainDB's top hands out its inner nodes: the tree must not write through it. */
  readNow(id: string): Uint8Array | undefined | false {
    return id.charCodeAt(0) < this.inMemory ? this.nodes.get(id) : false;
  }

  /** As Buffers, as LevelDB hands values out: a Buffer's slice() is a view, which the tree must never write through. */
  async readNodes(ids: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    this.reads++;
    return ids.map((id) => {
      const node = this.nodes.get(id);
      return node && Buffer.from(node);
    });
  }

  apply(writes: readonly TreeWrite[]): void {
    for (const w of writes) {
      if (w.node) this.nodes.set(w.id, w.node);
      else this.nodes.delete(w.id);
    }
  }

  /** Position (hex, as the store keys it after `S`) → node hex. */
  content(): Map<string, string> {
    return new Map([...this.nodes].map(([id, node]) => [toHex(positionBytes(id)), toHex(node)]));
  }
}

type Accounts = Map<string, Account>;

const changesOf = (entries: Iterable<[string, Account | undefined]>): StateChange[] =>
  [...entries].map(([address, account]) => ({ key: stateKey(Buffer.from(address, 'hex')), account }));

/** What an update says (its root and writes), for comparing two: each carries a release of its own. */
const written = (update: TreeUpdate) => ({ root: update.root, writes: update.writes });

function sortedMap(m: Map<string, string>): string[] {
  return [...m].map(([k, v]) => `${k} ${v}`).sort();
}

describe('state tree (sparse Merkle tree)', () => {
  afterEach(() => useInnerHashBackend('native'));

  it('an empty tree has the empty root; one account is its leaf at the root', async () => {
    const store = new MapTree();
    assert.deepEqual((await updateTree(store, [])).root, EMPTY_HASH);
    const address = '11'.repeat(20);
    const accounts: Accounts = new Map([[address, { balance: 5n, nonce: 1n }]]);
    const update = await updateTree(store, changesOf(accounts));
    store.apply(update.writes);
    assert.equal(toHex(update.root), referenceRoot(accounts).toString('hex'));
    assert.deepEqual(sortedMap(store.content()), sortedMap(referenceNodes(accounts)));
    assert.equal(store.nodes.size, 1);
    assert.equal(toHex(MemoryStateTree.EMPTY.with(changesOf(accounts)).root), toHex(update.root));
    // Removing it empties the store again.
    const back = await updateTree(store, changesOf([[address, undefined]]));
    store.apply(back.writes);
    assert.deepEqual(back.root, EMPTY_HASH);
    assert.equal(store.nodes.size, 0);
  });

  it('keys that share a long prefix nest as deep as they must, and collapse back when one goes', async () => {
    // Keys chosen directly (the tree API takes keys): equal up to bit 200.
    const a = new Uint8Array(32).fill(0xab);
    const b = a.slice();
    b[25]! ^= 0x80; // differs at bit 200
    const c = a.slice();
    c[0]! ^= 0x80; // differs at bit 0
    const store = new MapTree();
    const put = (key: Uint8Array, balance: bigint): StateChange => ({ key, account: { balance, nonce: 0n } });
    let update = await updateTree(store, [put(a, 1n), put(b, 2n), put(c, 3n)]);
    store.apply(update.writes);
    let mem = MemoryStateTree.EMPTY.with([put(a, 1n), put(b, 2n), put(c, 3n)]);
    assert.deepEqual(update.root, mem.root);
    assert.equal(store.nodes.size, 201 + 1 + 2, 'inner nodes at depths 0..200, and three leaves');
    update = await updateTree(store, [{ key: b, account: undefined }]);
    store.apply(update.writes);
    mem = mem.with([{ key: b, account: undefined }]);
    assert.deepEqual(update.root, mem.root);
    assert.equal(store.nodes.size, 3, 'a and c under the root, the chain above a gone');
    const [proof] = await proveKeys(store, [b]);
    assert.equal(proof!.siblings.length, 1);
    assert.equal(proof!.end.kind, 'other');
  });

  for (const backend of INNER_HASH_BACKENDS) {
    it(`equals the naive reference at every step of random workloads with reorganisations (inner nodes hashed by the ${backendLabel(backend)} SHA-256)`, async function () {
      this.timeout(60_000);
      useBackendOrSkip(this, backend);
      await equalsReferenceThroughReorgs();
    });
  }

  async function equalsReferenceThroughReorgs(): Promise<void> {
    for (const seed of [1, 2, 3]) {
      const rng = seededRandom(seed);
      const addresses: string[] = [];
      const fresh = () => {
        const a = toHex(rng.bytes(20));
        addresses.push(a);
        return a;
      };
      const accounts: Accounts = new Map();
      const store = new MapTree();
      store.ahead = seed === 2 ? 3 : 0; // reading ahead changes the round trips, never the tree
      store.inMemory = seed === 3 ? 6 : 0; // nor does answering the upper levels from memory
      let mem = MemoryStateTree.EMPTY;
      /** Per connected block: each touched account's value before it (undefined: did not exist), and the root before it. */
      const undo: { before: Map<string, Account | undefined>; root: Uint8Array }[] = [];
      let root: Uint8Array = EMPTY_HASH;

      const step = async (changes: Map<string, Account | undefined>) => {
        const list = changesOf(changes);
        // What the paths' own reads say the accounts are, before the update: what the state holds.
        const read = await prepareTreeUpdate(store, list.map((c) => c.key)).accounts();
        assert.deepEqual(list.map((c) => read!.get(c.key)), [...changes.keys()].map((a) => accounts.get(a)), `seed ${seed}: the accounts at the update's keys`);
        const update = await updateTree(store, list);
        store.apply(update.writes);
        mem = mem.with(list);
        for (const [address, account] of changes) {
          if (account) accounts.set(address, account);
          else accounts.delete(address);
        }
        const expected = referenceRoot(accounts).toString('hex');
        assert.equal(toHex(update.root), expected, `seed ${seed}: the stored tree's root`);
        assert.equal(toHex(mem.root), expected, `seed ${seed}: the memory tree's root`);
        return update.root;
      };
      const connect = async () => {
        const changes = new Map<string, Account | undefined>();
        const n = 1 + rng.int(rng.int(4) === 0 ? 60 : 8);
        for (let i = 0; i < n; i++) {
          const address = addresses.length === 0 || rng.int(3) === 0 ? fresh() : addresses[rng.int(addresses.length)]!;
          changes.set(address, { balance: BigInt(rng.int(1_000_000)), nonce: BigInt(rng.int(50)) });
        }
        const before = new Map([...changes.keys()].map((a) => [a, accounts.get(a)] as const));
        undo.push({ before, root });
        root = await step(changes);
      };
      const disconnect = async () => {
        const last = undo.pop()!;
        root = await step(last.before);
        assert.equal(toHex(root), toHex(last.root), 'disconnecting restores the previous root exactly');
      };

      for (let i = 0; i < 100; i++) {
        if (undo.length > 0 && rng.int(5) === 0) {
          // A reorganisation: back a few blocks, then a different branch.
          const depth = 1 + rng.int(Math.min(4, undo.length));
          for (let k = 0; k < depth; k++) await disconnect();
          for (let k = 0; k <= depth; k++) await connect();
        } else {
          await connect();
        }
        if (i % 25 === 24) assert.deepEqual(sortedMap(store.content()), sortedMap(referenceNodes(accounts)), `seed ${seed} step ${i}: the store holds exactly the tree`);
      }
      while (undo.length > 0) await disconnect();
      assert.equal(store.nodes.size, 0, 'back to the empty tree, nothing left behind');
      assert.deepEqual(root, EMPTY_HASH);
    }
  }

  for (const backend of INNER_HASH_BACKENDS) {
    it(`an update that leaves accounts as they were keeps the root and writes nothing; mixed with real changes, it equals the reference (${backendLabel(backend)} SHA-256)`, async function () {
      useBackendOrSkip(this, backend);
      const rng = seededRandom(21);
      const accounts: Accounts = new Map();
      for (let i = 0; i < 300; i++) accounts.set(toHex(rng.bytes(20)), { balance: BigInt(rng.int(1e9)), nonce: BigInt(rng.int(9)) });
      const store = new MapTree();
      store.inMemory = 5; // the upper levels handed out as the nodes themselves, as ChainDB's top does
      const first = await updateTree(store, changesOf(accounts));
      store.apply(first.writes);
      let root = first.root;
      // As a block of 0-amount transfers between existing accounts reports them: every value as it was.
      const addresses = [...accounts.keys()];
      for (let trial = 0; trial < 20; trial++) {
        const changes = new Map<string, Account | undefined>();
        for (let i = 0; i < 1 + rng.int(60); i++) {
          const a = addresses[rng.int(addresses.length)]!;
          changes.set(a, accounts.get(a));
        }
        for (let i = 0; i < rng.int(3); i++) changes.set(toHex(rng.bytes(20)), undefined); // removing what is not there
        const same = await updateTree(store, changesOf(changes));
        assert.equal(toHex(same.root), toHex(root), `trial ${trial}: the root`);
        assert.deepEqual(same.writes, [], `trial ${trial}: nothing to write`);
        // Some of the same accounts changed for real: nodes that came out as they were sit beside ones that did not.
        const mixed = new Map(changes);
        for (const a of [...changes.keys()].filter((a) => accounts.has(a)).slice(0, 1 + rng.int(3))) {
          const next = { balance: BigInt(rng.int(1e9)), nonce: BigInt(rng.int(9)) };
          mixed.set(a, next);
          accounts.set(a, next);
        }
        const update = await updateTree(store, changesOf(mixed));
        store.apply(update.writes);
        root = update.root;
        assert.equal(toHex(root), referenceRoot(accounts).toString('hex'), `trial ${trial}: the root after real changes`);
      }
      assert.deepEqual(sortedMap(store.content()), sortedMap(referenceNodes(accounts)), 'the store holds exactly the tree');
    });
  }

  it('proves membership and absence, and every proof verifies only for its own account and root', async () => {
    const rng = seededRandom(9);
    const accounts: Accounts = new Map();
    for (let i = 0; i < 300; i++) accounts.set(toHex(rng.bytes(20)), { balance: BigInt(rng.int(1e9)), nonce: BigInt(rng.int(9)) });
    const store = new MapTree();
    const update = await updateTree(store, changesOf(accounts));
    store.apply(update.writes);
    const root = update.root;
    const present = [...accounts.keys()].slice(0, 40);
    const absent = Array.from({ length: 40 }, () => toHex(rng.bytes(20)));
    const kinds = new Set<string>();
    for (const address of [...present, ...absent]) {
      const proof = await proveAccount(store, Buffer.from(address, 'hex'));
      kinds.add(decodeAccountProof(proof).end.kind);
      assert.deepEqual(encodeAccountProof(decodeAccountProof(proof)), proof, 'one encoding');
      const proven = verifyAccountProof(root, Buffer.from(address, 'hex'), proof);
      assert.deepEqual(proven, accounts.get(address));
      // Another address, or another root, must not verify with it.
      const other = Buffer.from(present[(present.indexOf(address) + 1) % present.length]!, 'hex');
      assert.throws(() => verifyAccountProof(root, other, proof), ProofError);
      assert.throws(() => verifyAccountProof(stateKey(root), Buffer.from(address, 'hex'), proof), ProofError);
    }
    assert.deepEqual([...kinds].sort(), ['empty', 'leaf', 'other'], 'all three ends occur');
  });

  it('refuses a proof with any byte changed', async () => {
    const rng = seededRandom(10);
    const accounts: Accounts = new Map();
    for (let i = 0; i < 1000; i++) accounts.set(toHex(rng.bytes(20)), { balance: BigInt(rng.int(1e9)), nonce: 0n });
    const store = new MapTree();
    const update = await updateTree(store, changesOf(accounts));
    store.apply(update.writes);
    let checked = 0;
    for (const address of [[...accounts.keys()][7]!, toHex(rng.bytes(20))]) {
      const addr = Buffer.from(address, 'hex');
      const proof = await proveAccount(store, addr);
      for (let i = 0; i < proof.length; i++) {
        for (const flip of [0x01, 0x80]) {
          const bad = proof.slice();
          bad[i]! ^= flip;
          assert.throws(() => verifyAccountProof(update.root, addr, bad), (err: unknown) => err instanceof DecodeError || err instanceof ProofError, `byte ${i} ^ ${flip}`);
          checked++;
        }
      }
      assert.throws(() => verifyAccountProof(update.root, addr, proof.subarray(0, proof.length - 1)), DecodeError);
      assert.throws(() => verifyAccountProof(update.root, addr, Uint8Array.of(...proof, 0)), DecodeError);
    }
    assert.ok(checked > 1000);
  });

  it('reads each level of a batch in one round trip', async () => {
    const rng = seededRandom(11);
    const accounts: Accounts = new Map();
    for (let i = 0; i < 4096; i++) accounts.set(toHex(rng.bytes(20)), { balance: 1n, nonce: 0n });
    const store = new MapTree();
    store.apply((await updateTree(store, changesOf(accounts))).writes);
    store.reads = 0;
    const changes = new Map([...accounts.keys()].slice(0, 500).map((a) => [a, { balance: 2n, nonce: 1n }] as const));
    const update = await updateTree(store, changesOf(changes));
    assert.ok(store.reads <= 20, `${store.reads} round trips for 500 changes in a tree of 4096 (depth ~12)`);
    store.ahead = 8;
    store.reads = 0;
    assert.deepEqual(written(await updateTree(store, changesOf(changes))), written(update), 'reading ahead, the same update');
    assert.ok(store.reads <= 6, `${store.reads} round trips reading 8 levels ahead below depth 4`);
    assert.ok(bytesEqual(update.root, MemoryStateTree.EMPTY.with(changesOf(new Map([...accounts, ...changes]))).root));
  });

  it('an update prepared from its keys alone equals the whole update, and falls back for other keys or removals', async () => {
    const rng = seededRandom(12);
    const accounts: Accounts = new Map();
    for (let i = 0; i < 500; i++) accounts.set(toHex(rng.bytes(20)), { balance: 1n, nonce: 0n });
    const store = new MapTree();
    store.apply((await updateTree(store, changesOf(accounts))).writes);
    const addresses = [...accounts.keys()];
    const changes = changesOf(addresses.slice(0, 50).map((a) => [a, { balance: 9n, nonce: 2n }] as const));
    const whole = await updateTree(store, changes);
    const prepared = await prepareTreeUpdate(store, changes.map((c) => c.key)).finish(changes);
    assert.deepEqual(written(prepared), written(whole));
    const other = changesOf(addresses.slice(1, 51).map((a) => [a, { balance: 9n, nonce: 2n }] as const));
    assert.deepEqual(written(await prepareTreeUpdate(store, changes.map((c) => c.key)).finish(other)), written(await updateTree(store, other)));
    const removal = changesOf(addresses.slice(0, 50).map((a, i) => [a, i === 7 ? undefined : { balance: 9n, nonce: 2n }] as const));
    assert.deepEqual(written(await prepareTreeUpdate(store, changes.map((c) => c.key)).finish(removal)), written(await updateTree(store, removal)));
  });

  it('an update prepared from its keys reads their accounts on the way down: its own leaf, or where the path ends without one', async () => {
    const key = (address: string) => stateKey(Buffer.from(address, 'hex'));
    const store = new MapTree();
    const accountsAt = async (reader: TreeNodeReader, keys: Uint8Array[]) => {
      const found = await prepareTreeUpdate(reader, keys).accounts();
      return found && keys.map((k) => found.get(k));
    };
    assert.deepEqual(await accountsAt(store, [key('01'.repeat(20))]), [undefined], 'an empty tree holds no account');
    const rng = seededRandom(13);
    const accounts: Accounts = new Map();
    for (let i = 0; i < 300; i++) accounts.set(toHex(rng.bytes(20)), { balance: BigInt(1 + i), nonce: BigInt(i % 7) });
    store.apply((await updateTree(store, changesOf(accounts))).writes);
    const present = [...accounts.keys()].slice(0, 40);
    const absent = Array.from({ length: 40 }, () => toHex(rng.bytes(20)));
    // Keys in any order, present and absent mixed: the answers come back in the order asked.
    const asked = present.flatMap((a, i) => [a, absent[i]!]).reverse();
    for (const inMemory of [0, 5, 64]) {
      store.inMemory = inMemory;
      assert.deepEqual(await accountsAt(store, asked.map(key)), asked.map((a) => accounts.get(a)), `${inMemory} levels in memory`);
    }
    // A lone account: at the root, its leaf answers for its own key and says no other key has one.
    const lone = new MapTree();
    const [only] = present;
    lone.apply((await updateTree(lone, changesOf([[only!, accounts.get(only!)]]))).writes);
    assert.deepEqual(await accountsAt(lone, [key(absent[0]!), key(only!)]), [undefined, accounts.get(only!)]);
    // A failed read answers nothing, and the caller asks the store itself.
    const failing: TreeNodeReader = { readNodes: () => Promise.reject(new Error('store gone')) };
    assert.equal(await accountsAt(failing, [key(only!)]), undefined);
  });
});

describe('StateKeys (the memo of tree keys)', () => {
  it('hands out H(address) for every address, an address asked again outliving one asked once', () => {
    const memo = new StateKeys(2);
    const addresses = [1, 2, 3].map((i) => new Uint8Array(20).fill(i));
    const ask = (i: number) => memo.of(addresses[i]!, toHex(addresses[i]!));
    const first = ask(0);
    assert.deepEqual(first, stateKey(addresses[0]!));
    assert.equal(ask(0), first, 'a second ask is the same key, not a second hash');
    const second = ask(1);
    ask(2); // the memo is full: the second address, asked once, gives way; the first was asked again
    assert.equal(ask(0), first, 'the address asked twice is still held');
    const again = ask(1);
    assert.notEqual(again, second, 'hashed again after it was evicted');
    assert.deepEqual(again, stateKey(addresses[1]!));
    for (const a of addresses) assert.deepEqual(memo.of(a, toHex(a)), stateKey(a));
  });
});
