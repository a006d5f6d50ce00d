import { createHash } from 'node:crypto';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { isUserPublicKey, verifyStatement, type StatementSigner } from './signatures.ts';

/**
 * Operators sign the commands they send to a session (approve, deny, roll back, take over, …), so
 * the orchestrator knows who sent one: NATS tells a responder nothing about the sender, and a
 * name written in the message is whatever the sender wrote. The signature travels in headers over
 * the subject and the exact body, so the wire messages themselves are unchanged.
 */

/** The headers a signed control message carries. */
export const controlSignatureHeader = { signer: 'Troupe-Signer', signedAt: 'Troupe-Signed-At', signature: 'Troupe-Signature' } as const;

/** How far a signed command's time may be from the receiver's clock: replaying an old one fails. */
export const controlSignatureWindowMs = 5 * 60 * 1000;

/** Operators an orchestrator accepts commands from: public key → the name sessions record. */
export type OperatorKeys = ReadonlyMap<string, string>;

/** A malformed `TROUPE_OPERATOR_KEYS` entry. */
export class OperatorKeysError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * Reads operator keys written as `name:UKEY…` or a bare `UKEY…` (then the key is the name),
 * separated by commas. Throws an {@link OperatorKeysError} for an entry that is not a user key.
 */
export function parseOperatorKeys(text: string): OperatorKeys {
  const keys = new Map<string, string>();
  for (const entry of text.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    const colon = entry.lastIndexOf(':');
    const [name, key] = colon === -1 ? [entry, entry] : [entry.slice(0, colon), entry.slice(colon + 1)];
    if (!isUserPublicKey(key)) throw new OperatorKeysError(`"${entry}" is not [name:]<nkey public key> (a user key starts with U)`);
    if (!/^[\w.@-]{1,64}$/.test(name)) throw new OperatorKeysError(`"${name}" is not an operator name: letters, digits and . _ @ - only`);
    keys.set(key, name);
  }
  return keys;
}

const statementOf = (subject: string, signedAt: number, body: Uint8Array) => ({
  statement: 'troupe.session.control', version: 1, subject, signedAt, bodySha256: createHash('sha256').update(body).digest('hex'),
});

/** The headers that sign `body` for `subject` as `signer`, now. */
export function signControl(signer: StatementSigner, subject: string, body: Uint8Array, now: number = Date.now()): MsgHdrs {
  const h = natsHeaders();
  h.set(controlSignatureHeader.signer, signer.publicKey);
  h.set(controlSignatureHeader.signedAt, String(now));
  h.set(controlSignatureHeader.signature, signer.sign(statementOf(subject, now, body)));
  return h;
}

/** Who sent a control message, or why that cannot be told. */
export type ControlSender = { ok: true; operator: string; publicKey: string } | { ok: false; reason: string };

/**
 * Checks a control message's signature against the operators the receiver knows and its clock.
 * Never throws.
 */
export function checkControlSignature(subject: string, body: Uint8Array, headers: MsgHdrs | undefined, operators: OperatorKeys, now: number = Date.now()): ControlSender {
  const signer = headers?.get(controlSignatureHeader.signer) ?? '';
  const signature = headers?.get(controlSignatureHeader.signature) ?? '';
  const signedAt = Number(headers?.get(controlSignatureHeader.signedAt) ?? '');
  if (!signer || !signature) return { ok: false, reason: 'this deployment takes commands only from its operators, signed with an operator key (--nkey <operator.nk>), and this one is not signed' };
  const operator = operators.get(signer);
  if (operator === undefined) return { ok: false, reason: `the command is signed by ${signer}, which is not an operator of this deployment` };
  if (!Number.isFinite(signedAt) || Math.abs(now - signedAt) > controlSignatureWindowMs) {
    return { ok: false, reason: 'the command was signed more than 5 minutes from now (a replay, or a clock far off)' };
  }
  if (!verifyStatement(signer, statementOf(subject, signedAt, body), signature)) return { ok: false, reason: 'the command\'s signature does not match it' };
  return { ok: true, operator, publicKey: signer };
}
