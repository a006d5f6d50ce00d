import { isAbsolute } from 'node:path';
import * as z from 'zod';
import { FaultSpecification } from '../actors/worker/workerFaults.ts';
import { BudgetOverrides } from '../machines/budgets.ts';
import { SessionStatus, SessionStatusSchema } from '../machines/sessionOutcome.ts';
import { parseJsonPath } from './jsonPath.ts';

/**
 * How the run's tool calls are compared with the expected ones (agentevals' vocabulary):
 * `strict` the same calls in the same order; `unordered` the same calls in any order (a multiset);
 * `subset` every call the run made is among the expected ones; `superset` the run made at least
 * the expected calls.
 */
export const TrajectoryMode = {
  strict: 'strict',
  unordered: 'unordered',
  subset: 'subset',
  superset: 'superset',
} as const;
export type TrajectoryMode = (typeof TrajectoryMode)[keyof typeof TrajectoryMode];
export const TrajectoryModeSchema = z.enum(Object.values(TrajectoryMode) as [TrajectoryMode, ...TrajectoryMode[]]);

/**
 * How one call's arguments are compared: `exact` deep equal; `ignore` the tool name alone;
 * `subset` every key the run passed is expected, with an equal value; `superset` the run passed
 * every expected key, with an equal value. Only top-level keys are subset or superset: the values
 * under them are compared deeply.
 */
export const ArgumentMatch = {
  exact: 'exact',
  ignore: 'ignore',
  subset: 'subset',
  superset: 'superset',
} as const;
export type ArgumentMatch = (typeof ArgumentMatch)[keyof typeof ArgumentMatch];
export const ArgumentMatchSchema = z.enum(Object.values(ArgumentMatch) as [ArgumentMatch, ...ArgumentMatch[]]);

/** One call the run is expected to make. Without `arguments`, the tool name alone is compared. */
export const ExpectedCall = z.strictObject({
  tool: z.string().min(1),
  arguments: z.record(z.string(), z.unknown()).optional(),
  /** Overrides the trajectory's `arguments` mode for this call. */
  match: ArgumentMatchSchema.optional(),
  /** With a workflow: the phase the call must be made in (one of the phases active when it was made). */
  phase: z.string().min(1).optional(),
});
export type ExpectedCall = z.infer<typeof ExpectedCall>;

/** The tool calls a run is expected to make, and how strictly. */
export const TrajectoryExpectation = z.strictObject({
  mode: TrajectoryModeSchema,
  arguments: ArgumentMatchSchema.default(ArgumentMatch.exact),
  calls: z.array(ExpectedCall),
});
export type TrajectoryExpectation = z.infer<typeof TrajectoryExpectation>;

/** A value checked inside the output read as JSON. With neither `equals` nor `exists`, the path must exist. */
export const JsonCheck = z
  .strictObject({
    /** See jsonPath.ts: `$.items[0].total`. */
    path: z.string().refine((path) => parseJsonPath(path) !== undefined, 'not a JSON path: write $ then .key, [index] or ["key"], e.g. $.items[0].total'),
    equals: z.unknown().optional(),
    exists: z.boolean().optional(),
  })
  .refine((check) => !(check.exists === false && check.equals !== undefined), { message: 'equals cannot hold for a path that must not exist', path: ['exists'] });
export type JsonCheck = z.infer<typeof JsonCheck>;

/** Checks on the session's final output; every one given must hold. */
export const OutputExpectation = z.strictObject({
  /** Text that must appear in the output; with a list, every item must. */
  contains: z.union([z.string(), z.array(z.string())]).optional(),
  /** A JavaScript regular expression without delimiters or flags (`(?i:…)` for case-insensitive), searched for in the output. */
  regex: z
    .string()
    .superRefine((pattern, ctx) => {
      try {
        new RegExp(pattern);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: `not a valid regular expression: ${error instanceof Error ? error.message : String(error)}` });
      }
    })
    .optional(),
  equals: z.string().optional(),
  /** The output parsed as JSON (or the one fenced code block it consists of). */
  json: z.array(JsonCheck).optional(),
});
export type OutputExpectation = z.infer<typeof OutputExpectation>;

/** A path relative to the files pool's workspace, inside it. */
const WorkspacePath = z.string().min(1).refine((path) => !isAbsolute(path) && !path.split(/[\\/]/).includes('..'), 'a path inside the workspace: relative, without ".."');

/** A file the run must leave in the files pool's workspace (or must not: `exists: false`). */
export const FileExpectation = z.strictObject({
  path: WorkspacePath,
  exists: z.boolean().default(true),
  /** Text the file must contain, every one. */
  contains: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
});
export type FileExpectation = z.infer<typeof FileExpectation>;

/** What a run must achieve to pass. Everything is optional but the status, `completed` unless told. */
export const CaseExpectation = z.strictObject({
  status: SessionStatusSchema.default(SessionStatus.completed),
  output: OutputExpectation.optional(),
  trajectory: TrajectoryExpectation.optional(),
  /** Model calls (the specialists' included), as the session counted them. */
  maxSteps: z.number().int().positive().optional(),
  maxCostUsd: z.number().nonnegative().optional(),
  /** Tool calls (the specialists' included), as the session counted them. */
  maxToolCalls: z.number().int().nonnegative().optional(),
  /** Files in the files pool's workspace once the session ended (`TROUPE_WORKSPACE`, shared by the cases of a run). */
  files: z.array(FileExpectation).optional(),
  /**
   * `once`: no side-effecting call's handler ran more than once, as the pools' idempotency records
   * say (not the model's messages: a call retried, replayed or taken over after a crash is one call).
   */
  sideEffects: z.literal('once').optional(),
  /**
   * With a workflow: the phases the session goes through, in order, from the one it starts in
   * (nested or parallel phases as their active names joined by " › ", e.g. "review › legal").
   */
  phases: z.array(z.string().min(1)).min(1).optional(),
});
export type CaseExpectation = z.infer<typeof CaseExpectation>;

/** What is put in place before each of the case's sessions starts. */
export const CaseSetup = z.strictObject({
  /** Files written into the files pool's workspace, path to text, over whatever is there. */
  files: z.record(WorkspacePath, z.string()).optional(),
  /**
   * The db pool's database, relative to the dataset file: SQL text (`.sql`, run into a fresh
   * database) or a SQLite file (copied). The case then runs on pools of its own.
   */
  database: z.string().min(1).optional(),
});
export type CaseSetup = z.infer<typeof CaseSetup>;

/**
 * The case's own nats-server is restarted (stopped, then started again on its store) once the
 * session's `atStep`-th model response has arrived: its tool calls are then in flight on a bus that
 * goes away and comes back.
 */
export const NatsRestart = z.strictObject({ atStep: z.number().int().positive() });
export type NatsRestart = z.infer<typeof NatsRestart>;

/** The fault kind a NATS restart is reported under, beside the pools' kinds. */
export const natsRestartFaultKind = 'nats_restart';

/**
 * One case of an eval dataset, as written in a YAML or JSONL file. Strict at every level: a field
 * this schema does not know is an error, so that a misspelt expectation cannot pass by being
 * ignored.
 */
export const EvalCase = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'an id of 1 to 128 letters, digits, ".", "_" or "-"'),
  /** What the case is for; a case meant to fail says so here. */
  description: z.string().optional(),
  /** The user message that starts the session. */
  task: z.string().min(1),
  agent: z.string().min(1).optional(),
  /** A scripted-model trajectory file, relative to the dataset file; without it the configured model runs. */
  script: z.string().min(1).optional(),
  /**
   * Scripts the specialists this case delegates to play, relative to the dataset file: each
   * specialist session's task chooses its own, as a session's task chooses `script`.
   */
  specialistScripts: z.array(z.string().min(1)).min(1).optional(),
  /** Tighter budgets than the agent's, for this case's sessions (a looser one is refused when the session starts). */
  budgets: BudgetOverrides.optional(),
  setup: CaseSetup.optional(),
  /**
   * Faults the tool pools inject into this case's calls: the specification workers take in
   * `TROUPE_FAULTS` (rules per tool name, `*` for any). The case runs on pools of its own, and once
   * more without them for comparison (its recovery score).
   */
  faults: FaultSpecification.optional(),
  /** A fault of the bus: see {@link NatsRestart}. Like `faults`, the case runs once more without it. */
  natsRestart: NatsRestart.optional(),
  /**
   * Why the case is meant to fail (a known gap, or a check that the report's failure paths work):
   * it counts as passed when a run misses an expectation, and fails when every run meets them all.
   */
  meantToFail: z.string().min(1).optional(),
  /**
   * How each approval the session asks for is decided, in order (calls waiting for approval, or a
   * workflow's exit that needs a person). An approval beyond the list is denied, saying the case
   * gives no decision for it.
   */
  approvals: z.array(z.strictObject({
    decision: z.enum(['approve', 'deny']),
    /** Given to the model with a denial. */
    reason: z.string().min(1).optional(),
    by: z.string().min(1).default('eval'),
  })).optional(),
  /** Runs of the case (for pass^k with a real model). */
  repeat: z.number().int().min(1).max(100).default(1),
  // prefault, not default: a default is returned as it is, unparsed, so `status` would stay unset.
  expect: CaseExpectation.prefault({}),
});
export type EvalCase = z.infer<typeof EvalCase>;
/** A case as written, before defaults. */
export type EvalCaseInput = z.input<typeof EvalCase>;
