/**
 * Whether mDNS can work on this machine: a UDP socket on port 5353 (shared, as every mDNS
 * responder binds it), joined to 224.0.0.251 on every IPv4 interface as @libp2p/mdns's
 * multicast-dns joins it, sends a DNS query for a name of its own to the group and must hear it
 * come back (multicast loopback: two nodes on one machine hear each other the same way).
 */
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';

const GROUP = '224.0.0.251';
const PORT = 5353;

/** A DNS query (one PTR question) for `name`. */
function dnsQuery(name: string): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.of(l.length), Buffer.from(l)]));
  const header = Buffer.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.of(0), Buffer.from([0, 12, 0, 1])]);
}

/** Resolves with undefined when multicast loops back here, else with why not. */
export async function multicastUnavailable(timeoutMs = 3000): Promise<string | undefined> {
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  const name = `cairn-probe-${randomBytes(6).toString('hex')}.local`;
  const query = dnsQuery(name);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(PORT, () => resolve());
    });
    const joined: string[] = [];
    const refused: string[] = [];
    for (const [iface, addrs] of Object.entries(networkInterfaces())) {
      const v4 = addrs?.find((a) => a.family === 'IPv4');
      if (!v4) continue;
      try {
        socket.addMembership(GROUP, v4.address);
        joined.push(iface);
      } catch (err) {
        refused.push(`${iface}: ${(err as Error).message}`);
      }
    }
    if (joined.length === 0) return `no interface could join ${GROUP} (${refused.join('; ') || 'no IPv4 interface'})`;
    socket.setMulticastLoopback(true);
    const heard = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      socket.on('message', (msg) => {
        if (msg.equals(query)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
    await new Promise<void>((resolve, reject) => socket.send(query, PORT, GROUP, (err) => (err ? reject(err) : resolve())));
    if (!(await heard)) return `a query sent to ${GROUP}:${PORT} did not come back within ${timeoutMs} ms (joined on ${joined.join(', ')}): multicast does not loop back on this machine`;
    return undefined;
  } catch (err) {
    return `cannot use UDP port ${PORT} for mDNS: ${(err as Error).message}`;
  } finally {
    socket.close();
  }
}
