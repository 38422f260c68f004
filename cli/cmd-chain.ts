import { DEFAULT_DATADIR, DEFAULT_LIGHT_DATADIR, NODE_ACCESS, NODE_ACCESS_HELP, address, parse, str, UsageError } from './args.ts';
import { RpcClient, RpcClientError, connect, datadirPath } from './rpc-client.ts';
import { coins, lines, type Out } from './output.ts';
import type { LightRpcMethods, LightStatusResult } from '../node/light/rpc.ts';

export async function accountCommand(argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parse(argv, { ...NODE_ACCESS, light: { type: 'boolean' } }, 1);
  if (values.help) return out.help(HELP.account);
  if (!positionals[0]) throw new UsageError('give the ADDRESS to look up');
  address(positionals[0], 'address');
  if (values.light) return lightAccount(positionals[0], str(values, 'datadir') ?? DEFAULT_LIGHT_DATADIR, out);
  const rpc = await connect(values);
  const [a, coin] = await Promise.all([rpc.call('getAccount', { address: positionals[0] }), out.json ? undefined : rpc.call('status', {})]);
  // A light client answers getAccount too, with a proof's fields and no next nonce (it has no
  // mempool): printed as a node's answer, --json lacked nextNonce, with status 0.
  if ((a as Partial<typeof a>).nextNonce === undefined) {
    const datadir = values.rpc ? 'DIR' : (str(values, 'datadir') ?? DEFAULT_DATADIR);
    const where = values.rpc ? `the node at ${rpc.url} is a light client` : `${datadirPath(datadir)} is a light client's datadir`;
    throw new RpcClientError('RPC_LIGHT_CLIENT', `${where}, which proves an account rather than holds it, and has no mempool to count a next nonce from: cairn account ${positionals[0]} --light --datadir ${datadir} asks it for the proven balance and nonce`);
  }
  out.result({ address: a.address, balance: a.balance, nonce: a.nonce, nextNonce: a.nextNonce }, lines([
    ['address', a.address],
    ['balance', coin ? coins(a.balance, coin) : a.balance],
    ['nonce', a.nonce],
    ['next nonce', a.nextNonce],
  ]));
}

/**
 * Why a light client with no peers proves nothing: its bootstrap node down or unreachable, or
 * banned, which a node of another network is (a light client started without its --genesis):
 * then the node ran and was reachable, and the ban's reason has the fix.
 */
export function lightNoPeersText(datadir: string, banned: LightStatusResult['banned']): string {
  const ban = banned[0];
  if (ban) return `the light client on ${datadir} has no peers to ask for a proof: it banned those it met (${ban.peer}: ${ban.reason})`;
  return `the light client on ${datadir} has no peers to ask for a proof: is the node it was given with --bootstrap running, and reachable from here? (cairn status --datadir ${datadir})`;
}

/** The account as the light client on `datadir` proves it: checked against a header it holds, trusting no peer. */
async function lightAccount(addr: string, datadir: string, out: Out): Promise<void> {
  const rpc = await RpcClient.fromDatadir<LightRpcMethods>(datadir).catch((err: unknown) => {
    // A light client still starting, or an rpc.json this user may not read, says so in its own words.
    if (err instanceof RpcClientError && err.code === 'NODE_NOT_RUNNING') throw new RpcClientError(err.code, `no light client is running on ${datadirPath(datadir)}; start one with: cairn light --datadir ${datadir} --bootstrap MULTIADDR`);
    throw err;
  });
  const [a, coin] = await Promise.all([rpc.call('getAccount', { address: addr }), out.json ? undefined : rpc.call('status', {})]).catch(async (err: unknown) => {
    // Its bootstrap node down or unreachable, the light client answered "no peer has our tip
    // (height 0) yet", and logged nothing: the cause is that it has no peer at all.
    const status = await rpc.call('status', {}).catch(() => undefined);
    if (status?.peers === 0) throw new RpcClientError('LIGHT_NO_PEERS', lightNoPeersText(datadir, status.banned));
    throw err;
  });
  // A full node answers getAccount too, from its own state, with no proof to show.
  if ((a as Partial<typeof a>).block === undefined) {
    throw new RpcClientError('NOT_A_LIGHT_CLIENT', `${datadir} is a full node's datadir, not a light client's: without --light, cairn account asks that node, which holds the state itself`);
  }
  out.result(a, lines([
    ['address', a.address],
    ['balance', coin ? coins(a.balance, coin) : a.balance],
    ['nonce', a.nonce],
    ['account', a.exists ? 'exists' : 'none (never paid or paid from)'],
    ['proven at', `height ${a.block.height} (${a.block.hash}), the light client's tip`],
    ['proof from', `${a.provenBy} (checked here against the header's state root)`],
  ]));
}

export async function txCommand(argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parse(argv, NODE_ACCESS, 1);
  if (values.help) return out.help(HELP.tx);
  const id = positionals[0];
  if (!id || !/^[0-9a-f]{64}$/.test(id)) throw new UsageError('give the transaction ID: 64 lower-case hex digits');
  const rpc = await connect(values);
  const [t, coin] = await Promise.all([rpc.call('getTransaction', { id }), out.json ? undefined : rpc.call('status', {})]);
  out.result(t, lines([
    ['id', t.id],
    ['status', t.status],
    ['block', t.blockHeight === null ? null : `${t.blockHeight} (${t.blockHash})`],
    ['from', t.from],
    ['to', t.to],
    ['amount', coin ? coins(t.amount, coin) : t.amount],
    ['fee', coin ? coins(t.fee, coin) : t.fee],
    ['nonce', t.nonce],
  ]));
}

export async function peersCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, NODE_ACCESS);
  if (values.help) return out.help(HELP.peers);
  const peers = await (await connect(values)).call('getPeers', {});
  out.list(
    peers,
    () => peers.map((p) => `${p.id}  ${p.direction ?? '?'}  height ${p.height ?? '?'}  score ${p.banScore}  in ${bytes(p.bytesIn)}  out ${bytes(p.bytesOut)}${p.throttled ? '  THROTTLED' : ''}  ${p.addrs.join(' ')}`),
    '(no peers)',
  );
}

export async function mempoolCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, NODE_ACCESS);
  if (values.help) return out.help(HELP.mempool);
  const rpc = await connect(values);
  const [m, coin] = await Promise.all([rpc.call('getMempool', {}), out.json ? undefined : rpc.call('status', {})]);
  const show = (v: string) => (coin ? coins(v, coin) : v);
  out.result(m, [`${m.size} transactions, ${m.bytes} bytes`, ...m.txs.map((t) => `${t.id}  fee ${show(t.fee)}  ${t.from} #${t.nonce} → ${t.to}  ${show(t.amount)}`)].join('\n'));
}

/** A byte count for people: 812 B, 14.2 KB, 3.7 MB. */
function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1_000_000) return `${(n / 1000).toFixed(1)} KB`;
  return `${(n / 1_000_000).toFixed(1)} MB`;
}

const HELP = {
  account: `Usage: cairn account ADDRESS [--datadir DIR | --rpc URL --rpc-token T] [--json]
       cairn account ADDRESS --light [--datadir DIR] [--json]

Balance (in coins; --json: base units) and nonce of ADDRESS at the chain tip: the nonce is how many
of its transactions the chain holds, the next nonce the one its next transaction takes, counting
those pending in the mempool (cairn send chooses it). With --light, from the
light client running on DIR (default ./light; see cairn light --help): proven by a peer's proof
against the state root of the light client's tip, checked there, trusting no node.
${NODE_ACCESS_HELP}

Examples:
  cairn account cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz
  cairn account cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz --light`,
  tx: `Usage: cairn tx ID [--datadir DIR | --rpc URL --rpc-token T] [--json]

A transaction by id: pending in the mempool, or confirmed with its block height.
${NODE_ACCESS_HELP}

Example:
  cairn tx 3f2a…c9e1 --json`,
  peers: `Usage: cairn peers [--datadir DIR | --rpc URL --rpc-token T] [--json]

Connected peers: who dialled (inbound: it did), announced height, ban score, bytes it sent us
and we served it, THROTTLED if it was answered busy in the last 10 s (it asked for more than its
share), and its address.
${NODE_ACCESS_HELP}

Example:
  cairn peers --datadir ./b --json`,
  mempool: `Usage: cairn mempool [--datadir DIR | --rpc URL --rpc-token T] [--json]

Pending transactions.
${NODE_ACCESS_HELP}

Example:
  cairn mempool --json`,
};
