/**
 * What the fuzz tests share: the seed and scale a deeper run by hand overrides
 * (CAIRN_FUZZ_SEED, CAIRN_FUZZ_SCALE), random edits of a sample's bytes, and JSON-aware edits of a
 * sample document (wrong types, missing and extra members, members named twice, huge, negative and
 * NaN-ish numbers, deep nesting, a byte order mark, bytes that are not UTF-8, an empty file).
 */
import fc from 'fast-check';
import { concatBytes } from '../../ledger/bytes.ts';

export const FUZZ_SEED = Number(process.env.CAIRN_FUZZ_SEED ?? 1207);
/** `n` runs at scale 1, the default (CI). */
export const fuzzRuns = (n: number): number => Math.max(1, Math.round(n * Number(process.env.CAIRN_FUZZ_SCALE ?? 1)));

export interface ByteEdit {
  readonly kind: 'set' | 'xor' | 'insert' | 'delete' | 'truncate' | 'append';
  readonly pos: number;
  readonly value: number;
}

/** Positions near the start are drawn often: that is where magic numbers, counts and versions are. */
export const arbByteEdit: fc.Arbitrary<ByteEdit> = fc.record({
  kind: fc.constantFrom('set', 'xor', 'insert', 'delete', 'truncate', 'append'),
  pos: fc.oneof(fc.nat({ max: 40 }), fc.nat()),
  value: fc.integer({ min: 0, max: 255 }),
});

export function editBytes(sample: Uint8Array, edits: readonly ByteEdit[]): Uint8Array {
  let bytes: Uint8Array = Uint8Array.from(sample); // a copy: a Buffer's slice() is a view of it
  for (const e of edits) {
    const at = bytes.length === 0 ? 0 : e.pos % bytes.length;
    if (e.kind === 'set') bytes[at] = e.value;
    else if (e.kind === 'xor') bytes[at] = (bytes[at] ?? 0) ^ (e.value | 1);
    else if (e.kind === 'insert') bytes = concatBytes(bytes.subarray(0, at), Uint8Array.of(e.value), bytes.subarray(at));
    else if (e.kind === 'delete') bytes = concatBytes(bytes.subarray(0, at), bytes.subarray(at + 1));
    else if (e.kind === 'append') bytes = concatBytes(bytes, Uint8Array.of(e.value));
    else bytes = bytes.slice(0, at);
  }
  return bytes;
}

/** Bytes of a sample with 1 to 4 random edits. */
export const arbEditedBytes = (sample: Uint8Array): fc.Arbitrary<Uint8Array> =>
  fc.array(arbByteEdit, { minLength: 1, maxLength: 4 }).map((edits) => editBytes(sample, edits));

/** JSON text written as is: numbers JSON.stringify cannot write (1e400, -0, 30 digits). */
class RawJson {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

/** An object member written twice: JSON.parse keeps the last, other parsers the first. */
const TWICE = Symbol('twice');
type Doc = unknown;

const JUNK: readonly Doc[] = [
  null, true, false, 0, -1, 1.5, 2 ** 53, 2 ** 53 + 2, -(2 ** 31), 4294967296, 1e308, '', ' ', 'NaN', 'Infinity', '-1', '1e3', '0x10', ' 1',
  '18446744073709551616', '１', 'x'.repeat(2000), '\u0000', '\ud800', [], {}, [1, 'a'], { a: 1 },
  new RawJson('1e400'), new RawJson('-1e400'), new RawJson('-0'), new RawJson('123456789012345678901234567890'), new RawJson('1.0'), new RawJson('1E2'),
];

const arbJunk: fc.Arbitrary<Doc> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...JUNK) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1, max: 5000 }), fc.constantFrom('[' as const, '{' as const)).map(([depth, open]) => nest(depth, open)) },
);

/** `depth` arrays (or objects) one inside the other. */
function nest(depth: number, open: '[' | '{'): RawJson {
  return new RawJson(open === '[' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '0' + '}'.repeat(depth));
}

interface JsonEdit {
  readonly kind: 'replace' | 'delete' | 'add' | 'twice' | 'rename';
  readonly at: number;
  readonly junk: Doc;
  readonly name: string;
}

const arbJsonEdit: fc.Arbitrary<JsonEdit> = fc.record({
  kind: fc.constantFrom('replace', 'replace', 'delete', 'add', 'twice', 'rename'),
  at: fc.nat(),
  junk: arbJunk,
  name: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', '', 'x'), fc.string({ maxLength: 6 })),
});

/** Every place in a document a value sits: its container and its key (the root has none). */
function places(doc: Doc, out: { parent: Record<string | number, Doc> | undefined; key: string | number }[] = [], parent?: Record<string | number, Doc>, key: string | number = ''): typeof out {
  out.push({ parent, key });
  if (doc instanceof RawJson || typeof doc !== 'object' || doc === null) return out;
  for (const [k, v] of Object.entries(doc)) places(v, out, doc as Record<string, Doc>, Array.isArray(doc) ? Number(k) : k);
  return out;
}

function clone(doc: Doc): Doc {
  if (doc instanceof RawJson || typeof doc !== 'object' || doc === null) return doc;
  if (Array.isArray(doc)) return doc.map(clone);
  const copy: Record<string, Doc> = {};
  for (const [k, v] of Object.entries(doc)) Object.defineProperty(copy, k, { value: clone(v), enumerable: true, writable: true, configurable: true });
  return copy;
}

function applyJsonEdit(root: Doc, edit: JsonEdit): Doc {
  // The junk's own copy: its arrays and objects are shared by every run, and an edit may add to them.
  const e = { ...edit, junk: clone(edit.junk) };
  const all = places(root);
  const { parent, key } = all[e.at % all.length]!;
  if (parent === undefined) return e.kind === 'replace' ? e.junk : root;
  const value = parent[key];
  const container = value !== null && typeof value === 'object' && !(value instanceof RawJson) ? (value as Record<string, Doc>) : undefined;
  if (e.kind === 'replace') parent[key] = e.junk;
  else if (e.kind === 'delete') {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
  } else if (e.kind === 'add' && container) {
    if (Array.isArray(container)) container.push(e.junk);
    else Object.defineProperty(container, e.name, { value: e.junk, enumerable: true, writable: true, configurable: true });
  } else if (e.kind === 'twice' && !Array.isArray(parent)) {
    (parent as { [TWICE]?: [string, Doc][] })[TWICE] = [[String(key), e.junk]];
  } else if (e.kind === 'rename' && !Array.isArray(parent)) {
    delete parent[key];
    Object.defineProperty(parent, e.name, { value, enumerable: true, writable: true, configurable: true });
  }
  return root;
}

/** JSON text of `doc`, with its RawJson as written and its members named twice written twice. */
export function jsonText(doc: Doc, indent = ''): string {
  if (doc instanceof RawJson) return doc.text;
  if (typeof doc !== 'object' || doc === null) return JSON.stringify(doc) ?? 'null';
  const inner = indent === '' ? '' : indent + ' ';
  const nl = indent === '' ? '' : '\n';
  if (Array.isArray(doc)) return `[${doc.map((v) => nl + inner + jsonText(v, inner)).join(',')}${nl}${indent}]`;
  const members = [...Object.entries(doc), ...((doc as { [TWICE]?: [string, Doc][] })[TWICE] ?? [])];
  return `{${members.map(([k, v]) => `${nl}${inner}${JSON.stringify(k)}:${jsonText(v, inner)}`).join(',')}${nl}${indent}}`;
}

interface TextEdit {
  readonly kind: 'none' | 'bom' | 'not-utf8' | 'empty' | 'truncate' | 'bytes';
  readonly pos: number;
  readonly byte: number;
}

const arbTextEdit: fc.Arbitrary<TextEdit> = fc.record({
  kind: fc.constantFrom('none', 'none', 'none', 'bom', 'not-utf8', 'empty', 'truncate', 'bytes'),
  pos: fc.nat(),
  byte: fc.constantFrom(0xff, 0xfe, 0xc3, 0x80, 0xed, 0x00),
});

/**
 * The bytes of a JSON file like `sample` after 1 to 3 edits of its document, then perhaps one of
 * its bytes: a BOM before it, a byte that is not UTF-8 inside it, cut short, emptied, or a random edit.
 */
export const arbEditedJson = (sample: Doc): fc.Arbitrary<Uint8Array> =>
  fc.tuple(fc.array(arbJsonEdit, { minLength: 1, maxLength: 3 }), fc.boolean(), arbTextEdit, fc.array(arbByteEdit, { minLength: 1, maxLength: 3 })).map(([edits, pretty, text, bytes]) => {
    let doc = clone(sample);
    for (const e of edits) doc = applyJsonEdit(doc, e);
    const encoded = new TextEncoder().encode(jsonText(doc, pretty ? ' ' : '') + (pretty ? '\n' : ''));
    const at = encoded.length === 0 ? 0 : text.pos % encoded.length;
    switch (text.kind) {
      case 'bom': return concatBytes(Uint8Array.of(0xef, 0xbb, 0xbf), encoded);
      case 'not-utf8': return concatBytes(encoded.subarray(0, at), Uint8Array.of(text.byte), encoded.subarray(at));
      case 'empty': return new Uint8Array(0);
      case 'truncate': return encoded.slice(0, at);
      case 'bytes': return editBytes(encoded, bytes);
      default: return encoded;
    }
  });

/** Garbage of random length, and garbage that starts like the sample (past its first check). */
export const arbGarbage = (sample: Uint8Array): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    fc.uint8Array({ maxLength: 600 }),
    fc.tuple(fc.nat({ max: 24 }), fc.uint8Array({ minLength: 1, maxLength: 600 })).map(([keep, tail]) => concatBytes(sample.subarray(0, keep), tail)),
  );

/** Any of the above for a sample file: byte edits, JSON-aware edits (for JSON files), garbage. */
export function arbFileBytes(sample: Uint8Array, json = false): fc.Arbitrary<Uint8Array> {
  const doc = json ? (JSON.parse(new TextDecoder().decode(sample)) as Doc) : undefined;
  return fc.oneof(arbEditedBytes(sample), ...(json ? [arbEditedJson(doc), arbEditedJson(doc)] : []), arbGarbage(sample));
}
