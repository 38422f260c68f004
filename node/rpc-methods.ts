import { getHeapStatistics } from 'node:v8';
import { fromHex, toHex } from '../ledger/bytes.ts';
import { DecodeError } from '../ledger/errors.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { decodeTransactionHex, type Transaction } from '../ledger/transaction.ts';
import type { Block, BlockHeader } from '../ledger/block.ts';
import { auditChainDB } from '../ledger/audit.ts';
import { SerialQueue } from '../ledger/serial.ts';
import { verifyAccountProof } from '../ledger/smt-proof.ts';
import { proveAccountsAt, proveTransactionById } from '../consensus/state-proofs.ts';
import type { Chain } from '../consensus/chain.ts';
import { RPC_ERRORS, type BlockResult, type RpcMethod, type RpcMethods, type StatusResult, type TxResult } from './rpc-types.ts';
import { chainTips, estimateFee, findTransaction, networkHashRate, nextBlockDifficulty, recentBlocks } from './chain-info.ts';
import type { NodeView } from './view.ts';
import { readSettled, ReorganisingError, untilSettled } from './reorg-wait.ts';
import { historyCheckStatus } from './history-check.ts';
import { prunedEntry } from './pruner.ts';
import { RPC_DOC } from './rpc-doc.ts';
import { addressParam, invalid, isCount, isHash, isHeight, isString, notFound, param, RpcError } from './rpc-params.ts';

/** What fits in one 1 MiB request body: 334 hex characters a transaction plus JSON punctuation. */
const MAX_TXS_PER_CALL = 3000;
/** How far below the tip `getProof` rolls the state back (each block rolled back costs its changes). */
export const RPC_PROOF_DEPTH = 256;

/**
 * Account proofs asked by RPC, one at a time per chain, as they were when each held the import
 * lock: a proof there may roll back RPC_PROOF_DEPTH blocks in memory (and keeps a store snapshot
 * open while it does), and as many callers as asked at once would hold as many roll-backs.
 */
const accountProofs = new WeakMap<Chain, SerialQueue>();
const accountProofsOf = (chain: Chain): SerialQueue => accountProofs.get(chain) ?? accountProofs.set(chain, new SerialQueue()).get(chain)!;
const MAX_HEADERS_PER_CALL = 2000;

/** A main-chain block's header by height or hash (the tip's by default), in the window or below it. */
async function mainHeader(node: NodeView, block: unknown): Promise<BlockHeader> {
  if (block === undefined) return node.chain.tip.header;
  let header: BlockHeader | undefined;
  if (isHeight(block)) header = (await node.chain.byHeight.headers(block, 1))[0];
  else if (isHash(block)) header = await node.chain.byHeight.mainHeader(fromHex(block));
  else throw invalid('"block" must be a height or a 64-digit lower-case hex block hash');
  if (!header) throw notFound(`no main-chain block ${String(block)}`);
  return header;
}

function txJson(tx: Transaction, status: TxResult['status'], block?: { height: number; hash: Uint8Array }): TxResult {
  return {
    id: toHex(tx.id),
    status,
    blockHeight: block?.height ?? null,
    blockHash: block ? toHex(block.hash) : null,
    from: encodeAddress(tx.from),
    to: encodeAddress(tx.to),
    amount: tx.amount.toString(),
    fee: tx.fee.toString(),
    nonce: tx.nonce.toString(),
  };
}

function blockJson(block: Block, mainChain: boolean): BlockResult {
  const h = block.header;
  return {
    hash: toHex(h.hash),
    height: h.height,
    prevHash: toHex(h.prevHash),
    merkleRoot: toHex(h.merkleRoot),
    stateRoot: toHex(h.stateRoot),
    timestamp: h.timestamp,
    target: h.target.toString(16).padStart(64, '0'),
    nonce: h.nonce.toString(),
    size: block.bytes.length,
    coinbase: { to: encodeAddress(block.coinbase.to), amount: block.coinbase.amount.toString() },
    txs: block.txs.map((tx) => toHex(tx.id)),
    mainChain,
  };
}

/**
 * A block by {hash} (any stored) or {height} (main chain). A pruned node says so for a body it
 * deleted: by height, for certain; by hash, while the block index holds its header (prunedEntry),
 * as REST does.
 */
async function findBlock(node: NodeView, params: Record<string, unknown>): Promise<Block> {
  let block: Block | undefined;
  const pruned = node.db.history.prunedHeight;
  // Both could name two blocks; answering for one of them would hide the caller's mistake.
  if (params.hash !== undefined && params.height !== undefined) throw invalid('give "height" or "hash", not both');
  if (params.hash !== undefined) {
    const hash = fromHex(param(params, 'hash', isHash, 'a 64-digit lower-case hex block hash'));
    block = await node.db.getBlock(hash);
    const deleted = block ? undefined : prunedEntry(node.chain, hash);
    if (deleted) throw new RpcError(RPC_ERRORS.PRUNED, prunedMessage(`block ${deleted.height}`, pruned));
    if (!block && pruned > 0) throw notFound(`no such block here: this node prunes, keeping bodies only above height ${pruned}`);
  } else if (params.height !== undefined) {
    const height = param(params, 'height', isHeight, 'a non-negative integer');
    block = await node.db.getBlockAtHeight(height);
    if (!block && height > 0 && height <= pruned) throw new RpcError(RPC_ERRORS.PRUNED, prunedMessage(`block ${height}`, pruned));
  } else {
    throw invalid('give "height" or "hash"');
  }
  if (!block) throw notFound('no such block');
  return block;
}

/** On a pruned node, why a confirmed transaction may not be found: its block's transaction index is gone. */
function prunedNote(node: NodeView): string {
  const pruned = node.db.history.prunedHeight;
  return pruned > 0 ? ` (this node prunes: transactions in blocks up to ${pruned} are no longer indexed here)` : '';
}

function prunedMessage(what: string, pruned: number): string {
  return `${what} is pruned: this node keeps bodies only above height ${pruned} (headers, the state and its tree stay)`;
}

/** A transaction by {id}, pending or on the main chain, with its block when confirmed. */
async function findTx(node: NodeView, params: Record<string, unknown>): Promise<{ tx: Transaction; block?: Block }> {
  const id = fromHex(param(params, 'id', isHash, 'a 64-digit lower-case hex transaction id'));
  const found = await findTransaction(node.chain, node.mempool, id);
  if (!found) throw notFound(`no transaction ${toHex(id)} on the main chain or in the mempool${prunedNote(node)}`);
  return found;
}

/** The last ban made, for status: a node whose only peer was banned (another network's) says why. */
function lastBanStatus(node: NodeView): StatusResult['lastBan'] {
  const ban = node.peers.lastBan;
  return ban ? { peer: ban.peer, reason: ban.reason, secondsAgo: Math.max(0, node.clock() - ban.at) } : null;
}

/** What `status` answers, read at one moment of the chain. */
async function statusOf(node: NodeView): Promise<StatusResult> {
  const tip = node.chain.tip;
  // With the tip: an install's answer is at genesis until the install ends.
  const snapshotSync = node.sync.snapshotProgress ?? null;
  const connections = node.transport.peers().map((peer) => node.transport.connectionInfo(peer)).filter((c) => c !== undefined);
  const peerHeights = [...node.sync.statuses.values()].map((s) => s.status.height);
  const fee = await estimateFee(node.chain, node.mempool);
  return {
    network: node.params.name,
    chainId: node.params.chainId,
    genesis: toHex(node.db.genesis.header.hash),
    height: tip.height,
    head: tip.hashHex,
    totalWork: tip.totalWork.toString(),
    peers: node.transport.peers().length,
    mempool: node.mempool.size,
    mempoolBytes: node.mempool.bytes,
    listen: node.transport.listenAddresses(),
    peerId: node.transport.peerId,
    syncing: node.sync.syncing,
    syncTarget: node.sync.targetHeight,
    reorganising: false,
    snapshotSync,
    checkpoint: node.chain.checkpoint ? { height: node.chain.checkpoint.height, hash: toHex(node.chain.checkpoint.hash), passed: tip.height >= node.chain.checkpoint.height } : null,
    prunedHeight: node.db.history.prunedHeight,
    stateBase: node.db.history.stateBase,
    historyCheck: historyCheckStatus(node.db.history, node.historyCheck) ?? null,
    mining: node.mining,
    miningWaits: node.miner?.held ?? null,
    miningHashRate: node.miner ? Math.round(node.miner.hashRate) : null,
    unit: node.params.unit,
    decimals: node.params.decimals,
    difficulty: nextBlockDifficulty(node.chain).toString(),
    networkHashRate: networkHashRate(node.chain) ?? null,
    tipTimestamp: tip.header.timestamp,
    tipAge: Math.max(0, node.clock() - tip.header.timestamp),
    peersIn: connections.filter((c) => c.direction === 'inbound').length,
    peersOut: connections.filter((c) => c.direction === 'outbound').length,
    bestPeerHeight: peerHeights.length > 0 ? Math.max(...peerHeights) : null,
    peersAhead: node.sync.peersAhead,
    peersApart: node.sync.peersApart,
    banned: node.peers.bannedCount,
    lastBan: lastBanStatus(node),
    feeEstimate: fee.fee,
    minFee: fee.minFee,
    memory: {
      ...(({ rss, heapUsed, heapTotal, external, arrayBuffers }) => ({ rss, heapUsed, heapTotal, external, arrayBuffers }))(process.memoryUsage()),
      heapLimit: getHeapStatistics().heap_size_limit,
    },
  };
}

type Handlers = { [M in RpcMethod]: (node: NodeView, params: Record<string, unknown>) => Promise<RpcMethods[M]['result']> };

/**
 * Every RPC method: validate parameters, answer from the node, never mutate except to submit.
 * Reads of the main chain and the state wait out a reorganisation under way (Chain.readSettled),
 * and so do submissions (Chain.untilSettled): mid-way through one the chain ends at its fork
 * point, below the tip before and after, with that block's state. Not for longer than
 * REORG_WAIT_MS (node/reorg-wait.ts): then the answer is RPC_ERRORS.REORGANISING, ask again. Not
 * the reads that pause imports (getProof, getTxProof, auditState): they never see one part-way,
 * and readSettled's last try, itself between imports, would wait on them for ever.
 */
export const rpcHandlers: Handlers = {
  async status(node) {
    // A snapshot's install holds imports as a reorganisation does, for as long as a minute, but
    // the chain read here stays at genesis until it ends: nothing part-way to wait out, and no
    // reorganisation to claim (snapshotSync says what it is).
    const installing = () => node.sync.snapshotProgress?.phase === 'installing';
    if (installing()) return statusOf(node);
    // Status is what an operator asks to see that the node lives: a reorganisation thousands of
    // blocks deep takes many seconds. Where other reads are answered "ask again", this one says
    // where the chain stands and that it is moving.
    try {
      return await readSettled(node, () => statusOf(node));
    } catch (err) {
      if (!(err instanceof ReorganisingError)) throw err;
      return { ...(await statusOf(node)), reorganising: node.chain.reorganisationUnderWay && !installing() };
    }
  },

  async getAccount(node, params) {
    const address = addressParam(params);
    // Mid-way through a reorganisation the state is the fork point's, which no chain has; and
    // nextNonce waits for the mempool to take back what the reorganisation disconnected.
    const [account, nextNonce] = await readSettled(node, async () => [(await node.db.getAccount(address)) ?? { balance: 0n, nonce: 0n }, await node.mempool.nextNonce(address)] as const);
    return {
      address: encodeAddress(address),
      balance: account.balance.toString(),
      nonce: account.nonce.toString(),
      nextNonce: nextNonce.toString(),
    };
  },

  async getTransaction(node, params) {
    const { tx, block } = await readSettled(node, () => findTx(node, params));
    return block ? txJson(tx, 'confirmed', { height: block.header.height, hash: block.header.hash }) : txJson(tx, 'pending');
  },

  async getBlock(node, params) {
    return readSettled(node, async () => {
      const block = await findBlock(node, params);
      return blockJson(block, await node.chain.byHeight.isMain(block.header.hash, block.header.height));
    });
  },

  async getRawBlock(node, params) {
    return toHex((await readSettled(node, () => findBlock(node, params))).bytes);
  },

  async getRawTransaction(node, params) {
    return toHex((await readSettled(node, () => findTx(node, params))).tx.bytes);
  },

  async getPeers(node) {
    return node.transport.peers().map((peer) => {
      const known = node.sync.statuses.get(peer);
      const info = node.transport.connectionInfo(peer);
      const record = node.guard.records.get(peer);
      return {
        id: peer,
        addrs: info ? [info.remoteAddr] : [],
        direction: info?.direction ?? null,
        height: known?.status.height ?? null,
        totalWork: known?.status.totalWork.toString() ?? null,
        banScore: node.peers.score(peer),
        bytesIn: record?.bytesIn ?? 0,
        bytesOut: record?.bytesOut ?? 0,
        throttled: node.guard.serving.throttled(peer),
        rttMs: record?.rttMs ?? null,
      };
    });
  },

  async getMempool(node) {
    const txs = [...node.mempool.entries()].map(({ tx }) => ({
      id: toHex(tx.id),
      from: encodeAddress(tx.from),
      to: encodeAddress(tx.to),
      amount: tx.amount.toString(),
      fee: tx.fee.toString(),
      nonce: tx.nonce.toString(),
    }));
    return { size: node.mempool.size, bytes: node.mempool.bytes, txs };
  },

  async sendRawTransaction(node, params) {
    const hex = param(params, 'tx', isString, 'the hex of a signed transaction');
    let tx: Transaction;
    try {
      tx = decodeTransactionHex(hex);
    } catch (err) {
      if (err instanceof DecodeError) throw invalid(`not a transaction: ${err.message}`);
      throw err;
    }
    await untilSettled(node);
    await node.submitTransaction(tx);
    return { id: toHex(tx.id) };
  },

  async sendRawTransactions(node, params) {
    const list = params.txs;
    if (!Array.isArray(list) || list.length > MAX_TXS_PER_CALL || !list.every(isString)) throw invalid(`"txs" must be an array of at most ${MAX_TXS_PER_CALL} hex strings`);
    const decoded: (Transaction | Error)[] = list.map((hex) => {
      try {
        return decodeTransactionHex(hex);
      } catch (err) {
        return err as Error;
      }
    });
    const txs = decoded.filter((d): d is Transaction => !(d instanceof Error));
    await untilSettled(node);
    const outcomes = await node.submitTransactions(txs);
    const accepted: string[] = [];
    const rejected: { index: number; code: string; message: string }[] = [];
    let next = 0;
    for (let i = 0; i < decoded.length; i++) {
      const d = decoded[i]!;
      const err = d instanceof Error ? d : outcomes[next++];
      if (err === undefined) accepted.push((d as Transaction).idHex);
      else rejected.push({ index: i, code: (err as { code?: string }).code ?? 'ERROR', message: err.message });
    }
    return { accepted, rejected };
  },

  async getBlocks(node, params) {
    const count = params.count === undefined ? 10 : param(params, 'count', isCount, 'an integer from 1 to 1000');
    const to = params.to === undefined ? undefined : param(params, 'to', isHeight, 'a non-negative integer');
    return readSettled(node, () => recentBlocks(node.chain, count, to));
  },

  async getTips(node) {
    return readSettled(node, async () => chainTips(node.chain));
  },

  async estimateFee(node) {
    return estimateFee(node.chain, node.mempool);
  },

  async getProof(node, params) {
    const address = addressParam(params);
    // The block is found between two imports; the proof pauses them only to pin the state it rolls
    // back (consensus/state-proofs.ts), and says so if a reorganisation took the block away meanwhile.
    const { header, proofs } = await accountProofsOf(node.chain).run(async () => {
      await untilSettled(node); // a reorganisation holds imports paused for as long as it lasts
      const header = await node.chain.withImportsPaused(() => mainHeader(node, params.block));
      return { header, proofs: await proveAccountsAt(node.chain, header, [address], RPC_PROOF_DEPTH) };
    });
    if (proofs === 'too-deep') throw invalid(`block ${header.height} is more than ${RPC_PROOF_DEPTH} blocks below the tip (${node.chain.tip.height}): proofs are made that far back at most`);
    if (proofs === 'pruned') throw new RpcError(RPC_ERRORS.PRUNED, prunedMessage(`the undo data above block ${header.height} that a proof there needs`, node.db.history.prunedHeight));
    if (proofs === 'not-on-main-chain') throw notFound(`block ${toHex(header.hash)} is not on the main chain`);
    const proof = proofs[0]!;
    // What the answer says it proves is what the proof proves: checked, not assumed.
    const account = verifyAccountProof(header.stateRoot, address, proof);
    return {
      address: encodeAddress(address),
      block: { height: header.height, hash: toHex(header.hash), header: toHex(header.bytes) },
      account: account ? { balance: account.balance.toString(), nonce: account.nonce.toString() } : null,
      proof: toHex(proof),
    };
  },

  async getTxProof(node, params) {
    const id = fromHex(param(params, 'id', isHash, 'a 64-digit lower-case hex transaction id'));
    await untilSettled(node); // a reorganisation holds imports paused for as long as it lasts
    const found = await node.chain.withImportsPaused(() => proveTransactionById(node.chain, id));
    if (!found) throw notFound(`no transaction ${toHex(id)} on the main chain${node.mempool.get(id) ? ' (it is pending: wait for a block)' : prunedNote(node)}`);
    return { id: toHex(id), block: { height: found.header.height, hash: toHex(found.header.hash), header: toHex(found.header.bytes) }, proof: toHex(found.proof) };
  },

  async getHeaders(node, params) {
    const from = param(params, 'from', isHeight, 'a non-negative integer');
    const count = param(params, 'count', (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= MAX_HEADERS_PER_CALL, `an integer from 1 to ${MAX_HEADERS_PER_CALL}`);
    return { from, headers: (await readSettled(node, () => node.chain.byHeight.headerBytes(from, count))).map(toHex) };
  },

  async stop(node) {
    node.requestStop();
    return { stopping: true };
  },

  async help() {
    return { methods: RPC_DOC.methods.map((m) => ({ name: m.name, description: m.summary })) };
  },

  async 'rpc.discover'() {
    return RPC_DOC as unknown as Record<string, unknown>;
  },

  async auditState(node) {
    const report = await node.chain.withImportsPaused(() => auditChainDB(node.db, { stopped: () => node.stopBegun }));
    const expected = node.params.alloc.reduce((s, a) => s + a.balance, 0n) + node.params.reward * BigInt(report.height);
    return {
      height: report.height,
      head: node.chain.tip.hashHex,
      accounts: report.accounts,
      supply: report.supply.toString(),
      expectedSupply: expected.toString(),
      digest: report.digest,
      stateRoot: report.stateRoot,
    };
  },
};
