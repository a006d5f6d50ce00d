import { createHash } from 'node:crypto';
import { fromPublic, fromSeed } from '@nats-io/nkeys';

/**
 * Signatures with NATS nkeys (ed25519), for statements one process makes and another must be able
 * to check without trusting whoever carried them: an orchestrator's approval of a tool call, its
 * request to undo one, an operator's command. What is signed is canonical JSON (keys sorted), so
 * both sides build the same bytes from the same fields however the message was encoded.
 */

/** JSON with object keys sorted at every depth: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return inner;
    return Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }) ?? 'null';
}

/** The SHA-256 of a value's canonical JSON, in hex: what a statement says about a payload it does not repeat. */
export function sha256Of(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/** A NATS user public key (`U` and 55 more base32 characters, checksum included). */
export function isUserPublicKey(key: string): boolean {
  if (!/^U[A-Z2-7]{55}$/.test(key)) return false;
  try {
    fromPublic(key);
    return true;
  } catch {
    return false;
  }
}

/** Signs statements with one nkey; holds the seed, so it stays in the process that owns the key. */
export interface StatementSigner {
  /** The key's public half: who the statements say signed them. */
  readonly publicKey: string;
  /** The signature of `statement`'s canonical JSON, base64url. */
  sign(statement: unknown): string;
}

/** A signer for the nkey whose seed this is (`SU…`, as in a role's `.nk` file). */
export function statementSigner(seed: Uint8Array): StatementSigner {
  const pair = fromSeed(seed);
  const publicKey = pair.getPublicKey();
  return {
    publicKey,
    sign: (statement) => Buffer.from(pair.sign(new TextEncoder().encode(canonicalJson(statement)))).toString('base64url'),
  };
}

/** Whether `signature` is `publicKey`'s signature of `statement`; false (never a throw) for anything malformed. */
export function verifyStatement(publicKey: string, statement: unknown, signature: string): boolean {
  try {
    const bytes = Buffer.from(signature, 'base64url');
    if (bytes.length !== 64) return false;
    return fromPublic(publicKey).verify(new TextEncoder().encode(canonicalJson(statement)), bytes);
  } catch {
    return false;
  }
}
