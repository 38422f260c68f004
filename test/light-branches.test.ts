/**
 * A light client's moves to a branch with more work (node/light/header-fetch.ts followBranch): it
 * follows any that forks within the headers it keeps whole, and leaves those that fork deeper.
 */
import assert from 'node:assert/strict';
import { toHex } from '../ledger/bytes.ts';
import { carol, cheapThenHeavier, useLightClients } from './helpers/light-net.ts';

describe('light client: branches', function () {
  this.timeout(60_000);
  const lights = useLightClients('cairn-light-branches-');

  it('follows a heavier branch that forks deep within the headers kept whole, below the last locator hash it could follow from', async () => {
    // The locator's hashes double in distance from the tip: 2,108 headers long, it named heights
    // 1,077 and then 53, below the 61 kept whole. The peer answered from 53, and a branch forking
    // at 100 was "too far back to follow", though its fork was kept whole.
    const { heavier } = await cheapThenHeavier(lights.net, 100);
    const client = await lights.start();
    const warnings: string[] = [];
    client.on('log', (level, message) => level === 'warn' && warnings.push(message));
    await lights.meet(client, 'cheap');
    await lights.meet(client, 'heavier');
    assert.deepEqual(warnings, []);
    assert.equal(toHex(client.headers.tip.header.hash), heavier.tip.hashHex);
    assert.deepEqual((await client.getAccount(carol.address)).account, { balance: 507n, nonce: 0n });
  });
});
