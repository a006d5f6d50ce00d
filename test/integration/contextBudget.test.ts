import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { defineAgent } from '../../agents/defineAgent.ts';
import { startSession } from '../../client/sessionClient.ts';
import { defineTool } from '../../tools/defineTool.ts';
import type { SessionEvent } from '../../transport/messages.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';

const namespace = testNamespace();

const window = 6_000;
const headroom = 1_000;

/** A page of 60 rows: about 1,400 tokens, so thirty of them are seven times the window. */
const bulkFetch = defineTool({
  name: 'bulk_fetch',
  description: 'Fetches one page of records.',
  input: z.object({ page: z.number().int().nonnegative() }),
  output: z.object({ page: z.number(), count: z.number(), rows: z.array(z.object({ id: z.number(), sku: z.string(), note: z.string() })) }),
  handler: ({ page }) => {
    const rows = Array.from({ length: 60 }, (_, i) => ({ id: page * 100 + i, sku: `SKU-${page}-${i}`, note: `record ${i} of page ${page}, in stock` }));
    return { page, count: rows.length, rows };
  },
});

interface SeenRequest {
  tokens: number;
  messages: Array<{ role: string; content?: string | null; tool_calls?: unknown[]; tool_call_id?: string }>;
  isSummary: boolean;
}

describe('a long session within a small context window', () => {
  let stack: InProcessStack;
  let worker: ToolWorker;
  let proxy: Server;
  const seen: SeenRequest[] = [];

  beforeAll(async () => {
    stack = await startInProcessStack();
    // Between the orchestrator and the model: what each request really held, counted independently.
    proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (req.url?.endsWith('/chat/completions')) {
          const parsed = JSON.parse(body.toString('utf8')) as { messages: SeenRequest['messages']; tools?: unknown[] };
          const text = parsed.messages.map((m) => `${m.content ?? ''}${JSON.stringify(m.tool_calls ?? '')}`).join('') + JSON.stringify(parsed.tools ?? '');
          seen.push({ tokens: countTokens(text), messages: parsed.messages, isSummary: String(parsed.messages[1]?.content ?? '').startsWith('Summarise the earlier turns') });
        }
        void fetch(`${stack.modelUrl.replace(/\/v1$/, '')}${req.url}`, { method: req.method ?? 'POST', headers: { 'content-type': 'application/json' }, body: body.length > 0 ? body : undefined })
          .then(async (answer) => {
            res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
            res.end(Buffer.from(await answer.arrayBuffer()));
          });
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    worker = await startWorker({ namespace, domain: 'bulk', tools: [bulkFetch], nats: await stack.connection('bulk') });
    await stack.startOrchestrator({
      agents: [defineAgent({
        name: 'reader', instructions: 'You read every page.', model: 'scripted-small',
        budgets: { maxSteps: 40, maxTotalTokens: 5_000_000, maxCostUsd: 50 },
        context: { outputHeadroomTokens: headroom, recentTurns: 2, summaryMaxTokens: 300 },
      })],
      models: { 'scripted-small': { contextWindow: window, tokenizer: 'o200k_base' } },
      largeResults: { maxBytes: 64_000 },
    }, `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/v1`);
  }, 60_000);

  afterAll(async () => {
    await worker?.stop();
    await stack?.stop();
    await new Promise((resolve) => proxy?.close(resolve));
  });

  it('completes thirty turns of large results, with summaries in place of old turns and every request under budget', async () => {
    const run = await startSession(await stack.connection('client'), { namespace, task: '[long-haul] Read all thirty pages.', agent: 'reader' });
    const events: SessionEvent[] = [];
    for await (const event of run.events) events.push(event);
    const finished = await run.finished;
    expect(finished.status, JSON.stringify(finished)).toBe('completed');
    expect(finished.output).toBe('Read 29 as the last of 30 pages; every page had 60 rows.');

    // Uncompressed, the transcript would hold every page: several windows' worth.
    const pages = events.filter((e) => e.type === 'tool.call.finished').map((e) => countTokens(JSON.stringify((e as { result: unknown }).result)));
    expect(pages).toHaveLength(30);
    expect(pages.reduce((a, b) => a + b, 0)).toBeGreaterThan(5 * window);

    // Every request the model received stayed under the window minus the headroom, counted by the proxy.
    const turns = seen.filter((r) => !r.isSummary);
    expect(turns).toHaveLength(31);
    for (const request of seen) expect(request.tokens, `${request.isSummary ? "summary" : "turn"} request of ${request.messages.length} messages`).toBeLessThanOrEqual(window - headroom);

    // Summaries took the place of old turns, written by calls of their own, and the model was told.
    const summaries = seen.filter((r) => r.isSummary);
    expect(summaries.length).toBeGreaterThan(0);
    const last = turns.at(-1) as SeenRequest;
    expect(last.messages.some((m) => m.role === 'user' && String(m.content).startsWith('Summary of turns 1 to'))).toBe(true);
    expect(last.messages.some((m) => m.role === 'user' && String(m.content).startsWith('Completed actions of the turns not shown in full:'))).toBe(true);
    // Old turns are in the summary, not in the request: fewer assistant messages than turns taken.
    expect(last.messages.filter((m) => m.role === 'assistant').length).toBeLessThan(30);
    // The system prompt and the task are always there, and every tool call still has its result.
    for (const request of turns) {
      expect(request.messages[0]).toMatchObject({ role: 'system', content: 'You read every page.' });
      expect(request.messages[1]).toMatchObject({ role: 'user', content: '[long-haul] Read all thirty pages.' });
      const calls = request.messages.flatMap((m) => (m.tool_calls ?? []) as Array<{ id: string }>).map((c) => c.id);
      const results = request.messages.filter((m) => m.role === 'tool').map((m) => m.tool_call_id);
      expect(results.sort()).toEqual(calls.sort());
    }

    // Each assembled context and each compression is an event, with its breakdown and what it removed.
    const assembled = events.filter((e) => e.type === 'context.assembled');
    expect(assembled).toHaveLength(31);
    for (const a of assembled) expect(a.breakdown.total).toBeLessThanOrEqual(a.breakdown.limit);
    const compressed = events.filter((e) => e.type === 'context.compressed').flatMap((e) => e.removed);
    expect(compressed.some((r) => r.kind === 'turns_summarised')).toBe(true);
    expect(compressed.some((r) => r.kind === 'tool_results_dropped')).toBe(true);
    // The summaries' tokens count toward the session's usage.
    const responded = events.filter((e) => e.type === 'model.responded').reduce((n, e) => n + e.usage.inputTokens, 0);
    expect(finished.usage.inputTokens).toBe(responded + summaries.length * 900);
  }, 120_000);
});
