/**
 * The command line's plumbing, without a node: its defaults, its log lines, how it words a
 * failure it is handed, and the launcher that picks what to run.
 */
import assert from 'node:assert/strict';
import { DEFAULT_PORTS } from '../cli/args.ts';
import { runCli } from './helpers/cli.ts';

describe('cli plumbing', function () {
  this.timeout(30_000);

  describe('default ports', () => {
    it('every default port is its own: a light client beside a node (as the README runs them) takes none of the node\'s', async () => {
      const ports = Object.values(DEFAULT_PORTS);
      assert.equal(new Set(ports).size, ports.length, JSON.stringify(DEFAULT_PORTS));
      // And the help says what the code does.
      const [node, light] = await Promise.all([runCli(['node', '--help']), runCli(['light', '--help'])]);
      assert.match(node.stdout, new RegExp(`P2P on port ${DEFAULT_PORTS.p2p} .*JSON-RPC on 127\\.0\\.0\\.1:${DEFAULT_PORTS.rpc} `, 's'));
      assert.match(node.stdout, new RegExp(`http://127\\.0\\.0\\.1:${DEFAULT_PORTS.http}/`));
      assert.match(light.stdout, new RegExp(`JSON-RPC on 127\\.0\\.0\\.1:${DEFAULT_PORTS.lightRpc} `));
    });
  });
});
