import { beforeAll, describe, expect, it } from 'vitest';
import { refundDeskAgent } from '../../agents/refundDesk.ts';
import type { SessionWorkflow, StatechartGraph } from '../../console/consoleApi.ts';
import { sessionWorkflowOf, workflowGraphOf } from '../../console/server/sessionWorkflow.ts';
import { layOutStatechart, type TransitionShape } from '../../console/app/src/statechartLayout.ts';
import type { StatechartMarks } from '../../console/app/src/statechartMarks.ts';
import { workflowMarks } from '../../console/app/src/workflowMarks.ts';
import { WorkflowDefinition } from '../../machines/workflowDefinition.ts';
import type { SessionPhase } from '../../machines/workflowSteps.ts';

// The marks use the transitions as laid out (merged between the same two phases), not where they are drawn: no ELK needed.
const transitionsOf = async (g: StatechartGraph) => (await layOutStatechart(g, async (elkGraph) => elkGraph, (text) => text.length * 7)).transitions;
const arrows = (ids: Set<string>, transitions: readonly TransitionShape[]) => transitions.filter((t) => ids.has(t.id)).map((t) => `${t.source}→${t.target}`).sort();
const sorted = (ids: Set<string>) => [...ids].sort();

const refundDesk = refundDeskAgent.workflow!;
const phaseAt = (value: SessionPhase['value'], path: SessionPhase['path'], pendingExit: SessionPhase['pendingExit'] = null): SessionPhase =>
  ({ value, enteredAt: { turn: 0, ledgerIndex: 0, costUsd: 0 }, path, pendingExit });
const toInvestigate = { turn: 2, from: ['triage'], to: ['investigate'], trigger: 'choice' as const, detail: 'Order 1002 exists.' };
const toPropose = { turn: 5, from: ['investigate'], to: ['propose'], trigger: 'choice' as const };

describe('workflowMarks', () => {
  let transitions: TransitionShape[];
  let graph: StatechartGraph;
  beforeAll(async () => {
    graph = workflowGraphOf(refundDesk);
    transitions = await transitionsOf(graph);
  });
  const marksOf = (phase: SessionPhase): StatechartMarks => workflowMarks(graph, transitions, sessionWorkflowOf(refundDesk, phase) as SessionWorkflow);

  it('lights the phase the session waits in, marks the phases it went through and the moves it took, and the exit that waits', () => {
    const marks = marksOf(phaseAt('propose', [toInvestigate, toPropose], { to: 'execute', reason: 'written', turn: 7 }));

    expect(sorted(marks.active)).toEqual(['propose']);
    expect(sorted(marks.visited)).toEqual(['investigate', 'propose', 'triage', 'workflow']);
    expect(arrows(marks.taken, transitions)).toEqual(['investigate→propose', 'triage→investigate']);
    expect(arrows(marks.waiting.transitions, transitions)).toEqual(['propose→execute']);
    expect(sorted(marks.waiting.states)).toEqual(['execute']);
  });

  it('marks where a session starts before it has moved, and nothing waiting', () => {
    const marks = marksOf(phaseAt('triage', []));

    expect(sorted(marks.visited)).toEqual(['triage', 'workflow']);
    expect(marks.taken.size).toBe(0);
    expect(marks.waiting.transitions.size + marks.waiting.states.size).toBe(0);
  });

  it('marks a guard’s move back and a tool’s move on, each on its own arrow', () => {
    const back = { turn: 6, from: ['investigate'], to: ['triage'], trigger: 'guard' as const };
    const marks = marksOf(phaseAt('report', [
      toInvestigate, back, { ...toInvestigate, turn: 8 }, { ...toPropose, turn: 9 },
      { turn: 10, from: ['propose'], to: ['execute'], trigger: 'approval', by: 'ana', detail: 'written' },
      { turn: 11, from: ['execute'], to: ['report'], trigger: 'tool', detail: 'refunds_issue' },
    ]));

    expect(arrows(marks.taken, transitions)).toEqual(['execute→report', 'investigate→propose', 'investigate→triage', 'propose→execute', 'triage→investigate']);
    expect(sorted(marks.active)).toEqual(['report']);
  });

  it('takes a move from the innermost phase that has the arrow, by its trigger, and ignores phases the graph does not know', async () => {
    const nested = WorkflowDefinition.parse({
      initial: 'work',
      states: {
        work: {
          initial: 'draft',
          states: { draft: { on: { next_phase: 'done', 'tool.files_write': 'done' } } },
          on: { next_phase: 'done' },
        },
        done: { answer: true },
      },
    });
    const nestedGraph = workflowGraphOf(nested);
    const nestedTransitions = await transitionsOf(nestedGraph);
    const workflow = sessionWorkflowOf(nested, phaseAt('done', [
      { turn: 1, from: ['work', 'draft'], to: ['done'], trigger: 'choice' },
      { turn: 2, from: ['gone'], to: ['done'], trigger: 'choice' },
    ]))!;

    const marks = workflowMarks(nestedGraph, nestedTransitions, workflow);

    const taken = nestedTransitions.filter((t) => marks.taken.has(t.id));
    expect(taken.map((t) => [t.source, t.target, t.events])).toEqual([['draft', 'done', ['next_phase', 'tool.files_write']]]);
    expect(sorted(marks.visited)).toEqual(['done', 'draft', 'work', 'workflow']);
  });
});
