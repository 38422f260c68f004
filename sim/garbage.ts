import { bytesEqual, concatBytes, toHex } from '../ledger/bytes.ts';
import { sha256 } from '../ledger/hash.ts';
import { computeMerkleRoot, makeBlock, makeHeader, BLOCK_VERSION, type Block, type BlockHeader } from '../ledger/block.ts';
import { decodeTransaction, UNSIGNED_TX_BYTES, type Transaction } from '../ledger/transaction.ts';
import { MAX_AMOUNT } from '../ledger/amount.ts';
import { stateKey } from '../ledger/smt.ts';
import { MemoryStateTree } from '../ledger/smt-memory.ts';
import { nextTarget } from '../consensus/difficulty.ts';
import { searchNonce, targetBytes } from '../consensus/miner.ts';
import { medianTimePast } from '../consensus/block-index.ts';
import type { CairnNode } from '../node/node.ts';
import { encodeCompactBlock, serveBlockTxs } from '../node/compact.ts';
import { encodeTxBatch } from '../node/wire.ts';
import type { Checker } from './invariants.ts';
import { stateAfter } from './mining.ts';
import type { Random } from './random.ts';
import type { SimNode } from './sim-node.ts';
import { sign } from './wallets.ts';
import type { World } from './world.ts';

/** Every account of the node's tip as a tree. Call with the node's imports paused. */
export async function treeOf(node: CairnNode): Promise<MemoryStateTree> {
  const changes = [];
  for await (const { address, account } of node.db.accounts()) changes.push({ key: stateKey(address), account });
  return MemoryStateTree.EMPTY.with(changes);
}

/**
 * A block on `parent` with a real proof of work at the target consensus expects, and whatever body
 * it is given. Its state root is the one it is given, else the one its body leaves on `state` (its
 * parent's), applied without a check, so that a block meant to break one rule breaks that one
 * alone; else its parent's.
 */
export function craft(
  node: CairnNode,
  parent: BlockHeader,
  anchorTimestamp: number | undefined,
  miner: Uint8Array,
  txs: readonly Transaction[],
  o: { coinbaseAmount?: bigint; merkleRoot?: Uint8Array; stateRoot?: Uint8Array; state?: MemoryStateTree; target?: bigint; timestamp?: number; height?: number; version?: number } = {},
): Block | undefined {
  const params = node.params;
  const height = o.height ?? parent.height + 1;
  const fees = txs.reduce((s, tx) => s + tx.fee, 0n);
  const coinbase = { to: miner, amount: o.coinbaseAmount ?? params.reward + fees };
  const target = o.target ?? nextTarget(params, parent, anchorTimestamp);
  const parentEntry = node.chain.getEntry(parent.hash);
  const minTime = parentEntry ? medianTimePast(parentEntry) + 1 : parent.timestamp + 1;
  const header = makeHeader({
    version: o.version ?? BLOCK_VERSION,
    height,
    prevHash: parent.hash,
    merkleRoot: o.merkleRoot ?? computeMerkleRoot(height, coinbase, txs),
    stateRoot: o.stateRoot ?? (o.state ? leftBy(o.state, coinbase, txs) : undefined) ?? parent.stateRoot,
    timestamp: o.timestamp ?? Math.max(node.clock(), minTime, parent.timestamp + 1),
    target,
    nonce: 0n,
  });
  const nonce = searchNonce(header.bytes, targetBytes(target), 0n, 1_000_000, sha256);
  if (nonce === undefined) return undefined;
  return makeBlock(makeHeader({ ...header, nonce }), coinbase, txs);
}

/** The root a body leaves, or undefined if no state can hold it (an overspend's negative balance). */
function leftBy(state: MemoryStateTree, coinbase: { to: Uint8Array; amount: bigint }, txs: readonly Transaction[]): Uint8Array | undefined {
  try {
    return stateAfter(state, coinbase, txs).root;
  } catch {
    return undefined;
  }
}

/** Gossip the garbage node sends as one offence, and what it registers as invalid. */
interface Offence {
  readonly topic: string;
  readonly bytes: Uint8Array;
  readonly block?: Block;
  readonly tx?: Transaction;
}

/**
 * One offence of the garbage node: an invalid block of one kind, or a forged transaction, built on
 * its tip, sent from an identity of its own on an IP of its own (so that the bans of the offences
 * before, which last longer than a run, stop none of them) to two honest nodes. The identity
 * answers as the garbage node does, and serves the transactions of its block by the node's own
 * code, so that a compact block is rebuilt and judged whole.
 */
export async function offend(world: World, checker: Checker, sim: SimNode, node: CairnNode, rng: Random, count: number): Promise<void> {
  const offence = await pick(world, node, rng);
  if (!offence) return;
  if (offence.block) checker.invalid.blocks.add(toHex(offence.block.header.hash));
  if (offence.tx) checker.invalid.txs.add(offence.tx.idHex);
  const id = `${sim.id}-garbage-${sim.lives}-${count}`;
  const net = world.net;
  if (net.transport(id) || !sim.transport) return;
  net.place(id, { ip: net.freshIp(), sideOf: sim.id });
  const t = net.attach(id, { denied: () => false });
  t.answerAs(sim.transport);
  const block = offence.block;
  const bytesOf = async (hash: Uint8Array) => (block && bytesEqual(hash, block.header.hash) ? block.bytes : undefined);
  await serveBlockTxs((_name, protocol, respond, options) => t.handle(protocol, respond, options), node.names, bytesOf, () => {});
  const targets = rng.shuffle(world.nodes.filter((n) => n.honest && n.up && net.reachable(sim.id, n.id))).slice(0, 2);
  await Promise.allSettled(targets.map((target) => t.dial([net.address(target.id)])));
  await t.publish(offence.topic, offence.bytes);
  // Long enough to be asked for the block's transactions, and to be banned.
  world.scheduler.after(10_000, () => t.goDown());
}

/**
 * `tx` with another public key (so another sender), or with the signature of `other`: a
 * well-formed signature that does not verify (random bytes would often not even decode, r or s out
 * of range or s high, and be a decoding offence instead).
 */
function forge(tx: Transaction, publicKey: Uint8Array, other: Transaction = tx): Transaction {
  return decodeTransaction(concatBytes(tx.bytes.subarray(0, UNSIGNED_TX_BYTES), publicKey, other.signature));
}

/** An invalid block of one kind, or an invalid transaction, chosen by the seed. */
async function pick(world: World, node: CairnNode, rng: Random): Promise<Offence | undefined> {
  const { tip, state } = await node.chain.withImportsPaused(async () => ({ tip: node.chain.tip, state: await treeOf(node) }));
  const wallets = world.o.wallets;
  const payer = rng.pick(wallets.keys);
  const nonce = state.get(stateKey(payer.address))?.nonce ?? 0n;
  const chainId = node.params.chainId;
  const minerAddress = rng.bytes(20);
  const honestTx = sign({ chainId, to: rng.pick(wallets.keys).address, amount: 1n, fee: 1n, nonce }, payer);
  const forged = forge(honestTx, payer.publicKey, sign({ chainId, to: minerAddress, amount: 2n, fee: 1n, nonce }, payer));
  const on = (txs: Transaction[], o: Parameters<typeof craft>[5] = {}) => craft(node, tip.header, tip.anchorTimestamp, minerAddress, txs, { state, ...o });
  const transfer = (fields: { amount?: bigint; nonce?: bigint; chainId?: number }) =>
    sign({ chainId: fields.chainId ?? chainId, to: minerAddress, amount: fields.amount ?? 1n, fee: 1n, nonce: fields.nonce ?? nonce }, payer);
  const stranger = rng.pick(wallets.keys.filter((k) => k !== payer));
  // One block per rule it breaks (its state root the one its body leaves, so it breaks that rule
  // alone): body rules, header rules, state rules.
  const blocks: (() => Block | undefined)[] = [
    () => on([], { coinbaseAmount: node.params.reward + 1n }), // pays itself too much
    () => on([forged]), // a bad signature inside
    () => on([transfer({ nonce: nonce + 5n })]), // a nonce gap
    () => on([transfer({ amount: wallets.balance * 10n })]), // overspends (no state holds what it leaves: its parent's root)
    () => on([honestTx], { merkleRoot: rng.bytes(32) }), // body does not match
    () => on([honestTx, honestTx]), // a transaction twice
    () => on([transfer({ chainId: chainId + 1 })]), // a transaction of another chain
    () => on([], { target: tip.header.target * 2n }), // claims an easier target than ASERT allows
    () => on([], { timestamp: tip.header.timestamp - 3_600 }), // before the median time past
    () => on([], { timestamp: node.clock() + 3_600 }), // too far in the future (not the sender's fault: no ban)
    () => on([], { height: tip.height + 2 }), // a height that does not follow its parent
    () => on([], { version: 99 }), // an unknown version
    () => on([], { stateRoot: rng.bytes(32) }), // a valid body, a state root it does not leave
  ];
  // And transactions that break a rule of their own: a forged signature, a key that is not the
  // sender's, another chain, an amount past the cap. Each at its sender's next nonce in the
  // mempools, or a nonce taken, or spent, would be refused first, and at no cost to the sender.
  const pending = async (sender: Uint8Array, make: (nonce: bigint) => Transaction) => make(await node.mempool.nextNonce(sender));
  const txs: (() => Promise<Transaction>)[] = [
    () => pending(payer.address, (n) => forge(sign({ chainId, to: minerAddress, amount: 1n, fee: 1n, nonce: n }, payer), payer.publicKey, sign({ chainId, to: minerAddress, amount: 2n, fee: 1n, nonce: n }, payer))),
    () => pending(stranger.address, (n) => forge(sign({ chainId, to: minerAddress, amount: 1n, fee: 1n, nonce: n }, payer), stranger.publicKey)),
    () => pending(payer.address, (n) => transfer({ chainId: chainId + 1, nonce: n })),
    () => pending(payer.address, (n) => sign({ chainId, to: minerAddress, amount: MAX_AMOUNT, fee: 1n, nonce: n }, payer)),
  ];
  const kind = rng.int(blocks.length + txs.length);
  if (kind >= blocks.length) {
    const tx = await txs[kind - blocks.length]!();
    return { topic: node.names.txTopic, bytes: encodeTxBatch([tx]), tx };
  }
  const block = blocks[kind]!();
  if (!block) return undefined;
  // Half as compact blocks: one whose header holds is forwarded by honest nodes before its import
  // fails (BIP 152), and none of them may be blamed for it.
  const compact = rng.chance(0.5);
  return { topic: compact ? node.names.compactBlockTopic : node.names.blockTopic, bytes: compact ? encodeCompactBlock(block) : block.bytes, block };
}
