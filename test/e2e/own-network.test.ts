/**
 * A network of one's own, as README.md makes it: `cairn genesis new` writes the genesis file, two
 * nodes on two datadirs start on it, one mines, the other syncs, and a transfer confirms at both.
 * The network has a chain id of its own: a transaction signed for the devnet is refused on it.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseGenesis } from '../../ledger/genesis.ts';
import { encodeAddress } from '../../ledger/keys.ts';
import { testKey, tempDir } from '../helpers/fixtures.ts';
import { cairn, DEVNET_ADDRESS, DEVNET_KEY, E2E_TARGET, NodeProc, signedTransfer, stopProcess, waitFor } from '../helpers/cluster.ts';

describe('e2e: a network of ones own, from cairn genesis new', function () {
  this.timeout(120_000);
  const root = tempDir('cairn-e2e-own-');
  const nodes: NodeProc[] = [];

  after(async () => {
    await Promise.all(nodes.filter((n) => n.child).map((n) => stopProcess(n.child, 'SIGTERM', 10_000)));
    if (!process.env['CAIRN_E2E_KEEP']) root.remove();
  });

  it('two nodes on a new genesis sync, and a transfer confirms at both', async () => {
    // The devnet's key is funded so that the test can sign; the target is easy so that it runs fast.
    const made = await cairn(['genesis', 'new', '--name', 'own-net-1', '--alloc', `${DEVNET_ADDRESS}=1000CRN`, '--target', E2E_TARGET]);
    assert.equal(made.code, 0, made.stderr);
    const genesisFile = join(root.path, 'own-net.json');
    writeFileSync(genesisFile, made.stdout);
    const params = parseGenesis(readFileSync(genesisFile, 'utf8'));
    assert.notEqual(params.chainId, 1337, 'a chain id of its own, not the devnet\'s');
    assert.ok(Math.abs(params.timestamp - Date.now() / 1000) < 60, 'dated now');
    assert.deepEqual(params.alloc.map((a) => [encodeAddress(a.address), a.balance]), [[DEVNET_ADDRESS, 1000n * 10n ** 8n]]);

    const init = await cairn(['init', '--datadir', join(root.path, 'a'), '--genesis', genesisFile]);
    assert.equal(init.code, 0, init.stderr);
    const a = new NodeProc('a', join(root.path, 'a'), genesisFile, join(root.path, 'a.log'));
    const b = new NodeProc('b', join(root.path, 'b'), genesisFile, join(root.path, 'b.log'));
    nodes.push(a, b);
    await a.start({ coinbase: encodeAddress(testKey(700).address) });
    await b.start({ bootstrap: [a.addr] });
    await waitFor('b on a\'s chain above genesis', 30_000, async () => {
      const [sa, sb] = await Promise.all([a.status(), b.status()]);
      return sb.height > 0 && sb.genesis === sa.genesis && sa.network === 'own-net-1';
    });

    const signedForDevnet = signedTransfer({ ...params, chainId: 1337 }, DEVNET_KEY, testKey(701).address, 5n, 0n);
    await assert.rejects(b.call('sendRawTransaction', { tx: signedForDevnet.hex }), /chain/i);

    const to = encodeAddress(testKey(701).address);
    const tx = signedTransfer(params, DEVNET_KEY, testKey(701).address, 12_345n, 0n);
    await b.call('sendRawTransaction', { tx: tx.hex });
    await waitFor('the transfer confirmed at both nodes', 60_000, async () => {
      const [ta, tb] = await Promise.all([a.call('getTransaction', { id: tx.id }), b.call('getTransaction', { id: tx.id })]);
      return ta.status === 'confirmed' && tb.status === 'confirmed' && ta.blockHash === tb.blockHash;
    }, 200);
    for (const n of [a, b]) assert.equal((await n.call('getAccount', { address: to })).balance, '12345');
  });

  it('two nodes given different genesis files: each operator is told, in the log and in cairn status', async () => {
    const files: string[] = [];
    for (const name of ['ours-1', 'theirs-1']) {
      const made = await cairn(['genesis', 'new', '--name', name]);
      assert.equal(made.code, 0, made.stderr);
      files.push(join(root.path, `${name}.json`));
      writeFileSync(files.at(-1)!, made.stdout);
    }
    const ours = new NodeProc('ours', join(root.path, 'ours'), files[0]!, join(root.path, 'ours.log'));
    const theirs = new NodeProc('theirs', join(root.path, 'theirs'), files[1]!, join(root.path, 'theirs.log'));
    nodes.push(ours, theirs);
    await ours.start();
    await theirs.start({ bootstrap: [ours.addr] });
    for (const n of [ours, theirs]) {
      const { value: ban } = await waitFor(`${n.name} to ban the other as another network`, 30_000, async () => (await n.status()).lastBan);
      assert.match(ban.reason, /another network.*same genesis\.json/);
      assert.equal(ban.peer, n === ours ? theirs.peerId : ours.peerId);
      await waitFor(`${n.name}'s log to say so`, 10_000, () => n.logLines(/"reason":"another network.*"msg":"banned peer"/).length > 0);
      const text = await cairn(['status', '--datadir', n.datadir]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^banned +1 peer; the last \d+ s ago, \S+: another network/m);
    }
    // The one that was given --bootstrap is not told to --bootstrap a peer: its peer was banned.
    assert.match((await cairn(['status', '--datadir', theirs.datadir])).stdout, /^sync +no peers: the last one was banned \(see banned\)/m);
  });
});
