/**
 * Cheap identities: inbound slots per IP and per subnet, and who is hung up when the node is full
 * (node/slots.ts, node/address-groups.ts).
 */
import assert from 'node:assert/strict';
import { addressGroup } from '../node/address-groups.ts';
import { PeerRecords, type PeerRecord } from '../node/peer-records.ts';
import { chooseEviction, DEFAULT_SLOT_LIMITS, Slots } from '../node/slots.ts';

const addr = (ip: string, id: string) => `/ip4/${ip}/tcp/4000/p2p/${id}`;

describe('address groups', () => {
  it('reads the IP and its /24 or /48 from a multiaddr', () => {
    assert.deepEqual(addressGroup('/ip4/203.0.113.7/tcp/7370/p2p/x'), { ip: '203.0.113.7', subnet: '203.0.113.0/24', loopback: false });
    assert.deepEqual(addressGroup('/ip4/127.0.0.2/tcp/1'), { ip: '127.0.0.2', subnet: '127.0.0.0/24', loopback: true });
    // An IPv6 host's "IP" is its /64 (from a review: a new address per identity voided the per-IP
    // limit and the bans).
    assert.deepEqual(addressGroup('/ip6/2001:db8:abcd:12::1/tcp/1'), { ip: '2001:db8:abcd:12::/64', subnet: '2001:db8:abcd::/48', loopback: false });
    assert.equal(addressGroup('/ip6/2001:db8:abcd:12:ffff::9/tcp/1')?.ip, '2001:db8:abcd:12::/64');
    assert.notEqual(addressGroup('/ip6/2001:db8:abcd:13::1/tcp/1')?.ip, '2001:db8:abcd:12::/64');
    assert.deepEqual(addressGroup('/ip6/2001:DB8:abcd::/tcp/1')?.subnet, '2001:db8:abcd::/48');
    assert.deepEqual(addressGroup('/ip6/::1/tcp/1'), { ip: '0:0:0:0::/64', subnet: '0:0:0::/48', loopback: true });
    assert.deepEqual(addressGroup('/ip6/::ffff:198.51.100.9/tcp/1'), { ip: '198.51.100.9', subnet: '198.51.100.0/24', loopback: false }, 'an IPv4-mapped address is its IPv4 address');
    for (const bad of ['/dns4/node.example/tcp/1', '/ip4/1.2.3/tcp/1', '/ip4/1.2.3.256/tcp/1', '/ip6/1::2::3/tcp/1', '/ip6/12345::/tcp/1']) assert.equal(addressGroup(bad), undefined, bad);
  });
});

describe('inbound slots', () => {
  function node(limits: Partial<typeof DEFAULT_SLOT_LIMITS> = {}) {
    const records = new PeerRecords();
    const slots = new Slots(records, limits, 1);
    let now = 0;
    const connect = (peer: string, remote: string, direction: 'inbound' | 'outbound' = 'inbound') => {
      records.connected(peer, { direction, remoteAddr: remote }, now++);
      return slots.afterConnect(peer);
    };
    return { records, slots, connect };
  }

  it('refuses an IP that holds 4 inbound slots, and a /24 that holds 8, before any handshake', () => {
    const { slots, connect } = node();
    for (let i = 0; i < 4; i++) assert.equal(connect(`s${i}`, addr('198.51.100.1', `s${i}`)), undefined);
    assert.match(slots.refuse(addr('198.51.100.1', 'next'))!, /^4 inbound connections from 198\.51\.100\.1 already$/);
    for (let i = 0; i < 4; i++) assert.equal(connect(`t${i}`, addr(`198.51.100.${10 + i}`, `t${i}`)), undefined);
    assert.match(slots.refuse(addr('198.51.100.99', 'next'))!, /^8 inbound connections from 198\.51\.100\.0\/24 already$/);
    assert.equal(slots.refuse(addr('198.51.101.1', 'next')), undefined, 'the next subnet is free');
    assert.equal(connect('out', addr('198.51.100.1', 'out'), 'outbound'), undefined, 'peers we dial are not counted');
  });

  it("sockets still handshaking (the transport's open inbound connections) count against their IP's and subnet's shares, a connected one once", () => {
    const { slots, connect } = node();
    connect('s0', addr('198.51.100.1', 's0'));
    const open = ['/ip4/198.51.100.1/tcp/4000', '/ip4/198.51.100.1/tcp/4001', '/ip4/198.51.100.1/tcp/4002'];
    assert.equal(slots.refuse('/ip4/198.51.100.1/tcp/4003', open), undefined, 's0 and its socket are one connection: three so far');
    assert.match(slots.refuse('/ip4/198.51.100.1/tcp/4003', [...open, '/ip4/198.51.100.1/tcp/4004'])!, /^4 inbound connections from 198\.51\.100\.1 already$/);
    const subnet = [1, 2, 3, 4, 5, 6, 7].map((i) => `/ip4/198.51.100.${10 + i}/tcp/1`);
    assert.match(slots.refuse('/ip4/198.51.100.99/tcp/1', subnet)!, /^8 inbound connections from 198\.51\.100\.0\/24 already$/);
  });

  it('a newcomer that got past the gate in a race is hung up at once', () => {
    const { connect } = node();
    for (let i = 0; i < 4; i++) connect(`s${i}`, addr('198.51.100.1', `s${i}`));
    assert.deepEqual(connect('s4', addr('198.51.100.1', 's4')), { peer: 's4', reason: 'over 4 inbound connections from 198.51.100.1', eviction: false });
  });

  it('loopback peers are exempt unless told otherwise', () => {
    const exempt = node();
    for (let i = 0; i < 20; i++) assert.equal(exempt.connect(`l${i}`, addr('127.0.0.1', `l${i}`)), undefined);
    assert.equal(exempt.slots.refuse(addr('127.0.0.1', 'x')), undefined);
    const limited = node({ limitLoopback: true });
    for (let i = 0; i < 4; i++) limited.connect(`l${i}`, addr('127.0.0.1', `l${i}`));
    assert.ok(limited.slots.refuse(addr('127.0.0.1', 'x')));
  });

  it('when full, a newcomer takes the place of the peer eviction picks', () => {
    const { connect } = node({ maxInbound: 3 });
    connect('a', addr('10.1.0.1', 'a'));
    connect('b', addr('10.2.0.1', 'b'));
    connect('c', addr('10.2.0.2', 'c'));
    const out = connect('d', addr('10.3.0.1', 'd'));
    assert.equal(out?.eviction, true);
    assert.notEqual(out?.peer, 'd');
  });
});

describe('eviction', () => {
  let t = 0;
  const peer = (id: string, ip: string, o: Partial<PeerRecord> = {}): PeerRecord => {
    const records = new PeerRecords();
    const r = records.connected(id, { direction: 'inbound', remoteAddr: addr(ip, id) }, o.connectedAt ?? t++);
    return Object.assign(r, o);
  };

  it('keeps the peers that gave us blocks and transactions first, and evicts pure takers first, the greediest', () => {
    const givers = [0, 1, 2, 3].map((i) => peer(`block${i}`, `10.0.${i}.1`, { lastBlockAt: 100 + i, bytesOut: 5e9 }));
    const txGivers = [0, 1, 2, 3].map((i) => peer(`tx${i}`, `10.1.${i}.1`, { lastTxAt: 100 + i, bytesOut: 5e9 }));
    const takers = [peer('taker-small', '10.9.0.1', { bytesOut: 1e6 }), peer('taker-big', '10.9.1.1', { bytesOut: 9e6 })];
    const quiet = [peer('quiet', '10.9.2.1')];
    const victim = chooseEviction([...givers, ...txGivers, ...takers, ...quiet], 1);
    assert.equal(victim?.peer, 'taker-big');
  });

  it('a peer that only handshook is no taker: idle connections from a crowded subnet go before it', () => {
    // From a review: any peer served a byte (a status answer) was a taker, and went first; an
    // attacker that never asked anything never was, and its idle connections outlived them all.
    const honest = Array.from({ length: 8 }, (_, i) => peer(`honest${i}`, `10.${i}.0.1`, { bytesOut: 200, connectedAt: i }));
    const idle = Array.from({ length: 40 }, (_, i) => peer(`idle${i}`, `203.0.${113 + (i % 5)}.${i + 1}`, { connectedAt: 100 + i }));
    const victim = chooseEviction([...honest, ...idle], 3);
    assert.ok(victim?.peer.startsWith('idle'), `evicted ${victim?.peer}`);
  });

  it('with no takers: subnets, latency and age protect, and the largest subnet loses its youngest', () => {
    const crowd = Array.from({ length: 6 }, (_, i) => peer(`sybil${i}`, `203.0.113.${i + 1}`, { connectedAt: 1000 + i }));
    const diverse = Array.from({ length: 6 }, (_, i) => peer(`d${i}`, `10.${i}.0.1`, { connectedAt: i }));
    const victim = chooseEviction([...diverse, ...crowd], 7);
    assert.equal(victim?.peer, 'sybil5');
  });

  it('when every peer is protected, nobody is evicted (the newcomer goes)', () => {
    const givers = [0, 1].map((i) => peer(`g${i}`, `10.0.${i}.1`, { lastBlockAt: i }));
    assert.equal(chooseEviction(givers, 1), undefined);
  });
});
