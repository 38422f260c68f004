import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toHex } from '../ledger/bytes.ts';
import { checkPrivateKeyText, createKey, howToFillKeystore, importKey, listKeys, loadPrivateKey, requireKey } from './keystore.ts';
import { readPassword } from './password.ts';
import { ensureDir, removeMadeKeystore } from './keystore-files.ts';
import { withKeyWriteLock } from './keystore-lock.ts';
import { address, parse, required, str, UsageError } from './args.ts';
import type { Out } from './output.ts';
import { fileReason } from '../node/file-errors.ts';

/** What a key's write waits for, told on stderr: stdout is the address, for scripts. */
const notice = (text: string) => void process.stderr.write(`${text}\n`);

const OPTIONS = { keystore: { type: 'string' as const }, 'password-file': { type: 'string' as const }, json: { type: 'boolean' as const } };

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * `add` (a password asked, then a key written under the keystore's lock) in `keystore`, made first:
 * the lock lives in it, and a keystore that cannot be made is refused before any password. One
 * this made is taken away again if `add` fails before anything is in it.
 */
async function addingKey<T>(keystore: string, add: () => Promise<T>): Promise<T> {
  const made = await ensureDir(keystore);
  try {
    return await add();
  } catch (err) {
    await removeMadeKeystore(keystore, made);
    throw err;
  }
}

/**
 * The key in FILE. A private key given in its place is not repeated in the error (onto the
 * terminal's scrollback, a CI log): the user is told where it already is.
 */
async function readKeyFile(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((err: unknown) => {
    if (/^(0[xX])?[0-9a-fA-F]{64}$/.test(file.trim())) {
      throw new UsageError('that is a private key, not a FILE holding one: it is now in your shell\'s history (and was in the process list); put it in a file, or pipe it on stdin');
    }
    throw new UsageError(`cannot read ${file}: ${fileReason(err, file)}; give the file that holds the hex private key, or - to read it from stdin`);
  });
}

/**
 * An empty keystore, with the way on. The one a newcomer lists most is a node's datadir given for
 * its keystore (`--keystore ./data`): the node's coinbase key is one folder down, where a bare
 * "(no keys)" left them thinking it lost.
 */
function noKeysText(keystore: string): string {
  const inDatadir = join(keystore, 'keystore');
  if (existsSync(inDatadir)) return `(no keys in ${keystore}; a node keeps its coinbase key in its datadir's keystore: --keystore ${inDatadir})`;
  return `(no keys in ${keystore}; ${howToFillKeystore(keystore)})`;
}

export async function keysCommand(argv: string[], out: Out): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h') return out.help(HELP_KEYS);
  // As cairn proof and cairn snapshot: a script's `cairn keys $EMPTY` had the help on its stdout, status 0.
  if (sub === undefined) throw new UsageError('say what to do: cairn keys new, list, import or export');
  switch (sub) {
    case 'new': {
      const { values } = parse(rest, OPTIONS);
      if (values.help) return out.help(HELP_KEYS);
      const keystore = required(values, 'keystore');
      const { address: created } = await addingKey(keystore, async () => {
        const password = await readPassword({ passwordFile: str(values, 'password-file'), confirm: true, purpose: `the new key in ${keystore}` });
        return withKeyWriteLock(keystore, notice, () => createKey(keystore, password));
      });
      return out.result({ address: created }, created);
    }
    case 'list': {
      const { values } = parse(rest, OPTIONS);
      if (values.help) return out.help(HELP_KEYS);
      const keystore = required(values, 'keystore');
      const addresses = await listKeys(keystore);
      return out.list(addresses.map((a) => ({ address: a })), () => addresses, noKeysText(keystore));
    }
    case 'import': {
      const { values, positionals } = parse(rest, OPTIONS, 1);
      if (values.help) return out.help(HELP_KEYS);
      const keystore = required(values, 'keystore');
      const source = positionals[0];
      // Typed at a terminal, the key would be echoed, into its scrollback and any recording.
      if ((source === undefined || source === '-') && process.stdin.isTTY) throw new UsageError('give a file holding the hex private key, or pipe it on stdin (- reads stdin, not a terminal: it would echo the key)');
      const hex = source === undefined || source === '-' ? await readStdin() : await readKeyFile(source);
      // A script that left out FILE, its stdin /dev/null or closed: "a private key is 64 hex digits" did not say where it looked.
      if ((source === undefined || source === '-') && hex.trim() === '') throw new UsageError(`${source === undefined ? 'no FILE given, and ' : ''}stdin was empty: give the FILE that holds the hex private key, or pipe the key in`);
      checkPrivateKeyText(hex);
      const { address: imported } = await addingKey(keystore, async () => {
        const password = await readPassword({ passwordFile: str(values, 'password-file'), confirm: true, purpose: `the imported key in ${keystore}` });
        return withKeyWriteLock(keystore, notice, () => importKey(keystore, password, hex));
      });
      return out.result({ address: imported }, imported);
    }
    case 'export': {
      const { values, positionals } = parse(rest, OPTIONS, 1);
      if (values.help) return out.help(HELP_KEYS);
      const keystore = required(values, 'keystore');
      const which = positionals[0];
      if (!which) throw new UsageError('give the ADDRESS whose key to export');
      address(which, 'address');
      await requireKey(keystore, which);
      const password = await readPassword({ passwordFile: str(values, 'password-file'), purpose: which });
      const key = await loadPrivateKey(keystore, which, password);
      const hex = toHex(key);
      key.fill(0);
      return out.result({ address: which, privateKey: hex }, hex);
    }
    default:
      throw new UsageError(`unknown keys command "${sub}": new, list, import or export`); // main adds the pointer to --help
  }
}

const HELP_KEYS = `Usage: cairn keys new    --keystore DIR [--password-file F] [--json]
       cairn keys list   --keystore DIR [--json]
       cairn keys import --keystore DIR [--password-file F] [--json] [FILE | -]
       cairn keys export --keystore DIR [--password-file F] [--json] ADDRESS

Keys are encrypted at rest (scrypt + AES-256-GCM), one file per address, mode 0600. The password
comes from --password-file (its first line), else CAIRN_PASSWORD, else a prompt that does not
echo (with no terminal on stdin, none: the command fails at once, naming both). It is never
printed or logged. import reads a hex private key from FILE or stdin; export
prints it after the password. --json prints {address} (export: and privateKey; list: a list of them).

Examples:
  cairn keys new --keystore ./keys
  cairn keys import --keystore ./keys ./private-key.hex
  echo 8010…08c6 | CAIRN_PASSWORD=… cairn keys import --keystore ./keys -   (stdin is the key, so the password cannot be prompted)
  cairn keys export --keystore ./keys cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz`;
