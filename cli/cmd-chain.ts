import { toHex } from '../ledger/bytes.ts';
import { signTransaction } from '../ledger/transaction.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { loadPrivateKey } from './keystore.ts';
import { readPassword } from './password.ts';
import { RpcClient, RpcClientError } from './rpc-client.ts';
import { NODE_ACCESS, address, amount, count, parse, required, str, UsageError } from './args.ts';
import { DEFAULT_DATADIR } from './datadir.ts';
import { lines, type Out } from './output.ts';

/** The node a command talks to: --rpc URL with --rpc-token, else the one running on --datadir. */
async function client(values: Record<string, unknown>): Promise<RpcClient> {
  const url = str(values, 'rpc');
  if (url) {
    const token = str(values, 'rpc-token') ?? process.env['CAIRN_RPC_TOKEN'];
    if (!token) throw new UsageError('--rpc needs --rpc-token (or CAIRN_RPC_TOKEN)');
    return new RpcClient(url, token);
  }
  return RpcClient.fromDatadir(str(values, 'datadir') ?? DEFAULT_DATADIR);
}

export async function statusCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, NODE_ACCESS);
  if (values.help) return out.help(HELP.status);
  const s = await (await client(values)).call('status', {});
  const contract = { network: s.network, genesis: s.genesis, height: s.height, head: s.head, totalWork: s.totalWork, peers: s.peers, mempool: s.mempool, listen: s.listen };
  out.result({ ...contract, chainId: s.chainId, peerId: s.peerId, syncing: s.syncing, syncTarget: s.syncTarget, mining: s.mining, mempoolBytes: s.mempoolBytes, memory: s.memory }, lines([
    ['network', s.network],
    ['genesis', s.genesis],
    ['height', s.height],
    ['head', s.head],
    ['total work', s.totalWork],
    ['sync', s.syncing ? `syncing to ${s.syncTarget}` : 'up to date'],
    ['peers', s.peers],
    ['mempool', `${s.mempool} txs, ${s.mempoolBytes} bytes`],
    ['mining', s.mining],
    ['memory', `${(s.memory.rss / 2 ** 20).toFixed(0)} MB resident, heap ${(s.memory.heapUsed / 2 ** 20).toFixed(0)} of ${(s.memory.heapTotal / 2 ** 20).toFixed(0)} MB (limit ${(s.memory.heapLimit / 2 ** 20).toFixed(0)} MB)`],
    ['listen', s.listen.join('\n' + ' '.repeat(12))],
  ]));
}

export async function accountCommand(argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parse(argv, NODE_ACCESS, 1);
  if (values.help) return out.help(HELP.account);
  if (!positionals[0]) throw new UsageError('give the ADDRESS to look up');
  address(positionals[0], 'address');
  const a = await (await client(values)).call('getAccount', { address: positionals[0] });
  out.result({ address: a.address, balance: a.balance, nonce: a.nonce, nextNonce: a.nextNonce }, lines([
    ['address', a.address],
    ['balance', a.balance],
    ['nonce', a.nonce],
    ['next nonce', a.nextNonce],
  ]));
}

export async function txCommand(argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parse(argv, NODE_ACCESS, 1);
  if (values.help) return out.help(HELP.tx);
  const id = positionals[0];
  if (!id || !/^[0-9a-f]{64}$/.test(id)) throw new UsageError('give the transaction ID: 64 lower-case hex digits');
  const t = await (await client(values)).call('getTransaction', { id });
  out.result(t, lines([
    ['id', t.id],
    ['status', t.status],
    ['block', t.blockHeight === null ? null : `${t.blockHeight} (${t.blockHash})`],
    ['from', t.from],
    ['to', t.to],
    ['amount', t.amount],
    ['fee', t.fee],
    ['nonce', t.nonce],
  ]));
}

export async function blockCommand(argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parse(argv, NODE_ACCESS, 1);
  if (values.help) return out.help(HELP.block);
  const which = positionals[0];
  let params: { height: number } | { hash: string };
  if (which !== undefined && /^\d+$/.test(which) && which.length < 16) params = { height: Number(which) };
  else if (which !== undefined && /^[0-9a-f]{64}$/.test(which)) params = { hash: which };
  else throw new UsageError('give a block HEIGHT (a whole number) or HASH (64 lower-case hex digits)');
  const b = await (await client(values)).call('getBlock', params);
  out.result(b, lines([
    ['hash', b.hash],
    ['height', b.height],
    ['previous', b.prevHash],
    ['time', new Date(b.timestamp * 1000).toISOString()],
    ['target', b.target],
    ['nonce', b.nonce],
    ['size', `${b.size} bytes`],
    ['coinbase', `${b.coinbase.amount} to ${b.coinbase.to}`],
    ['main chain', b.mainChain],
    ['txs', b.txs.length === 0 ? '(none)' : b.txs.join('\n' + ' '.repeat(12))],
  ]));
}

export async function peersCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, NODE_ACCESS);
  if (values.help) return out.help(HELP.peers);
  const peers = await (await client(values)).call('getPeers', {});
  out.result(peers, peers.length === 0 ? '(no peers)' : peers.map((p) => `${p.id}  height ${p.height ?? '?'}  ${p.addrs.join(' ')}`).join('\n'));
}

export async function mempoolCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, NODE_ACCESS);
  if (values.help) return out.help(HELP.mempool);
  const m = await (await client(values)).call('getMempool', {});
  out.result(m, [`${m.size} transactions, ${m.bytes} bytes`, ...m.txs.map((t) => `${t.id}  fee ${t.fee}  ${t.from} #${t.nonce} → ${t.to}  ${t.amount}`)].join('\n'));
}

export async function sendCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, {
    ...NODE_ACCESS,
    keystore: { type: 'string' },
    'password-file': { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    amount: { type: 'string' },
    fee: { type: 'string' },
    nonce: { type: 'string' },
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
  });
  if (values.help) return out.help(HELP.send);
  const keystore = required(values, 'keystore');
  const from = required(values, 'from');
  address(from, '--from address');
  const to = address(required(values, 'to'), '--to address');
  const value = amount(required(values, 'amount'), '--amount');
  const fee = amount(str(values, 'fee') ?? '1', '--fee');
  const nonceText = str(values, 'nonce');
  if (nonceText !== undefined && !/^(0|[1-9]\d{0,18})$/.test(nonceText)) throw new UsageError(`invalid --nonce "${nonceText}": give a whole number`);
  const timeoutSeconds = count(values, 'timeout', 1, 86_400) ?? 120;

  const rpc = await client(values);
  const status = await rpc.call('status', {});
  const nonce = nonceText !== undefined ? BigInt(nonceText) : BigInt((await rpc.call('getAccount', { address: from })).nextNonce);
  const password = await readPassword({ passwordFile: str(values, 'password-file') });
  const key = await loadPrivateKey(keystore, from, password);
  // Signed here: the key never leaves this process.
  const tx = signTransaction({ chainId: status.chainId, to, amount: value, fee, nonce }, key);
  key.fill(0);
  const { id } = await rpc.call('sendRawTransaction', { tx: toHex(tx.bytes) });
  if (!values.wait) return out.result({ id }, id);

  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const t = await rpc.call('getTransaction', { id }).catch((err: unknown) => {
      if (err instanceof RpcClientError && err.rpcCode === -32001) return undefined; // dropped or reorged out for now
      throw err;
    });
    if (t?.status === 'confirmed') return out.result({ id, status: t.status, blockHeight: t.blockHeight }, `${id} confirmed in block ${t.blockHeight}`);
    if (Date.now() > deadline) throw new RpcClientError('SEND_TIMEOUT', `${id} was not confirmed within ${timeoutSeconds} s (still ${t?.status ?? 'unknown'})`);
    await new Promise((r) => setTimeout(r, 500));
  }
  void encodeAddress;
}

const ACCESS = `  --datadir DIR          the node running on DIR (default ./data)
  --rpc URL --rpc-token T   or a node reached by URL
  --json                 machine-readable output`;

const HELP = {
  status: `Usage: cairn status [--datadir DIR | --rpc URL --rpc-token T] [--json]

The node's network, height, head, total work, peers, mempool and listen addresses.
${ACCESS}

Examples:
  cairn status
  cairn status --datadir ./b --json`,
  account: `Usage: cairn account ADDRESS [--datadir DIR | --rpc URL --rpc-token T] [--json]

Balance and nonce of ADDRESS at the chain tip.
${ACCESS}

Example:
  cairn account cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz`,
  tx: `Usage: cairn tx ID [--datadir DIR | --rpc URL --rpc-token T] [--json]

A transaction by id: pending in the mempool, or confirmed with its block height.
${ACCESS}

Example:
  cairn tx 3f2a…c9e1 --json`,
  block: `Usage: cairn block HEIGHT|HASH [--datadir DIR | --rpc URL --rpc-token T] [--json]

A block of the main chain by height, or any stored block by hash.
${ACCESS}

Examples:
  cairn block 0
  cairn block 42 --json`,
  peers: `Usage: cairn peers [--datadir DIR | --rpc URL --rpc-token T] [--json]

Connected peers with their announced heights.
${ACCESS}

Example:
  cairn peers --datadir ./b --json`,
  mempool: `Usage: cairn mempool [--datadir DIR | --rpc URL --rpc-token T] [--json]

Pending transactions.
${ACCESS}

Example:
  cairn mempool --json`,
  send: `Usage: cairn send --keystore DIR --from ADDRESS --to ADDRESS --amount N [--fee N] [--nonce N]
                  [--wait] [--timeout SECONDS] [--password-file F]
                  [--datadir DIR | --rpc URL --rpc-token T] [--json]

Builds and signs a transfer here (the key never reaches the node), takes the next nonce from the
node unless --nonce is given, submits it and prints its id. Amounts and fees are whole numbers of
base units (fee default 1). --wait returns once the transaction is confirmed.
${ACCESS}

Example:
  cairn send --keystore ./keys --from cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz \\
             --to cairn1khw92xl6qudmpnfnxp9kz8ll2sq6e7y2ppu0rk --amount 1000 --wait`,
};
