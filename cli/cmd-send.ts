import { toHex } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import { signTransaction } from '../ledger/transaction.ts';
import { loadPrivateKey, requireKey } from './keystore.ts';
import { readPassword } from './password.ts';
import { withSendLock } from './send-lock.ts';
import { loadLevel } from './dir-lock.ts';
import { connect, isLightStatus, RpcClient, RpcClientError } from './rpc-client.ts';
import { NODE_ACCESS, NODE_ACCESS_HELP, address, amountArg, count, parse, required, resolveAmount, str, UsageError } from './args.ts';
import { coins, type Out } from './output.ts';
import { RPC_ERRORS, type RpcMethods, type StatusResult } from '../node/rpc-types.ts';

/** The most fee the node may suggest without --max-fee: a tenth of a coin (Bitcoin Core's -maxtxfee is 0.1 BTC). */
const DEFAULT_MAX_FEE_COINS = (decimals: number): bigint => (decimals > 0 ? 10n ** BigInt(decimals - 1) : 1n);

/** How often --wait asks the node, and how often it says so when stderr is not a terminal. */
const POLL_MS = 500;
const QUIET_PROGRESS_MS = 10_000;

export async function sendCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, {
    ...NODE_ACCESS,
    keystore: { type: 'string' },
    'password-file': { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    amount: { type: 'string' },
    fee: { type: 'string' },
    'max-fee': { type: 'string' },
    nonce: { type: 'string' },
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
  });
  if (values.help) return out.help(HELP);
  const keystore = required(values, 'keystore');
  const from = required(values, 'from');
  address(from, '--from address');
  const to = address(required(values, 'to'), '--to address');
  const amountText = amountArg(required(values, 'amount'), '--amount');
  const feeText = str(values, 'fee') === undefined ? undefined : amountArg(str(values, 'fee')!, '--fee');
  const maxFeeText = str(values, 'max-fee') === undefined ? undefined : amountArg(str(values, 'max-fee')!, '--max-fee');
  const nonceText = str(values, 'nonce');
  if (nonceText !== undefined && !/^(0|[1-9]\d{0,18})$/.test(nonceText)) throw new UsageError(`invalid --nonce "${nonceText}": give a whole number`);
  const timeoutSeconds = count(values, 'timeout', 1, 86_400) ?? 120;
  await requireKey(keystore, from);

  const rpc = await connect(values);
  const status = await rpc.call('status', {});
  // A light client answers status too, with none of the fees a transfer needs: with --fee the
  // check below met its missing minFee as a TypeError (without, estimateFee was refused).
  if (isLightStatus(status)) throw rpc.lightClientError();
  const value = resolveAmount(amountText, status, '--amount');
  // Consensus takes a transfer of 0 (PROTOCOL.md), and it has one use: taking the nonce of a
  // pending transfer, to cancel it. Without --nonce it replaces nothing and moves nothing, yet
  // spends a fee and the sender's next nonce: refused, as Bitcoin Core refuses a send of 0.
  if (value === 0n && nonceText === undefined) {
    throw new UsageError(`--amount 0 moves nothing, yet would spend a fee and ${from}'s next nonce: give an amount above 0; to cancel a pending transfer, send 0 to yourself with its --nonce and a fee at least 10% above its own (cairn mempool shows both)`);
  }
  // Without --fee, what the node expects to get into the next block (never below its minimum),
  // up to --max-fee: a fee is signed away for good, and a node's estimate is not the user's word.
  const fee = feeText ? resolveAmount(feeText, status, '--fee') : BigInt((await rpc.call('estimateFee', {})).fee);
  // Refused here, before the password, in coins: the node's own refusal came after it, in base
  // units and without a way out ("fee 0 is below the minimum 1").
  const minFee = BigInt(status.minFee);
  if (feeText && fee < minFee) {
    throw new CairnError('FEE_TOO_LOW', `--fee ${coins(fee, status)} is below the node's minimum ${coins(minFee, status)}: give at least that, or leave --fee out for the node's suggestion (${coins(BigInt(status.feeEstimate), status)})`);
  }
  if (!feeText) {
    const maxFee = maxFeeText ? resolveAmount(maxFeeText, status, '--max-fee') : DEFAULT_MAX_FEE_COINS(status.decimals);
    if (fee > maxFee) {
      throw new CairnError('FEE_TOO_HIGH', `the node suggests a fee of ${coins(fee, status)}, above --max-fee ${coins(maxFee, status)}: give --fee, or a higher --max-fee`);
    }
  }
  const account = await rpc.call('getAccount', { address: from });
  if (nonceText === undefined) await checkFunds(rpc, account, value, fee, status);
  const password = await readPassword({ passwordFile: str(values, 'password-file'), purpose: from });
  const [key] = await Promise.all([loadPrivateKey(keystore, from, password), loadLevel()]);
  let sent: { id: string; nonce: bigint };
  try {
    // Held from the nonce's choice to the node's answer, so that the next send from this key
    // (its lock's next holder) reads a next nonce that counts this transfer.
    sent = await withSendLock(keystore, from, { notice: (text) => process.stderr.write(`${text}\n`) }, async () => {
      let nonce: bigint;
      if (nonceText !== undefined) nonce = BigInt(nonceText);
      else {
        const now = await rpc.call('getAccount', { address: from });
        // Another send took the lock first, and what it sent is pending now.
        if (now.nextNonce !== account.nextNonce) await checkFunds(rpc, now, value, fee, status);
        nonce = BigInt(now.nextNonce);
      }
      // Signed here: the key never leaves this process.
      const tx = signTransaction({ chainId: status.chainId, to, amount: value, fee, nonce }, key);
      try {
        return { id: (await rpc.call('sendRawTransaction', { tx: toHex(tx.bytes) })).id, nonce };
      } catch (err) {
        // No answer is no refusal: a busy node may have taken it before its answer was lost, and
        // the same send again would be a second payment, with the next nonce.
        if (!(err instanceof RpcClientError && err.code === 'NODE_NOT_RUNNING')) throw err;
        throw new RpcClientError('SEND_UNANSWERED', `the node at ${rpc.url} did not answer the submission of ${tx.idHex}, which it may have taken all the same: cairn tx ${tx.idHex} tells, before you send again`);
      }
    });
  } finally {
    key.fill(0);
  }
  const { id } = sent;
  if (!values.wait) return out.result({ id }, id);
  if (!out.json) out.text(id); // at once: the id is what to ask about if the wait is cut short
  // The transfer was sent all the same, however the wait ends: with --json a script had only a
  // failure's status, as for a send refused before it went, and sending again paid twice. Its
  // document is then a send's without --wait, {id}; the status says the wait did not end well.
  const unwaited = out.json ? idOnStop(() => out.result({ id }, id)) : () => {};
  const height = await waitForConfirmation(rpc, { id, from, nonce: sent.nonce }, timeoutSeconds, status, coins(fee, status)).catch((err: unknown) => {
    unwaited();
    if (out.json) out.result({ id }, id);
    throw err;
  });
  unwaited();
  out.result({ id, status: 'confirmed', blockHeight: height }, `confirmed in block ${height}`);
}

/**
 * Until the returned function is called, a signal that stops the wait (Ctrl-C, a CI job's
 * SIGTERM) first has `say` print the id, then ends the process by that signal, as it would have.
 */
function idOnStop(say: () => void): () => void {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const onSignal = (signal: NodeJS.Signals) => {
    off();
    say();
    process.kill(process.pid, signal); // no listener now: the signal's own end
  };
  const off = () => {
    for (const s of signals) process.off(s, onSignal);
  };
  for (const s of signals) process.on(s, onSignal);
  return off;
}

/**
 * Refuses, before the password is asked, a transfer the sender cannot pay for (counting what it
 * already has pending), in the network's coins: the node would refuse it in base units.
 */
async function checkFunds(rpc: RpcClient, account: { address: string; balance: string; nonce: string; nextNonce: string }, value: bigint, fee: bigint, coin: StatusResult): Promise<void> {
  let pending = 0n;
  if (account.nextNonce !== account.nonce) {
    for (const t of (await rpc.call('getMempool', {})).txs) if (t.from === account.address) pending += BigInt(t.amount) + BigInt(t.fee);
  }
  const need = value + fee + pending;
  const have = BigInt(account.balance);
  if (need <= have) return;
  const parts = `${coins(value, coin)} + fee ${coins(fee, coin)}${pending > 0n ? `, plus ${coins(pending, coin)} pending from this sender` : ''}`;
  throw new CairnError('INSUFFICIENT_FUNDS', `insufficient funds: need ${coins(need, coin)} (${parts}), have ${coins(have, coin)} in ${account.address}`);
}

/**
 * Polls until `id` is in a main-chain block, telling the user on stderr what it waits for: a
 * counter on a terminal, a line every 10 s otherwise, and at once a warning when the node has
 * neither peers nor a miner, since then nothing can ever confirm the transaction.
 */
async function waitForConfirmation(rpc: RpcClient, sent: SentTx, timeoutSeconds: number, first: StatusResult, fee: string): Promise<number> {
  const { id } = sent;
  const tty = process.stderr.isTTY === true;
  const started = Date.now();
  const deadline = started + timeoutSeconds * 1000;
  let status = first;
  let warned = false;
  let lastLine = 0;
  let lastStatus = Date.now();
  process.stderr.write(`waiting for a block to include it (fee ${fee}, up to ${timeoutSeconds} s; Ctrl-C stops waiting, not the transaction)\n`);
  for (;;) {
    const t = await lookUp(rpc, id);
    if (t?.status === 'confirmed') {
      if (tty) process.stderr.write('\r\x1b[K');
      return t.blockHeight!;
    }
    const lost = t ? undefined : await nonceTakenFrom(rpc, sent, status);
    if (lost) {
      if (tty) process.stderr.write('\n');
      throw lost;
    }
    if (Date.now() - lastStatus >= 5_000) {
      status = await rpc.call('status', {});
      lastStatus = Date.now();
    }
    const stuck = status.peers === 0 && !status.mining;
    if (stuck && !warned) {
      warned = true;
      process.stderr.write(`${tty ? '\r\x1b[K' : ''}warning: the node has no peers and does not mine: nothing can confirm this transaction until it gets a peer (cairn node --bootstrap ADDR) or mines (cairn node --mine)\n`);
    }
    const waited = Math.round((Date.now() - started) / 1000);
    const line = `waited ${waited} s: ${t?.status ?? 'not in the mempool'}, chain at ${status.height}, ${status.peers} peer${status.peers === 1 ? '' : 's'}${status.mining ? ', mining' : ''}`;
    if (tty) process.stderr.write(`\r\x1b[K${line}`);
    else if (Date.now() - lastLine >= QUIET_PROGRESS_MS) {
      if (lastLine !== 0) process.stderr.write(line + '\n');
      lastLine = Date.now();
    }
    if (Date.now() > deadline) {
      if (tty) process.stderr.write('\n');
      const why = stuck ? ': the node has no peers and does not mine' : '';
      throw new RpcClientError('SEND_TIMEOUT', `${id} was not confirmed within ${timeoutSeconds} s (still ${t?.status ?? 'unknown'}${why}); cairn tx ${id} tells what became of it`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** The node's account of transaction `id`, or undefined where it has none (dropped, replaced, or reorged out for now). */
function lookUp(rpc: RpcClient, id: string): Promise<RpcMethods['getTransaction']['result'] | undefined> {
  return rpc.call('getTransaction', { id }).catch((err: unknown) => {
    if (err instanceof RpcClientError && err.rpcCode === RPC_ERRORS.NOT_FOUND) return undefined;
    throw err;
  });
}

interface SentTx {
  readonly id: string;
  readonly from: string;
  readonly nonce: bigint;
}

/**
 * Why `sent`, which the node no longer has, can never be confirmed, if another transaction took
 * its nonce: one pending in its place (a replacement that paid more: a send with --nonce, or from
 * another keystore or machine), or one confirmed. Without this, --wait ran out its --timeout and
 * said "still unknown" of a transfer that had been replaced at its first poll.
 */
async function nonceTakenFrom(rpc: RpcClient, sent: SentTx, coin: StatusResult): Promise<CairnError | undefined> {
  const account = await rpc.call('getAccount', { address: sent.from });
  if (BigInt(account.nextNonce) <= sent.nonce) return undefined; // dropped, or reorged out for now: nothing holds its nonce
  // Asked again now that the account is read settled: mid-way through a reorganisation it may
  // have been in neither the chain nor the mempool.
  if (await lookUp(rpc, sent.id)) return undefined;
  if (BigInt(account.nonce) > sent.nonce) {
    return new CairnError('TX_NONCE_TAKEN', `${sent.id} will not be confirmed: another transaction from ${sent.from} with its nonce ${sent.nonce} was confirmed meanwhile`);
  }
  const other = (await rpc.call('getMempool', {})).txs.find((t) => t.from === sent.from && BigInt(t.nonce) === sent.nonce && t.id !== sent.id);
  if (!other) return undefined;
  return new CairnError('TX_REPLACED', `${sent.id} was replaced in the node's mempool by ${other.id} (the same nonce ${sent.nonce}, fee ${coins(BigInt(other.fee), coin)}): it will not be confirmed; cairn tx ${other.id} tells what becomes of that one`);
}

const HELP = `Usage: cairn send --keystore DIR --from ADDRESS --to ADDRESS --amount N [--fee N | --max-fee N] [--nonce N]
                  [--wait] [--timeout SECONDS] [--password-file F]
                  [--datadir DIR | --rpc URL --rpc-token T] [--json]

Builds and signs a transfer here (the key never reaches the node), takes the next nonce from the
node unless --nonce is given, submits it and prints its id.

Sends from one key may run at once (a script sending in parallel, two terminals): each holds a
lock beside the key in the keystore from choosing its nonce until the node has its transfer, so
each gets a nonce of its own; the others wait that long (their submission, not a --wait). The
system drops the lock with its process, however that ends. Sends of the same key from another
keystore or machine are not held back by it: keep a key's sends in one keystore.
--nonce N signs nonce N as given: a pending transfer of that nonce is replaced if this one pays
at least 10% more fee, which is how to speed up a stuck one, or cancel it (send 0 to yourself).
--amount 0 is taken only with --nonce: on its own it would spend a fee and a nonce for nothing.

Amounts (--amount, --fee): a whole number is base units (1500); a number with the network's unit
is coins (12.5CRN, or "12.5 CRN"; on the devnet 1 CRN = 100000000 base units). Without --fee, the
node's suggestion (cairn status shows it): enough for the next block, never below its minimum,
and refused above --max-fee (default 0.1 of a coin).
The sender must hold amount + fee, counting what it already has pending.

--wait prints the id at once, then waits until a block includes the transaction (at most
--timeout, default 120 s; with --json, {id, status, blockHeight} once it has, or {id} and exit
status 1 when the wait fails, or the signal's when one stops it), showing progress on stderr, and warns at once when the node has no
peers and does not mine (nothing could confirm it then). It ends at once, naming the other, if
another transaction took its nonce (a replacement sent with --nonce, or one confirmed).

The key's password comes from --password-file (its first line), else CAIRN_PASSWORD, else a
prompt that does not echo (cairn keys --help).
${NODE_ACCESS_HELP}

Examples:
  cairn send --keystore ./keys --from cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz \\
             --to cairn1khw92xl6qudmpnfnxp9kz8ll2sq6e7y2ppu0rk --amount 12.5CRN --wait
  cairn send --keystore ./keys --from ADDRESS --to ADDRESS --amount 1500 --fee 10 --json`;
