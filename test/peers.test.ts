/**
 * Bans (node/peers.ts, node/ban-file.ts): by identity and by address, so that a new identity from
 * a banned address is refused; scores that add up across an address's identities; loopback left
 * alone unless asked; bans kept across a restart, in a file written whole, until they expire.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { banFile, BANS_FILE, MAX_BANS_FILE_BYTES } from '../node/ban-file.ts';
import { PeerManager, SCORE_HALF_LIFE_SECONDS, type BanStore } from '../node/peers.ts';
import { NetworkGuard } from '../node/guard.ts';
import type { Env } from '../node/env.ts';
import { tempDir } from './helpers/fixtures.ts';

const addr = (ip: string, id: string) => `/ip4/${ip}/tcp/4000/p2p/${id}`;

describe('bans by identity and address', () => {
  let now: number;
  const clock = () => now;
  beforeEach(() => (now = 1_800_000_000));

  it('a ban covers the address: a new identity from it is refused, peers already connected from it stay', () => {
    const peers = new PeerManager(clock);
    peers.connectedFrom('neighbour', addr('198.51.100.7', 'neighbour'));
    peers.connectedFrom('bad', addr('198.51.100.7', 'bad'));
    const hungUp: string[] = [];
    peers.on('ban', (p) => hungUp.push(p));
    peers.penalize('bad', 100, 'invalid gossip: test');
    assert.deepEqual(hungUp, ['bad']);
    assert.equal(peers.isBanned('bad'), true);
    assert.equal(peers.addressBanned(addr('198.51.100.7', 'fresh-identity')), true);
    assert.equal(peers.isBanned('neighbour'), false);
    assert.equal(peers.addressBanned(addr('198.51.100.8', 'x')), false);
  });

  it('a penalty that lands after the peer hung up still counts against its address, and bans it', () => {
    // From a review: a peer that sent an invalid block and hung up at once left before the
    // import's verdict, which then banned its identity only; it came back under a new one.
    const peers = new PeerManager(clock);
    peers.connectedFrom('hit-and-run', addr('198.51.100.9', 'hit-and-run'));
    peers.disconnected('hit-and-run');
    peers.penalize('hit-and-run', 100, 'invalid gossip: a block that failed its import');
    assert.equal(peers.isBanned('hit-and-run'), true);
    assert.equal(peers.addressBanned(addr('198.51.100.9', 'new-identity')), true);
  });

  it('an IPv6 host is banned by its /64, where its addresses cost nothing to change', () => {
    const peers = new PeerManager(clock);
    peers.connectedFrom('v6', '/ip6/2001:db8:1:2::1/tcp/4000/p2p/v6');
    peers.penalize('v6', 100, 'invalid gossip: test');
    assert.equal(peers.addressBanned('/ip6/2001:db8:1:2::2/tcp/4000/p2p/next'), true);
    assert.equal(peers.addressBanned('/ip6/2001:db8:1:3::1/tcp/4000/p2p/other'), false);
  });

  it('a node of another network is refused by its identity only: its neighbours may be of ours', () => {
    const peers = new PeerManager(clock);
    peers.connectedFrom('foreign', addr('198.51.100.7', 'foreign'));
    peers.ban('foreign', 'another network (genesis or protocols differ)', { address: false });
    assert.equal(peers.isBanned('foreign'), true);
    assert.equal(peers.addressBanned(addr('198.51.100.7', 'ours')), false);
  });

  it('scores add up across the identities of one address: three framing errors each no longer come free', () => {
    const peers = new PeerManager(clock);
    for (let i = 0; i < 4; i++) peers.connectedFrom(`id${i}`, addr('203.0.113.9', `id${i}`));
    for (let i = 0; i < 3; i++) peers.penalize(`id${i}`, 25, 'bad request: broken framing');
    assert.equal(peers.addressBanned(addr('203.0.113.9', 'x')), false);
    assert.equal(peers.penalize('id3', 25, 'bad request: broken framing'), true, 'the fourth, from a fourth identity');
    assert.equal(peers.addressBanned(addr('203.0.113.9', 'x')), true);
  });

  it('scores fade, halving every ten minutes: a burst is banned, the same offences months apart are not', () => {
    const peers = new PeerManager(clock);
    peers.connectedFrom('slip', addr('198.51.100.9', 'slip'));
    peers.penalize('slip', 60, 'test');
    now += SCORE_HALF_LIFE_SECONDS;
    assert.equal(peers.score('slip'), 30);
    assert.equal(peers.penalize('slip', 60, 'test'), false, '30 + 60: not yet');
    now += 30 * 24 * 3600;
    assert.equal(peers.score('slip'), 0, 'a month later, nothing is left');
    assert.equal(peers.penalize('slip', 60, 'test'), false);
    // The address's total fades alike: another identity from it starts from what is left there.
    peers.connectedFrom('other', addr('198.51.100.9', 'other'));
    assert.equal(peers.penalize('other', 40, 'test'), true, "60 + 40 on the address, at once");

    peers.connectedFrom('burst', addr('203.0.113.9', 'burst'));
    assert.equal(peers.penalize('burst', 60, 'test'), false);
    now += 60;
    assert.equal(peers.penalize('burst', 60, 'test'), true, 'two offences a minute apart: 56 + 60');
  });

  it('a clock set back makes no score grow, and no ban outlast its length from now', () => {
    const peers = new PeerManager(clock, { banSeconds: 600 });
    peers.connectedFrom('slip', addr('198.51.100.9', 'slip'));
    peers.penalize('slip', 10, 'bad request: broken framing');
    now -= 24 * 3600; // an operator fixes a clock that ran a day ahead
    assert.equal(peers.score('slip'), 10);
    assert.equal(peers.penalize('slip', 10, 'bad request: broken framing'), false, 'two slips are not a ban');

    peers.connectedFrom('liar', addr('203.0.113.9', 'liar'));
    now += 24 * 3600;
    peers.ban('liar', 'lies in sync');
    now -= 24 * 3600;
    assert.equal(peers.isBanned('liar'), true);
    assert.ok(peers.records().every((r) => r.until <= now + 600), 'saved as at most ten minutes from now');
    now += 601;
    assert.equal(peers.isBanned('liar'), false, 'ten minutes, not a day and ten minutes');
    assert.equal(peers.addressBanned(addr('203.0.113.9', 'x')), false);
    const restarted = new PeerManager(clock, { banSeconds: 600 });
    assert.equal(restarted.restore([{ kind: 'peer', id: 'q', until: now + 24 * 3600, reason: 'saved before the clock was fixed' }]), 1);
    now += 601;
    assert.equal(restarted.isBanned('q'), false);
  });

  it('keeps at most 10,000 scores, forgetting the longest unpenalised first', () => {
    const peers = new PeerManager(clock);
    peers.penalize('first', 10, 'test');
    for (let i = 0; i < 10_000; i++) peers.penalize(`p${i}`, 10, 'test');
    assert.equal(peers.score('first'), 0, 'forgotten');
    assert.equal(peers.score('p0'), 10);
    assert.equal(peers.score('p9999'), 10);
  });

  it('keeps at most 10,000 bans, dropping those that end soonest, one ban at a time or many restored at once', () => {
    let t = 1_000;
    const peers = new PeerManager(() => t);
    for (let i = 0; i < 10_001; i++) {
      t += 0.001; // each ban ends a little after the one before
      peers.penalize(`b${i}`, 100, 'test');
    }
    assert.equal(peers.isBanned('b0'), false, 'the ban ending soonest went');
    assert.equal(peers.isBanned('b1'), true);
    assert.equal(peers.isBanned('b10000'), true);
    const restored = new PeerManager(() => t);
    restored.restore(Array.from({ length: 10_003 }, (_, i) => ({ kind: 'peer' as const, id: `r${i}`, until: t + 100 + i, reason: 'test' })));
    assert.deepEqual([0, 1, 2, 3, 10_002].map((i) => restored.isBanned(`r${i}`)), [false, false, false, true, true]);
  });

  it('loopback peers are banned by identity only, unless told otherwise', () => {
    const lenient = new PeerManager(clock);
    lenient.connectedFrom('local', addr('127.0.0.1', 'local'));
    lenient.ban('local', 'test');
    assert.equal(lenient.addressBanned(addr('127.0.0.1', 'other')), false);
    const strict = new PeerManager(clock, { limitLoopback: true });
    strict.connectedFrom('local', addr('127.0.0.1', 'local'));
    strict.ban('local', 'test');
    assert.equal(strict.addressBanned(addr('127.0.0.1', 'other')), true);
  });

  it('bans expire by the clock, and restore only what is still in force', () => {
    const peers = new PeerManager(clock, { banSeconds: 600 });
    peers.connectedFrom('p', addr('192.0.2.1', 'p'));
    peers.ban('p', 'lies in sync');
    const saved = peers.records();
    assert.deepEqual(saved, [
      { kind: 'peer', id: 'p', until: now + 600, reason: 'lies in sync' },
      { kind: 'ip', id: '192.0.2.1', until: now + 600, reason: 'lies in sync' },
    ]);
    now += 300;
    const restarted = new PeerManager(clock);
    assert.equal(restarted.restore(saved), 2);
    assert.equal(restarted.isBanned('p'), true);
    assert.equal(restarted.addressBanned(addr('192.0.2.1', 'q')), true);
    now += 301;
    assert.equal(restarted.isBanned('p'), false);
    assert.equal(restarted.addressBanned(addr('192.0.2.1', 'q')), false);
    assert.equal(new PeerManager(clock).restore(saved), 0, 'expired while the node was down');
  });

  it('bans saved while a save is written wait for one more save, not one each (a flood of bans is not a queue of whole-file writes)', async () => {
    const peers = new PeerManager(clock);
    const saves: number[] = [];
    let written!: () => void;
    const store: BanStore = {
      load: async () => [],
      save: (bans) => {
        saves.push(bans.length);
        return new Promise<void>((resolve) => (written = resolve));
      },
    };
    const env = { now: () => now * 1000, randomBytes: (n: number) => new Uint8Array(n) } as unknown as Env;
    new NetworkGuard({ env, peers, banStore: store, log: () => {} });
    const ban = (i: number) => peers.ban(`stranger-${i}`, 'another network (genesis or protocols differ)', { address: false });
    ban(0);
    await new Promise((r) => setImmediate(r)); // its save is being written
    for (let i = 1; i < 1_000; i++) ban(i);
    for (let i = 0; i < 10 && saves.length < 1_000; i++) {
      await new Promise((r) => setImmediate(r));
      written();
    }
    assert.deepEqual(saves, [1, 1_000], 'the first ban, then every ban since, in one save');
  });

  it('the ban file: written whole and renamed, read back; a damaged one is refused with the reason, and the node starts with none and says so', async () => {
    const dir = tempDir('cairn-bans-');
    try {
      const store = banFile(dir.path);
      assert.deepEqual(await store.load(), [], 'no file yet');
      const bans = [{ kind: 'peer' as const, id: 'p', until: 2_000_000_000, reason: 'x' }, { kind: 'ip' as const, id: '192.0.2.1', until: 2_000_000_000, reason: 'x' }];
      await store.save(bans);
      assert.equal(existsSync(join(dir.path, `${BANS_FILE}.tmp`)), false);
      assert.deepEqual(await store.load(), bans);
      // Found by a review: a damaged file was read as no bans, in silence, and the next ban replaced it.
      writeFileSync(join(dir.path, BANS_FILE), '{"bans": [{"kind": "peer", "id": 5}, ');
      await assert.rejects(store.load(), /bans\.json is damaged \(/);
      const logs: string[] = [];
      const env = { now: () => now * 1000, randomBytes: (n: number) => new Uint8Array(n) } as unknown as Env;
      await new NetworkGuard({ env, peers: new PeerManager(clock), banStore: store, log: (level, message) => void logs.push(`${level} ${message}`) }).restoreBans();
      assert.equal(logs.length, 1, logs.join('\n'));
      assert.match(logs[0]!, /^warn .*bans\.json is damaged \(.*\): the node starts with no bans, and the next ban replaces the file$/);
      // The parser's message quotes the text near the fault, newline and all: the log's line is one.
      writeFileSync(join(dir.path, BANS_FILE), '\u0000\n  "bans": []\n}\n');
      await assert.rejects(store.load(), (err: Error) => /^\S*bans\.json is damaged \(.*\)$/.test(err.message) && !/[\r\n]/.test(err.message));
      for (const text of ['null', '{"bans": 5}', '[]']) {
        writeFileSync(join(dir.path, BANS_FILE), text);
        await assert.rejects(store.load(), /no list of bans/, text);
      }
      // A file of gigabytes (a foreign one, a bad disk) is refused by its size, not read into the heap.
      truncateSync(join(dir.path, BANS_FILE), MAX_BANS_FILE_BYTES + 1);
      await assert.rejects(store.load(), new RegExp(`bans\\.json is damaged \\(${MAX_BANS_FILE_BYTES + 1} bytes`));
      // A file that cannot be read is named, and why in words, not Node's code (EISDIR).
      rmSync(join(dir.path, BANS_FILE));
      mkdirSync(join(dir.path, BANS_FILE));
      await assert.rejects(store.load(), (err: Error) => err.message === `cannot read ${join(dir.path, BANS_FILE)}: it is a directory, not a file`);
      rmSync(join(dir.path, BANS_FILE), { recursive: true });
      writeFileSync(join(dir.path, BANS_FILE), JSON.stringify({ bans: [bans[0], { kind: 'peer', id: 7 }] }));
      assert.deepEqual(await store.load(), [bans[0]], 'what is not a ban is skipped');
      assert.match(readFileSync(join(dir.path, BANS_FILE), 'utf8'), /"id":7/, 'and the file is left for the next save to replace');
    } finally {
      dir.remove();
    }
  });
});
