import { fileURLToPath } from 'node:url';
import { startTestDeployment, type TestDeployment } from 'troupe/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cashier } from '../agents.ts';
import * as fx from '../tools/fx.ts';

const scripts = fileURLToPath(new URL('../scripts', import.meta.url));

// A real nats-server, the scripted model over HTTP, the fx pool and an orchestrator, all talking
// over NATS as they do in production: the session below is the one `troupe run` would start.
describe('the cashier', () => {
  let deployment: TestDeployment;
  beforeAll(async () => {
    deployment = await startTestDeployment({ domains: { fx: Object.values(fx) }, agents: [cashier], scripts: [scripts] });
  });
  afterAll(async () => await deployment?.stop());

  it('converts with the fx pool and answers with its figure', async () => {
    const finished = await deployment.run('Convert 100 EUR to USD');
    expect(finished.status).toBe('completed');
    expect(finished.output).toBe('100 EUR is 108 USD (rate 1.08).');
    expect(finished.toolCalls).toBe(1);
  });

  it('tells the model about a currency it does not know, as a failure it can act on', async () => {
    await expect(async () => await fx.convert.handler({ amount: 1, from: 'XXX', to: 'USD' }, {} as never))
      .rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('Unknown currency XXX') });
  });
});
