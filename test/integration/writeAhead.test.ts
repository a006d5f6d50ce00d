import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import { CheckpointStore, type Checkpoint } from '../../actors/durability/checkpointStore.ts';
import { SessionLeases } from '../../actors/durability/sessionLeases.ts';
import { hostSession } from '../../actors/session/sessionHost.ts';
import { openSessionRuntime, type SessionRuntime } from '../../actors/session/sessionRuntime.ts';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { defineAgent } from '../../agents/defineAgent.ts';
import { defaultPriceTable } from '../../models/priceTable.ts';
import { silentLogger } from '../../observability/logger.ts';
import { defineTool } from '../../tools/defineTool.ts';
import { wireNames } from '../../transport/subjects.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { EffectLedger } from '../fixtures/ledger/effectLedger.ts';
import { ledgerPost } from '../fixtures/ledger/ledgerTools.ts';

/**
 * The window between a side-effecting call leaving and the checkpoint that records it landing: a
 * host that dies there used to be resumed from the step before, ask the model again, and run the
 * effect a second time under a new call id.
 */
describe('write-ahead tool calls', () => {
  let stack: InProcessStack;
  let runtime: SessionRuntime;
  let worker: ToolWorker;
  let checkpoints: CheckpointStore;
  let leases: SessionLeases;
  let ledger: EffectLedger;
  /** For each execution, whether the session's stored checkpoint already named the call. */
  const recordedBeforeRunning: boolean[] = [];
  const agent = defineAgent({ name: 'bookkeeper', instructions: 'You post amounts.' });

  beforeAll(async () => {
    stack = await startInProcessStack();
    const names = wireNames(stack.namespace);
    process.env.TROUPE_TEST_LEDGER = join(mkdtempSync(join(tmpdir(), 'troupe-ledger-')), 'effects.sqlite');
    ledger = new EffectLedger(process.env.TROUPE_TEST_LEDGER);
    const nc = await stack.connection('write-ahead');
    checkpoints = await CheckpointStore.open(nc, names);
    leases = await SessionLeases.open(nc, names, { ttlMs: 60_000 });
    const observedPost = defineTool({
      ...ledgerPost, name: 'ledger_post', sideEffects: true,
      handler: async (input, context) => {
        const stored = (await checkpoints.read(context.sessionId))?.checkpoint;
        recordedBeforeRunning.push(stored?.inFlightToolCalls.some((c) => c.callId === context.callId) ?? false);
        return ledgerPost.handler(input, context);
      },
    });
    worker = await startWorker({ domain: 'ledger', tools: [observedPost], nats: nc, namespace: stack.namespace });
    runtime = await openSessionRuntime({
      nats: nc, namespace: stack.namespace, defaultModel: 'scripted', discoveryIntervalMs: 60_000,
      model: { client: new OpenAI({ baseURL: stack.modelUrl, apiKey: 'test', maxRetries: 0 }), providerName: 'openai', prices: defaultPriceTable },
    }, silentLogger());
    await runtime.catalog.waitFor(['ledger_post'], 10_000);
  }, 60_000);

  afterAll(async () => {
    await worker?.stop();
    await runtime?.stop();
    await stack?.stop();
    ledger?.close();
  });

  it('sends a side-effecting call only after its checkpoint is stored, so a host dying in between never runs the effect twice', async () => {
    const sessionId = randomUUID();
    const task = `[ledger-post] write-ahead ${sessionId}`;
    // The first host dies while the checkpoint naming the call is being written: that write, and any after it, never lands.
    let died: ((error: Error) => void) | undefined;
    let dead = false;
    const dying = new Proxy(checkpoints, {
      get(target, property, receiver) {
        if (property === 'update') {
          return (checkpoint: Checkpoint, revision: number) => {
            if (dead) return Promise.reject(new Error('the host is dead'));
            if (checkpoint.inFlightToolCalls.length > 0) return new Promise<number>((_, reject) => (died = reject));
            return target.update(checkpoint, revision);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const first = hostSession({ ...runtime.hosting, durability: { checkpoints: dying, leases, owner: 'first-host' } }, {
      kind: 'new', sessionId, task, agent, budgets: agent.budgets, parent: ROOT_CONTEXT, depth: 0, delegationDepthLeft: 0,
      lease: (await leases.acquire(sessionId, 'first-host'))!,
    });
    await waitFor(first.actor, (s) => s.matches('running_tools'));
    await expect.poll(() => died !== undefined).toBe(true);
    // Room for a call sent ahead of its checkpoint to reach the worker, as it did before write-ahead.
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The crash: the host's actor stops where it is, its writes fail, and its lease is gone for another host to take.
    dead = true;
    first.actor.stop();
    died?.(new Error('the host is dead'));
    await leases.end(sessionId);

    const stored = await checkpoints.read(sessionId);
    expect(stored?.checkpoint.inFlightToolCalls).toEqual([]);
    const second = hostSession({ ...runtime.hosting, durability: { checkpoints, leases, owner: 'second-host' } }, {
      kind: 'resume', checkpoint: stored!.checkpoint, revision: stored!.revision, agent,
      lease: (await leases.acquire(sessionId, 'second-host'))!,
    });
    expect(await second.finished).toMatchObject({ status: 'completed', output: `posted ${task} / post` });
    await second.ended;
    expect(ledger.counts().get(`${task} / post`)).toBe(1);
    expect(recordedBeforeRunning).toEqual([true]);
  }, 60_000);
});
