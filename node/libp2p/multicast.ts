import { createSocket } from 'node:dgram';

const MDNS_GROUP = '224.0.0.251';
const MDNS_PORT = 5353;

/**
 * Why mDNS cannot send from this machine, or undefined if it can. @libp2p/mdns (through
 * multicast-dns) sends its queries and answers through whatever interface the routing table
 * gives the mDNS group: with no default route and no multicast route — an isolated LAN, two
 * network namespaces joined by a veth cable — every send fails with ENETUNREACH, which libp2p
 * only writes to its debug log, and nodes never hear of each other. Connecting a UDP socket
 * looks the route up without sending anything.
 */
export function mdnsRouteProblem(): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const done = (why: string | undefined) => {
      socket.close();
      resolve(why);
    };
    // A failed route lookup comes to the callback (Node passes it the error), not as an 'error' event.
    socket.on('error', () => {});
    socket.connect(MDNS_PORT, MDNS_GROUP, (err?: Error) => done(err?.message));
  }).then((err) =>
    err === undefined
      ? undefined
      : `no route to the mDNS group ${MDNS_GROUP} (${err}): mDNS cannot announce this node nor hear others. Give the LAN interface a default route, or a multicast one (ip route add 224.0.0.0/4 dev IFACE), or use --bootstrap`,
  );
}
