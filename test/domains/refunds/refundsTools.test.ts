import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { maxRefundCents, RefundRecord, refundsTools } from '../../../domains/refunds/refundsTools.ts';
import { notDone, type ToolDefinition } from '../../../tools/defineTool.ts';
import { callTool, toolContext, toolErrorOf as failure } from '../../fixtures/callTool.ts';

describe('refundsTools', () => {
  let root: string;
  let workspace: string;
  let tools: ToolDefinition[];
  let issue: ToolDefinition;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'troupe-refunds-test-'));
    // Created on first use by the tool, not here.
    workspace = join(root, 'workspace');
    tools = refundsTools({ workspace });
    issue = tools[0] as ToolDefinition;
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const refundFile = (orderId: number) => join(workspace, 'refunds', `order-${orderId}.json`);
  const recorded = async (orderId: number) => RefundRecord.parse(JSON.parse(await readFile(refundFile(orderId), 'utf8')));
  const issueAs = (callId: string, args: Record<string, unknown>) => callTool(tools, 'refunds_issue', args, { callId });
  /** Captures as a worker does before the handler, runs the call, and hands back the capture for an undo. */
  const issueUndoably = async (callId: string, args: Record<string, unknown>) => {
    const captured = await issue.compensation?.capture(issue.input.parse(args), toolContext({ callId }));
    const outcome = await issueAs(callId, args).then((refund: unknown) => ({ refund }), (error: unknown) => ({ error }));
    return { captured, ...outcome };
  };
  const undo = async (captured: unknown) => issue.compensation?.undo(captured, toolContext({ callId: 'rollback' }));

  it('defines refunds_issue alone, side-effecting, with an undo and a reconcile', () => {
    expect(tools.map((t) => [t.name, t.sideEffects])).toEqual([['refunds_issue', true]]);
    expect(issue.compensation).toBeDefined();
    expect(issue.reconcile).toBeDefined();
    expect(issue.description).toMatch(/once only/);
    expect(issue.description).toMatch(/in cents/);
  });

  it('records a refund in its own file under refunds/, with the call that issued it', async () => {
    const refund = await callTool(tools, 'refunds_issue', { orderId: 7, amountCents: 1999, reason: '  Arrived broken.  ' }, { callId: 'call-a', sessionId: 'session-a' });
    expect(refund).toEqual({ refundId: expect.stringMatching(/^rf_[0-9a-f]{16}$/), orderId: 7, amountCents: 1999, reason: 'Arrived broken.' });
    expect(await readdir(join(workspace, 'refunds'))).toEqual(['order-7.json']);
    expect(await recorded(7)).toEqual({ ...refund, callId: 'call-a', sessionId: 'session-a', issuedAt: expect.any(String) });
  });

  it('refuses a second refund of the same order, naming the refund already issued, and leaves it as it was', async () => {
    const first = await issueAs('call-a', { orderId: 7, amountCents: 1999, reason: 'Arrived broken.' });
    const before = await readFile(refundFile(7), 'utf8');
    const error = await failure(issueAs('call-b', { orderId: 7, amountCents: 500, reason: 'Late delivery.' }));
    expect(error.code).toBe('FORBIDDEN');
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(new RegExp(`^Order 7 was already refunded: ${first.refundId}, 1999 cents, issued .+ for "Arrived broken\\." \\(refunds/order-7\\.json\\)\\. An order is refunded once only, so nothing was issued`));
    expect(error.details).toMatchObject({ orderId: 7, refundId: first.refundId, amountCents: 1999 });
    expect(await readFile(refundFile(7), 'utf8')).toBe(before);
    // Another order is another refund.
    expect(await issueAs('call-c', { orderId: 8, amountCents: 500, reason: 'Late delivery.' })).toMatchObject({ orderId: 8 });
  });

  it('records exactly one refund when the same order is refunded by several calls at once', async () => {
    const outcomes = await Promise.all(
      ['call-a', 'call-b', 'call-c', 'call-d'].map((callId, i) =>
        issueAs(callId, { orderId: 7, amountCents: 100 * (i + 1), reason: `Attempt ${i + 1}.` }).then(
          (refund: { refundId: string }) => ({ refund, callId }),
          (error: unknown) => ({ error }),
        ),
      ),
    );
    const issued = outcomes.flatMap((o) => ('refund' in o ? [o] : []));
    expect(issued).toHaveLength(1);
    for (const o of outcomes) if ('error' in o) expect(o.error).toMatchObject({ code: 'FORBIDDEN', message: expect.stringMatching(/^Order 7 (was already refunded|already has a refund being recorded)/) });
    expect(await recorded(7)).toMatchObject({ refundId: issued[0]?.refund.refundId, callId: issued[0]?.callId });
  });

  it('answers a retry of the same call with its refund, not a refusal and not a second refund', async () => {
    const first = await issueAs('call-a', { orderId: 7, amountCents: 1999, reason: 'Arrived broken.' });
    expect(await issueAs('call-a', { orderId: 7, amountCents: 1999, reason: 'Arrived broken.' })).toEqual(first);
    expect((await recorded(7)).refundId).toBe(first.refundId);
  });

  it("undoes its own refund, and never another call's", async () => {
    const a = await issueUndoably('call-a', { orderId: 7, amountCents: 1999, reason: 'Arrived broken.' });
    expect(a.captured).toEqual({ orderId: 7, callId: 'call-a' });
    // A refused call's undo leaves the refund it was refused for.
    const b = await issueUndoably('call-b', { orderId: 7, amountCents: 500, reason: 'Late delivery.' });
    expect(b).toMatchObject({ error: { code: 'FORBIDDEN' } });
    await undo(b.captured);
    expect((await recorded(7)).callId).toBe('call-a');

    await undo(a.captured);
    await expect(readFile(refundFile(7))).rejects.toMatchObject({ code: 'ENOENT' });

    // Refunded again by another call: a late second undo of the first leaves the new refund alone.
    const c = await issueUndoably('call-c', { orderId: 7, amountCents: 1500, reason: 'Arrived broken, second look.' });
    await undo(a.captured);
    expect(await recorded(7)).toMatchObject({ callId: 'call-c', refundId: (c as { refund: { refundId: string } }).refund.refundId });
    // Nothing recorded is nothing to undo.
    await undo({ orderId: 9, callId: 'call-z' });
  });

  it('refuses over a record cut short, and neither its undo nor its reconcile guesses whose it is', async () => {
    await mkdir(join(workspace, 'refunds'), { recursive: true });
    await writeFile(refundFile(7), '{"refundId": "rf_');
    const error = await failure(issueAs('call-a', { orderId: 7, amountCents: 1999, reason: 'Arrived broken.' }));
    expect(error.code).toBe('FORBIDDEN');
    expect(error.message).toBe('Order 7 already has a refund being recorded by another call (refunds/order-7.json). An order is refunded once only, so nothing was issued; do not issue another.');
    expect(await failure(Promise.resolve().then(() => undo({ orderId: 7, callId: 'call-a' })))).toMatchObject({ code: 'INTERNAL', retryable: false });
    await expect(Promise.resolve().then(() => issue.reconcile?.({ orderId: 7, amountCents: 1999, reason: 'Arrived broken.' }, toolContext({ callId: 'call-a' })))).rejects.toThrow(/not a whole refund record/);
    expect(await readFile(refundFile(7), 'utf8')).toBe('{"refundId": "rf_');
  });

  it("reconciles a call whose worker died: its refund when it recorded one, not done when nothing or another call's is there", async () => {
    const args = { orderId: 7, amountCents: 1999, reason: 'Arrived broken.' };
    const reconcile = (callId: string) => Promise.resolve(issue.reconcile?.(args, toolContext({ callId })));
    expect(await reconcile('call-a')).toBe(notDone);
    const refund = await issueAs('call-a', args);
    expect(await reconcile('call-a')).toEqual(refund);
    expect(await reconcile('call-b')).toBe(notDone);
  });

  it('refuses bad input by its schema, before anything is written', async () => {
    const good = { orderId: 7, amountCents: 1999, reason: 'Arrived broken.' };
    const refusedAt = (args: Record<string, unknown>) => issue.input.safeParse({ ...good, ...args }).error?.issues.map((i) => i.path.join('.'));
    for (const orderId of [0, -3, 1.5, '7', undefined]) expect(refusedAt({ orderId }), String(orderId)).toEqual(['orderId']);
    for (const amountCents of [0, -100, 19.99, maxRefundCents + 1, '1999']) expect(refusedAt({ amountCents }), String(amountCents)).toEqual(['amountCents']);
    for (const reason of ['', '   ', 'x'.repeat(501), undefined]) expect(refusedAt({ reason }), String(reason)).toEqual(['reason']);
    expect(refusedAt({ amountCents: maxRefundCents, reason: 'x'.repeat(500) })).toBeUndefined();
    await expect(issueAs('call-a', { ...good, orderId: 0 })).rejects.toThrow();
    await expect(readdir(workspace)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses to record through a refunds directory that links outside the workspace', async () => {
    const outside = join(root, 'outside');
    await mkdir(outside);
    await mkdir(workspace);
    await symlink(outside, join(workspace, 'refunds'));
    const error = await failure(issueAs('call-a', { orderId: 7, amountCents: 1999, reason: 'Arrived broken.' }));
    expect(error.code).toBe('FORBIDDEN');
    expect(await readdir(outside)).toEqual([]);
  });
});
