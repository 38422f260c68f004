/**
 * Proofs from a node's chain, and `cairn verify`'s check of a proof file, in process: what the RPC
 * methods serve (consensus/state-proofs.ts) and what the verifier accepts (consensus/proof-file.ts).
 * Every byte of a file's payloads and every value in it is tampered with in turn: each must fail,
 * with its reason.
 */
import assert from 'node:assert/strict';
import { constants } from 'node:buffer';
import fc from 'fast-check';
import { copyFileSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { MAX_FILE_HEADERS, describeProof, headersFor, makeProofFile, provenJson, verifyCommand } from '../cli/cmd-proof.ts';
import { createOut } from '../cli/output.ts';
import { RpcClientError } from '../cli/rpc-client.ts';
import { UsageError } from '../cli/args.ts';
import { generateDatadir } from '../cli/cmd-generate.ts';
import { exportSnapshot, importSnapshot } from '../cli/cmd-snapshot.ts';
import { RpcClient } from '../cli/rpc-client.ts';
import { toHex } from '../ledger/bytes.ts';
import { ChainDB } from '../ledger/chaindb.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { genesisJson, parseGenesis } from '../ledger/genesis.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { verifyAccountProof } from '../ledger/smt-proof.ts';
import { Chain } from '../consensus/chain.ts';
import { proveAccountsAt, proveTransactionById } from '../consensus/state-proofs.ts';
import { ProofFileError, readProofFile, verifyProofFile, type ProofFile } from '../consensus/proof-file.ts';
import { rpcHandlers } from '../node/rpc-methods.ts';
import { RpcError } from '../node/rpc-params.ts';
import { RPC_ERRORS } from '../node/rpc-types.ts';
import type { NodeView } from '../node/view.ts';
import { FUNDED_KEYS, tempDir, testKey, testParams, transfer } from './helpers/fixtures.ts';
import { asParent, mineChild } from './helpers/mining.ts';
import { arbFileBytes, FUZZ_SEED, fuzzRuns } from './helpers/fuzz.ts';
import { runCli } from './helpers/cli.ts';

// One hash in 2^16 meets it: a header changed anywhere is all but certain to lose its proof of work.
const params = testParams({ name: 'cairn-proofs', target: (1n << 240n) - 1n, timestamp: 1_600_000_000 });
const NOW = params.timestamp + 100_000;
const [alice, bob] = FUNDED_KEYS;
const carol = testKey(31);

const { MAX_STRING_LENGTH } = constants;

describe('proofs and proof files', function () {
  this.timeout(60_000);
  let dir: ReturnType<typeof tempDir>;
  let db: ChainDB;
  let chain: Chain;
  let files: { account: ProofFile; absent: ProofFile; old: ProofFile; genesis: ProofFile; tx: ProofFile; checkpointed: ProofFile };

  before(async () => {
    dir = tempDir();
    db = await ChainDB.open(dir.path, params);
    chain = await Chain.open(db, { clock: () => NOW });
    let parent = asParent(db.genesis);
    const payments = [transfer(alice!, carol.address, 700n, 0n), transfer(alice!, bob!.address, 5n, 1n), transfer(bob!, carol.address, 9n, 0n)];
    for (let i = 0; i < 16; i++) {
      const block = mineChild(params, parent, i === 3 ? payments : [], { miner: testKey(40 + (i % 3)).address });
      assert.equal(await chain.processBlock(block), 'connected');
      parent = asParent(block);
    }
    const list = Array.from({ length: chain.tip.height }, (_, h) => toHex(chain.mainAt(h + 1)!.header.bytes));
    const base = { cairnProof: 1 as const, network: params.name, genesis: toHex(db.genesis.header.hash), headers: { from: 1, list } };
    const accountFile = async (address: Uint8Array, height: number): Promise<ProofFile> => {
      const entry = chain.mainAt(height)!;
      const [proof] = (await proveAccountsAt(chain, entry, [address], 64)) as Uint8Array[];
      const account = verifyAccountProof(entry.header.stateRoot, address, proof!);
      return {
        ...base,
        kind: 'account',
        block: { height, hash: entry.hashHex },
        address: encodeAddress(address),
        account: account ? { balance: account.balance.toString(), nonce: account.nonce.toString() } : null,
        proof: toHex(proof!),
      };
    };
    const found = await proveTransactionById(chain, payments[2]!.id);
    files = {
      account: await accountFile(carol.address, 16),
      absent: await accountFile(testKey(32).address, 16),
      old: await accountFile(carol.address, 3), // before the block that paid carol: rolled back 13 blocks
      genesis: await accountFile(alice!.address, 0), // `cairn proof account A --block 0`: the allocation
      tx: { ...base, kind: 'transaction', block: { height: 4, hash: toHex(found!.header.hash) }, transaction: payments[2]!.idHex, proof: toHex(found!.proof) },
      checkpointed: { ...(await accountFile(carol.address, 16)), headers: { from: 2, anchor: list[0]!, list: list.slice(1) } },
    };
  });

  after(async () => {
    await db.close();
    dir.remove();
  });

  it('proves accounts at the tip and at older blocks, absences, and transactions', () => {
    const account = verifyProofFile(params, files.account, { now: NOW });
    assert.deepEqual(account.account, { balance: 709n, nonce: 0n });
    assert.equal(account.confirmations, 1);
    assert.equal(account.headersChecked, 16);
    assert.equal(account.totalWork, chain.tip.totalWork);
    assert.equal(verifyProofFile(params, files.absent, { now: NOW }).account, undefined);
    const old = verifyProofFile(params, files.old, { now: NOW });
    assert.equal(old.account, undefined, 'carol had no account before block 4');
    assert.equal(old.confirmations, 14);
    // Its header is the one the parameters make, not among the file's (they start at block 1).
    const genesis = verifyProofFile(params, files.genesis, { now: NOW });
    assert.deepEqual(genesis.account, { balance: 1_000_000n, nonce: 0n });
    assert.equal(genesis.confirmations, 17);
    const tx = verifyProofFile(params, files.tx, { now: NOW });
    assert.equal(tx.tx!.idHex, files.tx.transaction);
    assert.equal(tx.confirmations, 13);
  });

  it('says what work its confirmations carry, and warns when a chain dated behind schedule made them cheap', async () => {
    // From a review: ASERT eases the target of a chain dated behind schedule until a block costs a
    // hash, so a file forged from genesis showed thousands of confirmations for seconds of hashing.
    const honest = verifyProofFile(params, files.old, { now: NOW });
    assert.equal(honest.workAfter, honest.blockWork * 13n, 'an honest chain on schedule: 13 blocks after it at its own target');
    assert.equal(provenJson(honest, params).confirmationWork, 13);
    assert.equal(provenJson(honest, params).weakConfirmations, false);
    assert.doesNotMatch(describeProof(honest, params), /warning/);
    assert.match(describeProof(honest, params), /total work \d+ \(0x[0-9a-f]+\), that of 17 blocks at the genesis target/);

    // The forger's chain: block 2 dated a day behind schedule, after which every block is near free.
    const forgedDb = await ChainDB.open(new MemoryDisk().open(), params);
    try {
      const forged = await Chain.open(forgedDb, { clock: () => NOW });
      let parent = asParent(forgedDb.genesis);
      for (let i = 0; i < 40; i++) {
        const timestamp = i === 0 ? params.timestamp + 1 : i === 1 ? NOW - 1_000 : parent.header.timestamp + 1;
        const block = mineChild(params, parent, [], { miner: testKey(50).address, timestamp });
        assert.equal(await forged.processBlock(block), 'connected');
        parent = asParent(block);
      }
      const entry = forged.mainAt(3)!;
      const [proof] = (await proveAccountsAt(forged, entry, [alice!.address], 64)) as Uint8Array[];
      const list = Array.from({ length: forged.tip.height }, (_, h) => toHex(forged.mainAt(h + 1)!.header.bytes));
      const file: ProofFile = {
        cairnProof: 1, kind: 'account', network: params.name, genesis: toHex(forgedDb.genesis.header.hash), headers: { from: 1, list },
        block: { height: 3, hash: entry.hashHex }, address: encodeAddress(alice!.address), account: { balance: '1000000', nonce: '0' }, proof: toHex(proof!),
      };
      const cheap = verifyProofFile(params, file, { now: NOW });
      assert.equal(cheap.confirmations, 38, 'the file is consistent: it proves the balance against its own chain');
      assert.equal(provenJson(cheap, params).weakConfirmations, true);
      assert.equal(provenJson(cheap, params).confirmationWork, 0);
      assert.match(describeProof(cheap, params), /warning: the 37 blocks after it carry the work of 0 blocks at the genesis target: .* may be forged/);
      assert.match(describeProof(cheap, params), /that of 3 blocks at the genesis target/, 'the whole chain: genesis and the two blocks dated by it');
    } finally {
      await forgedDb.close();
    }
  });

  it('cairn proof makes the file again when the chain moved under it, and says so when it keeps moving', async () => {
    // From a review: a reorganisation between getProof and the getHeaders pages gave a file whose
    // proof's block was not among its headers; cairn verify refused it, but cairn proof wrote it.
    const f = files.account;
    const fifteen = chain.mainAt(15)!;
    const sibling = mineChild(params, { hash: fifteen.hash, height: 15, header: fifteen.header }, [], { miner: testKey(91).address });
    let movedFor = 0;
    let shorterFor = 0;
    let attempts = 0;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        const { id, method, params: p } = JSON.parse(body) as { id: number; method: string; params: { from: number; count: number } };
        let result: unknown;
        // Until `shorterFor` attempts have passed, the chain moved to a shorter one, below the proof's block.
        if (method === 'status') result = { network: f.network, genesis: f.genesis, height: attempts <= shorterFor ? f.block.height - 1 : f.headers.list.length };
        else if (method === 'getProof') result = (attempts++, { block: f.block, address: f.address, account: f.account, proof: f.proof });
        else {
          const list = f.headers.list.slice(p.from - 1, p.from - 1 + p.count);
          // Until `movedFor` attempts have passed, block 16 is another: the chain moved meanwhile.
          if (attempts <= movedFor && p.from <= 16 && p.from + list.length > 16) list[16 - p.from] = toHex(sibling.header.bytes);
          result = { headers: list };
        }
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ jsonrpc: '2.0', id, result }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const rpc = new RpcClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, 'token');
      const request = { what: 'account' as const, subject: f.address!, block: undefined, since: undefined };
      movedFor = 1;
      const file = await makeProofFile(rpc, request);
      assert.equal(attempts, 2, 'made again once');
      assert.deepEqual(verifyProofFile(params, file, { now: NOW }).account, { balance: 709n, nonce: 0n });
      attempts = 0;
      movedFor = 99;
      await assert.rejects(makeProofFile(rpc, request), (err: unknown) => err instanceof RpcClientError && err.code === 'CHAIN_MOVED' && /kept reorganising .*run it again/.test(err.message));
      assert.equal(attempts, 3);
      attempts = 0;
      movedFor = 0;
      shorterFor = 1;
      const again = await makeProofFile(rpc, request);
      assert.equal(attempts, 2, 'made again once, after a chain that ended below its block');
      assert.deepEqual(verifyProofFile(params, again, { now: NOW }).account, { balance: 709n, nonce: 0n });
    } finally {
      server.close();
    }
  });

  it('from a checkpoint: the headers before it link back to it, and block 1 anchors the targets', () => {
    const cp = { height: 12, hash: chain.mainAt(12)!.hash };
    const proven = verifyProofFile(params, files.checkpointed, { now: NOW, checkpoint: cp });
    assert.equal(proven.fromGenesis, false);
    assert.equal(proven.headersChecked, 4);
    // A block among the checkpoint's ancestors in the file: linked to it, so proven too.
    const before = verifyProofFile(params, { ...files.tx, headers: files.checkpointed.headers }, { now: NOW, checkpoint: cp });
    assert.equal(before.tx!.idHex, files.tx.transaction);
    assert.equal(before.confirmations, 13);
    assert.throws(() => verifyProofFile(params, files.checkpointed, { now: NOW }), /say which checkpoint to trust/);
    assert.throws(() => verifyProofFile(params, files.checkpointed, { now: NOW, checkpoint: { height: 12, hash: chain.mainAt(11)!.hash } }), /not the checkpoint/);
    // A block 1 of another chain (another timestamp) does not fit the targets before the checkpoint.
    const other = mineChild(params, asParent(db.genesis), [], { miner: testKey(90).address, timestamp: params.timestamp + 3_000 });
    const forged = { ...files.checkpointed, headers: { ...files.checkpointed.headers, anchor: toHex(other.header.bytes) } };
    assert.throws(() => verifyProofFile(params, forged, { now: NOW, checkpoint: cp }), /anchor header/);
  });

  it('a checkpoint at height 0 is held against the genesis, like any other', () => {
    // It used to be skipped: pinning the real genesis gave no protection against a forged genesis file.
    const genesisHash = db.genesis.header.hash;
    assert.equal(verifyProofFile(params, files.account, { now: NOW, checkpoint: { height: 0, hash: genesisHash } }).fromGenesis, true);
    assert.throws(() => verifyProofFile(params, files.account, { now: NOW, checkpoint: { height: 0, hash: new Uint8Array(32).fill(0xee) } }), /does not pass through the checkpoint 0:/);
  });

  it('a proof rolled back below the limit is refused, not made', async () => {
    const result = await proveAccountsAt(chain, chain.mainAt(1)!, [carol.address], 10);
    assert.equal(result, 'too-deep');
    const proofs = await proveAccountsAt(chain, chain.mainAt(1)!, [carol.address], 64);
    assert.notEqual(typeof proofs, 'string');
  });

  for (const name of ['account', 'absent', 'genesis', 'tx', 'checkpointed'] as const) {
    it(`${name}: every byte of the proof and of every header, and every value, tampered with: each fails with its reason`, () => {
      const file = files[name];
      const checkpoint = name === 'checkpointed' ? { height: 12, hash: chain.mainAt(12)!.hash } : undefined;
      const reasons = new Set<string>();
      const fails = (tampered: unknown, what: string) => {
        assert.throws(
          () => verifyProofFile(params, readProofFile(JSON.stringify(tampered)), { now: NOW, checkpoint }),
          (err: unknown) => {
            assert.ok(err instanceof ProofFileError, `${what}: ${String(err)}`);
            reasons.add(err.message.replace(/[0-9a-f]{16,}/g, '…').replace(/\d+/g, 'N'));
            return true;
          },
          what,
        );
      };
      const flip = (hex: string, i: number) => hex.slice(0, 2 * i) + ((parseInt(hex.slice(2 * i, 2 * i + 2), 16) ^ 0x01) >>> 0).toString(16).padStart(2, '0') + hex.slice(2 * i + 2);
      for (let i = 0; i < file.proof.length / 2; i++) fails({ ...file, proof: flip(file.proof, i) }, `proof byte ${i}`);
      file.headers.list.forEach((h, k) => {
        for (let i = 0; i < h.length / 2; i++) {
          const list = [...file.headers.list];
          list[k] = flip(h, i);
          fails({ ...file, headers: { ...file.headers, list } }, `header ${k} byte ${i}`);
        }
      });
      if (file.headers.anchor) for (let i = 0; i < 152; i++) fails({ ...file, headers: { ...file.headers, anchor: flip(file.headers.anchor, i) } }, `anchor byte ${i}`);
      // Fewer confirmations are no forgery: the file still proves what it says, with one less.
      const shorter = { ...file, headers: { ...file.headers, list: file.headers.list.slice(0, -1) } };
      if (file.block.height === file.headers.from + file.headers.list.length - 1) fails(shorter, 'the last header dropped');
      else assert.equal(verifyProofFile(params, shorter, { now: NOW, checkpoint }).confirmations, verifyProofFile(params, file, { now: NOW, checkpoint }).confirmations - 1);
      fails({ ...file, headers: { ...file.headers, from: file.headers.from + 1 } }, 'headers.from');
      fails({ ...file, block: { ...file.block, height: file.block.height - 1 } }, 'block.height');
      fails({ ...file, block: { ...file.block, hash: flip(file.block.hash, 5) } }, 'block.hash');
      fails({ ...file, genesis: flip(file.genesis, 0) }, 'genesis');
      // A digit in upper case is a byte changed too, though it decodes to the same header: the file is lower-case hex throughout.
      const upper = (hex: string) => hex.replace(/[a-f]/, (c) => c.toUpperCase());
      fails({ ...file, headers: { ...file.headers, list: [upper(file.headers.list[0]!), ...file.headers.list.slice(1)] } }, 'header 0 in upper case');
      if (file.headers.anchor) fails({ ...file, headers: { ...file.headers, anchor: upper(file.headers.anchor) } }, 'anchor in upper case');
      fails({ ...file, network: 'cairn-other' }, 'network');
      fails({ ...file, kind: file.kind === 'account' ? 'transaction' : 'account' }, 'kind');
      if (file.kind === 'account') {
        fails({ ...file, address: encodeAddress(testKey(33).address) }, 'address');
        fails({ ...file, account: file.account ? { ...file.account, balance: String(BigInt(file.account.balance) + 1n) } : { balance: '0', nonce: '0' } }, 'account');
        if (file.account) fails({ ...file, account: { ...file.account, nonce: String(BigInt(file.account.nonce) + 1n) } }, 'account nonce');
        if (file.account) fails({ ...file, account: null }, 'account null');
      } else {
        fails({ ...file, transaction: flip(file.transaction!, 0) }, 'transaction');
      }
      assert.ok(reasons.size >= 5, `several distinct reasons: ${[...reasons].join(' | ')}`);
    });
  }

  it('a proof file edited at random (its JSON and its bytes), or garbage, verifies as what it says or is refused with a ProofFileError in one line (property)', () => {
    // The same edits as every file a node or the CLI reads (test/files-fuzz.test.ts).
    const samples = (['account', 'absent', 'tx', 'checkpointed'] as const).map((name) => ({ name, bytes: new TextEncoder().encode(JSON.stringify(files[name], null, 2)) }));
    fc.assert(
      fc.property(fc.constantFrom(...samples).chain(({ name, bytes }) => arbFileBytes(bytes, true).map((edited) => ({ name, edited }))), ({ name, edited }) => {
        const checkpoint = name === 'checkpointed' ? { height: 12, hash: chain.mainAt(12)!.hash } : undefined;
        try {
          const file = readProofFile(Buffer.from(edited).toString('utf8'));
          const verified = verifyProofFile(params, file, { now: NOW, checkpoint });
          assert.equal(verified.hash, file.block.hash);
        } catch (err) {
          assert.ok(err instanceof ProofFileError, `${String(err)}\n${(err as Error).stack}`);
          assert.doesNotMatch(err.message, /[\r\n]/);
        }
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(1500) },
    );
  });

  it('refuses a file at its first bad header, before reading the rest of the list', () => {
    // It decoded every header before checking any: a file of 1.5 million headers that do not hold
    // took 3 GB and 25 s to refuse, and one that holds 3 GB to verify (1.6 GB now, its text).
    const list = files.account.headers.list;
    const bad = { ...files.account, headers: { from: 1, list: [list[0]!, list[2]!, 'not a header'] } };
    assert.throws(() => verifyProofFile(params, bad, { now: NOW }), /^ProofFileError: header 2 in the list says it is at height 3$/);
  });

  it('cairn verify refuses a file larger than any proof file, or a malformed --checkpoint, before reading it, saying so', async () => {
    // From the light review: it read the file whole first (600 MB of memory for a 600 MB file),
    // then said "cannot read FILE: Invalid string length", or "ERR_FS_FILE_TOO_LARGE" past 2 GB.
    const dir = tempDir();
    try {
      const huge = join(dir.path, 'huge.json');
      for (const size of [MAX_STRING_LENGTH + 1, 3 * 2 ** 30]) {
        writeFileSync(huge, '');
        truncateSync(huge, size); // sparse: no disk, no time
        await assert.rejects(
          verifyCommand([huge], createOut(false, () => assert.fail('no answer printed'))),
          (err: unknown) =>
            err instanceof UsageError &&
            err.message === `${huge} is not a proof file Cairn can read: ${size} bytes, over the ${MAX_STRING_LENGTH} a proof file may have (cairn proof writes at most ${MAX_FILE_HEADERS} headers, about 465 MB)`,
        );
      }
      // A device has no size to refuse it by: it was read until memory ran out (/dev/zero).
      await assert.rejects(verifyCommand(['/dev/zero'], createOut(false, () => assert.fail('no answer printed'))), {
        message: '/dev/zero is not a proof file: not a regular file, nor a pipe; give the file cairn proof wrote (cairn proof account ADDRESS > proof.json)',
      });
      // A malformed flag was said only after the read: a file not there shows the order.
      await assert.rejects(verifyCommand([join(dir.path, 'absent.json'), '--checkpoint', '12'], createOut(false, () => assert.fail('no answer printed'))), /^UsageError: --checkpoint must be HEIGHT:HASH/);
    } finally {
      dir.remove();
    }
  });

  it('cairn verify takes its --genesis, and its proof file, from a pipe (/dev/stdin fed by one), as init and node do, and its proof file as - from stdin', async () => {
    // From the carried list: refused as "not a regular file", so that `--genesis <(…)` failed.
    const dir = tempDir();
    try {
      const proof = join(dir.path, 'proof.json');
      writeFileSync(proof, JSON.stringify(files.account));
      const piped = await runCli(['verify', '--genesis', '/dev/stdin', proof, '--json'], { input: genesisJson(params), inputThroughPipe: true });
      assert.equal(piped.code, 0, piped.stderr);
      const fromFile = join(dir.path, 'genesis.json');
      writeFileSync(fromFile, genesisJson(params));
      assert.equal(piped.stdout, (await runCli(['verify', '--genesis', fromFile, proof, '--json'])).stdout, 'the answer the same file gives');
      // And the proof file itself, as `cairn proof account A | cairn verify /dev/stdin` gives it.
      const proofPiped = await runCli(['verify', '--genesis', fromFile, '/dev/stdin', '--json'], { input: JSON.stringify(files.account), inputThroughPipe: true });
      assert.equal(proofPiped.code, 0, proofPiped.stderr);
      assert.equal(proofPiped.stdout, piped.stdout);
      // And as `-` (it said "cannot read -: it does not exist"): through a pipe, or a child's socket, which /dev/stdin does not open again.
      for (const inputThroughPipe of [true, false]) {
        const dash = await runCli(['verify', '--genesis', fromFile, '-', '--json'], { input: JSON.stringify(files.account), inputThroughPipe });
        assert.equal(dash.code, 0, dash.stderr);
        assert.equal(dash.stdout, piped.stdout);
      }
    } finally {
      dir.remove();
    }
  });

  it('refuses what is not a proof file, saying why', () => {
    assert.throws(() => readProofFile('{'), /not JSON/);
    // The parser's message quotes the text near the fault, newline and all; cairn verify prints one line.
    assert.throws(() => readProofFile('\u0000\n  "cairnProof": 1\n}'), (err: Error) => /^not a proof file: not JSON \(.*\)$/.test(err.message) && !/[\r\n]/.test(err.message));
    assert.throws(() => readProofFile('{"cairnProof":2}'), /"cairnProof" must be 1/);
    assert.throws(() => readProofFile(JSON.stringify({ ...files.account, proof: 'xyz' })), /"proof" must be hex/);
  });
});

describe('proofs on a node that joined from a snapshot', function () {
  this.timeout(120_000);

  it('below the snapshot block, refused as pruned: the block the state began at has no undo data', async () => {
    // It threw STORE_CORRUPT ("no undo data") for the block just below: the pruning mark a
    // snapshot leaves is one below the snapshot block, whose state was installed, not connected.
    const dir = tempDir();
    try {
      const source = join(dir.path, 'source');
      await generateDatadir({ datadir: source, blocks: 115, txsPerBlock: 1, accounts: 20 });
      const params = parseGenesis(readFileSync(join(source, 'genesis.json'), 'utf8'));
      const file = join(dir.path, 'state.snap');
      assert.equal((await exportSnapshot(source, file, { interval: 100, reorgDepth: 10 })).height, 100);
      const datadir = join(dir.path, 'joined');
      mkdirSync(datadir);
      copyFileSync(join(source, 'genesis.json'), join(datadir, 'genesis.json'));
      await importSnapshot(datadir, file, params);
      const db = await ChainDB.open(join(datadir, 'chain'), params);
      try {
        const chain = await Chain.open(db, { clock: () => Math.floor(Date.now() / 1000) });
        assert.equal(chain.tip.height, 100);
        const view = { params, chain, db } as unknown as NodeView;
        const address = encodeAddress(testKey(5).address);
        assert.equal((await rpcHandlers.getProof(view, { address, block: 100 })).block.height, 100);
        for (const block of [99, 98]) {
          const [header] = await chain.byHeight.headers(block, 1);
          await assert.rejects(rpcHandlers.getProof(view, { address, block }), (err: unknown) => err instanceof RpcError && err.rpcCode === RPC_ERRORS.PRUNED, `block ${block}`);
          assert.equal(await proveAccountsAt(chain, header!, [testKey(5).address], 256), 'pruned');
        }
      } finally {
        await db.close();
      }
    } finally {
      dir.remove();
    }
  });
});

describe('cairn proof against a node that will not stop', function () {
  this.timeout(20_000);
  const header = '00'.repeat(152);

  /** A node at `height` that answers every getHeaders with a full page, and counts the calls. */
  async function fullPages(height: number, run: (rpc: RpcClient, calls: () => number) => Promise<void>): Promise<void> {
    let calls = 0;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        const { id, method } = JSON.parse(body) as { id: number; method: string };
        calls++;
        const result = method === 'status' ? { height } : { headers: Array.from({ length: 2_000 }, () => header) };
        res.setHeader('content-type', 'application/json');
        // Past a few pages, an error: a loop that would fetch millions of headers ends here.
        res.end(JSON.stringify(calls > 8 ? { jsonrpc: '2.0', id, error: { code: -32000, message: 'enough pages' } } : { jsonrpc: '2.0', id, result }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      await run(new RpcClient(`http://127.0.0.1:${port}/`, 'token'), () => calls);
    } finally {
      server.close();
    }
  }

  it('asks for headers up to the tip the node named, however full its pages', async () => {
    // From a review: the loop ran while pages came back full, so a node that always sent 2,000
    // headers kept it, and its memory, growing for ever.
    await fullPages(4_500, async (rpc, calls) => {
      const headers = await headersFor(rpc, 4_000, undefined);
      assert.equal(headers.list.length, 4_500);
      assert.equal(calls(), 4, 'status, then three pages');
    });
  });

  it('refuses, before fetching any, more headers than a proof file holds, and names --since', async () => {
    // It fetched them all (gigabytes of hex on a long chain), then could not print the file
    // ("Invalid string length"), or ran out of memory on the way.
    await fullPages(MAX_FILE_HEADERS + 50, async (rpc, calls) => {
      await assert.rejects(headersFor(rpc, 100, undefined), (err: unknown) => err instanceof UsageError && /more than a proof file holds .*--since HEIGHT/.test(err.message));
      assert.equal(calls(), 1, 'the status alone');
      await assert.rejects(headersFor(rpc, MAX_FILE_HEADERS, 20), (err: unknown) => err instanceof UsageError && /a higher --since/.test(err.message));
      // From a checkpoint, the same chain fits.
      assert.equal((await headersFor(rpc, MAX_FILE_HEADERS + 1, MAX_FILE_HEADERS - 2_000)).list.length, 2_061);
    });
  });
});
