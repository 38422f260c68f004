/**
 * The command line's plumbing, without a node: its defaults, its log lines, how it words a
 * failure it is handed, and the launcher that picks what to run.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { address, DEFAULT_PORTS, hostNames, listenAddress, parse, UsageError } from '../cli/args.ts';
import { explainStartFailure, listenFailures } from '../cli/start-errors.ts';
import { createLogger } from '../cli/log.ts';
import { datadirFailure } from '../cli/datadir.ts';
import { syncText } from '../cli/cmd-inspect.ts';
import { connect, RpcClient, RpcClientError } from '../cli/rpc-client.ts';
import { createOut, failureText, si } from '../cli/output.ts';
import { keysCommand } from '../cli/cmd-keys.ts';
import type { StatusResult } from '../node/rpc-types.ts';
import { tempDir } from './helpers/fixtures.ts';
import { CAIRN_BIN, REPO, closedPort, runCli, waitFor } from './helpers/cli.ts';

/** Writes `text` to `path` (making its folder) and dates it `seconds` after the epoch. */
function writeAt(path: string, text: string, seconds: number): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  utimesSync(path, seconds, seconds);
}

describe('cli plumbing', function () {
  this.timeout(30_000);

  describe('default ports', () => {
    it('every default port is its own: a light client beside a node (as the README runs them) takes none of the node\'s', async () => {
      const ports = Object.values(DEFAULT_PORTS);
      assert.equal(new Set(ports).size, ports.length, JSON.stringify(DEFAULT_PORTS));
      // And the help says what the code does.
      const [node, light] = await Promise.all([runCli(['node', '--help']), runCli(['light', '--help'])]);
      assert.match(node.stdout, new RegExp(`P2P on port ${DEFAULT_PORTS.p2p} .*JSON-RPC on\\s+127\\.0\\.0\\.1:${DEFAULT_PORTS.rpc} `, 's'));
      assert.match(node.stdout, new RegExp(`http://127\\.0\\.0\\.1:${DEFAULT_PORTS.http}/`));
      assert.match(light.stdout, new RegExp(`JSON-RPC on 127\\.0\\.0\\.1:${DEFAULT_PORTS.lightRpc} `));
    });
  });

  describe('start-up failures, in words that name the fix', () => {
    // What libp2p 3 says when it cannot listen (copied from a real run): advice about its own
    // configuration, then each address with its error and that error's stack.
    const LIBP2P = 'Some configured addresses failed to be listened on, you may need to remove one or more listen addresses from your configuration or set `transportManager.faultTolerance` to NO_FATAL:\n\n' +
      '  /ip4/10.1.2.3/tcp/80: Error: listen EACCES: permission denied 10.1.2.3:80\n      at Server.setupListenHandle [as _listen2] (node:net:2306:21)\n      at listenInCluster (node:net:2437:12)\n' +
      '  /ip6/::1/tcp/80: Error: listen EACCES: permission denied ::1:80\n      at node:net:2666:7\n      at process.processTicksAndRejections (node:internal/process/task_queues:90:21)\n';
    const listenError = Object.assign(new Error(LIBP2P), { name: 'UnsupportedListenAddressesError' });
    const settings = { datadir: '/d', p2pPort: 80, p2pHost: '10.1.2.3', rpcPort: 7371, httpPort: 7372, metricsPort: 9100 };

    it('P2P: only the first line of each address\'s error, none of libp2p\'s advice or stack frames', () => {
      assert.equal(listenFailures(LIBP2P), '/ip4/10.1.2.3/tcp/80: listen EACCES: permission denied 10.1.2.3:80; /ip6/::1/tcp/80: listen EACCES: permission denied ::1:80');
      const explained = explainStartFailure(listenError, settings) as Error;
      assert.equal(explained.message, 'cannot listen for peers on /ip4/10.1.2.3/tcp/80: listen EACCES: permission denied 10.1.2.3:80; /ip6/::1/tcp/80: listen EACCES: permission denied ::1:80 (see --p2p-host and --p2p-port)');
    });

    it('a port the process may not open names its flag', () => {
      const denied = Object.assign(new Error('listen EACCES: permission denied 127.0.0.1:9100'), { code: 'EACCES', port: 9100 });
      assert.equal((explainStartFailure(denied, settings) as Error).message, 'metrics port 9100 (Prometheus) needs privileges this process does not have: choose one above 1023 with --metrics-port N');
    });

    it('a datadir the process may not create names the path at fault and --datadir', () => {
      // Not through a process: the tests may run as root, which may create anything.
      const denied = Object.assign(new Error("EACCES: permission denied, mkdir '/srv/cairn'"), { code: 'EACCES', path: '/srv/cairn' });
      assert.equal((datadirFailure(denied, '/srv/cairn/data') as Error).message, 'cannot create the datadir /srv/cairn/data: permission denied (at /srv/cairn); give --datadir a directory you can write');
      const readOnly = Object.assign(new Error("EROFS: read-only file system, mkdir '/mnt/data'"), { code: 'EROFS', path: '/mnt/data' });
      assert.equal((datadirFailure(readOnly, '/mnt/data') as Error).message, 'cannot create the datadir /mnt/data: the file system is read-only; give --datadir a directory you can write');
    });

    it('--p2p-host takes IPv4 and IPv6 addresses, and refuses a name before anything is created', () => {
      assert.equal(listenAddress('127.0.0.1', 7370), '/ip4/127.0.0.1/tcp/7370');
      assert.equal(listenAddress('::1', 0), '/ip6/::1/tcp/0');
      assert.equal(listenAddress('::', 7370), '/ip6/::/tcp/7370');
      assert.throws(() => listenAddress('localhost', 0), (err: unknown) => err instanceof UsageError && /^--p2p-host must be an IP address, got "localhost"/.test(err.message));
    });
  });

  it('--http-host-name takes host names and *, and refuses a URL or a host:port, which no request would match', () => {
    assert.deepEqual(hostNames({ 'http-host-name': ['explorer.example', 'Node-1.lan.', '*'] }, 'http-host-name'), ['explorer.example', 'Node-1.lan.', '*']);
    assert.deepEqual(hostNames({}, 'http-host-name'), []);
    for (const bad of ['https://explorer.example', 'explorer.example:443', 'explorer.example/', '', '-x.example']) {
      assert.throws(() => hostNames({ 'http-host-name': [bad] }, 'http-host-name'), (err: unknown) => err instanceof UsageError && err.message.startsWith('--http-host-name must be a host name'), bad);
    }
  });

  it('an address that is not a Cairn one (hex, 0x…, another chain\'s) is said to be none, with what one looks like', () => {
    const notOurs = (text: string) => `invalid --to address "${text}": not a Cairn address, which is cairn1 and 38 more letters and digits (cairn keys list shows yours)`;
    for (const text of ['0x742d35Cc6634C0532925a3b844Bc454e4438f44e', '742d35cc6634c0532925a3b844bc454e4438f44e', 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq', '']) {
      assert.throws(() => address(text, '--to address'), (err: Error) => err instanceof UsageError && err.message === notOurs(text), text);
    }
  });

  it('a mistyped, cut or capitalised Cairn address is told its fault and its fix, not the decoder\'s words ("Invalid checksum in …", "invalid data length")', () => {
    const good = 'cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz';
    const again = 'copy the address again (cairn keys list shows yours)';
    const said = (text: string) => {
      try {
        address(text, '--to address');
      } catch (err) {
        assert.ok(err instanceof UsageError, text);
        return err.message.replace(`invalid --to address "${text}": `, '');
      }
      assert.fail(`${text} was taken`);
    };
    assert.equal(said(good.slice(0, -1) + 'q'), `its checksum does not match, so a character is mistyped: ${again}`);
    assert.equal(said(good.slice(0, -1)), `it has 37 characters after cairn1, where an address has 38: some are missing; ${again}`);
    assert.equal(said(good + 'q'), `it has 39 characters after cairn1, where an address has 38: some are extra; ${again}`);
    assert.equal(said('cairn1xyz'), `it has 3 characters after cairn1, where an address has 38: some are missing; ${again}`);
    assert.equal(said(good.replace('rqpp', 'rqbp')), `"b" (character 10) is not in any address, which has no 1, b, i or o after cairn1: ${again}`);
    assert.equal(said(good.toUpperCase()), `an address is written in small letters: give "${good}"`);
    assert.equal(said(good.toUpperCase().slice(0, -1) + 'Q'), `it is in capitals, where an address is in small letters, and its checksum does not match either, so a character is mistyped: ${again}`);
    assert.equal(said('Cairn' + good.slice(5)), `it mixes capitals and small letters: ${again}`);
  });

  it('an amount typed apart from its unit (--amount 12.5 CRN) is told to join them, not only that CRN is unexpected', () => {
    const options = { amount: { type: 'string' }, fee: { type: 'string' }, json: { type: 'boolean' } } as const;
    const said = (argv: string[]) => {
      try {
        parse(argv, options);
      } catch (err) {
        assert.ok(err instanceof UsageError, argv.join(' '));
        return err.message;
      }
      assert.fail(`${argv.join(' ')} was taken`);
    };
    assert.equal(said(['--amount', '12.5', 'CRN']), 'unexpected argument "CRN": an amount and its unit are one argument, --amount 12.5CRN (or --amount "12.5 CRN")');
    assert.equal(said(['--json', '--fee=1', 'crn', '--amount', '2CRN']), 'unexpected argument "crn": an amount and its unit are one argument, --fee 1crn (or --fee "1 crn")');
    // Anything else stray is only named: nothing says it was a unit.
    assert.equal(said(['--amount', '2CRN', 'CRN']), 'unexpected argument "CRN"');
    assert.equal(said(['--json', '1', 'CRN']), 'unexpected argument "1"');
    assert.equal(said(['--amount', 'x', 'CRN']), 'unexpected argument "CRN"');
  });

  it('a ~ the shell left as it is (--datadir=~/cairn, or quoted) is refused with the way to write it, not made a folder named "~"', () => {
    const options = { datadir: { type: 'string' }, bootstrap: { type: 'string', multiple: true } } as const;
    assert.throws(() => parse(['--datadir=~/cairn'], options), (err: Error) => err instanceof UsageError && err.message === '--datadir "~/cairn": the shell did not expand ~ (it does not after "=", nor in quotes), and a folder named "~" would be made here: write --datadir ~/cairn (a space, no quotes), or --datadir "$HOME/cairn"');
    assert.throws(() => parse(['--datadir', '~'], options), /--datadir "~": the shell did not expand ~/);
    assert.throws(() => parse(['--bootstrap', '/ip4/1.2.3.4/tcp/1/p2p/x', '--bootstrap', '~/peers'], options), /--bootstrap "~\/peers"/);
    for (const text of ['./~/cairn', '/home/me/cairn', 'data~', '~cairn']) assert.equal(parse(['--datadir', text], options).values['datadir'], text);
  });

  describe('what stderr says of a failure', () => {
    it('an expected failure is one line of ours, no stack; a usage error points to --help', () => {
      assert.equal(failureText(new RpcClientError('NODE_NOT_RUNNING', 'no node is running on data'), false, 'see cairn status --help'), 'cairn: no node is running on data\n');
      assert.equal(failureText(new UsageError('--last must be a whole number'), true, 'see cairn blocks --help'), 'cairn: --last must be a whole number (see cairn blocks --help)\n');
      const system = Object.assign(new Error("ENOENT: no such file or directory, open 'x'\nmore"), { code: 'ENOENT' });
      assert.equal(failureText(system, false, ''), "cairn: ENOENT: no such file or directory, open 'x'\n");
    });

    it('a bug says so, with its stack to find it by', () => {
      const bug = new TypeError("Cannot read properties of undefined (reading 'height')");
      const text = failureText(bug, false, 'see cairn status --help');
      const [first, ...rest] = text.trimEnd().split('\n');
      assert.equal(first, "cairn: internal error: Cannot read properties of undefined (reading 'height') (a bug in cairn: please report it, with these lines)");
      assert.equal(rest.join('\n'), bug.stack);
      assert.match(text, /\n\s+at /);
    });
  });

  it("a datadir's rpc.json whose pid lives (another process's, after a crash and a reboot) and whose port nobody answers: the way on, not only \"is it running?\"", async () => {
    const dir = tempDir();
    try {
      const url = `http://127.0.0.1:${await closedPort()}/`;
      writeFileSync(join(dir.path, 'rpc.json'), JSON.stringify({ url, token: 'x', pid: process.pid }) + '\n');
      const err = await (await connect({ datadir: dir.path })).call('status', {}).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof RpcClientError, String(err));
      assert.equal(err.message, `the node on ${dir.path} does not answer at ${url} (its rpc.json names pid ${process.pid}): if it has ended (a crash leaves rpc.json behind, and its pid may since be another process's), start it again with: cairn node --datadir ${dir.path}`);
    } finally {
      dir.remove();
    }
  });

  it('a damaged rpc.json is said to be damaged, with the way on: not "it has no rpc.json", nor a call to an endpoint it does not name', async () => {
    // Found by the files fuzz (test/files-fuzz.test.ts): `[]` or a url that is no string gave a client
    // that called "undefined", and told "does not answer at undefined"; text that is not JSON, "no rpc.json".
    const dir = tempDir();
    try {
      const file = join(dir.path, 'rpc.json');
      const good = { url: 'http://127.0.0.1:7371/', token: 'ab12', pid: process.pid };
      for (const [text, why] of [
        ['[]', 'not the url, token and pid a node writes'],
        ['null', 'not the url, token and pid a node writes'],
        [JSON.stringify({ ...good, url: 5 }), 'not the url, token and pid a node writes'],
        [JSON.stringify({ ...good, url: 'file:///etc/passwd' }), 'not the url, token and pid a node writes'],
        [JSON.stringify({ ...good, token: 'a\nb' }), 'not the url, token and pid a node writes'],
        [JSON.stringify({ ...good, pid: '12' }), 'not the url, token and pid a node writes'],
        ['{"url": "http://127.0.0.1:7371/",\n "tok', 'not JSON: '],
      ] as const) {
        writeFileSync(file, text);
        const err = await connect({ datadir: dir.path }).then(() => undefined, (e: unknown) => e);
        assert.ok(err instanceof RpcClientError && err.code === 'RPC_ENDPOINT_DAMAGED', `${text}: ${String(err)}`);
        assert.ok(err.message.startsWith(`${file} is damaged (${why}`), err.message);
        assert.ok(err.message.endsWith(`: the node writes it anew when it starts; if one runs there, restart it, or give --rpc URL with its token in CAIRN_RPC_TOKEN`), err.message);
        assert.doesNotMatch(err.message, /\n/);
      }
    } finally {
      dir.remove();
    }
  });

  it('a call node:http cannot make (a token it cannot send) fails, and leaves no timer behind to fire on a request never made', async () => {
    // A script's process ended 60 s later on a ReferenceError: the deadline's timer fired on the
    // request that node:http had refused to make.
    // In a process of its own: mocha's timers are in this one.
    const script = `const { RpcClient } = await import(${JSON.stringify(pathToFileURL(join(REPO, 'cli/rpc-client.ts')).href)});
      const err = await new RpcClient('http://127.0.0.1:1/', 'a\\nb').call('status', {}).then(() => undefined, (e) => e);
      console.log(err?.code, JSON.stringify(process.getActiveResourcesInfo().filter((r) => r === 'Timeout')));
      process.exit(0);`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(child.stdout.trim(), 'NODE_NOT_RUNNING []', child.stderr);
    await assert.rejects(connect({ rpc: 'http://127.0.0.1:1/', 'rpc-token': 'a b' }), /^UsageError: --rpc-token \(or CAIRN_RPC_TOKEN\) must be the token in the node's rpc\.json/);
  });

  it("a devnet's folder given as a datadir: names the datadirs of its nodes in it, not \"start one with cairn node --datadir\" there", async () => {
    const dir = tempDir();
    try {
      mkdirSync(join(dir.path, 'node-0'));
      writeFileSync(join(dir.path, 'node-0', 'genesis.json'), '{}\n');
      const err = await connect({ datadir: dir.path }).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof RpcClientError, String(err));
      assert.equal(err.message, `${dir.path} is a devnet's folder (cairn devnet): each of its nodes has a datadir of its own in it, such as --datadir ${join(dir.path, 'node-0')}`);
    } finally {
      dir.remove();
    }
  });

  describe('--rpc', () => {
    const refused = (url: string) => connect({ rpc: url, 'rpc-token': 't' }).then(
      () => assert.fail(`--rpc ${url} was taken`),
      (err: unknown) => {
        assert.ok(err instanceof UsageError, String(err));
        return err.message;
      },
    );

    it('a URL without its scheme is a usage error naming it, not "not answering; is it running?" about a node that runs', async () => {
      assert.equal(await refused('127.0.0.1:7371'), '--rpc must be the node\'s URL, http://HOST:PORT (its rpc.json says it), got "127.0.0.1:7371": did you mean http://127.0.0.1:7371?');
      assert.match(await refused('localhost:7371/'), /did you mean http:\/\/localhost:7371\/\?$/);
      assert.match(await refused('ftp://127.0.0.1:7371'), /^--rpc must be the node's URL, http:\/\/HOST:PORT .*got "ftp:\/\/127.0.0.1:7371"$/);
      assert.match(await refused('http://'), /got "http:\/\/"$/);
    });

    it('a missing or refused token is told where the right one is: the node\'s rpc.json, new at each start', async () => {
      const saved = process.env['CAIRN_RPC_TOKEN'];
      delete process.env['CAIRN_RPC_TOKEN'];
      try {
        await assert.rejects(connect({ rpc: 'http://127.0.0.1:1/' }), (err: Error) => err instanceof UsageError && err.message === "--rpc needs --rpc-token (or CAIRN_RPC_TOKEN): the token in the node's rpc.json, in its datadir");
      } finally {
        if (saved !== undefined) process.env['CAIRN_RPC_TOKEN'] = saved;
      }
      const server = createServer((_req, res) => res.writeHead(401).end());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
        const err = await new RpcClient(url, 'a-stale-token').call('status', {}).then(() => undefined, (e: unknown) => e);
        assert.ok(err instanceof RpcClientError, String(err));
        assert.equal(err.message, `the node at ${url} refused the RPC token: give the one in its datadir's rpc.json, which is new at each start of the node (--rpc-token or CAIRN_RPC_TOKEN), or, on the node's machine, --datadir DIR instead of --rpc`);
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('an http or https URL is taken as it is', async () => {
      for (const url of ['http://127.0.0.1:7371/', 'http://[::1]:7371', 'https://node.example:443/rpc']) {
        const client = await connect({ rpc: url, 'rpc-token': 't' });
        assert.ok(client instanceof RpcClient);
        assert.equal(client.url, url);
      }
    });
  });

  it('keys list of an empty keystore says how to fill it, and of a datadir, where the node keeps its key (on stderr: stdout holds addresses only)', async () => {
    const dir = tempDir();
    try {
      const list = async (keystore: string) => {
        let stdout = '';
        let said = '';
        await keysCommand(['list', '--keystore', keystore], createOut(false, (t) => (stdout += t), (t) => (said += t)));
        assert.equal(stdout, '');
        return said.trimEnd();
      };
      const datadir = join(dir.path, 'data');
      mkdirSync(join(datadir, 'keystore'), { recursive: true });
      writeFileSync(join(datadir, 'genesis.json'), '{}\n');
      assert.equal(await list(datadir), `(no keys in ${datadir}; a node keeps its coinbase key in its datadir's keystore: --keystore ${join(datadir, 'keystore')})`);
      const empty = join(dir.path, 'keys');
      mkdirSync(empty);
      assert.equal(await list(empty), `(no keys in ${empty}; cairn keys new --keystore ${empty} makes one, cairn keys import --keystore ${empty} FILE brings one)`);
    } finally {
      dir.remove();
    }
  });

  it("status's rates read alike at every size: 0 H/s beside 2.41 MH/s, not 0H/s", () => {
    assert.deepEqual([0, 999, 2_410_000].map((n) => si(n, 'H/s')), ['0 H/s', '999 H/s', '2.41 MH/s']);
    assert.deepEqual([1, 4_600_000].map((n) => si(n, '')), ['1', '4.60 M'], 'a count without a unit ends in no space');
  });

  describe("status's sync line", () => {
    const status = (s: Partial<StatusResult>) => ({ syncing: false, height: 50, syncTarget: 50, peers: 2, mining: false, bestPeerHeight: 50, peersAhead: 0, peersApart: 0, ...s }) as StatusResult;

    it('says apart, before behind or in step, when a peer claims more work on a chain this node will not follow', () => {
      assert.match(syncText(status({})), /^in step with 2 peers/);
      assert.match(syncText(status({ bestPeerHeight: 70, peersAhead: 1 })), /^behind: 1 peer claims more work \(best announced height 70\)/);
      assert.match(syncText(status({ bestPeerHeight: 50, peersAhead: 2 })), /^behind: 2 peers claim more work$/, 'a heavier chain at our height');
      // From the metrics review: a taller chain with less work (a slow branch) is not one to be behind.
      assert.match(syncText(status({ bestPeerHeight: 70 })), /^in step with 2 peers \(best announced height 70\)/);
      // The peer apart may be lower, higher or level: its chain is heavier, and forks below the floor.
      for (const bestPeerHeight of [30, 50, 70]) {
        assert.match(syncText(status({ bestPeerHeight, peersApart: 1 })), /^apart: 1 peer claims more work \(unchecked\) on a chain that forks deeper than this node reorganises/);
      }
      assert.match(syncText(status({ peersApart: 2 })), /^apart: 2 peers claim/);
      assert.match(syncText(status({ syncing: true, syncTarget: 90, peersApart: 1 })), /^syncing: at 50 of 90/, 'a sync running is said first');
    });
  });

  describe('log lines at a terminal', () => {
    it('start with the time in UTC, ISO 8601 with its Z, to the second', () => {
      const lines: string[] = [];
      const logger = createLogger('info', true, (text) => lines.push(text));
      const before = Math.floor(Date.now() / 1000) * 1000;
      logger.info({ height: 7 }, 'mined block');
      const after = Date.now();
      assert.equal(lines.length, 1);
      const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) INFO  mined block  height=7\n$/.exec(lines[0]!);
      assert.ok(m, lines[0]);
      const at = Date.parse(m[1]!);
      assert.ok(at >= before && at <= after, `${m[1]} is now, in UTC`);
    });
  });

  describe('log lines to an output that takes none', () => {
    let child: ChildProcess | undefined;
    afterEach(() => {
      if (child?.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      child = undefined;
    });

    it('a full disk (/dev/full) neither ends the process nor holds it at its exit', async function () {
      // From a review: the first line's ENOSPC was an 'error' no one handled, and pino's flush at
      // the exit that followed retried it for ever, asleep: a node that neither ran nor ended.
      if (!existsSync('/dev/full')) {
        console.log('      SKIPPED: no /dev/full on this system');
        this.skip(); // reported as pending, not passed
      }
      const log = pathToFileURL(join(REPO, 'cli', 'log.ts')).href;
      const script = `import { createLogger } from ${JSON.stringify(log)};
        const logger = createLogger('info', false);
        logger.info({ height: 1 }, 'mined block');
        await new Promise((r) => setTimeout(r, 50));
        logger.info({ height: 2 }, 'mined block');
        await new Promise((r) => setImmediate(r));
        process.stderr.write('still running\\n');
        process.exit(0);`;
      const out = openSync('/dev/full', 'w');
      try {
        child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', out, 'pipe'] });
      } finally {
        closeSync(out);
      }
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
      const code = await waitFor('the process to end', async () => (child!.exitCode ?? child!.signalCode ?? undefined), 15_000, 25);
      assert.equal(code, 0, stderr);
      assert.equal(await exited, 0);
      assert.equal(stderr, 'still running\n');
    });
  });

  describe('the launcher (cli/cairn.mjs)', () => {
    const dir = tempDir('cairn-launcher-');
    after(() => dir.remove());

    it('runs the build while it is newer than every source, and the sources once a file in a subfolder (node/http, …), the explorer or genesis.json is newer', async () => {
      // A checkout of its own: the launcher finds its root from where it lies.
      const root = dir.path;
      mkdirSync(join(root, 'cli'));
      copyFileSync(CAIRN_BIN, join(root, 'cli', 'cairn.mjs'));
      utimesSync(join(root, 'cli', 'cairn.mjs'), 1_000, 1_000); // a source too
      writeAt(join(root, 'cli', 'main.ts'), "console.log('sources');\n", 1_000);
      for (const f of ['ledger/a.ts', 'consensus/a.ts', 'node/a.ts', 'node/http/a.ts', 'node/light/a.ts']) writeAt(join(root, f), '', 1_000);
      writeAt(join(root, 'dist', 'cli', 'main.js'), "console.log('build');\n", 2_000);
      const run = async () => {
        const r = await runCli([], { script: join(root, 'cli', 'cairn.mjs') });
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.trim();
      };
      assert.equal(await run(), 'build');
      utimesSync(join(root, 'node', 'http', 'a.ts'), 3_000, 3_000); // an edit under node/http
      assert.equal(await run(), 'sources');
      utimesSync(join(root, 'node', 'http', 'a.ts'), 1_000, 1_000);
      utimesSync(join(root, 'node', 'light', 'a.ts'), 3_000, 3_000);
      assert.equal(await run(), 'sources');
      utimesSync(join(root, 'node', 'light', 'a.ts'), 1_000, 1_000);
      // What the build copies (npm run build) is a source too: the explorer's files, the bundled genesis.
      for (const f of ['explorer/index.html', 'explorer/app.js', 'explorer/style.css', 'genesis.json']) writeAt(join(root, f), '', 1_000);
      assert.equal(await run(), 'build');
      for (const f of ['explorer/index.html', 'explorer/style.css', 'genesis.json']) {
        utimesSync(join(root, f), 3_000, 3_000);
        assert.equal(await run(), 'sources', `after an edit of ${f}`);
        utimesSync(join(root, f), 1_000, 1_000);
      }
    });
  });

  describe('the relay to the bundled Node (cli/relay.mjs: the launcher under a Node older than 22.18)', () => {
    // The launcher takes this road only under an old Node, which this test's Node 24 is not; what
    // it runs there, relay(), is run here as it is, with stdin not a terminal.
    const dir = tempDir('cairn-relay-');
    const kills: (() => void)[] = [];
    after(() => {
      for (const kill of kills) kill();
      dir.remove();
    });
    const CHILD = `
      for (const s of ['SIGINT', 'SIGHUP']) process.on(s, () => console.log('got ' + s));
      if (process.argv[2] === 'clean') process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(7); });
      console.log('ready ' + process.pid);
      setInterval(() => {}, 1000);
    `;

    /** A parent running relay() on the child script, in a process group of its own (as a terminal's job). */
    function start(mode: 'clean' | 'killed') {
      writeFileSync(join(dir.path, 'child.mjs'), CHILD);
      writeFileSync(join(dir.path, 'parent.mjs'), `import { relay } from ${JSON.stringify(pathToFileURL(join(REPO, 'cli', 'relay.mjs')).href)};\nrelay(process.execPath, [${JSON.stringify(join(dir.path, 'child.mjs'))}, ${JSON.stringify(mode)}]);\n`);
      const parent = spawn(process.execPath, [join(dir.path, 'parent.mjs')], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      parent.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      // 'exit', not 'close': a child left running would hold the pipes open.
      const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => parent.once('exit', (code, signal) => r({ code, signal })));
      /** Both, by pid, should a test fail half-way (the child is in a group of its own). */
      const kill = () => {
        const child = Number(/^ready (\d+)$/m.exec(out)?.[1]);
        for (const pid of [parent.pid!, child]) {
          try {
            if (pid) process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
      };
      kills.push(kill);
      return { parent, out: () => out, closed, kill };
    }

    it('passes SIGINT, SIGHUP and SIGTERM on, each once (a Ctrl-C to the group too), and exits with the child\'s status', async () => {
      const { parent, out, closed, kill } = start('clean');
      try {
        await waitFor('the child to be ready', async () => (/^ready \d+$/m.test(out()) ? true : undefined), 20_000, 20);
        process.kill(-parent.pid!, 'SIGINT'); // the terminal's Ctrl-C: to every process of the group
        await waitFor('the child to get SIGINT', async () => (out().includes('got SIGINT') ? true : undefined), 10_000, 20);
        process.kill(parent.pid!, 'SIGHUP');
        await waitFor('the child to get SIGHUP', async () => (out().includes('got SIGHUP') ? true : undefined), 10_000, 20);
        // The parent passes signals on in the order it got them: any second SIGINT is told before this.
        process.kill(parent.pid!, 'SIGTERM');
        assert.deepEqual(await closed, { code: 7, signal: null });
        await waitFor('the last line', async () => (out().includes('got SIGTERM\n') ? true : undefined), 10_000, 20);
        assert.deepEqual(out().trim().split('\n').slice(1), ['got SIGINT', 'got SIGHUP', 'got SIGTERM']);
      } finally {
        kill();
      }
    });

    it('leaves no child behind: stopped with it, and ends by the signal that ended the child', async () => {
      const { parent, out, closed, kill } = start('killed');
      try {
        await waitFor('the child to be ready', async () => (/^ready \d+$/m.test(out()) ? true : undefined), 20_000, 20);
        const child = Number(/^ready (\d+)$/m.exec(out())![1]);
        process.kill(parent.pid!, 'SIGTERM');
        assert.deepEqual(await closed, { code: null, signal: 'SIGTERM' });
        assert.throws(() => process.kill(child, 0), { code: 'ESRCH' }, 'the child is gone');
      } finally {
        kill();
      }
    });
  });
});
