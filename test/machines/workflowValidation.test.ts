import { describe, expect, it } from 'vitest';
import { WorkflowDefinition, type WorkflowSpec } from '../../machines/workflowDefinition.ts';
import { workflowProblems } from '../../machines/workflowValidation.ts';

/** The refund desk of the examples: triage → investigate → propose → execute → report. */
const refundDesk: WorkflowSpec = {
  initial: 'triage',
  states: {
    triage: { instructions: 'Read the order and the customer.', tools: ['db_query'], on: { next_phase: 'investigate' } },
    investigate: {
      tools: ['db_query', 'calc_*'],
      on: { next_phase: 'propose' },
      always: [{ target: 'escalate', guard: { type: 'failedCalls', atLeast: 3 } }],
    },
    propose: { tools: ['files_write'], on: { next_phase: [{ target: 'execute', requiresApproval: true }, 'report'] } },
    execute: { tools: ['refunds_issue'], on: { 'tool.refunds_issue': 'report' } },
    report: { tools: [], answer: true },
    escalate: { tools: [], answer: true },
  },
};

const problemsOf = (spec: WorkflowSpec, agentTools?: string[]) => workflowProblems(WorkflowDefinition.parse(spec), agentTools);

describe('workflow definitions', () => {
  it('accepts the refund desk, with transitions written short or in full', () => {
    const parsed = WorkflowDefinition.parse(refundDesk);
    expect(parsed.states.propose?.on?.next_phase).toEqual([{ target: 'execute', requiresApproval: true }, { target: 'report' }]);
    expect(parsed.states.triage?.on?.next_phase).toEqual([{ target: 'investigate' }]);
    expect(workflowProblems(parsed, ['db_*', 'calc_*', 'files_write', 'refunds_issue'])).toEqual([]);
  });

  it('refuses what cannot be a workflow before checking it: unknown fields, triggers and guard kinds, bad names', () => {
    const bad = (spec: unknown) => WorkflowDefinition.safeParse(spec).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(bad({ initial: 'a', states: { a: { answer: true, tool: ['x'] } } })).toEqual([expect.stringMatching(/^states\.a: Unrecognized key: "tool"/)]);
    expect(bad({ initial: 'a', states: { a: { answer: true, on: { done: 'a' } } } })).toEqual(['states.a.on.done: "done" is not a trigger: next_phase (the model chooses) or tool.<tool name> (that call succeeded)']);
    expect(bad({ initial: 'a', states: { a: { answer: true, always: [{ target: 'a', guard: { type: 'sometimes' } }] } } })).not.toEqual([]);
    expect(bad({ initial: 'A', states: { A: { answer: true } } })).toEqual(expect.arrayContaining([expect.stringMatching(/a phase name/)]));
    expect(bad({ initial: 'a', states: {} })).toEqual(['states: a workflow needs at least one phase']);
  });

  it('names the phase of every problem: targets, initial phases, reachability, ways out, guards, tools', () => {
    expect(problemsOf({
      initial: 'triage',
      states: {
        triage: { tools: ['db_query'], on: { next_phase: 'exeucte', 'tool.files_write': 'report' } },
        report: { answer: true, always: ['triage'] },
        audit: { tools: ['db_query'], on: { next_phase: 'report' } },
        stuck: { tools: ['db_query'] },
      },
    }, ['db_*'])).toEqual([
      'phase "triage": next_phase goes to "exeucte", which is not a phase (triage, report, audit, stuck)',
      'phase "triage": tool.files_write fires when files_write succeeds, but this phase does not offer files_write (it offers db_query)',
      'phase "report": an always transition needs a guard over the ledger, or it would leave at once',
      'phase "audit" cannot be reached from "triage"',
      'phase "stuck" cannot be reached from "triage"',
      'phase "stuck" has no way out: give it a transition, or answer: true to let the session end there',
    ]);
  });

  it('refuses tools the agent does not have, and a workflow where no session could complete', () => {
    expect(problemsOf({ initial: 'a', states: { a: { tools: ['refunds_issue', 'db_*'], on: { next_phase: 'b' } }, b: { on: { next_phase: 'a' } } } }, ['db_query'])).toEqual([
      'phase "a": tool "refunds_issue" is not among the agent\'s tools (db_query)',
      'phase "a": tool "db_*" is not among the agent\'s tools (db_query)',
      'no phase allows a final answer: mark at least one with answer: true, or no session can complete',
    ]);
  });

  it('checks nested and parallel phases as XState runs them', () => {
    const nested: WorkflowSpec = {
      initial: 'work',
      states: {
        work: {
          initial: 'reading',
          tools: ['db_query'],
          on: { next_phase: 'done' },
          states: { reading: { on: { next_phase: 'writing' } }, writing: { tools: ['files_write'] } },
        },
        review: {
          type: 'parallel',
          states: { legal: { answer: true }, finance: { tools: ['calc_evaluate'] } },
        },
        done: { answer: true, on: { next_phase: 'review' } },
      },
    };
    // writing has no transition of its own, but its parent's next_phase leaves it; finance ends with its sibling region's answer.
    expect(problemsOf(nested)).toEqual([]);
    expect(problemsOf({ initial: 'p', states: { p: { type: 'parallel', initial: 'x', states: { x: { answer: true } } } } })).toEqual([
      'phase "p" is parallel: all its phases start at once, so it has no initial phase',
      'phase "p" is parallel but has one phase: give it two or more',
    ]);
    expect(problemsOf({ initial: 'outer', states: { outer: { states: { inner: { answer: true } } } } })).toEqual([
      'phase "outer" has phases (inner) but no initial one',
      'phase "inner" cannot be reached from "outer"',
    ]);
    expect(problemsOf({ initial: 'nowhere', states: { a: { answer: true }, b: { states: { a: { answer: true } }, initial: 'a' } } })).toEqual(expect.arrayContaining([
      'phase "a" is named twice: phase names are unique across the workflow, so transitions can name them plainly',
      'the workflow: its initial phase "nowhere" is not one of its phases (a, b)',
    ]));
  });
});
