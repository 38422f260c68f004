/**
 * PeerBook: who a node dials and when. A peer heard of by discovery (mDNS, the DHT) is dialled
 * like a bootstrap peer, with the same backoff, but only while the node has few connections, and
 * forgotten after failing five times in a row, until it is announced again.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Env } from '../node/env.ts';
import { PeerBook } from '../node/peer-book.ts';
import { peerFile, PEERS_FILE, type KnownAddress } from '../node/peer-file.ts';
import { KeepConnected } from '../node/keep-connected.ts';
import { tempDir } from './helpers/fixtures.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PeerManager } from '../node/peers.ts';
import { TransportError, type TransportEvents } from '../node/transport.ts';

/** A transport that records dials and answers them as the test says; time moves when the test says. */
class FakeNet extends EventEmitter<TransportEvents> {
  readonly peerId = 'self';
  now = 1_000_000;
  /** How far the wall clock was set off `now`, time as it passes. */
  stepMs = 0;
  connected = new Set<string>();
  /** Of the connected peers, those that dialled us. */
  inbound = new Set<string>();
  reachable = new Set<string>();
  /** The addresses each dial was given. */
  dialAddrs: string[][] = [];
  dials: { peer: string; at: number }[] = [];
  /** Where each peer was dialled, its connection's remote address. */
  remote = new Map<string, string>();
  /** Called inside each dial, as libp2p asks the connection gate. */
  onDial: ((peer: string) => void) | undefined;

  peers(): string[] {
    return [...this.connected];
  }

  connectionInfo(peer: string): { direction: 'inbound' | 'outbound'; remoteAddr: string } | undefined {
    return this.connected.has(peer) ? { direction: this.inbound.has(peer) ? 'inbound' : 'outbound', remoteAddr: this.remote.get(peer) ?? addr(peer) } : undefined;
  }

  async dial(addrs: readonly string[]): Promise<string> {
    this.dialAddrs.push([...addrs]);
    const peer = /\/p2p\/([^/]+)$/.exec(addrs[0]!)![1]!;
    this.dials.push({ peer, at: this.now });
    this.onDial?.(peer);
    if (!this.reachable.has(peer)) throw new TransportError('TRANSPORT_CLOSED', `connection refused by ${peer}`);
    this.connected.add(peer);
    this.remote.set(peer, addrs[0]!);
    return peer;
  }

  env(): Env {
    return { now: () => this.now + this.stepMs, monotonic: () => this.now } as Env;
  }

  dialsOf(peer: string): number[] {
    return this.dials.filter((d) => d.peer === peer).map((d) => d.at - 1_000_000);
  }
}

const addr = (id: string) => `/ip4/127.0.0.1/tcp/1/p2p/${id}`;
const settle = () => new Promise((r) => setImmediate(r));

/** Runs the node's once-a-second redial for `seconds` seconds. */
async function tick(net: FakeNet, book: PeerBook, seconds: number): Promise<void> {
  for (let i = 0; i < seconds; i++) {
    book.redial();
    await settle();
    net.now += 1000;
  }
}

describe('PeerBook: dialling known and discovered peers', () => {
  let net: FakeNet;
  let peers: PeerManager;
  let book: PeerBook;
  let failures: string[];
  beforeEach(() => {
    net = new FakeNet();
    peers = new PeerManager(() => Math.floor(net.now / 1000));
    book = new PeerBook(net.env(), net as never, peers);
    failures = [];
    book.onDialFailed = (peer, source, addrs, err) => failures.push(`${source} ${peer} ${addrs.join(',')}: ${err.message}`);
  });

  it('dials a discovered peer at once and connects', async () => {
    net.reachable.add('d1');
    assert.equal(book.discovered('d1', [addr('d1')]), true);
    await tick(net, book, 3);
    assert.deepEqual(net.dialsOf('d1'), [0]);
    assert.deepEqual(net.peers(), ['d1']);
  });

  it('redials an unreachable discovered peer with the backoff of a bootstrap peer (1, 2, 4, 8 s …), reports it once', async () => {
    book.remember(addr('b1'), 'bootstrap');
    book.discovered('d1', [addr('d1')]);
    await tick(net, book, 16);
    assert.deepEqual(net.dialsOf('b1'), [0, 1000, 3000, 7000, 15000]);
    assert.deepEqual(net.dialsOf('d1'), net.dialsOf('b1'));
    assert.deepEqual(failures, [`bootstrap b1 ${addr('b1')}: connection refused by b1`, `discovered d1 ${addr('d1')}: connection refused by d1`]);
  });

  it('keeps its backoff when the wall clock is set back an hour: the next dial is due as it was', async () => {
    book.remember(addr('b1'), 'bootstrap');
    await tick(net, book, 16);
    assert.deepEqual(net.dialsOf('b1'), [0, 1000, 3000, 7000, 15000]);
    net.stepMs -= 3_600_000;
    net.reachable.add('b1');
    await tick(net, book, 20);
    assert.deepEqual(net.dialsOf('b1'), [0, 1000, 3000, 7000, 15000, 31000], 'dialled 16 s after the last, not an hour later');
    assert.deepEqual(net.peers(), ['b1']);
  });

  it('forgets a discovered peer after five failed dials in a row, keeps a bootstrap peer, and dials the peer again when it is announced again', async () => {
    book.remember(addr('b1'), 'bootstrap');
    book.discovered('d1', [addr('d1')]);
    await tick(net, book, 120);
    assert.equal(net.dialsOf('d1').length, 5, 'five tries, then forgotten');
    assert.equal(book.size, 1);
    assert.ok(net.dialsOf('b1').length > 5, 'a bootstrap peer is never given up');
    // mDNS answers again: the peer is back on the network.
    net.reachable.add('d1');
    assert.equal(book.discovered('d1', [addr('d1')]), true);
    await tick(net, book, 1);
    assert.deepEqual(net.peers(), ['d1']);
  });

  it('dials discovered peers only while the node has fewer than 8 connections; bootstrap peers always', async () => {
    for (let i = 0; i < 8; i++) net.connected.add(`c${i}`);
    book.discovered('d1', [addr('d1')]);
    book.remember(addr('b1'), 'bootstrap');
    await tick(net, book, 5);
    assert.deepEqual(net.dialsOf('d1'), []);
    assert.equal(net.dialsOf('b1').length > 0, true);
    net.connected.delete('c0');
    await tick(net, book, 1);
    assert.equal(net.dialsOf('d1').length, 1);
  });

  it('inbound connections do not count toward the 8: a few cheap ones cannot stop it dialling (an eclipse)', async () => {
    // From a review: 8 inbound connections from one /24 stopped every dial of a discovered peer.
    for (let i = 0; i < 8; i++) {
      net.connected.add(`in${i}`);
      net.inbound.add(`in${i}`);
    }
    net.reachable.add('d1');
    book.discovered('d1', [addr('d1')]);
    await tick(net, book, 1);
    assert.deepEqual(net.dialsOf('d1'), [0]);
  });

  it('one subnet announcing a thousand identities does not push the others out of the book; a peer keeps 8 addresses', async () => {
    const at = (ip: string, id: string) => `/ip4/${ip}/tcp/1/p2p/${id}`;
    for (let i = 0; i < 20; i++) book.discovered(`honest${i}`, [at(`198.51.${i}.1`, `honest${i}`)]);
    let taken = 0;
    for (let i = 0; i < 1_000; i++) if (book.discovered(`evil${i}`, [at('203.0.113.5', `evil${i}`)])) taken++;
    assert.equal(taken, 64, 'a subnet gets its share of the book');
    assert.equal(book.size, 20 + 64, 'every honest peer kept');
    // Its own list of addresses puts no peer outside the caps (127.0.0.1 first, or names only).
    let more = 0;
    for (let i = 0; i < 500; i++) if (book.discovered(`sly${i}`, [`/ip4/127.0.0.1/tcp/1/p2p/sly${i}`, at('203.0.113.9', `sly${i}`)])) more++;
    for (let i = 0; i < 500; i++) if (book.discovered(`named${i}`, [`/dns4/node${i}.example/tcp/1/p2p/named${i}`])) more++;
    assert.equal(more, 64, 'none more from that subnet, and 64 without an IP');
    const alone = new PeerBook(net.env(), net as never, peers);
    const many = Array.from({ length: 100 }, (_, i) => at(`192.0.2.${i}`, 'multi'));
    alone.discovered('multi', many.slice(0, 50));
    for (const a of many.slice(50)) alone.discovered('multi', [a]);
    net.dialAddrs = [];
    alone.redial();
    assert.deepEqual(net.dialAddrs, [many.slice(0, 8)], 'dialled with its first 8 addresses only');
  });

  it('makes at most 2 of the connections it chooses to one subnet: one host announcing many identities cannot take all 8 (an eclipse)', async () => {
    // From the simulator's eclipser: 68 identities of one host announced to a node took 5 to 8 of
    // its 8 outbound connections in every seed.
    const at = (ip: string, id: string) => `/ip4/${ip}/tcp/1/p2p/${id}`;
    for (let i = 0; i < 40; i++) {
      book.discovered(`evil${i}`, [at('203.0.113.5', `evil${i}`)]);
      net.reachable.add(`evil${i}`);
    }
    for (let i = 0; i < 6; i++) {
      book.discovered(`honest${i}`, [at(`198.51.${i}.1`, `honest${i}`)]);
      net.reachable.add(`honest${i}`);
    }
    await tick(net, book, 3);
    const evil = net.peers().filter((p) => p.startsWith('evil'));
    assert.equal(evil.length, 2, 'two from that host, however many identities it announces');
    assert.equal(net.peers().length, 8, 'the other six are honest peers, each of its own subnet');
    // A bootstrap peer there is dialled all the same (the user chose it), and loopback is exempt.
    book.remember(at('203.0.113.7', 'boot'), 'bootstrap');
    net.reachable.add('boot');
    net.connected.delete('honest0');
    await tick(net, book, 1);
    assert.ok(net.peers().includes('boot'));
  });

  it('dials at most 8 of many peers announced at once', async () => {
    for (let i = 0; i < 30; i++) book.discovered(`d${i}`, [addr(`d${i}`)]);
    book.redial();
    assert.equal(net.dials.length, 8);
    await settle();
    book.redial(); // those eight failed: eight others now, none twice
    assert.equal(new Set(net.dials.map((d) => d.peer)).size, 16);
  });

  it('never dials a banned peer, nor itself', async () => {
    peers.ban('d1', 'test');
    book.discovered('d1', [addr('d1')]);
    assert.equal(book.discovered('self', [addr('self')]), false);
    await tick(net, book, 5);
    assert.deepEqual(net.dials, []);
  });

  it('a connection that lasted resets the backoff: after the peer leaves, it is redialled at once, then at 1, 2, 4 s', async () => {
    book.discovered('d1', [addr('d1')]);
    await tick(net, book, 8); // dials at 0, 1, 3, 7 s: the next would wait 8 s
    net.reachable.add('d1');
    await tick(net, book, 8);
    assert.deepEqual(net.peers(), ['d1']);
    book.connected('d1', [addr('d1')]);
    await tick(net, book, 30);
    // It leaves for good after 30 s: dialled again at once, then at 1, 2, 4 s, not 16 s later.
    net.connected.delete('d1');
    net.reachable.delete('d1');
    book.disconnected('d1');
    const left = net.now;
    await tick(net, book, 8);
    assert.deepEqual(net.dials.filter((d) => d.at >= left).map((d) => d.at - left), [0, 1000, 3000, 7000]);
  });

  it('a peer that hangs up right after each handshake is redialled with the growing backoff, not every second', async () => {
    book.remember(addr('b1'), 'bootstrap');
    net.reachable.add('b1');
    for (let s = 0; s < 130; s++) {
      book.redial();
      await settle();
      if (net.connected.delete('b1')) {
        // Up, identified, and closed by the other side within the same second.
        book.connected('b1', [addr('b1')]);
        book.disconnected('b1');
      }
      net.now += 1000;
    }
    assert.deepEqual(net.dialsOf('b1'), [0, 1000, 3000, 7000, 15000, 31000, 63000, 123000]);
  });

  it("refuses others' dials of a peer inside its backoff (the transport's gate), never its own, and lets the user retry at once", async () => {
    book.remember(addr('b1'), 'bootstrap');
    const gate: boolean[] = [];
    net.onDial = (peer) => gate.push(book.holdsOff(peer));
    book.redial();
    await settle(); // refused: the next try in 1 s
    assert.equal(book.holdsOff('b1'), true, "a dial that is not the book's, inside the backoff");
    assert.equal(book.holdsOff('x1'), false, 'a peer it does not know');
    net.now += 1000;
    assert.equal(book.holdsOff('b1'), false, 'once the backoff is over');
    book.redial();
    await settle(); // refused again: the next try in 2 s
    assert.equal(book.holdsOff('b1'), true);
    book.retryNow('b1'); // cairn's addPeer
    assert.equal(book.holdsOff('b1'), false);
    book.redial();
    await settle();
    assert.deepEqual(net.dialsOf('b1'), [0, 1000, 1000]);
    assert.deepEqual(gate, [false, false, false], "the book's own dials pass the gate");
  });

  describe('the warning when alone', () => {
    /** The "no peers" warnings of 31 s alone, the bootstrap peers given unreachable, those in `banned` banned. */
    async function lonelyWarnings(bootstrap: readonly string[], banned: readonly string[]): Promise<string[]> {
      const net = new FakeNet();
      const peers = new PeerManager(() => Math.floor(net.now / 1000));
      const logged: string[] = [];
      const links = new KeepConnected({ env: net.env(), transport: net as never, peers, bootstrap: bootstrap.map(addr), noPeersWarningMs: 30_000, log: (_level, message) => logged.push(message) });
      await links.start();
      for (const id of banned) peers.ban(id, 'another network');
      for (let second = 0; second <= 30; second++) {
        links.tick();
        await settle();
        net.now += 1000;
      }
      return logged.filter((m) => m.startsWith('no peers'));
    }

    it('says which known peers are banned rather than "check that they run" about them', async () => {
      assert.deepEqual(await lonelyWarnings(['b1'], ['b1']), ['no peers: the one known peer is banned (the log and cairn status say why)']);
    });

    it('all of them banned, some of them, none', async () => {
      assert.deepEqual(await lonelyWarnings(['b1', 'b2'], ['b1', 'b2']), ['no peers: all 2 known peers are banned (the log and cairn status say why)']);
      assert.deepEqual(await lonelyWarnings(['b1', 'b2', 'b3'], ['b1']), ['no peers: none of the 2 known peers answers; check that they run and that --bootstrap names them right; 1 more is banned (the log and cairn status say why)']);
      assert.deepEqual(await lonelyWarnings(['b1'], []), ['no peers: none of the 1 known peers answers; check that they run and that --bootstrap names them right']);
    });
  });

  describe('across a restart (peers.json)', () => {
    it('keeps the peers it was connected to, the most recent first, and not the banned, nor those it only heard of', async () => {
      for (const id of ['c1', 'c2', 'c3']) {
        book.connected(id, [`/ip4/10.0.0.${id.at(-1)}/tcp/1`]);
        net.now += 1000;
      }
      book.discovered('heard', [addr('heard')]);
      peers.penalize('c2', 100, 'test');
      assert.deepEqual(book.worthKeeping(10), [
        { peer: 'c3', addrs: ['/ip4/10.0.0.3/tcp/1'] },
        { peer: 'c1', addrs: ['/ip4/10.0.0.1/tcp/1'] },
      ]);
      assert.deepEqual(book.worthKeeping(1).map((k) => k.peer), ['c3']);
    });

    it('keeps first the peers a dial of its own reached: fresh identities that dialled it do not push them out', async () => {
      // From a review: the most recent first, whoever dialled whom. One host connecting with 300
      // fresh identities, each naming a listen address in a /24 of its own, filled peers.json, and a
      // restart dialled them first; the peer this node had dialled, connected for hours, was gone.
      net.reachable.add('o1');
      book.remember(addr('o1'), 'user');
      book.redial();
      await settle();
      book.connected('o1', ['/ip4/10.0.0.1/tcp/1/p2p/o1']);
      for (let i = 0; i < 300; i++) {
        net.now += 1000;
        const id = `x${i}`;
        net.connected.add(id);
        net.inbound.add(id);
        book.connected(id, [`/ip4/20.${i >> 8}.${i & 255}.1/tcp/1/p2p/${id}`]);
      }
      const kept = book.worthKeeping(256);
      assert.equal(kept.length, 256);
      assert.equal(kept[0]!.peer, 'o1', 'the peer it dialled, first');
      assert.equal(kept[1]!.peer, 'x299', 'then the most recent of those that dialled it');
    });

    it('a restarted node dials the peers it knew with no bootstrap, keeps them through a save before they answer, and forgets them as discovered ones', async () => {
      const restarted = new PeerBook(net.env(), net as never, peers);
      assert.equal(restarted.restore([{ peer: 'k1', addrs: [addr('k1')] }, { peer: 'self', addrs: [addr('self')] }, { peer: 'k2', addrs: [addr('other')] }]).taken, 1, "itself, and an address naming another peer's id, are passed over");
      assert.deepEqual(restarted.worthKeeping(10).map((k) => k.peer), ['k1'], 'kept in the next save though not yet connected');
      net.reachable.add('k1');
      restarted.redial();
      await settle();
      assert.deepEqual(net.dialsOf('k1'), [0]);
      assert.ok(net.connected.has('k1'));
      restarted.connected('k1', [addr('k1')]);
      assert.equal(restarted.worthKeeping(10)[0]!.peer, 'k1');
      // One that does not answer is forgotten after five failures, as a discovered peer is.
      assert.equal(restarted.restore([{ peer: 'gone', addrs: [addr('gone')] }]).taken, 1);
      await tick(net, restarted, 40);
      assert.equal(net.dialsOf('gone').length, 5);
      assert.ok(!restarted.worthKeeping(10).some((k) => k.peer === 'gone'));
    });

    it('passes over what no dial could reach (itself, a relay, port 0, 0.0.0.0, ::, multicast, another transport), says so in one line, and dials the rest', async () => {
      // From the carried list: a hand-edited or damaged peers.json was dialled whatever it named,
      // 0.0.0.0 included, which Linux takes for this machine.
      const id = (n: string) => `/p2p/${n}`;
      const saved: KnownAddress[] = [
        { peer: 'self', addrs: [addr('self')] },
        { peer: 'relayed', addrs: [`/ip4/10.0.0.1/tcp/1/p2p/R/p2p-circuit${id('relayed')}`] },
        { peer: 'p0', addrs: [`/ip4/10.0.0.2/tcp/0${id('p0')}`] },
        { peer: 'any4', addrs: [`/ip4/0.0.0.0/tcp/7370${id('any4')}`] },
        { peer: 'any6', addrs: [`/ip6/::/tcp/7370${id('any6')}`, `/ip6/::ffff:0.0.0.0/tcp/7370${id('any6')}`] },
        { peer: 'group', addrs: [`/ip4/224.0.0.251/tcp/7370${id('group')}`, `/ip6/ff02::fb/tcp/7370${id('group')}`, `/ip4/255.255.255.255/tcp/1${id('group')}`] },
        { peer: 'quic', addrs: [`/ip4/10.0.0.3/udp/1/quic-v1${id('quic')}`, 'not an address'] },
        // Kept: a DNS name (libp2p resolves it, as --bootstrap takes one), and the good address of a peer with a bad one beside it.
        { peer: 'named', addrs: [`/dns4/peer.example/tcp/7370${id('named')}`] },
        { peer: 'mixed', addrs: [`/ip4/0.0.0.0/tcp/7370${id('mixed')}`, `/ip4/10.0.0.4/tcp/7370${id('mixed')}`, `/ip6/2001:db8::1/tcp/7370${id('mixed')}`] },
      ];
      const logs: string[] = [];
      const peerStore = { load: async () => saved, save: async () => {} };
      const links = new KeepConnected({ env: net.env(), transport: net as never, peers, peerStore, log: (level, message, fields) => void logs.push(`${level} ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`) });
      await links.start();
      for (const peer of ['named', 'mixed']) net.reachable.add(peer);
      links.book.redial();
      await settle();
      assert.deepEqual(net.dialAddrs.sort(), [
        [`/dns4/peer.example/tcp/7370${id('named')}`],
        [`/ip4/10.0.0.4/tcp/7370${id('mixed')}`, `/ip6/2001:db8::1/tcp/7370${id('mixed')}`],
      ]);
      assert.deepEqual(logs, [
        "warn passed over in the peers known from before the restart (peers.json), as no dial could reach them: 1× this node's own peer id, " +
          '1× a relay address (/p2p-circuit; this node dials TCP only), 1× port 0, 4× an unspecified IP (0.0.0.0/8, ::), 3× a multicast or broadcast IP, ' +
          '2× not /ip4|ip6|dns/HOST/tcp/PORT (this node dials TCP only); 7 of its 9 peers had nothing else to dial',
        'info known peers from before the restart {"peers":2}',
      ]);
      // A file of peers it can dial is taken without a word of warning.
      const quiet: string[] = [];
      const again = new KeepConnected({ env: net.env(), transport: net as never, peers, peerStore: { load: async () => [saved[7]!, { peer: 'mixed', addrs: saved[8]!.addrs.slice(1) }], save: async () => {} }, log: (level, message) => void quiet.push(`${level} ${message}`) });
      await again.start();
      assert.deepEqual(quiet, ['info known peers from before the restart']);
    });

    it('a stop before the file was read (a start that failed half-way) writes nothing over it', async () => {
      // The book then holds only what came in meanwhile: saved, it would replace every peer known.
      const saves: KnownAddress[][] = [];
      const peerStore = { load: async () => [{ peer: 'k1', addrs: [addr('k1')] }], save: async (list: readonly KnownAddress[]) => { saves.push([...list]); } };
      const links = new KeepConnected({ env: net.env(), transport: net as never, peers, peerStore, log: () => {} });
      links.book.connected('in1', [addr('in1')]);
      await links.save();
      assert.equal(saves.length, 0);
      await links.start();
      await links.save();
      assert.deepEqual(saves.map((list) => list.map((k) => k.peer)), [['in1', 'k1']]);
    });

    it('reads back what it saved; a damaged or foreign file is no peers, and entries that are not peers are passed over', async () => {
      const dir = tempDir();
      try {
        const store = peerFile(dir.path);
        assert.deepEqual(await store.load(), [], 'no file yet');
        await store.save([{ peer: 'p1', addrs: ['/ip4/10.0.0.1/tcp/1'] }]);
        assert.deepEqual(await store.load(), [{ peer: 'p1', addrs: ['/ip4/10.0.0.1/tcp/1'] }]);
        const file = join(dir.path, PEERS_FILE);
        for (const text of ['', '{', '[]', '{"peers": 5}', 'null']) {
          writeFileSync(file, text);
          assert.deepEqual(await store.load(), [], JSON.stringify(text));
        }
        writeFileSync(file, JSON.stringify({ peers: [{ peer: 'ok', addrs: ['/ip4/1.2.3.4/tcp/1'] }, { peer: 'none', addrs: [] }, { peer: 7, addrs: ['x'] }, { peer: 'long', addrs: ['x'.repeat(600)] }, 'p'] }));
        assert.deepEqual((await store.load()).map((k) => k.peer), ['ok']);
        // Larger than any file a node writes: not read at all.
        writeFileSync(file, JSON.stringify({ peers: [{ peer: 'ok', addrs: ['/ip4/1.2.3.4/tcp/1'] }], pad: 'x'.repeat(3 * 1024 * 1024) }));
        assert.deepEqual(await store.load(), []);
      } finally {
        dir.remove();
      }
    });
  });
});
