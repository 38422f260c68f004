import { constants } from 'node:buffer';
import { fromHex, toHex } from '../ledger/bytes.ts';
import { decodeHeader } from '../ledger/block.ts';
import { encodeAddress } from '../ledger/keys.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import { readProofFile, verifyProofFile, type ProofFile, type VerifiedProof } from '../consensus/proof-file.ts';
import { blockWork } from '../consensus/pow.ts';
import { NODE_ACCESS, address, checkpointArg, parse, str, UsageError } from './args.ts';
import { BUNDLED_GENESIS, readGenesis } from './datadir.ts';
import { readCappedStream, readCappedText } from './capped-read.ts';
import { fileReason } from '../node/file-errors.ts';
import { connect, RpcClientError, type RpcClient } from './rpc-client.ts';
import { coins, type Out } from './output.ts';

const HEADERS_PER_CALL = 2000;
const { MAX_STRING_LENGTH } = constants;
/**
 * The most headers a proof file holds: about 310 characters each as written, so some 465 MB, under
 * the longest string JavaScript can make (2^29 characters), which writing it and `cairn verify`'s
 * reading both need. A longer chain is proven from a checkpoint (--since).
 */
export const MAX_FILE_HEADERS = 1_500_000;

/** `cairn proof account ADDRESS` / `cairn proof tx ID`: a proof file on stdout, with every header it needs. */
export async function proofCommand(argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parse(argv, { ...NODE_ACCESS, block: { type: 'string' }, since: { type: 'string' } }, 2);
  if (values.help) return out.help(HELP.proof);
  const [what, subject] = positionals;
  if (what !== 'account' && what !== 'tx') throw new UsageError('say what to prove: cairn proof account ADDRESS, or cairn proof tx ID');
  if (!subject) throw new UsageError(what === 'account' ? 'give the ADDRESS to prove' : 'give the transaction ID to prove');
  const since = sinceArg(str(values, 'since'));
  if (what === 'account') address(subject, 'address');
  else if (!/^[0-9a-f]{64}$/.test(subject)) throw new UsageError('give the transaction ID: 64 lower-case hex digits');
  const block = blockArg(str(values, 'block'));
  if (what === 'tx' && block !== undefined) throw new UsageError('--block is for account proofs: a transaction is proven against its own block');
  const file = await makeProofFile(await connect(values), { what, subject, block, since });
  // The file is the answer with or without --json: it is JSON, for `cairn verify`.
  out.text(JSON.stringify(file, null, 1));
}

/** Attempts at a proof whose block the node's chain left while its headers were fetched. */
const PROOF_ATTEMPTS = 3;

export interface ProofRequest {
  readonly what: 'account' | 'tx';
  readonly subject: string;
  readonly block: number | string | undefined;
  readonly since: number | undefined;
}

/**
 * A proof and the headers that carry it, as one consistent chain. They come in several calls, and
 * a reorganisation between them would give a file whose proof's block is not in its headers, or
 * whose pages do not link, which `cairn verify` refuses: made again, a few times, then refused here.
 */
export async function makeProofFile(rpc: RpcClient, r: ProofRequest): Promise<ProofFile> {
  for (let attempt = 1; ; attempt++) {
    const file = await proofFileOnce(rpc, r);
    if (headersHold(file)) return file;
    if (attempt === PROOF_ATTEMPTS) throw new RpcClientError('CHAIN_MOVED', `the node's chain kept reorganising while the proof was made (${PROOF_ATTEMPTS} attempts): run it again`);
  }
}

async function proofFileOnce(rpc: RpcClient, r: ProofRequest): Promise<ProofFile> {
  const status = await rpc.call('status', {});
  const base = { cairnProof: 1 as const, network: status.network, genesis: status.genesis };
  if (r.what === 'account') {
    const p = await rpc.call('getProof', { address: r.subject, ...(r.block === undefined ? {} : { block: r.block }) });
    const headers = await headersFor(rpc, p.block.height, r.since);
    return { ...base, kind: 'account', block: { height: p.block.height, hash: p.block.hash }, address: p.address, account: p.account, proof: p.proof, headers };
  }
  const p = await rpc.call('getTxProof', { id: r.subject });
  const headers = await headersFor(rpc, p.block.height, r.since);
  return { ...base, kind: 'transaction', block: { height: p.block.height, hash: p.block.hash }, transaction: p.id, proof: p.proof, headers };
}

/**
 * The proof's block is the header listed at its height (the list may end below it: the chain moved
 * to a shorter one), and each page of headers links to the one before.
 */
function headersHold(file: ProofFile): boolean {
  const { from, list } = file.headers;
  const hashAt = (height: number) => toHex(decodeHeader(fromHex(list[height - from]!)).hash);
  if (file.block.height >= from + list.length) return false;
  if (file.block.height >= from && hashAt(file.block.height) !== file.block.hash) return false;
  for (let i = HEADERS_PER_CALL; i < list.length; i += HEADERS_PER_CALL) {
    if (toHex(decodeHeader(fromHex(list[i]!)).prevHash) !== hashAt(from + i - 1)) return false;
  }
  return true;
}

function sinceArg(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 11) throw new UsageError('--since must be a height of at least 11 (the checkpoint the verifier will trust)');
  return Number(text);
}

function blockArg(text: string | undefined): number | string | undefined {
  if (text === undefined) return undefined;
  if (/^\d+$/.test(text)) return Number(text);
  if (/^[0-9a-f]{64}$/.test(text)) return text;
  throw new UsageError('--block must be a height or a 64-digit lower-case hex block hash');
}

/**
 * Headers from genesis (or from 10 before the checkpoint `since`) to the node's tip: the proof's
 * block and its confirmations. With a checkpoint, block 1 comes along for ASERT's anchor.
 */
export async function headersFor(rpc: RpcClient, proofHeight: number, since: number | undefined): Promise<ProofFile['headers']> {
  const from = since === undefined ? 1 : since - 10;
  if (since !== undefined && since > proofHeight) throw new UsageError(`--since ${since} is after the proof's block ${proofHeight}: the checkpoint must come before it`);
  // Up to the tip the node has now: a node that kept answering full pages would otherwise keep
  // this loop, and its memory, growing for ever.
  const tip = (await rpc.call('status', {})).height;
  // Refused before fetching any: past this, the headers took gigabytes and then failed to print.
  if (tip - from + 1 > MAX_FILE_HEADERS) {
    const hint = since === undefined ? 'give --since HEIGHT, a block the verifier will trust as a checkpoint' : 'give a higher --since';
    throw new UsageError(`the ${tip - from + 1} headers from ${from} to the tip (${tip}) are more than a proof file holds (${MAX_FILE_HEADERS}): ${hint}`);
  }
  const list: string[] = [];
  while (from + list.length <= tip) {
    const count = Math.min(HEADERS_PER_CALL, tip - (from + list.length) + 1);
    const page = await rpc.call('getHeaders', { from: from + list.length, count });
    list.push(...page.headers.slice(0, count));
    if (page.headers.length < count) break;
  }
  if (since === undefined) return { from, list };
  const [anchor] = (await rpc.call('getHeaders', { from: 1, count: 1 })).headers;
  return { from, anchor: anchor!, list };
}

/** `cairn verify FILE`: a proof file checked offline, with no node. */
export async function verifyCommand(argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parse(argv, { genesis: { type: 'string' }, checkpoint: { type: 'string' }, json: { type: 'boolean' } }, 1);
  if (values.help) return out.help(HELP.verify);
  const path = positionals[0];
  if (!path) throw new UsageError('give the proof FILE (from cairn proof …)');
  // Before the file, which may take seconds and hundreds of megabytes to read.
  const checkpoint = checkpointArg(str(values, 'checkpoint'));
  const params = await genesisFor(str(values, 'genesis'));
  // `-` is stdin, as for cairn keys import: `cairn proof … | cairn verify -` (it said "cannot read -: it does not exist").
  if (path === '-' && process.stdin.isTTY) throw new UsageError('- reads the proof file from stdin, which is a terminal here: pipe one in (cairn proof account ADDRESS | cairn verify -), or give its FILE');
  const refuse = (why: string, tooLarge: boolean) =>
    tooLarge
      ? new UsageError(`${path} is not a proof file Cairn can read: ${why} (cairn proof writes at most ${MAX_FILE_HEADERS} headers, about 465 MB)`)
      : new UsageError(`${path} is not a proof file: ${why}; give the file cairn proof wrote (cairn proof account ADDRESS > proof.json)`);
  let text: string;
  try {
    // Past the longest string JavaScript can make, no proof file (whose text it must be) can be read.
    text = path === '-'
      ? await readCappedStream(process.stdin, MAX_STRING_LENGTH, () => refuse(`stdin gave more bytes than the ${MAX_STRING_LENGTH} a proof file may have`, true))
      : await readCappedText(path, 'a proof file', MAX_STRING_LENGTH, refuse);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read ${path}: ${fileReason(err, path)}; give the file cairn proof wrote (cairn proof account ADDRESS > proof.json)`);
  }
  // The shell makes the file of `cairn proof … > FILE` before cairn runs: a proof that failed
  // leaves it empty, which "not JSON (Unexpected end of JSON input)" did not connect to that.
  if (text.trim() === '') {
    throw new UsageError(path === '-' ? 'stdin is empty, as a cairn proof … | cairn verify - whose proof failed leaves it: its error is the one to read' : `${path} is empty, as a cairn proof … > ${path} that failed leaves it: make it again once that command succeeds`);
  }
  const file = readProofFile(text);
  const proven = verifyProofFile(params, file, { checkpoint, now: Math.floor(Date.now() / 1000) });
  out.result(provenJson(proven, params), describeProof(proven, params));
}

async function genesisFor(path: string | undefined): Promise<ChainParams> {
  return (await readGenesis(path ?? BUNDLED_GENESIS)).params;
}

/** `work` in blocks at the genesis target, to two decimals: a unit a user can hold against a height. */
function inGenesisBlocks(work: bigint, params: ChainParams): number {
  return Number((work * 100n) / blockWork(params.target)) / 100;
}

/**
 * Confirmations that carry less than a sixteenth of the work their count suggests (in blocks at the
 * genesis target). ASERT eases the target of a chain dated behind schedule, to where a block costs
 * a hash: a file forged from genesis, or after an old checkpoint, shows thousands of confirmations
 * for seconds of hashing. An honest chain this far below the genesis difficulty is cheap to redo too.
 */
function weakConfirmations(p: VerifiedProof, params: ChainParams): boolean {
  const after = BigInt(p.confirmations - 1);
  return after > 0n && p.workAfter * 16n < after * blockWork(params.target);
}

export function provenJson(p: VerifiedProof, params: ChainParams) {
  return {
    proven: true,
    kind: p.kind,
    block: { height: p.height, hash: p.hash },
    confirmations: p.confirmations,
    /** The work of the blocks after the proof's, in blocks at the genesis target. */
    confirmationWork: inGenesisBlocks(p.workAfter, params),
    weakConfirmations: weakConfirmations(p, params),
    headersChecked: p.headersChecked,
    totalWork: p.totalWork.toString(),
    fromGenesis: p.fromGenesis,
    ...(p.kind === 'account'
      ? { address: encodeAddress(p.address!), account: p.account ? { balance: p.account.balance.toString(), nonce: p.account.nonce.toString() } : null }
      : { transaction: p.tx!.idHex, from: encodeAddress(p.tx!.from), to: encodeAddress(p.tx!.to), amount: p.tx!.amount.toString(), fee: p.tx!.fee.toString() }),
  };
}

export function describeProof(p: VerifiedProof, params: ChainParams): string {
  const at = `at height ${p.height}, ${p.confirmations} confirmation${p.confirmations === 1 ? '' : 's'}`;
  let what: string;
  if (p.kind === 'account') {
    const a = encodeAddress(p.address!);
    what = p.account ? `${a}: balance ${coins(p.account.balance, params)}, nonce ${p.account.nonce}, ${at}` : `${a}: no account (balance 0) ${at}`;
  } else {
    const tx = p.tx!;
    what = `transaction ${tx.idHex}: ${coins(tx.amount, params)} from ${encodeAddress(tx.from)} to ${encodeAddress(tx.to)} (fee ${coins(tx.fee, params)}), in block ${at}`;
  }
  const chain = p.fromGenesis ? `${p.headersChecked} headers from genesis` : `${p.headersChecked} headers after the checkpoint`;
  const work = `total work ${p.totalWork} (0x${p.totalWork.toString(16)}), that of ${inGenesisBlocks(p.totalWork, params)} blocks at the genesis target`;
  const text = `proven: ${what}\nchecked: ${chain} (links, proof of work, ASERT targets, timestamps), ${work}; block ${p.hash}`;
  if (!weakConfirmations(p, params)) return text;
  const after = p.confirmations - 1;
  return (
    `${text}\nwarning: the ${after} block${after === 1 ? '' : 's'} after it carry the work of ${inGenesisBlocks(p.workAfter, params)} blocks at the genesis target: ` +
    `a chain dated behind schedule eases its targets (ASERT) until a block costs next to nothing, so these confirmations may be forged. ` +
    `Hold the block's hash against a node you trust, or verify with a recent --checkpoint`
  );
}

export const HELP = {
  proof: `Usage: cairn proof account ADDRESS [--block HEIGHT|HASH] [--since HEIGHT] [--datadir DIR | --rpc URL --rpc-token T] > proof.json
       cairn proof tx ID [--since HEIGHT] [--datadir DIR | --rpc URL --rpc-token T] > txproof.json

Writes a proof file to stdout: an account proof against the state root of a main-chain block
(default the tip; --block at most 256 blocks back), or a confirmed transaction's proof against its
block's header, with the node's headers from genesis to its tip, so that cairn verify can check it
all without a node. --since HEIGHT starts the headers at a checkpoint instead (the verifier then
needs --checkpoint HEIGHT:HASH): a smaller file for a long chain, and the only one past 1,500,000
headers (about 465 MB), which a file holds at most. The file is JSON with or without --json.
--datadir DIR (default ./data) names the node's datadir; --rpc URL a node elsewhere, with its
--rpc-token T (or CAIRN_RPC_TOKEN).

Examples:
  cairn proof account cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz > proof.json
  cairn proof account cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz --block 412 > proof.json
  cairn proof tx 3f2a…c9e1 > txproof.json`,
  verify: `Usage: cairn verify FILE|- [--genesis FILE] [--checkpoint HEIGHT:HASH] [--json]

Checks a proof file offline, trusting no node: the headers from genesis (of the bundled
genesis.json, or --genesis FILE) or from the checkpoint you give, their links, proof of work, ASERT
targets, timestamps and total work, then the proof against its block's header. Prints what is
proven (a balance at a height, with its confirmations), or exactly why not, with exit status 1.
Work is said in blocks at the genesis target, and confirmations that carry under a sixteenth of
the work their count suggests are called out: a chain dated behind schedule eases its targets
until blocks cost next to nothing, so check the block's hash with a node you trust, or give a
recent --checkpoint.

A FILE of - is stdin, a pipe or a file (not a terminal).

Examples:
  cairn verify proof.json
  cairn proof tx 3f2a…c9e1 | cairn verify - --json
  cairn verify proof.json --checkpoint 10000:0000a1…`,
};

