import { bestBackend, type SignatureBackend } from '../ledger/signature-backends.js';
import type { SignatureVerifier } from './tx-signatures.ts';

/**
 * Signatures checked on the calling thread, with the same backend and verdicts as the worker
 * pool: what the simulator uses, where a whole network shares one thread and time is simulated.
 */
export class InlineVerifier implements SignatureVerifier {
  private readonly backend: SignatureBackend;

  constructor(backend: SignatureBackend = bestBackend()) {
    this.backend = backend;
  }

  async verify(items: readonly { signature: Uint8Array; message: Uint8Array; publicKey: Uint8Array }[]): Promise<boolean[]> {
    return items.map((it) => it.signature.length === 64 && it.publicKey.length === 33 && this.backend.verify(it.signature, it.message, it.publicKey));
  }
}
