/** localUrl (node/http/local-url.ts): what the endpoint file and the logs tell a client to dial. */
import assert from 'node:assert/strict';
import { localUrl } from '../node/http/local-url.ts';

describe('localUrl', () => {
  it('a wildcard host is reached on loopback; an IPv6 host goes in brackets', () => {
    assert.equal(localUrl('127.0.0.1', 8332), 'http://127.0.0.1:8332/');
    assert.equal(localUrl('0.0.0.0', 9100, '/metrics'), 'http://127.0.0.1:9100/metrics');
    assert.equal(localUrl('::1', 9100, '/metrics'), 'http://[::1]:9100/metrics');
    assert.equal(localUrl('::', 8080), 'http://[::1]:8080/');
    assert.equal(localUrl('fe80::1', 8080), 'http://[fe80::1]:8080/');
    for (const host of ['127.0.0.1', '::1', '::']) assert.doesNotThrow(() => new URL(localUrl(host, 1)));
  });
});
