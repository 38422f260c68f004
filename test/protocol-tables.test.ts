/**
 * docs/PROTOCOL.md's field tables (`<!-- layout: NAME -->`): their offsets and sizes add up, and
 * every vector's bytes sit where the table says. The vectors themselves are recomputed by
 * protocol-vectors.test.ts.
 */
import assert from 'node:assert/strict';
import { bytesToBigInt, toHex } from '../ledger/bytes.ts';
import { TX_BYTES, UNSIGNED_TX_BYTES } from '../ledger/transaction.ts';
import { COINBASE_BYTES, HEADER_BYTES } from '../ledger/block.ts';
import { ACCOUNT_BYTES } from '../ledger/state.ts';
import { networkNames } from '../node/protocols.ts';
import { DOC, ofKind, type Vector } from './helpers/protocol-doc.ts';

// ---------------------------------------------------------------------------------------------
// Field tables: `<!-- layout: NAME -->` followed by | offset | size | field | type | rule |

interface Row {
  readonly offset: number;
  readonly size: number;
  readonly field: string;
  readonly type: string;
}

function layoutTable(name: string): Row[] {
  const marker = `<!-- layout: ${name} -->`;
  const at = DOC.indexOf(marker);
  assert.ok(at >= 0, `PROTOCOL.md has no ${marker}`);
  const lines = DOC.slice(at + marker.length).split('\n').slice(1);
  assert.match(lines[0] ?? '', /^\| offset \| size \| field \| type \| rule \|$/);
  const rows: Row[] = [];
  for (const line of lines.slice(2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    rows.push({ offset: Number(cells[0]), size: Number(cells[1]), field: cells[2]!, type: cells[3]! });
  }
  return rows;
}

const TABLES: Record<string, { total: number; sources: () => Array<{ bytes: Uint8Array; v: Vector; key: (field: string) => string }> }> = {
  'unsigned-transaction': {
    total: UNSIGNED_TX_BYTES,
    sources: () => ofKind('transaction').map((v) => ({ bytes: v.peekHex('unsigned'), v, key: (f) => f })),
  },
  transaction: {
    total: TX_BYTES,
    sources: () => ofKind('transaction').map((v) => ({ bytes: v.peekHex('signed'), v, key: (f) => f })),
  },
  header: {
    total: HEADER_BYTES,
    sources: () => [
      ...ofKind('header').map((v) => ({ bytes: v.peekHex('encoded'), v, key: (f: string) => f })),
      ...ofKind('block').map((v) => ({ bytes: v.peekHex('encoded').subarray(0, HEADER_BYTES), v, key: (f: string) => f })),
    ],
  },
  coinbase: {
    total: COINBASE_BYTES,
    sources: () =>
      ofKind('block').map((v) => ({
        bytes: v.peekHex('encoded').subarray(HEADER_BYTES, HEADER_BYTES + COINBASE_BYTES),
        v,
        key: (f: string) => `coinbase${f[0]!.toUpperCase()}${f.slice(1)}`,
      })),
  },
  account: {
    total: ACCOUNT_BYTES,
    sources: () => ofKind('account').map((v) => ({ bytes: v.peekHex('encoded'), v, key: (f) => f })),
  },
};

describe('docs/PROTOCOL.md field tables', () => {
  for (const [name, { total, sources }] of Object.entries(TABLES)) {
    it(`${name}: offsets are contiguous, sizes add up to ${total}, and every vector's bytes sit where the table says`, () => {
      const rows = layoutTable(name);
      assert.ok(rows.length >= 2);
      let offset = 0;
      for (const row of rows) {
        assert.equal(row.offset, offset, `${name}.${row.field} offset`);
        assert.ok(Number.isInteger(row.size) && row.size > 0, `${name}.${row.field} size`);
        offset += row.size;
      }
      assert.equal(offset, total);
      const list = sources();
      assert.ok(list.length > 0, `no vector to check the ${name} table against`);
      for (const { bytes, v, key } of list) {
        assert.equal(bytes.length, total);
        for (const row of rows) {
          const slice = bytes.subarray(row.offset, row.offset + row.size);
          const k = key(row.field);
          if (row.type === 'bytes' || row.type === 'u256') {
            assert.equal(toHex(slice), toHex(v.peekHex(k)), `${v.name}: ${name}.${row.field}`);
          } else {
            const width = { u8: 1, u32: 4, u64: 8 }[row.type];
            assert.equal(width, row.size, `${name}.${row.field}: type ${row.type} with size ${row.size}`);
            assert.equal(bytesToBigInt(slice), BigInt(v.peekText(k)), `${v.name}: ${name}.${row.field}`);
          }
        }
      }
    });
  }
});


describe('docs/PROTOCOL.md names', () => {
  // A protocol id bumped in the code and not in the spec (or the other way) splits the network
  // silently: the two sides never agree on a stream, and nothing fails but the exchange.
  it('the table of protocol ids and topics is exactly the set the node speaks', () => {
    const at = DOC.indexOf('### Names');
    assert.ok(at >= 0, 'PROTOCOL.md has no ### Names');
    const lines = DOC.slice(at).split('\n');
    const header = lines.findIndex((l) => l === '| name | id |');
    assert.ok(header > 0, 'no | name | id | table under ### Names');
    const ids: string[] = [];
    for (const line of lines.slice(header + 2)) {
      if (!line.startsWith('|')) break;
      ids.push(/`([^`]+)`/.exec(line)![1]!);
    }
    const hash = new Uint8Array(32).fill(0xab);
    const ns = toHex(hash).slice(0, 16);
    const names = networkNames(hash) as unknown as Record<string, string>;
    assert.deepEqual(new Set(ids.map((id) => id.replace('<ns>', ns))), new Set(Object.values(names)));
  });
});
