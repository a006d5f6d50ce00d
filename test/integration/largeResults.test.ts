import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { startSession } from '../../client/sessionClient.ts';
import { defineTool } from '../../tools/defineTool.ts';
import type { SessionEvent } from '../../transport/messages.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';

const namespace = testNamespace();

describe('large tool results', () => {
  let stack: InProcessStack;
  let worker: ToolWorker;
  const bulkRows = defineTool({
    name: 'bulk_rows',
    description: 'Returns many rows.',
    input: z.object({ count: z.number().int().positive() }),
    output: z.object({ rows: z.array(z.object({ id: z.number(), label: z.string() })) }),
    handler: ({ count }) => ({ rows: Array.from({ length: count }, (_, id) => ({ id, label: `row number ${id}` })) }),
  });

  beforeAll(async () => {
    stack = await startInProcessStack();
    worker = await startWorker({ namespace, domain: 'bulk', tools: [bulkRows], nats: await stack.connection('worker-bulk') });
    await stack.startOrchestrator();
  });
  afterAll(async () => {
    await worker?.stop();
    await stack?.stop();
  });

  it('never hands the model ten thousand rows: it gets a summary and pages through the rest with results_fetch', async () => {
    const run = await startSession(await stack.connection('client'), { namespace, task: 'Please read ten thousand rows.' });
    const events: SessionEvent[] = [];
    for await (const event of run.events) events.push(event);
    const finished = await run.finished;
    expect(finished.status).toBe('completed');
    expect(finished.output).toMatch(/^summary of \d+ bytes, 10000 rows, 5 shown; page of 10000 starts at id 100$/);
    const big = events.find((e): e is Extract<SessionEvent, { type: 'tool.call.finished' }> => e.type === 'tool.call.finished' && e.tool === 'bulk_rows');
    expect(big).toMatchObject({ status: 'ok', summarised: true, result: { truncated: true, shape: expect.stringContaining('rows: array(10000) of object { id: number, label: string(') } });
    expect(JSON.stringify(big?.result).length).toBeLessThan(16_384);
    expect(JSON.stringify(events.at(-1)).length).toBeLessThan(16_384);
  });
});
