import { Checker } from './sim/invariants.ts';
import { scenario } from './sim/scenario.ts';
import { World, SIM_EPOCH_MS } from './sim/world.ts';
import { arm } from './sim/adversary.ts';
import { SimTransport } from './sim/transport.ts';
import { decodeCompactBlock } from './node/compact.ts';
import { toHex } from './ledger/bytes.ts';

const o = scenario('227', { minutes: 8 } as never);
const world = new World(o);
const checker = new Checker(world);
arm(world, checker);
const T = () => ((world.scheduler.now - SIM_EPOCH_MS) / 1000).toFixed(3);
const WANT = '0c5fea66';
const proto = SimTransport.prototype as unknown as { gossip: (this: SimTransport & { peerId: string }, from: string, topic: string, data: Uint8Array, id: string) => void };
const orig = proto.gossip;
proto.gossip = function (from, topic, data, id) {
  if (topic.includes('block')) {
    try {
      const c = decodeCompactBlock(data, 100000);
      const h = toHex(c.header.hash);
      if (h.startsWith(WANT) || c.header.height === 119) console.log(`${T()} ${this.peerId} gossip from ${from} h${c.header.height} ${h.slice(0, 8)} topic ${topic.slice(-12)}`);
    } catch {}
  }
  return orig.call(this, from, topic, data, id);
};
world.observe({
  onNode: (sim, node) => {
    node.chain.on('connect', (block, entry) => { if (entry.height >= 118 && entry.height <= 120) console.log(`${T()} ${sim.id} connect h${entry.height} ${entry.hashHex.slice(0, 8)}`); });
    node.chain.on('tip', (e) => { if (e.disconnected.length) console.log(`${T()} ${sim.id} REORG fork ${e.fork.height} -${e.disconnected.length} +${e.connected.length}`); });
    node.on('log', (lvl, msg, f) => { const t = Number(T()); if (t > 370 && t < 382 && lvl !== 'debug') console.log(`${T()} ${sim.id} LOG ${lvl} ${msg} ${JSON.stringify(f ?? {}).slice(0, 160)}`); });
  },
});
checker.schedule(10_000);
await world.run();
await checker.final();
console.log(JSON.stringify(Object.fromEntries(checker.violations)).slice(0, 400));
