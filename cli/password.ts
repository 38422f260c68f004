/**
 * Where a keystore password comes from: `--password-file`, then `CAIRN_PASSWORD`, then a prompt
 * on the terminal that echoes nothing. Never printed, never logged, never in an error message.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { KeystoreError, requirePassword } from './keystore.ts';
import { fileReason } from '../node/file-errors.ts';

export interface ReadPasswordOptions {
  /** `--password-file`: its first line is the password. Wins over everything else. */
  readonly passwordFile?: string;
  /** Where `CAIRN_PASSWORD` is looked up (default `process.env`). Set but empty counts as unset. */
  readonly env?: NodeJS.ProcessEnv;
  /** Asks the user; default `promptHidden` when `interactive`. */
  readonly prompt?: (question: string) => Promise<string>;
  /** Whether a person can be asked (default: stdin is a TTY). Ignored when `prompt` is given. */
  readonly interactive?: boolean;
  /** Whether a person reads what is said (default: stderr is a TTY), though stdin is no terminal. */
  readonly atTerminal?: boolean;
  /** Ask twice and require the same answer (for `keys new` and `import`); prompts only. */
  readonly confirm?: boolean;
  /** The key the password is for, named in the prompt: a bare "Password:" left a newcomer guessing which. */
  readonly purpose?: string;
  /** Where a warning goes (a password file other users may open); default stderr. */
  readonly warn?: (message: string) => void;
}

/** The password, from `--password-file`, then `CAIRN_PASSWORD`, then a prompt that does not echo. */
export async function readPassword(options: ReadPasswordOptions = {}): Promise<string> {
  if (options.passwordFile !== undefined) {
    let text: string;
    try {
      const file = await open(options.passwordFile, 'r');
      try {
        const { mode } = await file.stat();
        // As ssh says of a private key others may read (it refuses one; a warning here, as before
        // this check such files were taken silently and scripts rely on them).
        if (isRegularFile(mode) && (mode & 0o077) !== 0) {
          const warn = options.warn ?? ((message: string) => void process.stderr.write(`cairn: warning: ${message}\n`));
          warn(`password file ${options.passwordFile} can be opened by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): chmod 600 ${options.passwordFile}`);
        }
        text = await file.readFile('utf8');
      } finally {
        await file.close();
      }
    } catch (err) {
      throw new KeystoreError(
        'PASSWORD_FILE_UNREADABLE',
        `cannot read password file ${options.passwordFile}: ${fileReason(err, options.passwordFile)}; give --password-file a file whose first line is the password`,
      );
    }
    const firstLine = text.split('\n', 1)[0] ?? '';
    return requirePassword(firstLine.endsWith('\r') ? firstLine.slice(0, -1) : firstLine, `password file ${options.passwordFile}`);
  }
  const fromEnv = (options.env ?? process.env)['CAIRN_PASSWORD'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;

  const interactive = options.interactive ?? process.stdin.isTTY === true;
  const prompt = options.prompt ?? (interactive ? (question: string) => promptHidden(question) : undefined);
  if (prompt === undefined) {
    // At a terminal with stdin piped (echo KEY | cairn keys import -): "run in a terminal" was where the user was.
    const atTerminal = options.atTerminal ?? process.stderr.isTTY === true;
    throw new KeystoreError(
      'NO_PASSWORD',
      atTerminal
        ? 'no password: stdin is not the terminal (a pipe or a file), so none can be asked: pass --password-file FILE or set CAIRN_PASSWORD'
        : 'no password: pass --password-file FILE, set CAIRN_PASSWORD, or run in a terminal to be asked',
    );
  }
  const password = requirePassword(await prompt(options.purpose === undefined ? 'Password: ' : `Password for ${options.purpose}: `), 'the prompt');
  if (options.confirm === true && (await prompt('Repeat password: ')) !== password) {
    // Asked before anything is written (keys new, import, a first --mine start): said, lest the user
    // wonder whether a key was made under the first password.
    throw new KeystoreError('PASSWORD_MISMATCH', 'the two passwords differ, so no key was written: run the command again and type the same password twice');
  }
  return password;
}

/** A pipe or a device (`--password-file <(pass cairn)`, /dev/stdin) has no mode that says who else may read it. */
function isRegularFile(mode: number): boolean {
  return (mode & constants.S_IFMT) === constants.S_IFREG;
}

export interface PromptStreams {
  readonly input: NodeJS.ReadableStream & { isRaw?: boolean; setRawMode?: (mode: boolean) => unknown };
  readonly output: NodeJS.WritableStream;
}

/**
 * Writes `question` to stderr and reads one line from stdin in raw mode, so the terminal echoes
 * nothing. Enter ends the line; Backspace and Ctrl-U edit it; Ctrl-C (which raw mode turns into a
 * byte rather than SIGINT) and Ctrl-D on an empty line cancel with PROMPT_CANCELLED.
 */
export function promptHidden(
  question: string,
  streams: PromptStreams = { input: process.stdin, output: process.stderr },
): Promise<string> {
  const { input, output } = streams;
  return new Promise((resolve, reject) => {
    const wasRaw = input.isRaw === true;
    const decoder = new StringDecoder('utf8');
    let answer = '';
    /** Inside an escape sequence: just after ESC, in a CSI (ESC [ … final), or an SS3 (ESC O x). */
    let escape: 'start' | 'csi' | 'ss3' | undefined;

    const finish = (error?: KeystoreError): void => {
      input.removeListener('data', onData);
      input.removeListener('end', onEnd);
      input.removeListener('error', onError);
      input.setRawMode?.(wasRaw);
      input.pause();
      output.write('\n');
      if (error === undefined) resolve(answer);
      else reject(error);
    };
    const cancelled = (): KeystoreError => new KeystoreError('PROMPT_CANCELLED', 'password prompt cancelled');
    const onData = (chunk: Buffer | string): void => {
      const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
      for (const ch of text) {
        if (escape !== undefined) {
          // An arrow or function key is ESC [ … final byte, or (in a terminal's application
          // mode) ESC O and one more: none of it is part of the password.
          if (escape === 'start') escape = ch === '[' ? 'csi' : ch === 'O' ? 'ss3' : undefined;
          else if (escape === 'ss3' || (ch >= '@' && ch <= '~')) escape = undefined;
          continue;
        }
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(cancelled());
        if (ch === '\u0004') return answer === '' ? finish(cancelled()) : finish();
        if (ch === '\u007f' || ch === '\b') answer = Array.from(answer).slice(0, -1).join('');
        else if (ch === '\u0015') answer = '';
        else if (ch === '\u001b') escape = 'start';
        else if (ch >= ' ') answer += ch;
      }
    };
    const onEnd = (): void => (answer === '' ? finish(cancelled()) : finish());
    const onError = (): void => finish(new KeystoreError('PROMPT_CANCELLED', 'cannot read the password from the terminal'));

    // Echo off before the prompt shows: a user who starts typing when they see it must not have
    // the first keys echoed in the moment between the two.
    input.setRawMode?.(true);
    output.write(question);
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', onError);
    input.resume();
  });
}
