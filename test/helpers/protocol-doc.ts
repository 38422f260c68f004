/**
 * docs/PROTOCOL.md's `vector` blocks, parsed once for the suites that keep the document true
 * (test/protocol-*.test.ts). The format is the document's own ("Test vectors" > "Format"); a
 * field no check reads fails its vector (`assertAllUsed`), so a typo cannot pass unseen.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const DOC_URL = new URL('../../docs/PROTOCOL.md', import.meta.url);
export const DOC = readFileSync(DOC_URL, 'utf8');

// ---------------------------------------------------------------------------------------------
// The vector format (docs/PROTOCOL.md, "Test vectors" > "Format")

interface Field {
  readonly key: string;
  /** The inline value, or the indented lines that follow `key:`; comments removed, trimmed. */
  readonly lines: readonly string[];
}

export class Vector {
  readonly kind: string;
  readonly name: string;
  readonly line: number;
  private readonly fields: readonly Field[];
  private readonly used = new Set<string>(['kind', 'name']);

  constructor(fields: readonly Field[], line: number) {
    this.fields = fields;
    this.line = line;
    this.kind = this.peekText('kind');
    this.name = this.peekText('name');
  }

  private occurrences(key: string): Field[] {
    return this.fields.filter((f) => f.key === key);
  }

  private only(key: string): Field {
    const found = this.occurrences(key);
    assert.equal(found.length, 1, `${this.name}: expected exactly one "${key}", found ${found.length}`);
    return found[0]!;
  }

  has(key: string): boolean {
    return this.occurrences(key).length > 0;
  }

  peekText(key: string): string {
    const f = this.only(key);
    assert.equal(f.lines.length, 1, `${this.kind ?? 'vector'} "${key}" must be one line`);
    return f.lines[0]!;
  }

  /** A hex field, without marking it used: for other checks that read this vector's bytes. */
  peekHex(key: string): Uint8Array {
    const hex = this.only(key).lines.join('').replace(/\s+/g, '');
    assert.match(hex, /^([0-9a-f]{2})*$/, `${this.name}: "${key}" is not lower-case hex of whole bytes`);
    return new Uint8Array(Buffer.from(hex, 'hex'));
  }

  text(key: string): string {
    this.used.add(key);
    return this.peekText(key);
  }

  hex(key: string): Uint8Array {
    this.used.add(key);
    return this.peekHex(key);
  }

  big(key: string): bigint {
    const s = this.text(key);
    assert.match(s, /^(0|[1-9][0-9]*)$/, `${this.name}: "${key}" is not a decimal integer`);
    return BigInt(s);
  }

  num(key: string): number {
    const v = this.big(key);
    assert.ok(v <= BigInt(Number.MAX_SAFE_INTEGER), `${this.name}: "${key}" is too large for a number`);
    return Number(v);
  }

  /** Every value of a repeatable one-line key, in order. */
  list(key: string): string[] {
    this.used.add(key);
    return this.occurrences(key).map((f) => {
      assert.equal(f.lines.length, 1, `${this.name}: each "${key}" must be one line`);
      return f.lines[0]!;
    });
  }

  /** The same, without marking it used: for other checks that read this vector's fields. */
  peekList(key: string): string[] {
    return this.occurrences(key).map((f) => {
      assert.equal(f.lines.length, 1, `${this.name}: each "${key}" must be one line`);
      return f.lines[0]!;
    });
  }

  /** The lines of a multi-line field, each a list item. */
  items(key: string): readonly string[] {
    this.used.add(key);
    return this.only(key).lines;
  }

  /** Keys in document order, for fields whose interleaving matters (store steps). */
  ordered(keys: readonly string[]): Array<{ key: string; value: string }> {
    for (const k of keys) this.used.add(k);
    return this.fields.filter((f) => keys.includes(f.key)).map((f) => ({ key: f.key, value: f.lines.join(' ') }));
  }

  /** Every field of the vector was checked: a typo or a new field cannot be silently ignored. */
  assertAllUsed(): void {
    const unused = [...new Set(this.fields.map((f) => f.key))].filter((k) => !this.used.has(k));
    assert.deepEqual(unused, [], `${this.name}: fields not checked by any test`);
  }
}

function stripComment(line: string): string {
  return line.replace(/\s+#\s.*$/, '').replace(/^\s*#\s.*$/, '');
}

function parseVectors(doc: string): Vector[] {
  const lines = doc.split('\n');
  const vectors: Vector[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```vector') continue;
    const start = i + 1;
    const fields: Array<{ key: string; lines: string[] }> = [];
    let open: string[] | undefined; // the lines of a field whose `key:` line had no inline value
    for (i++; i < lines.length && lines[i] !== '```'; i++) {
      const raw = stripComment(lines[i]!);
      const keyLine = /^([A-Za-z][A-Za-z0-9_]*):(?: (.*))?$/.exec(raw);
      if (keyLine) {
        const inline = (keyLine[2] ?? '').trim();
        const field = { key: keyLine[1]!, lines: inline === '' ? [] : [inline] };
        fields.push(field);
        open = inline === '' ? field.lines : undefined;
      } else if (/^\s+\S/.test(raw)) {
        assert.ok(open, `PROTOCOL.md line ${i + 1}: indented line outside a multi-line field`);
        open.push(raw.trim());
      } else {
        assert.equal(raw.trim(), '', `PROTOCOL.md line ${i + 1}: not "key: value": ${lines[i]}`);
      }
    }
    assert.ok(i < lines.length, `PROTOCOL.md line ${start}: vector block never closed`);
    vectors.push(new Vector(fields, start));
  }
  return vectors;
}

export const VECTORS = parseVectors(DOC);
export const BY_NAME = new Map(VECTORS.map((v) => [v.name, v]));

export function named(name: string): Vector {
  const v = BY_NAME.get(name);
  assert.ok(v, `no vector named "${name}"`);
  return v;
}

export function ofKind(kind: string): Vector[] {
  return VECTORS.filter((v) => v.kind === kind);
}
