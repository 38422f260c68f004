/**
 * Every signature backend (ledger/signature-backends.ts), called directly and through a
 * VerifyPool, against the vendored Wycheproof ECDSA secp256k1/SHA-256 vectors. The expected
 * verdicts are Cairn's, as in test/wycheproof.test.ts: "valid" accepts except a high-S P1363
 * signature (Cairn requires s <= n/2), "invalid" and "acceptable" reject. The Wycheproof `msg` is
 * the message a backend hashes. The native backend is an optionalDependency that `npm ci`
 * installs, so here its absence is a failure, never a skip: a node that silently fell back to
 * another library would not be running what these tests claim to have checked.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as secp from '@noble/secp256k1';
import {
  libsecp256k1Backend,
  libsecp256k1Signer,
  nobleBackend,
  opensslBackend,
  type SignatureBackend,
} from '../ledger/signature-backends.js';
import { CURVE_ORDER } from '../ledger/keys.ts';
import { bigIntToBytes, bytesToBigInt, toHex } from '../ledger/bytes.ts';
import { VerifyPool, type VerifyItem } from '../node/verify-pool.ts';
import { decodeDerSignature, encodeDerSignature } from './helpers/der.ts';

const HALF_ORDER = CURVE_ORDER >> 1n;
const BACKEND_NAMES: readonly SignatureBackend['name'][] = ['noble', 'openssl', 'libsecp256k1'];

/** The backend with this name; the native one must load, so its absence throws. */
function backendNamed(name: SignatureBackend['name']): SignatureBackend {
  if (name === 'noble') return nobleBackend;
  if (name === 'openssl') return opensslBackend;
  const native = libsecp256k1Backend();
  if (native === undefined) {
    // Load the binary again only to put its own error in the failure message.
    let reason = 'libsecp256k1Backend() returned undefined';
    try {
      createRequire(import.meta.url)('secp256k1/bindings');
    } catch (err) {
      reason += `: ${(err as Error).message}`;
    }
    throw new Error(`the native libsecp256k1 backend did not load (npm ci installs the optional "secp256k1" package): ${reason}`);
  }
  return native;
}

// ---------------------------------------------------------------------------------------------
// Vectors

interface WycheproofTest {
  tcId: number;
  comment: string;
  msg: string;
  sig: string;
  result: 'valid' | 'invalid' | 'acceptable';
}

interface WycheproofFile {
  numberOfTests: number;
  testGroups: { type: string; sha: string; publicKey: { curve: string; uncompressed: string }; tests: WycheproofTest[] }[];
}

/** One case as a backend sees it, with Cairn's verdict. */
interface Case {
  readonly tcId: number;
  readonly label: string;
  readonly signature: Uint8Array;
  readonly message: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly expected: boolean;
}

function hex(s: string): Uint8Array {
  assert.ok(s.length % 2 === 0 && /^[0-9a-f]*$/i.test(s), `not hex: ${s}`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

function loadFile(name: string, groupType: string): { file: WycheproofFile; tests: (WycheproofTest & { publicKey: Uint8Array })[] } {
  const file = JSON.parse(readFileSync(new URL(`./vectors/wycheproof/${name}`, import.meta.url), 'utf8')) as WycheproofFile;
  const tests: (WycheproofTest & { publicKey: Uint8Array })[] = [];
  for (const group of file.testGroups) {
    assert.equal(group.type, groupType);
    assert.equal(group.sha, 'SHA-256');
    assert.equal(group.publicKey.curve, 'secp256k1');
    // noble both checks the point is on the curve and compresses it (test/wycheproof.test.ts
    // compresses by hand and cross-checks against noble; one way is enough here).
    const publicKey = secp.Point.fromHex(group.publicKey.uncompressed).toBytes(true);
    for (const t of group.tests) tests.push({ ...t, publicKey });
  }
  assert.equal(tests.length, file.numberOfTests);
  return { file, tests };
}

/**
 * Bitcoin file: a case reaches the backends only if its DER is strict; those the decoder refuses
 * are rejected before any backend (and are counted, so the split is pinned).
 */
function bitcoinCases(): { cases: Case[]; refusedByDer: WycheproofTest[]; total: number } {
  const { file, tests } = loadFile('ecdsa_secp256k1_sha256_bitcoin_test.json', 'EcdsaBitcoinVerify');
  const cases: Case[] = [];
  const refusedByDer: WycheproofTest[] = [];
  for (const t of tests) {
    const der = decodeDerSignature(hex(t.sig));
    const signature = der.ok ? der.sig : undefined;
    if (signature === undefined) {
      refusedByDer.push(t);
      continue;
    }
    assert.equal(toHex(encodeDerSignature(signature)), t.sig.toLowerCase(), `tcId ${t.tcId}: the DER decoder accepted a non-unique encoding`);
    cases.push({
      tcId: t.tcId,
      label: `bitcoin tcId ${t.tcId} (${t.comment}; ${t.result})`,
      signature,
      message: hex(t.msg),
      publicKey: t.publicKey,
      expected: t.result === 'valid',
    });
  }
  return { cases, refusedByDer, total: file.numberOfTests };
}

/** P1363 file: every case reaches the backends, whatever its length; "valid" high S is rejected. */
function p1363Cases(): Case[] {
  const { tests } = loadFile('ecdsa_secp256k1_sha256_p1363_test.json', 'EcdsaP1363Verify');
  return tests.map((t) => {
    const signature = hex(t.sig);
    // Plain ECDSA allows high S; Cairn does not, so Wycheproof's high-S "valid" cases reject here.
    const highS = t.result === 'valid' && bytesToBigInt(signature.subarray(32)) > HALF_ORDER;
    return {
      tcId: t.tcId,
      label: `p1363 tcId ${t.tcId} (${t.comment}; ${t.result}${highS ? ', high S' : ''})`,
      signature,
      message: hex(t.msg),
      publicKey: t.publicKey,
      expected: t.result === 'valid' && !highS,
    };
  });
}

function wrongVerdicts(cases: readonly Case[], verdicts: readonly boolean[], who: string): string[] {
  assert.equal(verdicts.length, cases.length, `${who}: one verdict per case`);
  const wrong: string[] = [];
  cases.forEach((c, i) => {
    if (verdicts[i] !== c.expected) {
      wrong.push(`${who}: ${c.label}: got ${String(verdicts[i])}, expected ${c.expected} ` +
        `(sig ${toHex(c.signature)}, key ${toHex(c.publicKey)}, msg ${toHex(c.message)})`);
    }
  });
  return wrong;
}

function report(wrong: string[]): string {
  return `${wrong.length} wrong verdict(s):\n  ${wrong.slice(0, 40).join('\n  ')}`;
}

// ---------------------------------------------------------------------------------------------

describe('signature backends: the native libsecp256k1 backend is present', function () {
  it('loads the prebuilt binary (the optional "secp256k1" package is installed by npm ci)', function () {
    const native = backendNamed('libsecp256k1');
    assert.equal(native.name, 'libsecp256k1');
    assert.equal(libsecp256k1Backend(), native, 'loaded once, then cached');
  });

  it('gives the same verdicts for keys it has met before: the other parity, off the curve, after more keys than it keeps', function () {
    const native = backendNamed('libsecp256k1');
    const message = (i: number) => new TextEncoder().encode(`payment ${i}`);
    const digest = (i: number) => new Uint8Array(createHash('sha256').update(message(i)).digest());
    const sign = (sk: bigint, i: number) => secp.sign(digest(i), bigIntToBytes(sk, 32), { prehash: false, lowS: true });
    const key = (sk: bigint) => secp.getPublicKey(bigIntToBytes(sk, 32), true);
    const sk = 0x1234567n;
    const pub = key(sk);
    const otherParity = Uint8Array.from(pub);
    otherParity[0] = pub[0] === 2 ? 3 : 2; // the key of n - sk: same x, the other y
    for (let round = 0; round < 2; round++) {
      assert.equal(native.verify(sign(sk, 1), message(1), pub), true, `round ${round}`);
      assert.equal(native.verify(sign(sk, 1), message(2), pub), false, `round ${round}: another message`);
      assert.equal(native.verify(sign(sk, 1), message(1), otherParity), false, `round ${round}: the other parity`);
      assert.equal(native.verify(sign(CURVE_ORDER - sk, 1), message(1), otherParity), true, `round ${round}: n - sk`);
    }
    // x = 5 is not on the curve (5³ + 7 = 132 has no square root mod p): refused every time.
    const offCurve = new Uint8Array(33);
    offCurve[0] = 2;
    offCurve[32] = 5;
    assert.throws(() => secp.Point.fromBytes(offCurve));
    for (let round = 0; round < 2; round++) assert.equal(native.verify(sign(sk, 1), message(1), offCurve), false);
    // More keys than the backend keeps, then the first again.
    const fast = libsecp256k1Signer()!; // noble's signatures byte for byte, and quicker for thousands of keys
    for (let i = 1; i <= 4_200; i++) {
      const ski = bigIntToBytes(sk + BigInt(i), 32);
      assert.equal(native.verify(fast.sign(digest(i), ski), message(i), fast.publicKey(ski)), true, `key ${i}`);
    }
    assert.equal(native.verify(sign(sk, 3), message(3), pub), true);
    assert.equal(native.verify(sign(sk, 3), message(3), otherParity), false);
  });
});

describe('signature backends: Wycheproof ECDSA secp256k1 SHA-256, Bitcoin variant (strict DER)', function () {
  const { cases, refusedByDer, total } = bitcoinCases();
  const reaching = (want: boolean): number => cases.filter((c) => c.expected === want).length;

  it('splits the 463 cases: 162 valid and 69 invalid reach the backends, 232 invalid are refused by strict DER', function () {
    assert.equal(total, 463);
    assert.equal(reaching(true), 162);
    assert.equal(reaching(false), 69);
    assert.equal(refusedByDer.length, 232);
    for (const t of refusedByDer) assert.equal(t.result, 'invalid', `tcId ${t.tcId}: a "${t.result}" case was refused by the DER decoder`);
  });

  for (const name of BACKEND_NAMES) {
    it(`${name}: Cairn's verdict on every case that reaches it`, function () {
      const backend = backendNamed(name);
      const verdicts = cases.map((c) => backend.verify(c.signature, c.message, c.publicKey));
      const wrong = wrongVerdicts(cases, verdicts, name);
      assert.equal(wrong.length, 0, report(wrong));
      assert.equal(verdicts.filter(Boolean).length, 162);
    });

    it(`VerifyPool(2 threads, ${name}): the same verdicts through the workers' packing`, async function () {
      const backend = backendNamed(name);
      const pool = new VerifyPool(2, backend);
      try {
        assert.equal(pool.threads, 2);
        assert.equal(pool.backend, name);
        const verdicts = await pool.verify(cases);
        const wrong = wrongVerdicts(cases, verdicts, `pool/${name}`);
        assert.equal(wrong.length, 0, report(wrong));
      } finally {
        await pool.close();
      }
    });
  }
});

describe('signature backends: Wycheproof ECDSA secp256k1 SHA-256, IEEE P1363 (raw r || s)', function () {
  const cases = p1363Cases();
  const highS = cases.filter((c) => c.label.endsWith(', high S)'));

  it('has 252 cases: 95 valid low S (accept), 72 valid high S and 85 invalid (reject), 18 not 64 bytes', function () {
    assert.equal(cases.length, 252);
    assert.equal(cases.filter((c) => c.expected).length, 95);
    assert.equal(highS.length, 72);
    for (const c of highS) assert.equal(c.signature.length, 64, c.label);
    assert.equal(cases.filter((c) => c.signature.length !== 64).length, 18);
  });

  for (const name of BACKEND_NAMES) {
    it(`${name}: Cairn's verdict on every case, and the low-S twin (r, n - s) of every high-S case verifies`, function () {
      const backend = backendNamed(name);
      const verdicts = cases.map((c) => backend.verify(c.signature, c.message, c.publicKey));
      const wrong = wrongVerdicts(cases, verdicts, name);
      // High S must be the only reason those are rejected: the same signature with n - s verifies.
      for (const c of highS) {
        const twin = new Uint8Array(c.signature);
        twin.set(Buffer.from((CURVE_ORDER - bytesToBigInt(c.signature.subarray(32))).toString(16).padStart(64, '0'), 'hex'), 32);
        if (!backend.verify(twin, c.message, c.publicKey)) wrong.push(`${name}: ${c.label}: its low-S twin ${toHex(twin)} was rejected`);
      }
      assert.equal(wrong.length, 0, report(wrong));
    });

    it(`VerifyPool(2 threads, ${name}): the same verdicts (wrong-length signatures rejected without a worker)`, async function () {
      const backend = backendNamed(name);
      const pool = new VerifyPool(2, backend);
      try {
        const items: VerifyItem[] = cases;
        const verdicts = await pool.verify(items);
        const wrong = wrongVerdicts(cases, verdicts, `pool/${name}`);
        assert.equal(wrong.length, 0, report(wrong));
        // The 64-byte cases alone, so that every one of them crosses to a worker.
        const sized = cases.filter((c) => c.signature.length === 64);
        const sizedWrong = wrongVerdicts(sized, await pool.verify(sized), `pool/${name} (64-byte only)`);
        assert.equal(sizedWrong.length, 0, report(sizedWrong));
      } finally {
        await pool.close();
      }
    });
  }
});
