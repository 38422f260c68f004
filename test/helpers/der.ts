/**
 * Strict DER for ECDSA signatures, for the Wycheproof tests: Cairn itself has no DER (its
 * signatures are 64-byte r || s), but the Bitcoin variant of the vectors is DER-encoded.
 */
export type DerResult = { ok: true; sig: Uint8Array } | { ok: false; reason: string };

/**
 * Strict DER ECDSA-Sig-Value -> 64-byte r || s. Accepts exactly one encoding per (r, s):
 * SEQUENCE (0x30) with a short-form length equal to the rest of the input, holding exactly two
 * INTEGERs (0x02) with short-form lengths, each non-empty, non-negative and minimal (a leading
 * 0x00 only when the next byte has its top bit set), at most 32 bytes of magnitude, and nothing
 * after the second INTEGER. Range checks on the values (0 < r, s < n, low S) are the verifier's.
 */
export function decodeDerSignature(der: Uint8Array): DerResult {
  const fail = (reason: string): DerResult => ({ ok: false, reason });
  if (der.length < 2) return fail('too short for a SEQUENCE header');
  if (der[0] !== 0x30) return fail('not a SEQUENCE');
  const seqLen = der[1] ?? 0;
  // Signatures are at most 72 bytes, so DER never needs the long length form here.
  if (seqLen >= 0x80) return fail('SEQUENCE length not in short form');
  if (seqLen !== der.length - 2) return fail(`SEQUENCE length ${seqLen} but ${der.length - 2} bytes follow`);

  let pos = 2;
  const readInteger = (what: string): Uint8Array | string => {
    if (pos + 2 > der.length) return `${what}: truncated header`;
    if (der[pos] !== 0x02) return `${what}: not an INTEGER`;
    const len = der[pos + 1] ?? 0;
    if (len >= 0x80) return `${what}: length not in short form`;
    if (len === 0) return `${what}: empty INTEGER`;
    const start = pos + 2;
    if (start + len > der.length) return `${what}: length runs past the end`;
    const content = der.subarray(start, start + len);
    const first = content[0] ?? 0;
    if (first & 0x80) return `${what}: negative`;
    if (first === 0x00 && len > 1 && ((content[1] ?? 0) & 0x80) === 0) return `${what}: non-minimal leading 00`;
    const magnitude = first === 0x00 && len > 1 ? content.subarray(1) : content;
    if (magnitude.length > 32) return `${what}: more than 32 bytes of magnitude`;
    pos = start + len;
    return magnitude;
  };

  const r = readInteger('r');
  if (typeof r === 'string') return fail(r);
  const s = readInteger('s');
  if (typeof s === 'string') return fail(s);
  if (pos !== der.length) return fail(`${der.length - pos} trailing bytes inside the SEQUENCE`);

  const sig = new Uint8Array(64);
  sig.set(r, 32 - r.length);
  sig.set(s, 64 - s.length);
  return { ok: true, sig };
}

/** The one DER encoding of (r, s); used to prove the decoder accepts nothing but that. */
export function encodeDerSignature(sig: Uint8Array): Uint8Array {
  const int = (b: Uint8Array): number[] => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const m = Array.from(b.subarray(i));
    if (((m[0] ?? 0) & 0x80) !== 0) m.unshift(0);
    return [0x02, m.length, ...m];
  };
  const body = [...int(sig.subarray(0, 32)), ...int(sig.subarray(32, 64))];
  return new Uint8Array([0x30, body.length, ...body]);
}
