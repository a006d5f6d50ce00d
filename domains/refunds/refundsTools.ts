import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as z from 'zod';
import { defineTool, notDone, type ToolDefinition } from '../../tools/defineTool.ts';
import { ToolError, ToolFailureCode } from '../../tools/toolFailure.ts';
import { resolveInWorkspace, type SandboxedPath } from '../files/sandbox.ts';

/** The largest refund `refunds_issue` records, in cents (10 000.00): a larger one is a person's decision. */
export const maxRefundCents = 1_000_000;

/** The refund desk's one side-effecting tool. */
export const refundsToolName = 'refunds_issue';

export interface RefundsToolsOptions {
  /** Directory refunds are recorded in, under `refunds/`: the workspace the `files` domain writes to. */
  workspace: string;
}

/**
 * A refund as its file records it. `callId` names the call that issued it: an undo removes only
 * its own call's refund, and a retry of that call finds its refund instead of a refusal.
 */
export const RefundRecord = z.object({
  refundId: z.string(),
  orderId: z.number().int().positive(),
  amountCents: z.number().int().positive(),
  reason: z.string(),
  callId: z.string(),
  sessionId: z.string(),
  issuedAt: z.iso.datetime(),
});
export type RefundRecord = z.infer<typeof RefundRecord>;

/** What undoing a refunds_issue needs: the order, and the call whose refund may be removed. */
const IssueUndo = z.object({ orderId: z.number().int().positive(), callId: z.string() });
type IssueUndo = z.infer<typeof IssueUndo>;

const Refund = z.object({
  refundId: z.string(),
  orderId: z.number().int().positive(),
  amountCents: z.number().int().positive(),
  reason: z.string(),
});
type Refund = z.infer<typeof Refund>;

/** Where an order's one refund is recorded, relative to the workspace. */
export const refundFileOf = (orderId: number): string => `refunds/order-${orderId}.json`;

// The order id is an integer, so the path cannot climb out; the sandbox still refuses a `refunds`
// that is a symbolic link to somewhere outside the workspace.
const refundFile = (workspace: string, orderId: number): Promise<SandboxedPath> => resolveInWorkspace(workspace, refundFileOf(orderId));

/**
 * The refund recorded at `file`: `missing` when there is none, `incomplete` when the file is there
 * but not a whole record (another call is writing it right now, or a worker died while writing it).
 */
async function recordedRefund(file: string): Promise<RefundRecord | 'missing' | 'incomplete'> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw error;
  }
  try {
    const parsed = RefundRecord.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : 'incomplete';
  } catch {
    return 'incomplete';
  }
}

const refundOf = ({ refundId, orderId, amountCents, reason }: RefundRecord): Refund => ({ refundId, orderId, amountCents, reason });

function alreadyRefunded(orderId: number, file: string, existing: RefundRecord | 'incomplete'): ToolError {
  if (existing === 'incomplete') {
    return new ToolError(
      ToolFailureCode.FORBIDDEN,
      `Order ${orderId} already has a refund being recorded by another call (${file}). An order is refunded once only, so nothing was issued; do not issue another.`,
      { details: { orderId, file } },
    );
  }
  return new ToolError(
    ToolFailureCode.FORBIDDEN,
    `Order ${orderId} was already refunded: ${existing.refundId}, ${existing.amountCents} cents, issued ${existing.issuedAt} for "${existing.reason}" (${file}). ` +
      'An order is refunded once only, so nothing was issued; report the existing refund instead.',
    { details: { orderId, file, refundId: existing.refundId, amountCents: existing.amountCents, issuedAt: existing.issuedAt } },
  );
}

/**
 * The `refunds` domain: `refunds_issue`, the one side-effecting step of a refund desk. Each refund
 * is its own file, `refunds/order-<orderId>.json` in the workspace, created exclusively: pool
 * members in different processes sharing the workspace can never refund one order twice.
 */
export function refundsTools(options: RefundsToolsOptions): ToolDefinition[] {
  const { workspace } = options;

  const issue = defineTool({
    name: refundsToolName,
    description:
      'Issues a refund for an order and records it. An order is refunded once only: a second refund of the same order is refused ' +
      'with the refund already issued, so call this once per order, after deciding the amount. ' +
      `amountCents is in cents (1999 is 19.99), at most ${maxRefundCents} (10 000.00).`,
    input: z.object({
      orderId: z.number().int().positive().describe('The id of the order to refund.'),
      amountCents: z.number().int().positive().max(maxRefundCents).describe(`The amount to refund, in cents (1999 is 19.99); at most ${maxRefundCents}.`),
      reason: z.string().trim().min(1).max(500).describe('Why the order is refunded, in a sentence kept with the refund.'),
    }),
    output: Refund,
    sideEffects: true,
    handler: async ({ orderId, amountCents, reason }, { callId, sessionId }) => {
      const target = await refundFile(workspace, orderId);
      await mkdir(dirname(target.absolute), { recursive: true });
      const refund: Refund = { refundId: `rf_${randomBytes(8).toString('hex')}`, orderId, amountCents, reason };
      const record: RefundRecord = { ...refund, callId, sessionId, issuedAt: new Date().toISOString() };
      try {
        // 'wx' fails when the file exists: whichever call creates it issued the order's refund.
        // Not aborted at the deadline: a record cut short would block the order without saying by what.
        await writeFile(target.absolute, `${JSON.stringify(record, null, 2)}\n`, { encoding: 'utf8', flag: 'wx' });
        return refund;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const existing = await recordedRefund(target.absolute);
      if (existing === 'missing') {
        throw new ToolError(ToolFailureCode.INTERNAL, `Order ${orderId}'s refund record was removed (an undo) just as this refund was issued; nothing was issued. Try again.`);
      }
      // A retry of a call whose earlier attempt got as far as recording: that refund, not a second one.
      if (existing !== 'incomplete' && existing.callId === callId) return refundOf(existing);
      throw alreadyRefunded(orderId, target.relative, existing);
    },
    // Undo: the order's refund file goes, but only when this call recorded it; a refused call's undo,
    // or a late one after the order was refunded again, leaves the other refund alone.
    compensation: {
      capture: ({ orderId }, { callId }) => ({ orderId, callId }) satisfies IssueUndo,
      undo: async (captured) => {
        const { orderId, callId } = IssueUndo.parse(captured);
        const target = await refundFile(workspace, orderId);
        const existing = await recordedRefund(target.absolute);
        if (existing === 'incomplete') {
          throw new ToolError(
            ToolFailureCode.INTERNAL,
            `${target.relative} is not a whole refund record, so whose refund it is cannot be told; it was left for a person to check.`,
            { retryable: false },
          );
        }
        if (existing !== 'missing' && existing.callId === callId) await rm(target.absolute, { force: true });
      },
    },
    // A worker that died mid-call either recorded the refund under this call's id or did not.
    reconcile: async ({ orderId }, { callId }) => {
      const target = await refundFile(workspace, orderId);
      const existing = await recordedRefund(target.absolute);
      if (existing === 'incomplete') throw new Error(`${target.relative} is not a whole refund record; whether this call wrote it cannot be told.`);
      // Another call's refund means this one did not take effect; running it is refused with that refund.
      return existing !== 'missing' && existing.callId === callId ? refundOf(existing) : notDone;
    },
  });

  return [issue];
}
