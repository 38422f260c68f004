/**
 * The JSON-RPC 2.0 API of a node: method names, parameters and results. Shared by the server
 * (node/rpc.ts) and the typed client (cli/rpc-client.ts), so the two cannot drift. Amounts,
 * work and nonces are decimal strings; hashes and ids are lower-case hex; addresses are `cairn1…`.
 */
export interface StatusResult {
  network: string;
  chainId: number;
  genesis: string;
  height: number;
  head: string;
  totalWork: string;
  peers: number;
  mempool: number;
  mempoolBytes: number;
  listen: string[];
  peerId: string;
  syncing: boolean;
  syncTarget: number;
  /**
   * A reorganisation was under way when status was asked, and still was REORG_WAIT_MS
   * (node/reorg-wait.ts) later: height, head and work are where it stood, part-way between the
   * tips. Never a snapshot's install, which snapshotSync tells (and status does not wait for).
   */
  reorganising: boolean;
  /**
   * A snapshot sync's join under way (`cairn node --snapshot-sync`, node/snapshot-sync.ts), null
   * when none runs: `headers`, the best peer's headers checked up to `done` of the `total` it
   * claimed; `chunks`, the state at block `pivot` fetched, `done` chunks verified of `total` known
   * so far (a chunk too big to send comes back as two halves: the total grows); `installing`, that
   * state put in place of genesis's, step `done` + 1 of `total`. `pivot` is 0 until the headers
   * chose it. Then the blocks after the pivot are executed as by any sync (`syncing`), and
   * `historyCheck` tells the check of those below it.
   */
  snapshotSync: { phase: 'headers' | 'chunks' | 'installing'; pivot: number; done: number; total: number } | null;
  /** The block this node holds its chain to (`cairn node --checkpoint`), and whether its chain has passed it; null without one. */
  checkpoint: { height: number; hash: string; passed: boolean } | null;
  /** Main-chain blocks 1 up to this height have no body here (pruned); 0 when the node keeps every block. */
  prunedHeight: number;
  /** The block whose state this node began from by snapshot sync (no history below it); 0: genesis. */
  stateBase: number;
  /**
   * The background check of the history below stateBase (node/history-check.ts): `checking` up to
   * `height` of `target`, `valid`, `invalid` at block `height` (`reason`), or `off`; null when the
   * state began at genesis.
   */
  historyCheck: { state: 'checking' | 'valid' | 'invalid' | 'off'; height: number; target: number; reason: string } | null;
  mining: boolean;
  /** Why a mining node is not mining now (node/miner.ts, CatchUpGate), or null. */
  miningWaits: string | null;
  /** This node's own hashes a second over about the last 10 s; null when it does not mine. */
  miningHashRate: number | null;
  /** The network's coin and how many base units make one (genesis.json). */
  unit: string;
  decimals: number;
  /** Expected hashes to find the next block (the work of one block at the next target), decimal. */
  difficulty: string;
  /** Hashes per second the network spent on its last blocks; null before block 2. */
  networkHashRate: number | null;
  /** The tip's timestamp, and seconds since then by the node's clock. */
  tipTimestamp: number;
  tipAge: number;
  /** Connections the peers opened to us, and we to them. */
  peersIn: number;
  peersOut: number;
  /** The highest chain any peer announced; null without peers. */
  bestPeerHeight: number | null;
  /** Peers claiming more work on a chain that forks below our reorg depth: not followed. */
  /** Peers (not banned) whose status claims more work than our tip: behind them, whatever the heights. */
  peersAhead: number;
  peersApart: number;
  /** Peer ids banned now (misbehaviour, another network), and the last ban made since the node started, while it lasts: its reason, and seconds since. */
  banned: number;
  lastBan: { peer: string; reason: string; secondsAgo: number } | null;
  /** The suggested fee (estimateFee) and the mempool's minimum, in base units. */
  feeEstimate: string;
  minFee: string;
  /**
   * The node process's memory, in bytes (process.memoryUsage()): rss, and V8's heap and buffers
   * within it; heapLimit is the most the heap may grow to (cli/runtime.ts).
   */
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number; heapLimit: number };
}

export interface AccountResult {
  address: string;
  balance: string;
  nonce: string;
  /** The nonce a new transaction should use, counting pending ones. */
  nextNonce: string;
}

export interface TxResult {
  id: string;
  status: 'pending' | 'confirmed';
  blockHeight: number | null;
  blockHash: string | null;
  from: string;
  to: string;
  amount: string;
  fee: string;
  nonce: string;
}

export interface BlockResult {
  hash: string;
  height: number;
  prevHash: string;
  merkleRoot: string;
  /** The state root after the block. */
  stateRoot: string;
  timestamp: number;
  target: string;
  nonce: string;
  size: number;
  coinbase: { to: string; amount: string };
  txs: string[];
  mainChain: boolean;
}

/** One main-chain block in a list (getBlocks). */
export interface BlockSummary {
  height: number;
  hash: string;
  timestamp: number;
  txs: number;
  size: number;
  /** Sum of its transactions' fees, base units. */
  fees: string;
  /** Who the coinbase paid; null for genesis. */
  miner: string | null;
}

/** A block no other block builds on (getTips): the main tip, or the end of a fork. */
export interface TipResult {
  height: number;
  hash: string;
  /** Blocks from the fork point to this tip; 0 for the main tip. */
  branchLength: number;
  forkHeight: number;
  status: 'active' | 'valid-fork' | 'invalid';
  totalWork: string;
}

/** A fee (base units) that gets a transaction into the next block, and what it is based on. */
export interface FeeEstimate {
  fee: string;
  minFee: string;
  basis: 'minimum' | 'mempool' | 'recent-blocks';
  /** Transactions one block holds. */
  blockCapacity: number;
  mempoolTxs: number;
  /** Of the recent blocks looked at, how many were full. */
  fullRecentBlocks: number;
  recentBlocks: number;
}

export interface PeerResult {
  id: string;
  addrs: string[];
  /** Who dialled: 'outbound' we did, 'inbound' it did. */
  direction: 'inbound' | 'outbound' | null;
  height: number | null;
  totalWork: string | null;
  banScore: number;
  /** Bytes it sent us (answers, gossip) and we served it, on this connection. */
  bytesIn: number;
  bytesOut: number;
  /** Whether we answered it "busy" in the last 10 s: it asked for more than its budget. */
  throttled: boolean;
  /** Its last status round trip, ms. */
  rttMs: number | null;
}

export interface MempoolResult {
  size: number;
  bytes: number;
  txs: { id: string; from: string; to: string; amount: string; fee: string; nonce: string }[];
}

export interface AuditResult {
  height: number;
  head: string;
  accounts: number;
  supply: string;
  expectedSupply: string;
  digest: string;
  /** The replayed state's root: the head's header commits to it, and the store holds its tree. */
  stateRoot: string;
}

/** A main-chain block a proof is against. */
export interface ProofBlock {
  height: number;
  hash: string;
  /** Its header (hex, 152 bytes): its stateRoot is what the proof leads to. */
  header: string;
}

export interface AccountProofResult {
  address: string;
  block: ProofBlock;
  /** What the proof proves: the account, or null for none. */
  account: { balance: string; nonce: string } | null;
  /** The account proof (hex; docs/PROTOCOL.md, "Account proofs"). */
  proof: string;
}

export interface TxProofResult {
  id: string;
  block: ProofBlock;
  /** The transaction proof (hex; docs/PROTOCOL.md, "Transaction proofs"). */
  proof: string;
}

export interface HeadersResult {
  from: number;
  /** Main-chain headers from height `from` on (hex), fewer at the tip. */
  headers: string[];
}

export interface RpcMethods {
  status: { params: Record<string, never>; result: StatusResult };
  getAccount: { params: { address: string }; result: AccountResult };
  getTransaction: { params: { id: string }; result: TxResult };
  getBlock: { params: { height?: number; hash?: string }; result: BlockResult };
  getPeers: { params: Record<string, never>; result: PeerResult[] };
  getMempool: { params: Record<string, never>; result: MempoolResult };
  /** Submit a signed transaction (hex of its canonical encoding). */
  sendRawTransaction: { params: { tx: string }; result: { id: string } };
  /**
   * Submit many signed transactions at once (at most 3,000, what fits in a 1 MiB body): signatures are verified in parallel,
   * then each is admitted in order. Rejections are reported per transaction, not as one error.
   */
  sendRawTransactions: {
    params: { txs: string[] };
    result: { accepted: string[]; rejected: { index: number; code: string; message: string }[] };
  };
  /** Replays the chain from genesis and compares with the stored state (slow: for checks). */
  auditState: { params: Record<string, never>; result: AuditResult };
  /** The last `count` (1 to 1000, default 10) main-chain blocks up to height `to` (default the tip), newest first. */
  getBlocks: { params: { count?: number; to?: number }; result: BlockSummary[] };
  /** Every chain tip this node knows: the main one and the ends of forks. */
  getTips: { params: Record<string, never>; result: TipResult[] };
  estimateFee: { params: Record<string, never>; result: FeeEstimate };
  /**
   * An account proof against the state root of main-chain block `block` (a height or a hash;
   * default the tip), at most 256 blocks below the tip.
   */
  getProof: { params: { address: string; block?: number | string }; result: AccountProofResult };
  /** A confirmed transaction's inclusion proof against its block's header. */
  getTxProof: { params: { id: string }; result: TxProofResult };
  /** Up to `count` (1 to 2000) main-chain headers from height `from`: what a proof's verifier checks. */
  getHeaders: { params: { from: number; count: number }; result: HeadersResult };
  /** Stops the node cleanly, after answering. */
  stop: { params: Record<string, never>; result: { stopping: true } };
  help: { params: Record<string, never>; result: { methods: { name: string; description: string }[] } };
  /** A transaction's canonical encoding, hex. */
  getRawTransaction: { params: { id: string }; result: string };
  /** A block's canonical encoding, hex. */
  getRawBlock: { params: { height?: number; hash?: string }; result: string };
  /** The OpenRPC document of this API (node/rpc-doc.ts). */
  'rpc.discover': { params: Record<string, never>; result: Record<string, unknown> };
}

export type RpcMethod = keyof RpcMethods;

/** JSON-RPC error codes: the standard ones, then Cairn's (-32000 and below). */
export const RPC_ERRORS = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  NOT_FOUND: -32001,
  REJECTED: -32002,
  /** What was asked for is below what this pruned node keeps (its status says how far: prunedHeight). */
  PRUNED: -32003,
  /** The node began its stop while the call ran: what failed then was the stop's doing (its store closing). */
  STOPPING: -32004,
  /**
   * A reorganisation was under way when the call came and still was REORG_WAIT_MS later: nothing
   * was read or submitted; `data.retryAfterSeconds` says when to ask again (the CLI does so itself).
   */
  REORGANISING: -32005,
  /** A batch's answers before this request passed MAX_BATCH_ANSWER_BYTES: it was not run; ask for it in another batch. */
  ANSWER_TOO_LARGE: -32006,
} as const;

/** Where a node's RPC listens and the token it accepts: written to `<datadir>/rpc.json`, mode 0600. */
export interface RpcEndpointFile {
  url: string;
  token: string;
  pid: number;
}

export const RPC_ENDPOINT_FILE = 'rpc.json';
