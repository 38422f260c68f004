/**
 * A light client's checkpoint (`cairn light --checkpoint HEIGHT:HASH`, node/light/checkpoint.ts):
 * the capture it closes (a peer met first with a cheap chain longer than the headers kept whole,
 * holding the work it claims), peers forking below it, and its keeping across restarts.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '../ledger/bytes.ts';
import type { Block } from '../ledger/block.ts';
import type { Chain } from '../consensus/chain.ts';
import { checkpointText, type Checkpoint } from '../consensus/header-rules.ts';
import { LightClient } from '../node/light/client.ts';
import { CHECKPOINT_FILE, CheckpointError } from '../node/light/checkpoint.ts';
import { checkpointArg, UsageError } from '../cli/args.ts';
import { decodeHeaders, encodeHeaders } from '../node/wire.ts';
import { tempDir } from './helpers/fixtures.ts';
import { mineChild } from './helpers/mining.ts';
import { FakeNet, FakeTransport, NOW, captureChains, carol, env, extend, fullNode, names, newChain, params, sharing } from './helpers/light-net.ts';

const at = (chain: Chain, height: number): Checkpoint => ({ height, hash: chain.mainAt(height)!.hash });

describe('light client checkpoint', function () {
  this.timeout(120_000);
  let dir: ReturnType<typeof tempDir>;
  let light: LightClient | undefined;
  let transport: FakeTransport;
  let net: FakeNet;
  let cheap: Chain; // longer than the headers kept whole, at the easiest targets
  let honest: Chain; // fewer headers, more work, forking from the cheap one at genesis
  let long: Chain; // on schedule, longer than the cheap chain: more work
  let cheapBlocks: Block[];

  before(async () => {
    ({ cheap, honest, cheapBlocks } = await captureChains());
    long = await newChain();
    await extend(long, cheap.tip.height + 60, 62);
  });

  beforeEach(() => {
    dir = tempDir('cairn-light-checkpoint-');
    net = new FakeNet();
  });
  afterEach(async () => {
    await light?.stop();
    light = undefined;
    dir.remove();
  });

  async function startLight(checkpoint?: Checkpoint): Promise<LightClient> {
    light = new LightClient({
      params,
      env,
      datadir: dir.path,
      bootstrap: [],
      statusIntervalMs: 3_600_000,
      checkpoint,
      createTransport: async (gate) => (transport = new FakeTransport(net, gate)),
    });
    await light.start();
    return light;
  }

  async function stopLight(): Promise<void> {
    await light!.stop();
    light = undefined;
  }

  async function meet(client: LightClient, peer: string): Promise<void> {
    transport.connect(peer);
    for (let i = 0; i < 100 && !client.statuses.has(peer) && !client.peers.isBanned(peer); i++) await new Promise((r) => setImmediate(r));
    await client.requestSync();
  }

  it('defeats the capture: a cheap chain longer than the headers kept, met first with an honest claim, is refused; the honest chain is followed and proves', async () => {
    // Without a checkpoint, test/light.test.ts ("forks from ours too far back") shows the capture.
    await fullNode(net, 'long', cheap);
    await fullNode(net, 'honest', honest);
    const client = await startLight(at(honest, 100));
    await meet(client, 'long');
    assert.ok(client.peers.isBanned('long'));
    assert.match(client.bans.get('long')!, /forks below the checkpoint 100:/);
    assert.equal(client.headers.height, 0, 'none of its headers became our chain');
    assert.equal(statSync(join(dir.path, 'headers')).size, 32, 'nor stayed in the hashes file');
    assert.equal(client.summary().checkpoint?.passed, false);
    await meet(client, 'honest');
    assert.equal(toHex(client.headers.tip.header.hash), honest.tip.hashHex);
    const proven = await client.getAccount(carol.address);
    assert.equal(toHex(proven.blockHash), honest.tip.hashHex);
    assert.deepEqual(proven.account, { balance: 507n, nonce: 0n });
    assert.deepEqual(client.summary().checkpoint, { height: 100, hash: honest.mainAt(100)!.hashHex, passed: true });
  });

  it('takes no chain that stops short of the checkpoint: a cheap one shorter than it is left, one whose status claimed to pass it is banned', async () => {
    await fullNode(net, 'cheap', cheap);
    await fullNode(net, 'cheap-liar', cheap, { status: (s) => ({ ...s, height: long.tip.height }) });
    await fullNode(net, 'long', long);
    const client = await startLight(at(long, cheap.tip.height + 20));
    await meet(client, 'cheap');
    assert.equal(client.headers.height, 0, 'a chain not yet at the checkpoint is not ours');
    assert.deepEqual([...client.bans], [], 'no fault: a node still syncing says as much');
    await meet(client, 'cheap-liar');
    assert.match(client.bans.get('cheap-liar') ?? '', /end at \d+, below the checkpoint its status claimed to pass/);
    assert.equal(client.headers.height, 0);
    await meet(client, 'long');
    assert.equal(toHex(client.headers.tip.header.hash), long.tip.hashHex);
  });

  it('takes no chain short of the checkpoint that ends in a header ahead of our clock either', async () => {
    // The headers before one ahead of the clock are taken when no other peer claims more (see
    // test/light.test.ts): a cheap chain ending so, short of the checkpoint, was a capture again.
    const parent = cheap.tip;
    const future = mineChild(params, { hash: parent.hash, height: parent.height, header: parent.header, anchorTimestamp: parent.anchorTimestamp }, [], { timestamp: NOW + 50_000 });
    await fullNode(net, 'cheap', cheap, { status: (s) => ({ ...s, height: long.tip.height }) });
    const handlers = net.peers.get('cheap')!;
    const respond = handlers.get(names.headerRange)!;
    handlers.set(names.headerRange, async (req, asker) => {
      const headers = decodeHeaders((await respond(req, asker)) as Uint8Array);
      return encodeHeaders(headers.at(-1)?.height === cheap.tip.height ? [...headers, future.header] : headers);
    });
    const client = await startLight(at(long, cheap.tip.height + 20));
    await meet(client, 'cheap');
    assert.equal(client.headers.height, 0);
  });

  it('refuses, and bans, a peer whose heavier branch forks below the checkpoint its chain passed', async () => {
    const { a, b } = await sharing(4);
    await extend(a, 30, 51);
    await extend(b, 40, 52); // more work, forking at 4
    await fullNode(net, 'a', a);
    await fullNode(net, 'b', b);
    const client = await startLight(at(a, 10));
    await meet(client, 'a');
    assert.equal(toHex(client.headers.tip.header.hash), a.tip.hashHex);
    await meet(client, 'b');
    assert.match(client.bans.get('b') ?? '', /forks below the checkpoint 10:/);
    assert.equal(toHex(client.headers.tip.header.hash), a.tip.hashHex);
    // A branch forking above it is followed as ever.
    const { a: c, b: d } = await sharing(12);
    await extend(c, 20, 51);
    await extend(d, 25, 53);
    await fullNode(net, 'c', c);
    await fullNode(net, 'd', d);
    await stopLight();
    dir.remove();
    dir = tempDir('cairn-light-checkpoint-');
    const again = await startLight(at(c, 10));
    await meet(again, 'c');
    await meet(again, 'd');
    assert.equal(toHex(again.headers.tip.header.hash), d.tip.hashHex);
    assert.deepEqual([...again.bans], []);
  });

  it('bans a peer whose heavier chain forks below the checkpoint further back than the headers kept whole, and more than an answer of headers below it', async () => {
    // From the list of peers that escape: the branch's first answer (2,000 headers from the fork)
    // stopped short of the checkpoint's height, and a fork that deep is not followed: the peer was
    // only left alone, while its status claims a chain past the checkpoint that leaves ours below
    // it, another block at its height.
    await fullNode(net, 'cheap', cheap);
    await fullNode(net, 'long', long);
    const client = await startLight(at(cheap, cheap.tip.height - 8));
    await meet(client, 'cheap');
    assert.equal(toHex(client.headers.tip.header.hash), cheap.tip.hashHex);
    await meet(client, 'long');
    assert.match(client.bans.get('long') ?? '', /forks below the checkpoint \d+:/);
    assert.equal(toHex(client.headers.tip.header.hash), cheap.tip.hashHex);
  });

  it('a restart keeps the checkpoint: in the datadir, in its status, and against the capture', async () => {
    await fullNode(net, 'honest', honest);
    await fullNode(net, 'long', cheap);
    const checkpoint = at(honest, 100);
    await startLight(checkpoint);
    await stopLight();
    assert.equal(readFileSync(join(dir.path, CHECKPOINT_FILE), 'utf8'), `${checkpointText(checkpoint)}\n`);
    let client = await startLight(); // no --checkpoint this time
    assert.deepEqual(client.summary().checkpoint, { height: 100, hash: toHex(checkpoint.hash), passed: false });
    await meet(client, 'long');
    assert.match(client.bans.get('long') ?? '', /forks below the checkpoint/);
    await meet(client, 'honest');
    await stopLight();
    client = await startLight();
    assert.equal(toHex(client.headers.tip.header.hash), honest.tip.hashHex, 'its saved tip');
    assert.deepEqual(client.summary().checkpoint, { height: 100, hash: toHex(checkpoint.hash), passed: true });
  });

  it('a checkpoint the kept chain contradicts is refused, naming both blocks, and changes nothing; one it agrees with replaces the kept one', async () => {
    await fullNode(net, 'honest', honest);
    const kept = at(honest, 100);
    await meet(await startLight(kept), 'honest');
    await stopLight();
    const other = { height: 200, hash: cheapBlocks[199]!.header.hash };
    await assert.rejects(startLight(other), (err: unknown) => {
      assert.ok(err instanceof CheckpointError);
      assert.equal(err.code, 'LIGHT_CHECKPOINT_CONTRADICTED');
      assert.match(err.message, new RegExp(`holds the checkpoint ${checkpointText(kept)}\\) has block ${honest.mainAt(200)!.hashHex} at height 200, not the checkpoint's ${toHex(other.hash)}`));
      return true;
    });
    light = undefined;
    assert.equal(readFileSync(join(dir.path, CHECKPOINT_FILE), 'utf8'), `${checkpointText(kept)}\n`);
    assert.ok(existsSync(join(dir.path, 'headers.tip')), 'the saved tip is still there');
    const newer = at(honest, 300);
    const client = await startLight(newer);
    assert.equal(client.headers.height, honest.tip.height, 'the chain kept, which passes through it');
    assert.equal(readFileSync(join(dir.path, CHECKPOINT_FILE), 'utf8'), `${checkpointText(newer)}\n`);
  });

  it('a chain kept from before a checkpoint above its tip starts over at genesis: a long cheap one no longer holds it', async () => {
    // Captured before any checkpoint was given (the cheap chain, longer than the headers kept).
    await fullNode(net, 'long', cheap);
    await meet(await startLight(), 'long');
    assert.equal(light!.headers.height, cheapBlocks.length);
    await stopLight();
    await fullNode(net, 'heavier', long);
    const client = await startLight(at(long, cheap.tip.height + 20));
    assert.equal(client.headers.height, 0);
    await meet(client, 'heavier');
    assert.equal(toHex(client.headers.tip.header.hash), long.tip.hashHex);
  });

  it('a checkpoint that cannot be kept (a full disk) refuses the start and changes nothing: the chain kept does not start over', async () => {
    // From the review: the headers file was cut back to genesis before the checkpoint's write.
    await fullNode(net, 'long', cheap);
    await meet(await startLight(), 'long');
    await stopLight();
    mkdirSync(join(dir.path, `${CHECKPOINT_FILE}.tmp`, 'in-the-way'), { recursive: true }); // the write's temporary file cannot be made
    await assert.rejects(startLight(at(long, cheap.tip.height + 20)));
    light = undefined;
    rmSync(join(dir.path, `${CHECKPOINT_FILE}.tmp`), { recursive: true });
    assert.equal((await startLight()).headers.height, cheapBlocks.length);
  });

  it('a checkpoint file that is not one is refused, naming it, and changes nothing', async () => {
    writeFileSync(join(dir.path, CHECKPOINT_FILE), 'not a checkpoint\n');
    await assert.rejects(startLight(), (err: unknown) => err instanceof CheckpointError && err.code === 'LIGHT_CHECKPOINT_FILE' && err.message.includes(join(dir.path, CHECKPOINT_FILE)));
    light = undefined;
    assert.equal(readFileSync(join(dir.path, CHECKPOINT_FILE), 'utf8'), 'not a checkpoint\n');
  });

  it("--checkpoint takes HEIGHT:HASH, as cairn verify's, with a height a header can hold", () => {
    const hash = 'ab'.repeat(32);
    assert.deepEqual(checkpointArg(`4294967295:${hash}`), { height: 4294967295, hash: Uint8Array.from(Buffer.from(hash, 'hex')) });
    for (const bad of [`4294967296:${hash}`, `99999999999999999999:${hash}`, `12:${hash.slice(2)}`, '12', `-1:${hash}`]) assert.throws(() => checkpointArg(bad), UsageError, bad);
  });
});
