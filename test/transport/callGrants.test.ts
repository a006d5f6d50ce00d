import { createUser } from '@nats-io/nkeys';
import { describe, expect, it } from 'vitest';
import { approvalStatement, checkGrant, signGrant, undoStatement } from '../../transport/callGrants.ts';
import type { ToolRequest, ToolUndoRequest } from '../../transport/messages.ts';
import { statementSigner } from '../../transport/signatures.ts';

const orchestrator = statementSigner(createUser().getSeed());
const stranger = statementSigner(createUser().getSeed());
const trusted = new Set([orchestrator.publicKey]);
const now = 1_800_000_000_000;

const request: ToolRequest = {
  type: 'tool.request', sessionId: 's-1', callId: 'call_1', tool: 'files_write',
  arguments: { path: 'report.md', content: 'final', options: { mode: 'replace', tags: ['a', 'b'] } }, deadline: now + 30_000,
};
const approvedBy = 'ada';
const grantFor = (signer = orchestrator, expiresAt = now + 30_000, namespace = 'prod') => signGrant(signer, approvalStatement(namespace, request, approvedBy, expiresAt));
const check = (grant: ReturnType<typeof grantFor> | undefined, on: Pick<ToolRequest, 'sessionId' | 'callId' | 'tool' | 'arguments'> = request, by = approvedBy, at = now) =>
  checkGrant(grant, (expiresAt) => approvalStatement('prod', on, by, expiresAt), trusted, at);

describe('checkGrant on approvals', () => {
  it('holds for the call the orchestrator signed, until it expires', () => {
    expect(check(grantFor())).toEqual({ ok: true, signer: orchestrator.publicKey });
  });

  it('holds whatever order the arguments\' keys arrive in: what is signed is canonical', () => {
    const reordered = { ...request, arguments: { options: { tags: ['a', 'b'], mode: 'replace' }, content: 'final', path: 'report.md' } };
    expect(check(grantFor(), reordered).ok).toBe(true);
  });

  it('refuses a grant that expired', () => {
    expect(check(grantFor(orchestrator, now - 1))).toEqual({ ok: false, reason: `its signature expired at ${new Date(now - 1).toISOString()}` });
    expect(check(grantFor(orchestrator, now)).ok).toBe(false);
  });

  it('refuses a grant signed by a key it does not trust', () => {
    expect(check(grantFor(stranger))).toEqual({ ok: false, reason: `it is signed by ${stranger.publicKey}, which is not an orchestrator key this worker trusts` });
  });

  it('refuses a grant that claims a trusted signer but was signed with another key', () => {
    const forged = { ...grantFor(stranger), signer: orchestrator.publicKey };
    expect(check(forged)).toMatchObject({ ok: false, reason: expect.stringContaining('does not match') });
  });

  it('refuses a grant moved onto tampered arguments, another call, another tool, another approver or another deployment', () => {
    const grant = grantFor();
    expect(check(grant, { ...request, arguments: { ...request.arguments, content: 'rm -rf' } })).toMatchObject({ ok: false, reason: expect.stringContaining('does not match') });
    expect(check(grant, { ...request, callId: 'call_2' }).ok).toBe(false);
    expect(check(grant, { ...request, sessionId: 's-2' }).ok).toBe(false);
    expect(check(grant, { ...request, tool: 'files_delete' }).ok).toBe(false);
    expect(check(grant, request, 'mallory').ok).toBe(false);
    expect(check(grantFor(orchestrator, now + 30_000, 'staging')).ok).toBe(false);
  });

  it('refuses a grant whose expiry was pushed later than what was signed', () => {
    expect(check({ ...grantFor(), expiresAt: now + 3_600_000 })).toMatchObject({ ok: false, reason: expect.stringContaining('does not match') });
  });

  it('refuses a missing grant and a malformed signature without throwing', () => {
    expect(check(undefined)).toEqual({ ok: false, reason: 'it carries no orchestrator signature' });
    expect(check({ ...grantFor(), signature: 'not-a-signature' }).ok).toBe(false);
  });
});

describe('checkGrant on undo requests', () => {
  const undo: ToolUndoRequest = {
    type: 'tool.undo', sessionId: 's-1', callId: 'call_1', tool: 'files_write', compensation: { path: 'report.md', previous: 'b2xk' }, deadline: now + 30_000, by: 'ada',
  };
  const grant = signGrant(orchestrator, undoStatement('prod', undo, 'ada', now + 30_000));
  const checkUndo = (on: ToolUndoRequest) => checkGrant(grant, (expiresAt) => undoStatement('prod', on, on.by ?? '', expiresAt), trusted, now);

  it('holds for the undo the orchestrator signed', () => {
    expect(checkUndo(undo).ok).toBe(true);
  });

  it('refuses it with a tampered compensation (what would be written back) or requester', () => {
    expect(checkUndo({ ...undo, compensation: { path: '../etc/passwd', previous: 'b2xk' } }).ok).toBe(false);
    expect(checkUndo({ ...undo, by: 'mallory' }).ok).toBe(false);
  });

  it('is not an approval: an approval grant does not sign an undo of the same call', () => {
    const approval = signGrant(orchestrator, approvalStatement('prod', { ...request, arguments: {} }, 'ada', now + 30_000));
    expect(checkGrant(approval, (expiresAt) => undoStatement('prod', undo, 'ada', expiresAt), trusted, now).ok).toBe(false);
  });
});
