import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { defineAgent } from '../agents/defineAgent.ts';
import { defineTool, type ToolDefinition } from '../tools/defineTool.ts';

/** Tool steps of a `steps` or `writes` session; one more model turn answers. */
export const stepsPerSession = 10;

/** The tasks the bench's scripts answer, each matched by the scripted model on the user message. */
export const BenchTask = {
  /** {@link stepsPerSession} calls of `bench_noop`, then an answer. */
  steps: 'bench steps',
  /** The same with `bench_write`, the same tool declared with side effects. */
  writes: 'bench writes',
  /** The soak's session: one `bench_noop`, one `bench_write`, then an answer. */
  soak: 'bench soak',
  /** One `bench_hold` call, parked until {@link releaseHeld}. */
  hold: 'bench hold',
  /** One delegation to the `benchy` specialist. */
  delegate: 'bench delegate',
  /** One `bench_write` call, which a deployment requiring approval for it parks until a person decides. */
  approve: 'bench approve',
} as const;

let release: () => void = () => {};
let held = new Promise<void>((resolve) => (release = resolve));

/** Lets every parked `bench_hold` call finish; later calls park again. */
export function releaseHeld(): void {
  release();
  held = new Promise<void>((resolve) => (release = resolve));
}

const echo = { input: z.object({ i: z.number() }), output: z.object({ i: z.number() }), handler: ({ i }: { i: number }) => ({ i }) };

/** The `bench` pool's tools: a no-op, the same no-op with side effects, and one that waits for the bench. */
export function benchTools(): ToolDefinition[] {
  return [
    defineTool({ name: 'bench_noop', description: 'Does nothing.', ...echo }),
    // Nothing happens outside the worker, but the declaration is what Troupe acts on: outcomes
    // recorded in KV so a retry never runs it twice, and (issue 13) a checkpoint written before dispatch.
    defineTool({ name: 'bench_write', description: 'Does nothing, declared as a write.', ...echo, sideEffects: true }),
    defineTool({
      name: 'bench_hold', description: 'Waits until the benchmark releases it.', input: z.object({}), output: z.object({}), timeoutMs: 120_000,
      handler: async () => {
        await held;
        return {};
      },
    }),
  ];
}

/** The tasks of sessions of 10, 30 and 100 `bench_noop` steps (then an answer), by their tool steps. */
export const lengthTasks: Readonly<Record<number, string>> = { 10: BenchTask.steps, 30: 'bench thirty steps', 100: 'bench hundred steps' };

/** The agent every bench session runs; budgets far above what a session needs. */
export const benchAgent = defineAgent({ name: 'bench', instructions: 'bench', budgets: { maxSteps: 200, maxTotalTokens: 100_000_000, maxCostUsd: 1_000, maxWallClockMs: 600_000 } });

const toolSteps = (tool: string, count: number) =>
  Array.from({ length: count }, (_, i) => ({ toolCalls: [{ id: `c${i}`, name: tool, arguments: { i } }] }));

/** Writes the scripted model's trajectories for {@link BenchTask} into `dir`. */
export function writeBenchScripts(dir: string): void {
  const script = (file: string, name: string, task: string, steps: unknown[]) =>
    writeFileSync(join(dir, file), JSON.stringify({ name, match: { userIncludes: task }, steps }));
  script('steps.json', 'bench-steps', BenchTask.steps, [...toolSteps('bench_noop', stepsPerSession), { content: 'done' }]);
  for (const [steps, task] of Object.entries(lengthTasks)) {
    if (task !== BenchTask.steps) script(`steps-${steps}.json`, `bench-steps-${steps}`, task, [...toolSteps('bench_noop', Number(steps)), { content: 'done' }]);
  }
  script('writes.json', 'bench-writes', BenchTask.writes, [...toolSteps('bench_write', stepsPerSession), { content: 'done' }]);
  script('soak.json', 'bench-soak', BenchTask.soak, [
    { toolCalls: [{ id: 'r', name: 'bench_noop', arguments: { i: 1 } }] },
    { toolCalls: [{ id: 'w', name: 'bench_write', arguments: { i: 2 } }] },
    { content: 'done' },
  ]);
  script('approve.json', 'bench-approve', BenchTask.approve, [{ toolCalls: [{ id: 'a', name: 'bench_write', arguments: { i: 3 } }] }, { content: 'approved' }]);
  script('hold.json', 'bench-hold', BenchTask.hold, [{ toolCalls: [{ id: 'h', name: 'bench_hold', arguments: {} }] }, { content: 'released' }]);
  script('delegate.json', 'bench-delegate', BenchTask.delegate, [
    { toolCalls: [{ id: 'd', name: 'delegate_benchy', arguments: { task: 'bench specialist' } }] }, { content: 'delegated' },
  ]);
  script('specialist.json', 'bench-specialist', 'bench specialist', [{ content: 'ok' }]);
}
