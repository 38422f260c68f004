/**
 * Issue 13's second report, rebuilt: two `cairn node` processes in two network namespaces joined
 * by a virtual cable (veth), each on its own LAN address, no --bootstrap. They must find each other
 * by mDNS and converge. And a node whose namespace has no route to the mDNS group (no default
 * route: an isolated LAN) must say that mDNS cannot work there and what to do, instead of
 * staying silent. Network namespaces need root (CAP_SYS_ADMIN) and iproute2: without them the
 * tests say why and are skipped; test/e2e/discovery.test.ts covers mDNS on one machine.
 *
 * The nodes' RPC listens on each namespace's own loopback, out of the test's reach, so the test
 * reads what a user reads: the logs.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { encodeAddress } from '../../ledger/keys.ts';
import { tempDir, testKey } from '../helpers/fixtures.ts';
import { CAIRN_MAIN, Cluster, report, secs, stopProcess, track, waitFor } from '../helpers/cluster.ts';
import { withCompileCache } from '../helpers/compile-cache.ts';

const PREFIX = `cairn-t${process.pid}`;

function ip(...args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.error?.message ?? r.stderr ?? '').trim() };
}

/** Why namespaces cannot be made here, or undefined. */
function namespacesUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const probe = `${PREFIX}-probe`;
  const made = ip('netns', 'add', probe);
  if (!made.ok) return `ip netns add failed: ${made.err}`;
  ip('netns', 'del', probe);
  return undefined;
}

/** A node process inside namespace `ns`, its JSON log lines collected as they come. */
class NsNode {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[] = [];

  constructor(ns: string, datadir: string, genesis: string, extra: string[] = []) {
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, CAIRN_MAIN, 'node', '--datadir', datadir, '--genesis', genesis, '--p2p-port', '0', '--rpc-port', '0', '--log-level', 'info', ...extra], { env: withCompileCache(), stdio: ['ignore', 'pipe', 'pipe'] });
    track(this.child); // `ip netns exec` execs the node: the pid is the node's
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        if (line.startsWith('{')) this.lines.push(JSON.parse(line) as Record<string, unknown>);
      });
    }
  }

  logged(message: RegExp): Record<string, unknown>[] {
    return this.lines.filter((l) => message.test(String(l['msg'])));
  }

  get peerId(): string | undefined {
    return this.logged(/^node started$/)[0]?.['peerId'] as string | undefined;
  }
}

describe('e2e: nodes in network namespaces', function () {
  this.timeout(90_000);
  const why = namespacesUnavailable();
  const namespaces: string[] = [];
  const running: NsNode[] = [];
  let c: Cluster | undefined;

  before(function () {
    if (why) {
      report(`SKIPPED: ${why}`);
      this.skip();
    }
    c = new Cluster({ name: 'netns' });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') for (const n of running) console.log(n.lines.map((l) => JSON.stringify(l)).join('\n'));
    await Promise.all(running.splice(0).map((n) => stopProcess(n.child, 'SIGTERM', 10_000)));
    for (const ns of namespaces.splice(0)) ip('netns', 'del', ns);
  });
  after(async () => {
    await c?.destroy();
  });

  function namespace(name: string): string {
    const ns = `${PREFIX}-${name}`;
    assert.ok(ip('netns', 'add', ns).ok, `ip netns add ${ns}`);
    namespaces.push(ns);
    assert.ok(ip('-n', ns, 'link', 'set', 'lo', 'up').ok);
    return ns;
  }

  function node(ns: string, name: string, extra: string[] = []): NsNode {
    const n = new NsNode(ns, join(c!.root.path, name), c!.genesisFile, extra);
    running.push(n);
    return n;
  }

  it('two namespaces joined by a veth cable: the nodes find each other by mDNS and converge', async () => {
    const a = namespace('a');
    const b = namespace('b');
    assert.ok(ip('-n', a, 'link', 'add', 'cairn0', 'type', 'veth', 'peer', 'name', 'cairn0', 'netns', b).ok, 'the cable');
    for (const [ns, addr] of [[a, '10.77.0.1/24'], [b, '10.77.0.2/24']] as const) {
      assert.ok(ip('-n', ns, 'addr', 'add', addr, 'dev', 'cairn0').ok);
      assert.ok(ip('-n', ns, 'link', 'set', 'cairn0', 'up').ok);
      assert.ok(ip('-n', ns, 'route', 'add', 'default', 'dev', 'cairn0').ok, 'a default route, as a LAN with a gateway has');
    }
    const started = Date.now();
    const miner = node(a, 'miner', ['--mine', '--coinbase', encodeAddress(testKey(720).address), '--threads', '1']);
    const follower = node(b, 'follower');
    const { value: ids } = await waitFor('both nodes to start', 30_000, () => (miner.peerId && follower.peerId ? { miner: miner.peerId, follower: follower.peerId } : undefined));
    const { value: link } = await waitFor('the follower to connect to the miner', 30_000, () => follower.logged(/^peer connected$/).find((l) => l['peer'] === ids.miner));
    assert.match(String(link['address']), /^\/ip4\/10\.77\.0\.1\/tcp\//, 'over the cable');
    const { value: received } = await waitFor('the follower to receive a block by gossip', 30_000, () => follower.logged(/^received block$/).at(-1));
    // The two processes' logs reach the test by separate pipes: the miner's line may come second.
    await waitFor('the miner to have logged the block the follower received', 10_000, () => miner.logged(/^mined block$/).some((l) => l['hash'] === received['hash']));
    assert.equal(miner.logged(/^no peers/).length + follower.logged(/^no peers/).length, 0);
    report(`connected over ${String(link['address']).split('/p2p/')[0]} and at block ${String(received['height'])} ${secs(Date.now() - started)} after start`);
  });

  it('a namespace with no route to the mDNS group: the node says mDNS cannot work, and what to do', async () => {
    const ns = namespace('isolated');
    const n = node(ns, 'isolated');
    const { value: warning } = await waitFor('the mDNS warning', 30_000, () => n.logged(/mDNS/).at(0));
    assert.equal(warning['level'], 40);
    assert.match(String(warning['msg']), /^no route to the mDNS group 224\.0\.0\.251 \(.*ENETUNREACH.*\): mDNS cannot announce this node nor hear others\. .*ip route add 224\.0\.0\.0\/4 dev IFACE.*--bootstrap$/);
    report(String(warning['msg']));
  });
});
