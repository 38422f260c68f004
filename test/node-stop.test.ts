/**
 * A node's stop against work still under way: what was handed in before the stop ends or is
 * refused, and nothing reaches the store once it closes, so the next start finds it as a clean
 * close left it (the tree's top read from its checkpoint, not rebuilt from a scan).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ChainDB } from '../ledger/chaindb.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { CairnError } from '../ledger/errors.ts';
import type { KvStore } from '../ledger/kv.ts';
import { kvOver } from './helpers/kv.ts';
import { readFileSync } from 'node:fs';
import { RPC_ENDPOINT_FILE, RPC_ERRORS, type RpcEndpointFile } from '../node/rpc-types.ts';
import { JsonRpcServer } from '../node/rpc.ts';
import { CairnNode, StoppedDuringStart } from '../node/node.ts';
import { createNode } from '../node/launch.ts';
import { encodeCompactBlock } from '../node/compact.ts';
import type { GossipValidator } from '../node/transport.ts';
import { encodeTxBatch } from '../node/wire.ts';
import { loadMempool } from '../node/mempool-file.ts';
import { Mempool } from '../ledger/mempool.ts';
import { FUNDED_KEYS, tempDir, testKey, transfer } from './helpers/fixtures.ts';
import { asParent, mineChild } from './helpers/mining.ts';
import { mineOn, networkParams, waitFor, type TestNode } from './helpers/network.ts';

interface Logged {
  readonly level: string;
  readonly message: string;
}

describe('a node stop against work under way', function () {
  this.timeout(60_000);
  const params = networkParams({ name: 'cairn-node-stop' });
  let dir: ReturnType<typeof tempDir>;
  let node: CairnNode | undefined;

  beforeEach(() => (dir = tempDir('cairn-node-stop-')));
  afterEach(async () => {
    await node?.stop();
    node = undefined;
    dir.remove();
  });

  /** A real node (libp2p on 127.0.0.1, files in the temporary datadir) over `kv`, and what it logs. */
  function nodeOver(kv: KvStore): { node: CairnNode; logged: Logged[] } {
    const { parts } = createNode({ datadir: dir.path, params, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, verifyThreads: 1 });
    const made = new CairnNode({ ...parts, openStore: async () => kv });
    const logged: Logged[] = [];
    made.on('log', (level, message) => void logged.push({ level, message }));
    return { node: made, logged };
  }

  /** A real node (LevelDB in a temporary datadir, libp2p on 127.0.0.1) whose gossip validators the test can call as a peer's message would. */
  function nodeWithValidators(): { node: CairnNode; validators: Map<string, GossipValidator>; logged: Logged[] } {
    const { parts } = createNode({ datadir: dir.path, params, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, verifyThreads: 1 });
    const validators = new Map<string, GossipValidator>();
    const made = new CairnNode({
      ...parts,
      createTransport: async (gate, names) => {
        const transport = await parts.createTransport(gate, names);
        const subscribe = transport.subscribe.bind(transport);
        transport.subscribe = (topic, validate) => {
          validators.set(topic, validate);
          subscribe(topic, validate);
        };
        return transport;
      },
    });
    const logged: Logged[] = [];
    made.on('log', (level, message) => void logged.push({ level, message }));
    return { node: made, validators, logged };
  }

  it('a compact block waiting for its parent\'s import when the stop comes is refused, not imported into the closed store', async () => {
    // From the lifecycle review: the child went on once its parent's import ended, which the stop
    // waited for, and its own import then ran beside the rest of the stop, into the store as it
    // closed: its tree's top changed under the close's checkpoint, and the next start rebuilt the
    // top from a scan (or the import read a closed store, a warning of a failure on our side).
    const made = nodeWithValidators();
    node = made.node;
    await node.start();
    const compactTopic = node.names.compactBlockTopic;
    const validate = made.validators.get(compactTopic)!;
    const parent = mineChild(params, node.chain.tip, [], { miner: testKey(70).address });
    const child = mineChild(params, asParent(parent), [], { miner: testKey(71).address });

    // The parent's import held inside the import queue, as a long import is.
    let release!: () => void;
    const held = node.chain.withImportsPaused(() => new Promise<void>((resolve) => (release = resolve)));
    assert.equal(await validate('forwarder', encodeCompactBlock(parent)), 'accept', 'on the tip: forwarded before its import');
    const childVerdict = validate('forwarder', encodeCompactBlock(child));
    await waitFor(() => node!.gossip.compactStats.awaitedParent === 1, 10_000, 'the child to wait for its parent');

    // The parent's import ends during the stop, once the node has hung up on its peers.
    const transport = node.transport;
    const stopTransport = transport.stop.bind(transport);
    transport.stop = () => {
      release();
      return stopTransport();
    };
    // The child's import, if it gets that far, is handed in once the close has begun: then, not
    // by chance, it meets the store as the stop leaves it.
    const db = node.db;
    const close = db.close.bind(db);
    let closing!: () => void;
    const closeBegun = new Promise<void>((resolve) => (closing = resolve));
    db.close = () => {
      closing();
      return close();
    };
    const process = node.chain.processSaneBlock.bind(node.chain);
    node.chain.processSaneBlock = async (block) => {
      if (block.header.height === child.header.height) await closeBegun;
      return process(block);
    };
    await node.stop();
    await held;
    assert.equal(await childVerdict, 'ignore', 'the child refused: the node was stopping');
    node = undefined;
    assert.deepEqual(made.logged.filter((l) => l.level === 'warn' || l.level === 'error'), []);

    const reopened = await ChainDB.open(join(dir.path, 'chain'), params);
    try {
      assert.equal(reopened.topFrom, 'checkpoint', "the close's checkpoint held: nothing was written after it");
      assert.equal((await reopened.storedTip()).height, 1, 'the parent in, the child not');
    } finally {
      await reopened.close();
    }
  });

  it('a compact block whose transactions its forwarder has not sent yet when the stop comes: the stop does not wait for them', async () => {
    // The stop lets gossip validations end; one waiting on a peer's answer must not hold it: a
    // transport need not fail its requests at its stop (libp2p does; the simulator's never answer).
    const made = nodeWithValidators();
    node = made.node;
    await node.start();
    const validate = made.validators.get(node.names.compactBlockTopic)!;
    const block = mineChild(params, node.chain.tip, [transfer(FUNDED_KEYS[0]!, testKey(73).address, 5n, 0n)], { miner: testKey(74).address });
    const transport = node.transport;
    const request = transport.request.bind(transport);
    let asked = false;
    transport.request = (peer, protocol, body, limits) => {
      if (protocol !== node!.names.blockTxs) return request(peer, protocol, body, limits);
      asked = true;
      return new Promise<Uint8Array>(() => {}); // the forwarder never answers
    };
    const verdict = validate('forwarder', encodeCompactBlock(block));
    await waitFor(() => asked, 10_000, 'the node to ask the forwarder for the transaction');
    let stopped = false;
    const stopping = node.stop().then(() => (stopped = true));
    await waitFor(() => stopped, 10_000, 'the stop to end');
    await stopping;
    node = undefined;
    assert.equal(await verdict, 'ignore');
    assert.deepEqual(made.logged.filter((l) => l.level === 'warn' || l.level === 'error'), []);
  });

  it('a transaction batch whose signatures are still being checked when the stop comes is admitted before the store closes, and saved', async () => {
    // From the lifecycle review: the stop waited for the mempool's queue, but not for a gossiped
    // batch still on the signature pool (a full batch takes a while on a busy pool): admitted
    // after the stop had written the mempool file, it was lost, or it read the closed store.
    const made = nodeWithValidators();
    node = made.node;
    await node.start();
    const validate = made.validators.get(node.names.txTopic)!;
    const tx = transfer(FUNDED_KEYS[0]!, testKey(72).address, 5n, 0n);
    let release!: () => void;
    const checked = new Promise<void>((resolve) => (release = resolve));
    const signatures = node.signatures;
    const preverify = signatures.preverifyFromPeer.bind(signatures);
    signatures.preverifyFromPeer = async (txs) => {
      await checked;
      return preverify(txs);
    };
    const verdict = validate('relayer', encodeTxBatch([tx]));
    // The check ends once the stop waits for it, or, if the stop never does, once the close begins.
    const gossip = node.gossip as unknown as { drained?: () => Promise<void> };
    const drained = gossip.drained?.bind(gossip);
    if (drained) {
      gossip.drained = () => {
        release();
        return drained();
      };
    }
    const db = node.db;
    const close = db.close.bind(db);
    db.close = () => {
      release();
      return close();
    };
    await node.stop();
    assert.equal(await verdict, 'accept');
    node = undefined;
    assert.deepEqual(made.logged.filter((l) => l.level === 'warn' || l.level === 'error'), []);

    const reopened = await ChainDB.open(join(dir.path, 'chain'), params);
    try {
      const mempool = new Mempool(reopened, params);
      const restored = await loadMempool(dir.path, mempool, Math.floor(Date.now() / 1000));
      assert.equal(restored.admitted, 1, JSON.stringify(restored));
      assert.ok(mempool.has(tx.id));
    } finally {
      await reopened.close();
    }
  });

  it('a start after a kill says so: the tree rebuilt from the store, the height it goes on from; after a clean stop it says nothing of the kind', async () => {
    // From the lifecycle review: a node killed (OOM, power cut) started again slower, its tree's
    // top rebuilt from a scan, the blocks still queued at the kill gone, and its log said nothing.
    const disk = new MemoryDisk();
    const unclean = /^the last stop was not clean/;
    const first = nodeOver(disk.open());
    node = first.node;
    await node.start();
    await mineOn({ node } as TestNode, 2);
    await node.stop();
    // Then a kill: nothing the stop writes reaches the store.
    let killed = false;
    const inner = disk.open();
    const clean = nodeOver(kvOver(inner, { write: (ops) => (killed ? Promise.resolve() : inner.write(ops)), clear: (range) => (killed ? Promise.resolve() : inner.clear(range)) }));
    node = clean.node;
    await node.start();
    assert.deepEqual(clean.logged.filter((l) => unclean.test(l.message)), [], 'after a clean stop');
    await mineOn({ node } as TestNode, 1);
    await node.db.flushed();
    killed = true;
    await node.stop();
    const again = nodeOver(disk.open());
    node = again.node;
    await node.start();
    const told = again.logged.filter((l) => unclean.test(l.message));
    assert.equal(told.length, 1, JSON.stringify(again.logged));
    assert.equal(told[0]!.level, 'warn');
    assert.equal(node.chain.tip.height, 3, 'on from the last block committed');
  });

  it('a stop asked during the start ends it after the step under way: no transport made, the store closed cleanly, the threads ended', async () => {
    // From the lifecycle review: the stop waited for the whole start (libp2p up, the services
    // started) before it began, however long the store's open took (a scan, a resumed install).
    const { parts } = createNode({ datadir: dir.path, params, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, verifyThreads: 1 });
    const disk = new MemoryDisk();
    let release!: () => void;
    const opened = new Promise<void>((resolve) => (release = resolve));
    let transports = 0;
    let released = false;
    const made = new CairnNode({
      ...parts,
      openStore: async () => {
        await opened;
        return disk.open();
      },
      createTransport: async (gate, names) => {
        transports++;
        return parts.createTransport(gate, names);
      },
      release: async () => {
        await parts.release?.();
        released = true;
      },
    });
    const starting = made.start();
    const stopping = made.stop();
    release();
    await assert.rejects(starting, (err) => err instanceof StoppedDuringStart && /after the store open/.test(err.message));
    await stopping;
    assert.equal(transports, 0, 'no transport made');
    assert.ok(released, 'the worker threads ended');
    const reopened = await ChainDB.open(disk.open(), params);
    try {
      assert.equal(reopened.topFrom, 'checkpoint', 'the store was closed cleanly');
    } finally {
      await reopened.close();
    }
  });

  it('an auditState call in flight (a replay of the whole chain, under the import lock) ends at the stop, not at the chain\'s top', async () => {
    // From the lifecycle review: the stop waits for the imports to end, and the audit holds their
    // lock for as long as the replay of the chain takes (hours on a long one): a SIGTERM sat it
    // out, and a service manager's SIGKILL after its timeout made the stop a kill.
    node = createNode({ datadir: dir.path, params, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, verifyThreads: 1, rpc: { port: 0 } });
    await node.start();
    await mineOn({ node } as TestNode, 20);
    const endpoint = JSON.parse(readFileSync(join(dir.path, RPC_ENDPOINT_FILE), 'utf8')) as RpcEndpointFile;
    // The replay held at block 5, as a long one is busy; it goes on once the stop is under way.
    const db = node.db;
    const read = db.getBlockAtHeight.bind(db);
    let release!: () => void;
    const resume = new Promise<void>((resolve) => (release = resolve));
    let atFive = false;
    let readAfterStop = 0;
    let stopping = false;
    db.getBlockAtHeight = async (height) => {
      if (stopping) readAfterStop++;
      if (height === 5) {
        atFive = true;
        await resume;
      }
      return read(height);
    };
    const answer = fetch(endpoint.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${endpoint.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'auditState', params: {} }),
    }).then((r) => r.json(), (err: Error) => err);
    await waitFor(() => atFive, 10_000, 'the audit to reach block 5');
    const transport = node.transport;
    const stopTransport = transport.stop.bind(transport);
    transport.stop = () => {
      stopping = true;
      release();
      return stopTransport();
    };
    await node.stop();
    node = undefined;
    await answer; // cut by the stop, or answered: either way, over
    assert.ok(readAfterStop <= 1, `the replay read ${readAfterStop} blocks after the stop began`);
  });

  /** What a call that fails with `failure` once the server's stop has begun is answered, and what was logged. */
  async function failingWhileStopping(failure: Error) {
    let release!: () => void;
    const closed = new Promise<void>((resolve) => (release = resolve));
    let running = false;
    const handlers = {
      async getBlock() {
        running = true;
        await closed;
        throw failure;
      },
    };
    const warned: string[] = [];
    const server = new JsonRpcServer({}, handlers, { datadir: dir.path, port: 0, log: (_level, message) => void warned.push(message) });
    await server.start();
    const answer = fetch(server.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'getBlock', params: {} }),
    }).then((r) => r.json() as Promise<{ error?: { code: number; message: string } }>);
    await waitFor(() => running, 10_000, 'the call to run');
    const stopped = server.stop();
    release();
    const { error } = await answer;
    await stopped;
    return { error, warned };
  }

  it('an RPC call that fails once the stop has begun (its store closed under it) is answered "stopping", not logged as a failure on our side', async () => {
    // From the lifecycle review: a call still running when the RPC server's stop cut its
    // connection (a second after the stop began) went on to read the store the stop closed, and
    // the log said "rpc: getBlock failed on our side: Database is not open", with its stack.
    const { error, warned } = await failingWhileStopping(new Error('Database is not open'));
    assert.equal(error?.code, RPC_ERRORS.STOPPING, JSON.stringify(error));
    assert.match(error!.message, /^the node is stopping/);
    assert.deepEqual(warned, []);
  });

  it("a refusal once the stop has begun is the request's (a balance too low), not \"stopping\"", async () => {
    // From the review of the change above: every failure became "stopping", a refusal too.
    const { error } = await failingWhileStopping(new CairnError('MEMPOOL_INSUFFICIENT_BALANCE', 'insufficient funds: have 0, need 6'));
    assert.equal(error?.code, RPC_ERRORS.REJECTED, JSON.stringify(error));
    assert.equal(error?.message, 'insufficient funds: have 0, need 6');
  });

  it('a transport whose stop fails: the rest of the stop still runs (the store closed, its threads ended), and the stop fails with it at its end', async () => {
    // From the lifecycle review: each step of the stop awaited the one before, so a libp2p stop
    // that threw skipped the store's close (its checkpoint: the next start rebuilt the tree from a
    // scan), the mempool file and the worker threads, and cairn node exited on the error mid-stop.
    const { parts } = createNode({ datadir: dir.path, params, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, verifyThreads: 1 });
    let released = false;
    const disk = new MemoryDisk();
    const made = new CairnNode({
      ...parts,
      openStore: async () => disk.open(),
      createTransport: async (gate, names) => {
        const transport = await parts.createTransport(gate, names);
        const stop = transport.stop.bind(transport);
        transport.stop = async () => {
          await stop();
          throw new Error('the host failed to stop one of its services');
        };
        return transport;
      },
      release: async () => {
        await parts.release?.();
        released = true;
      },
    });
    const logged: Logged[] = [];
    made.on('log', (level, message) => void logged.push({ level, message }));
    node = made;
    await node.start();
    await mineOn({ node } as TestNode, 1);
    await assert.rejects(node.stop(), /failed to stop one of its services/);
    node = undefined;
    assert.ok(released, 'the worker threads ended');
    const reopened = await ChainDB.open(disk.open(), params);
    try {
      assert.equal(reopened.topFrom, 'checkpoint', 'the store was closed cleanly');
      assert.equal((await reopened.storedTip()).height, 1);
    } finally {
      await reopened.close();
    }
  });
});
