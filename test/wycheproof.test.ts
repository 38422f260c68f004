/**
 * Google's Project Wycheproof ECDSA secp256k1/SHA-256 vectors, run against the project's own
 * verifier, `verifySignature` in ledger/keys.ts. The vectors are vendored in
 * test/vectors/wycheproof/ (Apache-2.0, license beside them; see the README there).
 *
 * Cairn's rule is stricter than plain ECDSA: r and s must lie in [1, n-1] and s must be low
 * (s <= n/2). Wherever Wycheproof allows leeway ("acceptable"), or calls a high-S signature
 * "valid" (the P1363 file, which does not require low S), the expected Cairn verdict is REJECT.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as secp from '@noble/secp256k1';
import { verifySignature, CURVE_ORDER } from '../ledger/keys.ts';
import { sha256 } from '../ledger/hash.ts';
import { decodeDerSignature, encodeDerSignature } from './helpers/der.ts';

// ---------------------------------------------------------------------------------------------
// Vector files

type WycheproofResult = 'valid' | 'invalid' | 'acceptable';

interface WycheproofTest {
  tcId: number;
  comment: string;
  flags: string[];
  msg: string;
  sig: string;
  result: WycheproofResult;
}

interface WycheproofGroup {
  type: string;
  sha: string;
  publicKey: { curve: string; keySize: number; uncompressed: string; wx: string; wy: string };
  tests: WycheproofTest[];
}

interface WycheproofFile {
  algorithm: string;
  numberOfTests: number;
  testGroups: WycheproofGroup[];
}

/** One test case, flattened, with its group's key already in Cairn's 33-byte compressed form. */
interface Case extends WycheproofTest {
  publicKey: Uint8Array;
  hash: Uint8Array;
}

function loadVectors(file: string, groupType: string): { file: WycheproofFile; cases: Case[] } {
  const json = JSON.parse(
    readFileSync(new URL(`./vectors/wycheproof/${file}`, import.meta.url), 'utf8'),
  ) as WycheproofFile;
  assert.equal(json.algorithm, 'ECDSA');
  const cases: Case[] = [];
  for (const group of json.testGroups) {
    assert.equal(group.type, groupType);
    assert.equal(group.sha, 'SHA-256');
    assert.equal(group.publicKey.curve, 'secp256k1');
    const publicKey = compressPublicKey(group.publicKey);
    for (const test of group.tests) {
      assert.ok(test.result === 'valid' || test.result === 'invalid' || test.result === 'acceptable',
        `tcId ${test.tcId}: unknown result ${String(test.result)}`);
      cases.push({ ...test, publicKey, hash: sha256(hex(test.msg)) });
    }
  }
  return { file: json, cases };
}

function hex(s: string): Uint8Array {
  assert.ok(s.length % 2 === 0 && /^[0-9a-f]*$/i.test(s), `not hex: ${s}`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function bigFromBytes(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt('0x' + toHex(b));
}

function bigTo32(v: bigint): Uint8Array {
  assert.ok(v >= 0n && v < 1n << 256n);
  return hex(v.toString(16).padStart(64, '0'));
}

/**
 * 65-byte uncompressed SEC1 (04 || x || y) -> 33-byte compressed (02/03 by parity of y, || x).
 * Done by hand, then cross-checked against noble (which also checks the point is on the curve).
 */
function compressPublicKey(key: WycheproofGroup['publicKey']): Uint8Array {
  const u = hex(key.uncompressed);
  assert.equal(u.length, 65, 'uncompressed key must be 65 bytes');
  assert.equal(u[0], 0x04, 'uncompressed key must start with 04');
  const x = u.subarray(1, 33);
  const y = u.subarray(33, 65);
  // wx / wy are the same coordinates as ASN.1-style integers (possibly with a leading 00).
  assert.equal(BigInt('0x' + key.wx), bigFromBytes(x));
  assert.equal(BigInt('0x' + key.wy), bigFromBytes(y));
  const compressed = new Uint8Array(33);
  compressed[0] = ((y[31] ?? 0) & 1) === 1 ? 0x03 : 0x02;
  compressed.set(x, 1);
  assert.equal(toHex(secp.Point.fromHex(key.uncompressed).toBytes(true)), toHex(compressed));
  return compressed;
}

function describeCase(c: Case): string {
  return `tcId ${c.tcId} (${c.comment || 'no comment'}; flags ${c.flags.join(',') || '-'}; wycheproof: ${c.result})`;
}

const HALF_ORDER = CURVE_ORDER >> 1n;

function fail(failures: string[]): string {
  return `${failures.length} case(s) got the wrong verdict:\n  ${failures.join('\n  ')}`;
}

// ---------------------------------------------------------------------------------------------
// Bitcoin file: DER signatures, low S required (Wycheproof's own rule here matches Cairn's)

describe('Wycheproof ECDSA secp256k1 SHA-256, Bitcoin variant (DER, low S)', function () {
  const { file, cases } = loadVectors('ecdsa_secp256k1_sha256_bitcoin_test.json', 'EcdsaBitcoinVerify');
  const valid = cases.filter((c) => c.result === 'valid');
  const invalid = cases.filter((c) => c.result === 'invalid');
  const acceptable = cases.filter((c) => c.result === 'acceptable');

  it('loads every case of the vendored file (463: 162 valid, 301 invalid, 0 acceptable)', function () {
    assert.equal(cases.length, file.numberOfTests);
    assert.equal(file.numberOfTests, 463);
    assert.equal(valid.length, 162);
    assert.equal(invalid.length, 301);
    // Pinned: this version of the file has no "acceptable" cases. Were a newer file to add some,
    // the strict rule below (acceptable => reject) applies to them; re-check this count then.
    assert.equal(acceptable.length, 0);
    assert.equal(new Set(cases.map((c) => c.tcId)).size, cases.length, 'tcIds must be unique');
  });

  it('accepts every "valid" case (strict DER decode, then verifySignature is true)', function () {
    const failures: string[] = [];
    let accepted = 0;
    for (const c of valid) {
      const der = decodeDerSignature(hex(c.sig));
      if (!der.ok) {
        failures.push(`${describeCase(c)}: strict DER decoder refused a valid signature: ${der.reason}`);
        continue;
      }
      if (verifySignature(der.sig, c.hash, c.publicKey)) accepted++;
      else failures.push(`${describeCase(c)}: verifySignature returned false for a valid signature`);
    }
    assert.equal(failures.length, 0, fail(failures));
    assert.equal(accepted, valid.length);
    assert.ok(accepted >= 160, `only ${accepted} valid signatures verified`);
  });

  it('rejects every "invalid" case (refused by the strict DER decoder, or verifySignature is false)', function () {
    const failures: string[] = [];
    let rejectedByDer = 0;
    let rejectedByVerifier = 0;
    for (const c of invalid) {
      const der = decodeDerSignature(hex(c.sig));
      if (!der.ok) {
        rejectedByDer++;
        continue;
      }
      if (verifySignature(der.sig, c.hash, c.publicKey)) {
        failures.push(`${describeCase(c)}: verifySignature accepted an invalid signature ${toHex(der.sig)}`);
      } else {
        rejectedByVerifier++;
      }
    }
    assert.equal(failures.length, 0, fail(failures));
    assert.equal(rejectedByDer + rejectedByVerifier, invalid.length);
    // Both layers must be doing real work: encoding flaws die in the decoder, the rest
    // (r = 0, s >= n, high S, wrong r, points at infinity, ...) in the verifier.
    assert.ok(rejectedByDer >= 100, `only ${rejectedByDer} rejected by the DER decoder`);
    assert.ok(rejectedByVerifier >= 50, `only ${rejectedByVerifier} rejected by verifySignature`);
  });

  it('"acceptable" cases are must-reject under the strict rule (this file has none)', function () {
    const failures: string[] = [];
    for (const c of acceptable) {
      const der = decodeDerSignature(hex(c.sig));
      if (der.ok && verifySignature(der.sig, c.hash, c.publicKey)) {
        failures.push(`${describeCase(c)}: accepted, but Cairn's strict rule rejects "acceptable" cases`);
      }
    }
    assert.equal(failures.length, 0, fail(failures));
  });

  it('the DER decoder accepts only the unique DER encoding (decode -> encode is the identity)', function () {
    const failures: string[] = [];
    let decoded = 0;
    for (const c of cases) {
      const bytes = hex(c.sig);
      const der = decodeDerSignature(bytes);
      if (!der.ok) continue;
      decoded++;
      const again = toHex(encodeDerSignature(der.sig));
      if (again !== c.sig.toLowerCase()) failures.push(`${describeCase(c)}: decoded, but re-encodes as ${again}`);
    }
    assert.equal(failures.length, 0, fail(failures));
    assert.ok(decoded >= valid.length);
  });

  it('high-S DER signatures are rejected (Wycheproof tcId 1, "Signature malleability")', function () {
    const c = cases.find((x) => x.flags.includes('SignatureMalleabilityBitcoin'));
    assert.ok(c, 'the malleability case is missing');
    assert.equal(c.result, 'invalid');
    const der = decodeDerSignature(hex(c.sig));
    assert.ok(der.ok, `${describeCase(c)}: ${der.ok ? '' : der.reason}`);
    assert.ok(bigFromBytes(der.sig.subarray(32)) > HALF_ORDER, `${describeCase(c)}: expected a high S`);
    assert.equal(verifySignature(der.sig, c.hash, c.publicKey), false, describeCase(c));
    const low = new Uint8Array(der.sig);
    low.set(bigTo32(CURVE_ORDER - bigFromBytes(der.sig.subarray(32))), 32);
    assert.equal(verifySignature(low, c.hash, c.publicKey), true, `${describeCase(c)}: n - s should verify`);
  });
});

// ---------------------------------------------------------------------------------------------
// P1363 file: raw r || s signatures, no low-S rule in Wycheproof; Cairn requires low S

describe('Wycheproof ECDSA secp256k1 SHA-256, IEEE P1363 (raw r || s)', function () {
  const { file, cases } = loadVectors('ecdsa_secp256k1_sha256_p1363_test.json', 'EcdsaP1363Verify');
  const valid = cases.filter((c) => c.result === 'valid');
  const invalid = cases.filter((c) => c.result === 'invalid');
  const acceptable = cases.filter((c) => c.result === 'acceptable');
  const sOf = (c: Case): bigint => bigFromBytes(hex(c.sig).subarray(32, 64));
  // Wycheproof "valid" here includes high-S signatures: plain ECDSA allows them, Cairn does not.
  const validLowS = valid.filter((c) => sOf(c) <= HALF_ORDER);
  const validHighS = valid.filter((c) => sOf(c) > HALF_ORDER);

  it('loads every case of the vendored file (252: 167 valid, 85 invalid, 0 acceptable)', function () {
    assert.equal(cases.length, file.numberOfTests);
    assert.equal(file.numberOfTests, 252);
    assert.equal(valid.length, 167);
    assert.equal(invalid.length, 85);
    // Pinned: no "acceptable" cases in this version; if some appear, they are must-reject (below).
    assert.equal(acceptable.length, 0);
    assert.equal(new Set(cases.map((c) => c.tcId)).size, cases.length, 'tcIds must be unique');
    for (const c of valid) assert.equal(hex(c.sig).length, 64, `${describeCase(c)}: valid but not 64 bytes`);
    assert.equal(validLowS.length + validHighS.length, valid.length);
  });

  it('accepts every "valid" low-S case', function () {
    const failures: string[] = [];
    let accepted = 0;
    for (const c of validLowS) {
      if (verifySignature(hex(c.sig), c.hash, c.publicKey)) accepted++;
      else failures.push(`${describeCase(c)}: verifySignature returned false for a valid low-S signature`);
    }
    assert.equal(failures.length, 0, fail(failures));
    assert.equal(accepted, validLowS.length);
    assert.ok(accepted >= 80, `only ${accepted} valid low-S signatures verified`);
  });

  it('rejects every "valid" high-S case (Cairn rule: s <= n/2), and accepts the same signature with n - s', function () {
    const failures: string[] = [];
    for (const c of validHighS) {
      const sig = hex(c.sig);
      if (verifySignature(sig, c.hash, c.publicKey)) {
        failures.push(`${describeCase(c)}: high-S signature accepted; Cairn requires s <= n/2`);
      }
      // High S must be the only flaw: the low-S twin (r, n - s) verifies.
      const twin = new Uint8Array(sig);
      twin.set(bigTo32(CURVE_ORDER - sOf(c)), 32);
      if (!verifySignature(twin, c.hash, c.publicKey)) {
        failures.push(`${describeCase(c)}: its low-S twin (r, n - s) was rejected, so high S is not its only flaw`);
      }
    }
    assert.equal(failures.length, 0, fail(failures));
    assert.ok(validHighS.length > 0, 'expected some high-S "valid" cases in the P1363 file');
    assert.equal(validHighS.length, 72, 'number of high-S "valid" cases in the vendored P1363 file');
    console.log(`      (${validHighS.length} Wycheproof-valid high-S P1363 cases rejected by Cairn's low-S rule)`);
  });

  it('rejects every "invalid" case (including signatures that are not exactly 64 bytes)', function () {
    const failures: string[] = [];
    let rejected = 0;
    let wrongLength = 0;
    for (const c of invalid) {
      const sig = hex(c.sig);
      if (sig.length !== 64) wrongLength++;
      if (verifySignature(sig, c.hash, c.publicKey)) {
        failures.push(`${describeCase(c)}: verifySignature accepted an invalid signature`);
      } else {
        rejected++;
      }
    }
    assert.equal(failures.length, 0, fail(failures));
    assert.equal(rejected, invalid.length);
    assert.equal(wrongLength, 18, 'wrong-length signatures among the invalid cases of the vendored file');
  });

  it('"acceptable" cases are must-reject under the strict rule (this file has none)', function () {
    const failures: string[] = [];
    for (const c of acceptable) {
      if (verifySignature(hex(c.sig), c.hash, c.publicKey)) {
        failures.push(`${describeCase(c)}: accepted, but Cairn's strict rule rejects "acceptable" cases`);
      }
    }
    assert.equal(failures.length, 0, fail(failures));
  });
});
