import { createUser } from '@nats-io/nkeys';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { approvalRefusal, undoRefusal, type CallAuthority } from '../../../actors/worker/callAuthorization.ts';
import { toolsRequiringApproval } from '../../../actors/toolCalls/toolCallTriage.ts';
import { defineTool, type ToolDefinition } from '../../../tools/defineTool.ts';
import { approvalStatement, signGrant, undoStatement } from '../../../transport/callGrants.ts';
import type { ToolRequest, ToolUndoRequest } from '../../../transport/messages.ts';
import { statementSigner } from '../../../transport/signatures.ts';

const orchestrator = statementSigner(createUser().getSeed());
const tool = (requiresApproval: boolean) => defineTool({
  name: 'files_write', description: 'Writes.', input: z.object({ path: z.string() }), output: z.object({}), requiresApproval, handler: () => ({}),
}) as unknown as ToolDefinition;
const now = Date.now();
const call = (approval?: ToolRequest['approval']): ToolRequest => ({
  type: 'tool.request', sessionId: 's-1', callId: 'c-1', tool: 'files_write', arguments: { path: 'a.txt' }, deadline: now + 10_000, ...(approval ? { approval } : {}),
});
const signed = (request: ToolRequest, by = 'ada', expiresAt = now + 10_000): ToolRequest => ({
  ...request, approval: { by, at: '', grant: signGrant(orchestrator, approvalStatement('prod', request, by, expiresAt)) },
});
const trusting: CallAuthority = { namespace: 'prod', trustedOrchestrators: new Set([orchestrator.publicKey]) };
const trustingNoOne: CallAuthority = { namespace: 'prod', trustedOrchestrators: new Set() };

describe('approvalRefusal', () => {
  it('lets a call that needs no approval run as it is', () => {
    expect(approvalRefusal(tool(false), call(), trusting, now)).toBeUndefined();
  });

  it('needs an approval for a tool that requires one, and for a call the deployment\'s policy names', () => {
    expect(approvalRefusal(tool(true), call(), trustingNoOne, now)).toMatchObject({ code: 'FORBIDDEN', message: 'files_write runs only with a person\'s approval, and this call carries none.' });
    const policy: CallAuthority = { ...trustingNoOne, approvalPolicy: toolsRequiringApproval(['files_*']) };
    expect(approvalRefusal(tool(false), call(), policy, now)).toMatchObject({ code: 'FORBIDDEN' });
  });

  it('takes an unsigned approval at its word only where no orchestrator key is trusted', () => {
    expect(approvalRefusal(tool(true), call({ by: 'ada', at: '' }), trustingNoOne, now)).toBeUndefined();
    expect(approvalRefusal(tool(true), call({ by: 'ada', at: '' }), trusting, now)).toMatchObject({ code: 'FORBIDDEN', message: expect.stringContaining('carries no orchestrator signature') });
  });

  it('runs a call a trusted orchestrator signed, and refuses it expired, tampered or approved by someone else', () => {
    expect(approvalRefusal(tool(true), signed(call()), trusting, now)).toBeUndefined();
    expect(approvalRefusal(tool(true), signed(call(), 'ada', now - 1), trusting, now)).toMatchObject({ message: expect.stringContaining('expired') });
    const tampered = signed(call());
    expect(approvalRefusal(tool(true), { ...tampered, arguments: { path: '../../etc/passwd' } }, trusting, now)).toMatchObject({ message: expect.stringContaining('does not match') });
    const renamed = signed(call());
    expect(approvalRefusal(tool(true), { ...renamed, approval: { ...(renamed.approval as NonNullable<ToolRequest['approval']>), by: 'mallory' } }, trusting, now)).toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe('undoRefusal', () => {
  const undo: ToolUndoRequest = { type: 'tool.undo', sessionId: 's-1', callId: 'c-1', tool: 'files_write', compensation: { ref: 'x' }, deadline: now + 10_000, by: 'ada' };
  it('runs any undo where no orchestrator key is trusted, and only a signed one where one is', () => {
    expect(undoRefusal('files_write', undo, trustingNoOne, now)).toBeUndefined();
    expect(undoRefusal('files_write', undo, trusting, now)).toMatchObject({ code: 'FORBIDDEN', message: expect.stringContaining('carries no orchestrator signature') });
    const grant = signGrant(orchestrator, undoStatement('prod', undo, 'ada', now + 10_000));
    expect(undoRefusal('files_write', { ...undo, grant }, trusting, now)).toBeUndefined();
    expect(undoRefusal('files_write', { ...undo, grant, compensation: { ref: 'y' } }, trusting, now)).toMatchObject({ code: 'FORBIDDEN' });
  });
});
