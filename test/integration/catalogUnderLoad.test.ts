import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrchestrator, type Orchestrator } from '../../actors/orchestrator/orchestrator.ts';
import { startSession } from '../../client/sessionClient.ts';
import { defaultPriceTable } from '../../models/priceTable.ts';
import { silentLogger } from '../../observability/logger.ts';
import type { SessionEvent } from '../../transport/messages.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { eventually, processStartTimeoutMs, startTroupe, type TroupeProcess } from '../fixtures/troupeProcess.ts';

const inFlight = 500;

/**
 * Issue 15: with 500 sessions in flight, a pool alive all along missed discovery rounds (its process
 * too busy to answer in time), was dropped from the catalog, and sessions called the model without
 * its tool. Here discovery runs four times a second while 500 sessions of ten calculator steps each
 * run at once, and the calculator's only worker process stalls for three seconds mid-run (stopped,
 * as a long GC pause or a starved CPU would): every session must find the calculator at every step.
 */
describe('the tool catalog under load', () => {
  let stack: InProcessStack;
  let worker: TroupeProcess;
  let orchestrator: Orchestrator;

  beforeAll(async () => {
    stack = await startInProcessStack();
    worker = startTroupe(['worker', 'calc'], { NATS_URL: stack.natsServer.url, TROUPE_NAMESPACE: stack.namespace, TROUPE_TOOL_TIMEOUT_MS: '20000' });
    await eventually('the calculator worker ready', () => worker.output().includes('worker serving calc'), processStartTimeoutMs, [worker]);
    orchestrator = await startOrchestrator({
      nats: await stack.connection('orchestrator'), namespace: stack.namespace, defaultModel: 'scripted', discoveryIntervalMs: 250, logger: silentLogger(),
      model: { client: new OpenAI({ baseURL: stack.modelUrl, apiKey: 'test', maxRetries: 0 }), providerName: 'openai', prices: defaultPriceTable },
    });
    await orchestrator.catalog.waitFor(['calc_evaluate'], 10_000);
  }, 60_000);

  afterAll(async () => {
    await orchestrator?.stop({ graceMs: 0 });
    await worker?.stop();
    await stack?.stop();
  });

  it(`never loses a live pool's tool while ${inFlight} sessions run at once`, async () => {
    const client = await stack.connection('client');
    const runs = await Promise.all(Array.from({ length: inFlight }, () => startSession(client, { namespace: stack.namespace, task: '[catalog-under-load] add up', acceptTimeoutMs: 60_000 })));
    // Mid-run, the worker stops answering anything (discovery included) for longer than several rounds.
    const stalled = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      worker.child.kill('SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      worker.child.kill('SIGCONT');
    })();
    const outcomes = await Promise.all(runs.map(async (run) => {
      const refused: SessionEvent[] = [];
      for await (const event of run.events) if (event.type === 'tool.call.rejected' || (event.type === 'tool.call.finished' && event.status === 'error')) refused.push(event);
      return { finished: await run.finished, refused };
    }));
    await stalled;
    expect(outcomes.flatMap((o) => o.refused)).toEqual([]);
    expect(outcomes.filter((o) => o.finished.status !== 'completed' || o.finished.output !== 'done: 10').map((o) => o.finished)).toEqual([]);
  }, 300_000);
});
