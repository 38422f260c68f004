import assert from 'node:assert/strict';
import { createDecipheriv } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { scrypt as nobleScrypt } from '@noble/hashes/scrypt.js';
import {
  createKey,
  DEFAULT_SCRYPT_N,
  importKey,
  KeystoreError,
  listKeys,
  loadPrivateKey,
  requireKey,
  type KeystoreErrorCode,
} from '../cli/keystore.ts';
import { promptHidden, readPassword } from '../cli/password.ts';
import { keysCommand } from '../cli/cmd-keys.ts';
import { createOut } from '../cli/output.ts';
import { bigIntToBytes, fromHex, toHex } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import { addressOf, CURVE_ORDER, encodeAddress, isValidPrivateKey, publicKeyOf } from '../ledger/keys.ts';
import { seededRandom, tempDir, testKey } from './helpers/fixtures.ts';

/** Files written in tests use a cheap scrypt; one test below writes and opens one at the default. */
const FAST = { scryptN: 1024 };
const PASSWORD = 'correct horse battery staple';
const KEY1 = testKey(1);
const KEY1_HEX = toHex(KEY1.privateKey);
const KEY1_ADDRESS = encodeAddress(KEY1.address);
const KEY2_ADDRESS = encodeAddress(testKey(2).address);

/**
 * Awaits a KeystoreError with `code` whose message is one line and contains none of `secrets`
 * (by default the password and test key 1).
 */
async function rejectsWith(
  promise: Promise<unknown>,
  code: KeystoreErrorCode,
  secrets: readonly string[] = [PASSWORD, KEY1_HEX],
): Promise<KeystoreError> {
  const err = await promise.then(
    () => assert.fail(`expected ${code}, but it succeeded`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof KeystoreError, `expected a KeystoreError, got ${String(err)}`);
  assert.ok(err instanceof CairnError);
  assert.equal(err.code, code, err.message);
  assert.doesNotMatch(err.message, /[\r\n]/, 'one line');
  for (const secret of secrets) {
    if (secret !== '') assert.ok(!err.message.includes(secret), `message reveals a secret: ${err.message}`);
  }
  return err;
}

function readDoc(file: string): any {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** Flips the low bit of the first byte of a hex string. */
function flipHex(hex: string): string {
  return ((parseInt(hex.slice(0, 2), 16) ^ 1).toString(16).padStart(2, '0')) + hex.slice(2);
}

/**
 * Written by this module (importKey of testKey(1), scrypt N = 1024, seededRandom(7)) and frozen:
 * a version-1 file must open forever, whatever the code later becomes.
 */
const FROZEN_V1 = {
  version: 1,
  address: 'cairn14s08q9nhsp7zlth5y8lj748sfdqwwpe88cnua2',
  crypto: {
    kdf: 'scrypt',
    kdfparams: { n: 1024, r: 8, p: 1, dklen: 32, salt: '9c8b19711d1ffa3ec65473cf408760ff52b598bca225fd9b7f126c53f0e2dc09' },
    cipher: 'aes-256-gcm',
    iv: '4c8f31c133b62a6c20217b9d',
    ciphertext: '83a58f95645859d1dd194877e04a2e1280ecd9e7d8232a0d15a695a1cd3cb9f7',
    tag: '77276ed2369c75cd73d7413efb7de161',
  },
};

describe('keystore', () => {
  let dir: ReturnType<typeof tempDir>;
  let keystore: string;
  beforeEach(() => {
    dir = tempDir('cairn-keystore-');
    keystore = join(dir.path, 'keys');
  });
  afterEach(() => dir.remove());

  describe('create, import, list, load', () => {
    it('writes at the documented default cost, scrypt N = 2^16, r = 8, p = 1, and opens what it wrote', async () => {
      assert.equal(DEFAULT_SCRYPT_N, 65536);
      const { address } = await createKey(keystore, PASSWORD, seededRandom(1).bytes);
      const doc = readDoc(join(keystore, `${address}.json`));
      assert.deepEqual({ ...doc.crypto.kdfparams, salt: undefined }, { n: 65536, r: 8, p: 1, dklen: 32, salt: undefined });
      const key = await loadPrivateKey(keystore, address, PASSWORD);
      assert.equal(encodeAddress(addressOf(publicKeyOf(key))), address);
    });

    it('a new key loads back as a valid key of its address; the file has the documented shape', async () => {
      const { address } = await createKey(keystore, PASSWORD, seededRandom(2).bytes, FAST);
      const key = await loadPrivateKey(keystore, address, PASSWORD);
      assert.ok(isValidPrivateKey(key));
      assert.equal(encodeAddress(addressOf(publicKeyOf(key))), address);

      const doc = readDoc(join(keystore, `${address}.json`));
      assert.deepEqual(Object.keys(doc), ['version', 'address', 'crypto']);
      assert.equal(doc.version, 1);
      assert.equal(doc.address, address);
      assert.equal(doc.crypto.kdf, 'scrypt');
      assert.equal(doc.crypto.cipher, 'aes-256-gcm');
      assert.equal(fromHex(doc.crypto.kdfparams.salt).length, 32);
      assert.equal(fromHex(doc.crypto.iv).length, 12);
      assert.equal(fromHex(doc.crypto.ciphertext).length, 32);
      assert.equal(fromHex(doc.crypto.tag).length, 16);
    });

    it('two keys drawn from different seeds differ', async () => {
      const a = await createKey(keystore, PASSWORD, seededRandom(3).bytes, FAST);
      const b = await createKey(keystore, PASSWORD, seededRandom(4).bytes, FAST);
      assert.notEqual(a.address, b.address);
    });

    it('import → export gives the same hex, from plain, 0x-prefixed, upper-case or newline-wrapped text', async () => {
      const variants = [KEY1_HEX, `0x${KEY1_HEX}\n`, `  ${KEY1_HEX.toUpperCase()}\r\n`, `\uFEFF0X${KEY1_HEX}\t`];
      for (const [i, text] of variants.entries()) {
        const store = join(dir.path, `store-${i}`);
        const { address } = await importKey(store, PASSWORD, text, { ...FAST, random: seededRandom(i).bytes });
        assert.equal(address, KEY1_ADDRESS);
        assert.equal(toHex(await loadPrivateKey(store, address, PASSWORD)), KEY1_HEX);
      }
    });

    it('list: the addresses, sorted, without a password; other files are ignored', async () => {
      const addresses: string[] = [];
      for (const seed of [5, 6, 7]) addresses.push((await createKey(keystore, PASSWORD, seededRandom(seed).bytes, FAST)).address);
      addresses.push((await importKey(keystore, 'another password', KEY1_HEX, FAST)).address);
      const [first] = addresses;
      assert.ok(first !== undefined);
      writeFileSync(join(keystore, 'notes.txt'), 'hello');
      writeFileSync(join(keystore, `.${first}.json.0011aabbccdd.tmp`), 'half written');
      writeFileSync(join(keystore, 'cairn1notanaddress.json'), '{}');
      writeFileSync(join(keystore, `${first.toUpperCase()}.json`), '{}');
      writeFileSync(join(keystore, `${first}.json.bak`), '{}');
      mkdirSync(join(keystore, 'sub'));

      assert.deepEqual(await listKeys(keystore), [...addresses].sort());
      const empty = join(dir.path, 'empty');
      mkdirSync(empty);
      assert.deepEqual(await listKeys(empty), []);
    });

    it('passwords are compared after NFKC normalisation (composed and decomposed accents agree)', async () => {
      const { address } = await importKey(keystore, 'caf\u00e9', KEY1_HEX, FAST);
      assert.equal(toHex(await loadPrivateKey(keystore, address, 'cafe\u0301')), KEY1_HEX);
    });

    it('a frozen version-1 file opens, and opens with nothing but scrypt and AES-256-GCM', async () => {
      mkdirSync(keystore);
      writeFileSync(join(keystore, `${FROZEN_V1.address}.json`), JSON.stringify(FROZEN_V1));
      assert.equal(FROZEN_V1.address, KEY1_ADDRESS);
      assert.equal(toHex(await loadPrivateKey(keystore, KEY1_ADDRESS, PASSWORD)), KEY1_HEX);

      // The format, read from the spec rather than the module: an independent scrypt, and the
      // address bound as GCM additional data.
      const { kdfparams, iv, ciphertext, tag } = FROZEN_V1.crypto;
      const derived = nobleScrypt(new TextEncoder().encode(PASSWORD), fromHex(kdfparams.salt), {
        N: kdfparams.n,
        r: kdfparams.r,
        p: kdfparams.p,
        dkLen: kdfparams.dklen,
      });
      const decipher = createDecipheriv('aes-256-gcm', derived, fromHex(iv));
      decipher.setAAD(new TextEncoder().encode(`cairn keystore v1 ${FROZEN_V1.address}`));
      decipher.setAuthTag(fromHex(tag));
      const plain = Buffer.concat([decipher.update(fromHex(ciphertext)), decipher.final()]);
      assert.equal(plain.toString('hex'), KEY1_HEX);
    });
  });

  describe('at rest', () => {
    it('the key file is 0600 and a keystore directory it creates (with its parents) is 0700', async () => {
      const nested = join(dir.path, 'a', 'b', 'keys');
      const { address } = await importKey(nested, PASSWORD, KEY1_HEX, FAST);
      assert.equal(statSync(join(nested, `${address}.json`)).mode & 0o777, 0o600);
      assert.equal(statSync(nested).mode & 0o777, 0o700);
      assert.equal(statSync(join(dir.path, 'a')).mode & 0o777, 0o700);
    });

    it('the key file holds neither the private key (hex, bytes or base64) nor the password', async () => {
      const { address } = await importKey(keystore, PASSWORD, KEY1_HEX, FAST);
      const raw = readFileSync(join(keystore, `${address}.json`));
      const text = raw.toString('latin1');
      assert.equal(raw.indexOf(Buffer.from(KEY1.privateKey)), -1);
      for (const secret of [KEY1_HEX, KEY1_HEX.toUpperCase(), Buffer.from(KEY1.privateKey).toString('base64'), PASSWORD]) {
        assert.ok(!text.includes(secret));
      }
      assert.ok(!text.toLowerCase().includes(Buffer.from(PASSWORD).toString('hex')));
    });

    it('writes leave no temporary files behind, even when refused', async () => {
      const { address } = await importKey(keystore, PASSWORD, KEY1_HEX, FAST);
      await rejectsWith(importKey(keystore, PASSWORD, KEY1_HEX, FAST), 'KEY_EXISTS');
      assert.deepEqual(readdirSync(keystore), [`${address}.json`]);
    });
  });

  describe('refusals', () => {
    it('keys import given the private key itself for its FILE: refused without repeating the key, and told where it now is', async () => {
      for (const typed of [KEY1_HEX, `0x${KEY1_HEX.toUpperCase()}`]) {
        const err = await keysCommand(['import', '--keystore', keystore, typed], createOut(false, () => {})).then(
          () => assert.fail('imported'),
          (e: unknown) => e as Error,
        );
        assert.ok(!err.message.toLowerCase().includes(KEY1_HEX), `the error repeats the key: ${err.message}`);
        assert.match(err.message, /history/);
      }
      assert.throws(() => readdirSync(keystore), /ENOENT/, 'nothing was made');
    });

    it('a wrong password → WRONG_PASSWORD, naming the address but not the passwords', async () => {
      const { address } = await importKey(keystore, PASSWORD, KEY1_HEX, FAST);
      const err = await rejectsWith(loadPrivateKey(keystore, address, 'Tr0ub4dor&3'), 'WRONG_PASSWORD', [
        PASSWORD,
        KEY1_HEX,
        'Tr0ub4dor&3',
      ]);
      assert.match(err.message, new RegExp(address));
    });

    it('a missing keystore → KEYSTORE_NOT_FOUND, for list and load; a file in its place too', async () => {
      await rejectsWith(listKeys(keystore), 'KEYSTORE_NOT_FOUND');
      await rejectsWith(loadPrivateKey(keystore, KEY1_ADDRESS, PASSWORD), 'KEYSTORE_NOT_FOUND');
      writeFileSync(keystore, 'not a directory');
      await rejectsWith(listKeys(keystore), 'KEYSTORE_NOT_FOUND');
      await rejectsWith(loadPrivateKey(keystore, KEY1_ADDRESS, PASSWORD), 'KEYSTORE_NOT_FOUND');
      await rejectsWith(importKey(keystore, PASSWORD, KEY1_HEX, FAST), 'KEYSTORE_IO');
    });

    it('a keystore that is a file says what --keystore wants, for list, load and import alike; a key file named for it, its directory', async () => {
      // A bare "keystore X is not a directory" gave no next step, worded three ways in three places.
      writeFileSync(keystore, 'not a directory');
      const wants = `keystore ${keystore} is a file, not a directory; give --keystore a directory of key files (cairn keys new --keystore DIR makes one, with a new key in it)`;
      for (const refusal of [() => listKeys(keystore), () => loadPrivateKey(keystore, KEY1_ADDRESS, PASSWORD), () => importKey(keystore, PASSWORD, KEY1_HEX, FAST)]) {
        assert.equal((await refusal().then(() => assert.fail('taken'), (e: Error) => e)).message, wants);
      }
      const under = join(keystore, 'keys');
      assert.equal((await rejectsWith(listKeys(under), 'KEYSTORE_NOT_FOUND')).message, `keystore ${under}: ${keystore} is a file, not a directory; give --keystore a directory of key files (cairn keys new --keystore DIR makes one, with a new key in it)`);
      const { address } = await importKey(join(dir.path, 'held'), PASSWORD, KEY1_HEX, FAST);
      const keyFile = join(dir.path, 'held', `${address}.json`);
      for (const refusal of [() => listKeys(keyFile), () => loadPrivateKey(keyFile, address, PASSWORD)]) {
        assert.equal((await refusal().then(() => assert.fail('taken'), (e: Error) => e)).message, `keystore ${keyFile} is a file, not a directory; it is a key file: give --keystore the directory that holds it (--keystore ${join(dir.path, 'held')})`);
      }
    });

    it('keys new and import refuse a keystore they cannot use before asking for a password', async () => {
      writeFileSync(keystore, 'not a directory');
      const hexFile = join(dir.path, 'key.hex');
      writeFileSync(hexFile, KEY1_HEX);
      const noPassword = join(dir.path, 'no-such-password-file'); // read, it would be the error
      for (const args of [['new'], ['import', hexFile]]) {
        const refused = keysCommand([...args, '--keystore', keystore, '--password-file', noPassword], createOut(false, () => {}));
        await rejectsWith(refused, 'KEYSTORE_IO');
      }
    });

    it('a missing keystore says how to make one and where a node keeps its key: a bare "no keystore at DIR" left a newcomer with no next step', async () => {
      for (const refusal of [() => listKeys(keystore), () => loadPrivateKey(keystore, KEY1_ADDRESS, PASSWORD)]) {
        const err = await rejectsWith(refusal(), 'KEYSTORE_NOT_FOUND');
        assert.equal(err.message, `no keystore at ${keystore}: cairn keys new --keystore ${keystore} makes one; a node keeps its coinbase key in its datadir's keystore, DATADIR/keystore (./data/keystore by default)`);
      }
    });

    it('an address with no key → KEY_NOT_FOUND; text that is no address → INVALID_ADDRESS', async () => {
      await importKey(keystore, PASSWORD, KEY1_HEX, FAST);
      await rejectsWith(loadPrivateKey(keystore, KEY2_ADDRESS, PASSWORD), 'KEY_NOT_FOUND');
      for (const bad of ['', '../keys/x', KEY1_ADDRESS.toUpperCase(), KEY1_ADDRESS.slice(0, -1) + 'q', 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq']) {
        await rejectsWith(loadPrivateKey(keystore, bad, PASSWORD), 'INVALID_ADDRESS');
      }
    });

    it("a key a datadir's keystore does not hold: the way on is that keystore's own keys, not a hint naming a datadir's keystore again", async () => {
      const cwd = process.cwd();
      process.chdir(dir.path);
      try {
        // As a newcomer types it: the default datadir's keystore, by a relative path.
        await importKey('data/keystore', PASSWORD, KEY1_HEX, FAST);
        const given = await rejectsWith(requireKey('data/keystore', KEY2_ADDRESS), 'KEY_NOT_FOUND');
        assert.equal(given.message, `no key for ${KEY2_ADDRESS} in keystore data/keystore (it holds ${KEY1_ADDRESS}); cairn keys list --keystore data/keystore shows the keys it holds`);
        // Any other datadir's keystore (it has a genesis copy beside it), empty.
        mkdirSync('node2/keystore', { recursive: true });
        writeFileSync('node2/genesis.json', '{}\n');
        const empty = await rejectsWith(requireKey('node2/keystore', KEY2_ADDRESS), 'KEY_NOT_FOUND');
        assert.equal(empty.message, `no key for ${KEY2_ADDRESS} in keystore node2/keystore (it holds none); cairn keys new --keystore node2/keystore makes one, cairn keys import --keystore node2/keystore FILE brings one`);
        // A keystore of the user's own still learns where a node keeps the key it mines to.
        await importKey('keys', PASSWORD, KEY1_HEX, FAST);
        const own = await rejectsWith(requireKey('keys', KEY2_ADDRESS), 'KEY_NOT_FOUND');
        assert.match(own.message, /; the key a node mines to is in its datadir's keystore, e\.g\. --keystore \.\/data\/keystore$/);
      } finally {
        process.chdir(cwd);
      }
    });

    it('an altered salt, iv, cost, ciphertext or tag → WRONG_PASSWORD', async () => {
      const { address } = await importKey(keystore, PASSWORD, KEY1_HEX, FAST);
      const file = join(keystore, `${address}.json`);
      const original = readFileSync(file, 'utf8');
      const edits: Array<(c: any) => void> = [
        (c) => (c.kdfparams.salt = flipHex(c.kdfparams.salt)),
        (c) => (c.kdfparams.n = 2048),
        (c) => (c.kdfparams.r = 4),
        (c) => (c.iv = flipHex(c.iv)),
        (c) => (c.ciphertext = flipHex(c.ciphertext)),
        (c) => (c.tag = flipHex(c.tag)),
      ];
      for (const edit of edits) {
        const doc = JSON.parse(original);
        edit(doc.crypto);
        writeFileSync(file, JSON.stringify(doc));
        await rejectsWith(loadPrivateKey(keystore, address, PASSWORD), 'WRONG_PASSWORD');
      }
      writeFileSync(file, original);
      assert.equal(toHex(await loadPrivateKey(keystore, address, PASSWORD)), KEY1_HEX);
    });

    it('a file moved to another address is detected: renamed → KEY_FILE_CORRUPT; address edited too → WRONG_PASSWORD', async () => {
      await importKey(keystore, PASSWORD, KEY1_HEX, FAST);
      const doc = readDoc(join(keystore, `${KEY1_ADDRESS}.json`));
      const moved = join(keystore, `${KEY2_ADDRESS}.json`);

      writeFileSync(moved, JSON.stringify(doc));
      await rejectsWith(loadPrivateKey(keystore, KEY2_ADDRESS, PASSWORD), 'KEY_FILE_CORRUPT');

      writeFileSync(moved, JSON.stringify({ ...doc, address: KEY2_ADDRESS }));
      await rejectsWith(loadPrivateKey(keystore, KEY2_ADDRESS, PASSWORD), 'WRONG_PASSWORD');
    });

    it('malformed key files → KEY_FILE_CORRUPT, before any expensive or huge scrypt', async () => {
      await importKey(keystore, PASSWORD, KEY1_HEX, FAST);
      const file = join(keystore, `${KEY1_ADDRESS}.json`);
      const good = readDoc(file);
      const withCrypto = (patch: object) => JSON.stringify({ ...good, crypto: { ...good.crypto, ...patch } });
      const withParams = (patch: object) => withCrypto({ kdfparams: { ...good.crypto.kdfparams, ...patch } });
      const cases: string[] = [
        '',
        'not json',
        '[]',
        'null',
        JSON.stringify({ ...good, version: 2 }),
        JSON.stringify({ ...good, version: '1' }),
        JSON.stringify({ ...good, address: 'cairn1nope' }),
        JSON.stringify({ ...good, crypto: undefined }),
        withCrypto({ kdf: 'pbkdf2' }),
        withCrypto({ cipher: 'aes-128-ctr' }),
        withCrypto({ kdfparams: 'n=1024' }),
        withParams({ n: 1000 }),
        withParams({ n: 1 }),
        withParams({ n: 2 ** 30 }),
        withParams({ n: '1024' }),
        withParams({ r: 0 }),
        withParams({ r: 1.5 }),
        withParams({ p: 1000 }),
        withParams({ n: 2 ** 20, r: 16 }),
        withParams({ dklen: 16 }),
        withParams({ salt: 'zz' + good.crypto.kdfparams.salt.slice(2) }),
        withParams({ salt: '00'.repeat(8) }),
        withCrypto({ iv: good.crypto.iv + '00' }),
        withCrypto({ iv: good.crypto.iv.toUpperCase() }),
        withCrypto({ ciphertext: good.crypto.ciphertext.slice(2) }),
        withCrypto({ tag: undefined }),
        withCrypto({ tag: 7 }),
        JSON.stringify({ ...good, padding: 'x'.repeat(70_000) }),
      ];
      for (const content of cases) {
        writeFileSync(file, content);
        await rejectsWith(loadPrivateKey(keystore, KEY1_ADDRESS, PASSWORD), 'KEY_FILE_CORRUPT');
      }
    });

    it('a key file whose version is deeply nested or long → KEY_FILE_CORRUPT in one short line, not "a bug in cairn"', async () => {
      // Found by the files fuzz (test/files-fuzz.test.ts): the message quoted the version with
      // JSON.stringify, which threw RangeError (the CLI's "internal error") on 10,000 nested arrays.
      await importKey(keystore, PASSWORD, KEY1_HEX, FAST);
      const file = join(keystore, `${KEY1_ADDRESS}.json`);
      const good = readDoc(file);
      for (const version of ['['.repeat(10_000) + ']'.repeat(10_000), JSON.stringify('9'.repeat(60_000))]) {
        writeFileSync(file, JSON.stringify(good).replace('"version":1', `"version":${version}`));
        const err = await rejectsWith(loadPrivateKey(keystore, KEY1_ADDRESS, PASSWORD), 'KEY_FILE_CORRUPT');
        assert.ok(err.message.length < 300, err.message);
      }
    });

    it('import of bad hex, a zero key or a key ≥ the curve order → INVALID_PRIVATE_KEY, echoing nothing', async () => {
      const cases = [
        '',
        '\n',
        'xyz',
        KEY1_HEX.slice(1),
        KEY1_HEX + '0',
        KEY1_HEX + KEY1_HEX,
        `0x0x${KEY1_HEX}`,
        `${KEY1_HEX.slice(0, 32)} ${KEY1_HEX.slice(32)}`,
        `${KEY1_HEX}\nsecond line`,
        'g'.repeat(64),
        '00'.repeat(32),
        toHex(bigIntToBytes(CURVE_ORDER, 32)),
        toHex(bigIntToBytes(CURVE_ORDER + 1n, 32)),
        'ff'.repeat(32),
      ];
      for (const text of cases) {
        await rejectsWith(importKey(keystore, PASSWORD, text, FAST), 'INVALID_PRIVATE_KEY', [PASSWORD, KEY1_HEX, text.trim()]);
      }
      // n − 1 is the largest key there is.
      const top = toHex(bigIntToBytes(CURVE_ORDER - 1n, 32));
      const { address } = await importKey(keystore, PASSWORD, top, FAST);
      assert.equal(toHex(await loadPrivateKey(keystore, address, PASSWORD)), top);
    });

    it('importing a key already there → KEY_EXISTS, and the first file still opens with the first password', async () => {
      const { address } = await importKey(keystore, PASSWORD, KEY1_HEX, FAST);
      const before = readFileSync(join(keystore, `${address}.json`));
      await rejectsWith(importKey(keystore, 'a different password', `0x${KEY1_HEX}`, FAST), 'KEY_EXISTS');
      assert.deepEqual(readFileSync(join(keystore, `${address}.json`)), before);
      assert.equal(toHex(await loadPrivateKey(keystore, address, PASSWORD)), KEY1_HEX);
    });

    it('two concurrent imports of one key: one wins, the other gets KEY_EXISTS, and the file opens with the winner’s password', async () => {
      const passwords = ['first password', 'second password'];
      const results = await Promise.allSettled(passwords.map((pw) => importKey(keystore, pw, KEY1_HEX, FAST)));
      const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [passwords[i] ?? ''] : []));
      const losers = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      assert.equal(winners.length, 1);
      assert.equal(losers.length, 1);
      await rejectsWith(Promise.reject(losers[0]), 'KEY_EXISTS', passwords);
      assert.equal(toHex(await loadPrivateKey(keystore, KEY1_ADDRESS, winners[0] ?? '')), KEY1_HEX);
      assert.deepEqual(readdirSync(keystore), [`${KEY1_ADDRESS}.json`]);
    });

    it('an empty password → EMPTY_PASSWORD, and nothing is written', async () => {
      await rejectsWith(createKey(keystore, '', seededRandom(8).bytes, FAST), 'EMPTY_PASSWORD');
      await rejectsWith(importKey(keystore, '', KEY1_HEX, FAST), 'EMPTY_PASSWORD');
      await rejectsWith(loadPrivateKey(keystore, KEY1_ADDRESS, ''), 'EMPTY_PASSWORD');
      assert.throws(() => statSync(keystore), { code: 'ENOENT' });
    });

    it('a scrypt cost that is not a power of 2 or is beyond the limit is a programming error', async () => {
      for (const scryptN of [1000, 1, 2 ** 21]) {
        await assert.rejects(importKey(keystore, PASSWORD, KEY1_HEX, { scryptN }), RangeError);
      }
    });
  });
});

describe('readPassword', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir('cairn-password-')));
  afterEach(() => dir.remove());

  function passwordFile(content: string, mode = 0o600): string {
    const path = join(dir.path, 'pw');
    rmSync(path, { force: true });
    writeFileSync(path, content, { mode });
    chmodSync(path, mode); // whatever the umask took
    return path;
  }
  function recordingPrompt(...answers: string[]) {
    const questions: string[] = [];
    return {
      questions,
      prompt: async (question: string) => {
        questions.push(question);
        const answer = answers.shift();
        assert.ok(answer !== undefined, 'prompted more often than expected');
        return answer;
      },
    };
  }

  it('--password-file wins over CAIRN_PASSWORD, which wins over the prompt', async () => {
    const p = recordingPrompt('from-prompt');
    const env = { CAIRN_PASSWORD: 'from-env' };
    assert.equal(await readPassword({ passwordFile: passwordFile('from-file\n'), env, prompt: p.prompt }), 'from-file');
    assert.equal(await readPassword({ env, prompt: p.prompt }), 'from-env');
    assert.deepEqual(p.questions, []);
    assert.equal(await readPassword({ env: {}, prompt: p.prompt }), 'from-prompt');
    assert.deepEqual(p.questions, ['Password: ']);
  });

  it('a password file other users may open is read, with a warning that gives the chmod; one of ours alone, or a pipe, without', async () => {
    const warnings: string[] = [];
    const warn = (message: string) => void warnings.push(message);
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      const path = passwordFile('pw\n', mode);
      assert.equal(await readPassword({ passwordFile: path, env: {}, warn }), 'pw');
      assert.deepEqual(warnings.splice(0), [`password file ${path} can be opened by other users (mode 0${mode.toString(8)}): chmod 600 ${path}`]);
    }
    for (const mode of [0o600, 0o400]) {
      assert.equal(await readPassword({ passwordFile: passwordFile('pw\n', mode), env: {}, warn }), 'pw');
    }
    assert.equal(await readPassword({ passwordFile: '/dev/null', env: {}, warn }).catch((err: CairnError) => err.code), 'EMPTY_PASSWORD');
    assert.deepEqual(warnings, []);
  });

  it('an empty CAIRN_PASSWORD counts as unset', async () => {
    const p = recordingPrompt('from-prompt');
    assert.equal(await readPassword({ env: { CAIRN_PASSWORD: '' }, prompt: p.prompt }), 'from-prompt');
  });

  it('a password file gives its first line, without the line ending; other whitespace is kept', async () => {
    const cases: Array<[string, string]> = [
      ['pw', 'pw'],
      ['pw\n', 'pw'],
      ['pw\r\n', 'pw'],
      ['pw\n\n', 'pw'],
      ['first\nsecond\n', 'first'],
      [' spaced pw \n', ' spaced pw '],
      ['tab\t\n', 'tab\t'],
      ['caf\u00e9\n', 'caf\u00e9'],
    ];
    for (const [content, expected] of cases) {
      assert.equal(await readPassword({ passwordFile: passwordFile(content), env: {} }), expected);
    }
  });

  it('an empty password file → EMPTY_PASSWORD; a missing one → PASSWORD_FILE_UNREADABLE (no fallback)', async () => {
    const env = { CAIRN_PASSWORD: 'from-env' };
    for (const content of ['', '\n', '\r\n', '\nsecond line']) {
      await rejectsWith(readPassword({ passwordFile: passwordFile(content), env }), 'EMPTY_PASSWORD', ['from-env', 'second']);
    }
    const missing = join(dir.path, 'missing');
    const err = await rejectsWith(readPassword({ passwordFile: missing, env }), 'PASSWORD_FILE_UNREADABLE', ['from-env']);
    assert.equal(err.message, `cannot read password file ${missing}: it does not exist; give --password-file a file whose first line is the password`);
  });

  it('no file, no variable and no terminal → NO_PASSWORD, saying how to give one', async () => {
    const err = await rejectsWith(readPassword({ env: {}, interactive: false, atTerminal: false }), 'NO_PASSWORD');
    assert.match(err.message, /--password-file/);
    assert.match(err.message, /CAIRN_PASSWORD/);
  });

  it('at a terminal with stdin piped (echo KEY | cairn keys import -): NO_PASSWORD says stdin is why, not "run in a terminal"', async () => {
    const err = await rejectsWith(readPassword({ env: {}, interactive: false, atTerminal: true }), 'NO_PASSWORD');
    assert.equal(err.message, 'no password: stdin is not the terminal (a pipe or a file), so none can be asked: pass --password-file FILE or set CAIRN_PASSWORD');
  });

  it('an empty answer → EMPTY_PASSWORD; confirm asks twice and refuses a mismatch', async () => {
    await rejectsWith(readPassword({ env: {}, prompt: recordingPrompt('').prompt }), 'EMPTY_PASSWORD');

    const same = recordingPrompt('hunter2', 'hunter2');
    assert.equal(await readPassword({ env: {}, prompt: same.prompt, confirm: true }), 'hunter2');
    assert.deepEqual(same.questions, ['Password: ', 'Repeat password: ']);

    const differ = recordingPrompt('hunter2', 'hunter3');
    const mismatch = await rejectsWith(readPassword({ env: {}, prompt: differ.prompt, confirm: true }), 'PASSWORD_MISMATCH', ['hunter']);
    assert.equal(mismatch.message, 'the two passwords differ, so no key was written: run the command again and type the same password twice');

    // Confirmation is for typing; a file or variable is taken as it is.
    assert.equal(await readPassword({ env: { CAIRN_PASSWORD: 'x' }, prompt: recordingPrompt().prompt, confirm: true }), 'x');
  });
});

describe('promptHidden', () => {
  function fakeTerminal() {
    const rawModes: boolean[] = [];
    /** Raw mode switches and writes, in the order they came: what a terminal would have shown when. */
    const events: string[] = [];
    const input = Object.assign(new PassThrough(), {
      isRaw: false,
      setRawMode(mode: boolean) {
        input.isRaw = mode;
        rawModes.push(mode);
        events.push(mode ? 'raw on' : 'raw off');
      },
    });
    let written = '';
    const output = new Writable({
      write(chunk, _encoding, done) {
        written += String(chunk);
        done();
      },
    });
    // Recorded at the call, not when the stream gets round to it (a TTY's write is synchronous).
    const write = output.write.bind(output);
    output.write = ((chunk: string, ...rest: never[]) => {
      events.push(`wrote ${JSON.stringify(chunk)}`);
      return write(chunk, ...rest);
    }) as typeof output.write;
    return { input, output, rawModes, events, written: () => written };
  }

  it('asks on the output, echoes nothing, reads one line in raw mode and restores the terminal', async () => {
    const t = fakeTerminal();
    const answer = promptHidden('Password: ', t);
    t.input.write(Buffer.from('s3cr3t'));
    t.input.write(Buffer.from('\rignored after the line'));
    assert.equal(await answer, 's3cr3t');
    assert.equal(t.written(), 'Password: \n');
    assert.deepEqual(t.rawModes, [true, false]);
    assert.equal(t.input.isPaused(), true);
    assert.equal(t.input.listenerCount('data'), 0);
  });

  it('switches echo off before it shows the prompt, so that nothing typed once the prompt is seen is echoed', async () => {
    const t = fakeTerminal();
    const answer = promptHidden('Password: ', t);
    t.input.write('s3cr3t\r');
    await answer;
    assert.deepEqual(t.events, ['raw on', 'wrote "Password: "', 'raw off', 'wrote "\\n"']);
  });

  it('Backspace, Ctrl-U and arrow keys edit the line; UTF-8 split across reads is joined', async () => {
    const t = fakeTerminal();
    const answer = promptHidden('Password: ', t);
    const e = Buffer.from('é');
    // ESC O D: the left arrow in a terminal's application mode (a review found its D typed in).
    t.input.write('junk\u0015abX\u007fc\u001b[Ad\u001bOD\u001b[1;5C');
    t.input.write(e.subarray(0, 1));
    t.input.write(Buffer.concat([e.subarray(1), Buffer.from('\n')]));
    assert.equal(await answer, 'abcdé');
  });

  it('Ctrl-C, Ctrl-D on an empty line and the end of input cancel; the terminal is restored', async () => {
    for (const keys of ['typed\u0003', '\u0004']) {
      const t = fakeTerminal();
      const answer = promptHidden('Password: ', t);
      t.input.write(keys);
      await rejectsWith(answer, 'PROMPT_CANCELLED', ['typed']);
      assert.deepEqual(t.rawModes, [true, false]);
    }
    const ended = fakeTerminal();
    const answer = promptHidden('Password: ', ended);
    ended.input.end();
    await rejectsWith(answer, 'PROMPT_CANCELLED');

    const partial = fakeTerminal();
    const partialAnswer = promptHidden('Password: ', partial);
    partial.input.write('pw\u0004');
    assert.equal(await partialAnswer, 'pw');
  });
});
