import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { encodeAddress } from '../ledger/keys.ts';
import { RpcClient } from './rpc-client.ts';
import { count, parse, str, UsageError } from './args.ts';
import { initDatadir } from './datadir.ts';
import { cairnCommand } from './self.ts';
import type { Out } from './output.ts';

// The entry this process was started from (the `cairn` launcher, cli/main.ts, or its build in
// dist/), so that a devnet's nodes run the same code as the command that started them.
const ENTRY = process.argv[1]!;

export async function devnetCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, { nodes: { type: 'string' }, datadir: { type: 'string' }, genesis: { type: 'string' }, coinbase: { type: 'string' } });
  if (values.help) return out.help(HELP);
  const n = count(values, 'nodes', 1, 32) ?? 3;
  const root = resolve(str(values, 'datadir') ?? 'devnet');
  const genesisArgs = str(values, 'genesis') ? ['--genesis', str(values, 'genesis')!] : [];
  const children: ChildProcess[] = [];
  const stopAll = async () => {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  };
  process.on('SIGINT', () => void stopAll().then(() => process.exit(0)));
  process.on('SIGTERM', () => void stopAll().then(() => process.exit(0)));

  let bootstrap: string[] = [];
  const rows: { name: string; datadir: string; rpc: string; p2p: string; mining: boolean }[] = [];
  for (let i = 0; i < n; i++) {
    const datadir = join(root, `node-${i}`);
    await mkdir(datadir, { recursive: true });
    const { params } = await initDatadir(datadir, str(values, 'genesis'));
    const mining = i === 0;
    // The miner pays the first funded address of the genesis: on the bundled devnet that is the
    // documented public development key, so mined coins can be spent right away.
    const coinbase = str(values, 'coinbase') ?? (params.alloc[0] ? encodeAddress(params.alloc[0].address) : undefined);
    if (mining && !coinbase) throw new UsageError('this genesis funds nobody: pass --coinbase ADDRESS for the mining node');
    const args = [ENTRY, 'node', '--datadir', datadir, ...genesisArgs, '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns', '--log-level', 'info'];
    for (const b of bootstrap) args.push('--bootstrap', b);
    if (mining) args.push('--mine', '--coinbase', coinbase!);
    const log = createWriteStream(join(datadir, 'node.log'), { flags: 'a' });
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    children.push(child);
    const status = await waitForNode(datadir, child);
    if (i === 0) bootstrap = status.listen.filter((a) => a.includes('/127.0.0.1/'));
    rows.push({ name: `node-${i}`, datadir, rpc: status.rpc, p2p: status.listen[0] ?? '', mining });
  }
  const cairn = cairnCommand();
  out.result(rows, rows.map((r) => `${r.name}${r.mining ? ' (mining)' : ''}\n  datadir ${r.datadir}\n  rpc     ${r.rpc}\n  p2p     ${r.p2p}\n  try     ${cairn} status --datadir ${r.datadir}`).join('\n') + `\n\nlogs in each datadir's node.log; Ctrl-C stops all ${n} nodes`);
  await new Promise<never>(() => {}); // until a signal
}

async function waitForNode(datadir: string, child: ChildProcess): Promise<{ listen: string[]; rpc: string }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new UsageError(`the node for ${datadir} exited (status ${child.exitCode}); see ${join(datadir, 'node.log')}`);
    try {
      const client = await RpcClient.fromDatadir(datadir);
      const status = await client.call('status', {});
      return { listen: status.listen, rpc: client.url };
    } catch {
      if (Date.now() > deadline) throw new UsageError(`the node for ${datadir} did not start within 30 s; see ${join(datadir, 'node.log')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const HELP = `Usage: cairn devnet [--nodes N] [--datadir DIR] [--genesis FILE] [--coinbase ADDRESS]

Starts N local nodes (default 3) under DIR (default ./devnet), wired together on 127.0.0.1,
the first one mining to the genesis's funded key (on the bundled devnet, the public development
key); prints how to reach each; Ctrl-C stops them all.

Examples:
  cairn devnet --nodes 3
  cairn devnet --nodes 5 --datadir /tmp/dn`;
