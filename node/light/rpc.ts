import { encodeAddress } from '../../ledger/keys.ts';
import { toHex } from '../../ledger/bytes.ts';
import { addressParam } from '../rpc-params.ts';
import type { RpcHandlers } from '../rpc.ts';
import type { LightClient } from './client.ts';

/** A light client's JSON-RPC API (`cairn light`, read by `cairn account --light`). */
export interface LightStatusResult {
  network: string;
  /** The network's coin (genesis.json). */
  unit: string;
  decimals: number;
  genesis: string;
  height: number;
  head: string;
  totalWork: string;
  peers: number;
  peerId: string;
  listen: string[];
  /** Peers this client has banned, while their bans last, and why (a forged proof, headers that do not check, …). */
  banned: { peer: string; reason: string }[];
  /** Memory the kept headers take (the rest are hashes in a file). */
  headerMemoryBytes: number;
  syncing: boolean;
  /**
   * The block the client was told to trust (`--checkpoint`), null if none: no chain is its own that
   * does not pass through it. `passed`: its chain does; until then it holds genesis only.
   */
  checkpoint: { height: number; hash: string; passed: boolean } | null;
}

export interface LightAccountResult {
  address: string;
  balance: string;
  nonce: string;
  /** False: the proof shows the address has no account (balance 0). */
  exists: boolean;
  /** The header whose state root the proof was checked against. */
  block: { height: number; hash: string };
  /** The peer whose proof held. */
  provenBy: string;
}

export interface LightRpcMethods {
  status: { params: Record<string, never>; result: LightStatusResult };
  /** The account at `address` in the state of the light client's tip, proven by a peer and checked here. */
  getAccount: { params: { address: string }; result: LightAccountResult };
  stop: { params: Record<string, never>; result: { stopping: true } };
}

/** What the handlers see: the client, and how to ask for a stop. */
export interface LightContext {
  readonly client: LightClient;
  requestStop(): void;
}

/** Each method's params in order: what params given by position (an array) stand for. */
const PARAM_ORDER: { readonly [M in keyof LightRpcMethods]: readonly (keyof LightRpcMethods[M]['params'])[] } = { status: [], getAccount: ['address'], stop: [] };

export function lightParamNames(method: string): readonly string[] | undefined {
  return Object.hasOwn(PARAM_ORDER, method) ? PARAM_ORDER[method as keyof LightRpcMethods] : undefined;
}

export const lightRpcHandlers: RpcHandlers<LightContext> = {
  async status({ client }) {
    return client.summary() satisfies LightStatusResult;
  },
  async getAccount({ client }, params) {
    const address = addressParam(params);
    const p = await client.getAccount(address);
    return {
      address: encodeAddress(address),
      balance: (p.account?.balance ?? 0n).toString(),
      nonce: (p.account?.nonce ?? 0n).toString(),
      exists: p.account !== undefined,
      block: { height: p.height, hash: toHex(p.blockHash) },
      provenBy: p.peer,
    } satisfies LightAccountResult;
  },
  async stop(context) {
    context.requestStop();
    return { stopping: true };
  },
};
