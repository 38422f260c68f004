/** hostRefused (node/http/local-host.ts): which Host headers a server on loopback refuses, against DNS rebinding. */
import assert from 'node:assert/strict';
import { hostRefused, isLoopbackHost } from '../node/http/local-host.ts';

describe('hostRefused', () => {
  it('on loopback, a DNS name other than localhost is refused; IP addresses, localhost and the names given are not', () => {
    for (const host of ['evil.example', 'evil.example:7372', 'localhost.evil.example', '127.0.0.1.nip.io', 'a b', 'evil.example/x', 'user@localhost', '']) {
      assert.equal(hostRefused('127.0.0.1', host), true, host);
    }
    for (const host of ['localhost', 'localhost:7372', 'LocalHost.', 'explorer.localhost:1', '127.0.0.1:7372', '[::1]:7372', '192.168.1.5', '2130706433']) {
      assert.equal(hostRefused('127.0.0.1', host), false, host);
    }
    assert.equal(hostRefused('::1', 'evil.example'), true);
    assert.equal(hostRefused('127.0.0.1', 'Explorer.Example:443', ['explorer.example.']), false);
    assert.equal(hostRefused('127.0.0.1', 'evil.example', ['explorer.example']), true);
    assert.equal(hostRefused('127.0.0.1', 'evil.example', ['*']), false);
    assert.equal(hostRefused('127.0.0.1', undefined), false, 'no Host: not a browser');
  });

  it('a server published on another address answers every name', () => {
    for (const bound of ['0.0.0.0', '::', '192.168.1.5']) assert.equal(hostRefused(bound, 'explorer.example'), false, bound);
    assert.deepEqual(['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '[::1]', 'localhost'].filter((h) => !isLoopbackHost(h)), []);
    assert.deepEqual(['0.0.0.0', '::', '10.0.0.1', 'fe80::1'].filter(isLoopbackHost), []);
  });
});
