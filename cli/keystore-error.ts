/**
 * The keystore's one error type, apart from keystore.ts so that the key-file format and the file
 * I/O below it can throw it without an import cycle. keystore.ts re-exports all of it.
 */
import { CairnError } from '../ledger/errors.ts';

export type KeystoreErrorCode =
  | 'KEYSTORE_NOT_FOUND'
  | 'KEYSTORE_IO'
  | 'KEY_NOT_FOUND'
  | 'KEY_EXISTS'
  | 'KEY_FILE_CORRUPT'
  | 'WRONG_PASSWORD'
  | 'INVALID_PRIVATE_KEY'
  | 'INVALID_ADDRESS'
  | 'EMPTY_PASSWORD'
  | 'NO_PASSWORD'
  | 'PASSWORD_FILE_UNREADABLE'
  | 'PASSWORD_MISMATCH'
  | 'PROMPT_CANCELLED';

export class KeystoreError extends CairnError {
  declare readonly code: KeystoreErrorCode;
  constructor(code: KeystoreErrorCode, message: string) {
    // The CLI prints the message as one line: a path with a newline in it must not break that.
    super(code, message.replace(/\s*[\r\n]+\s*/g, ' '));
  }
}
