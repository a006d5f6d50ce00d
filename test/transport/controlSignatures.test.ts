import { createUser } from '@nats-io/nkeys';
import { describe, expect, it } from 'vitest';
import { checkControlSignature, controlSignatureHeader, OperatorKeysError, parseOperatorKeys, signControl } from '../../transport/controlSignatures.ts';
import { statementSigner } from '../../transport/signatures.ts';

const ada = statementSigner(createUser().getSeed());
const stranger = statementSigner(createUser().getSeed());
const operators = parseOperatorKeys(`ada:${ada.publicKey}`);
const subject = 'prod.sessions.s-1.control';
const body = new TextEncoder().encode('{"type":"session.approve","by":"someone else"}');
const now = 1_800_000_000_000;

describe('checkControlSignature', () => {
  it('names the operator who signed the command', () => {
    expect(checkControlSignature(subject, body, signControl(ada, subject, body, now), operators, now)).toEqual({ ok: true, operator: 'ada', publicKey: ada.publicKey });
  });

  it('refuses an unsigned command, one signed by a key that is no operator\'s, and one whose signer header was swapped', () => {
    expect(checkControlSignature(subject, body, undefined, operators, now)).toMatchObject({ ok: false, reason: expect.stringContaining('not signed') });
    expect(checkControlSignature(subject, body, signControl(stranger, subject, body, now), operators, now)).toMatchObject({ ok: false, reason: expect.stringContaining('not an operator') });
    const swapped = signControl(stranger, subject, body, now);
    swapped.set(controlSignatureHeader.signer, ada.publicKey);
    expect(checkControlSignature(subject, body, swapped, operators, now)).toMatchObject({ ok: false, reason: expect.stringContaining('does not match') });
  });

  it('refuses a signed command replayed to another session or with another body', () => {
    const headers = signControl(ada, subject, body, now);
    expect(checkControlSignature('prod.sessions.s-2.control', body, headers, operators, now).ok).toBe(false);
    expect(checkControlSignature(subject, new TextEncoder().encode('{"type":"session.rollback","toTurn":0}'), headers, operators, now).ok).toBe(false);
  });

  it('refuses a command signed more than five minutes away from the receiver\'s clock', () => {
    const headers = signControl(ada, subject, body, now - 5 * 60 * 1000 - 1);
    expect(checkControlSignature(subject, body, headers, operators, now)).toMatchObject({ ok: false, reason: expect.stringContaining('5 minutes') });
  });
});

describe('parseOperatorKeys', () => {
  it('reads named and bare keys; a bare key is its own name', () => {
    expect([...parseOperatorKeys(` ada:${ada.publicKey} , ${stranger.publicKey} `)]).toEqual([[ada.publicKey, 'ada'], [stranger.publicKey, stranger.publicKey]]);
  });

  it('refuses an entry that is not a user public key', () => {
    expect(() => parseOperatorKeys('ada:SUAKEYSEEDNOTAPUBLICKEY')).toThrow(OperatorKeysError);
    const corrupted = `${ada.publicKey.slice(0, -1)}${ada.publicKey.endsWith('A') ? 'B' : 'A'}`;
    expect(() => parseOperatorKeys(`ada:${corrupted}`)).toThrow(/is not \[name:\]<nkey public key>/);
  });
});
