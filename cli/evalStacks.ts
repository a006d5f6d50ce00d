import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { faultCountsEnvVariable } from '../actors/worker/faultCounts.ts';
import { anyTool, FaultKind, faultsEnvVariable, type FaultSpecification } from '../actors/worker/workerFaults.ts';
import { placeCaseDatabase } from '../evaluation/caseDatabase.ts';
import { createLogger } from '../observability/logger.ts';
import { startNatsServer, type NatsServerProcess } from '../testing/natsServer.ts';
import { readEnvironment } from './environment.ts';
import { startLocalStack, type LocalStack } from './localStack.ts';

/** What sets a stack of an eval apart from the shared one. */
export interface EvalStackPlan {
  /** What its pools inject (`TROUPE_FAULTS`), counted across the members of a pool. */
  faults?: FaultSpecification;
  /** It runs on a nats-server of its own, which the cases may restart. */
  ownNats?: boolean;
  /** A case's `setup.database`, placed for its db pool. */
  databaseFile?: string;
  /** Also the refunds pool, which stacks leave out unless a case's agent names its tool (the refund desk's). */
  refundDesk?: boolean;
}

/** A stack an eval runs cases on, in a namespace and a workspace of its own. */
export interface EvalStack {
  stack: LocalStack;
  namespace: string;
  /** The files pool's workspace: fresh, removed with the stack. */
  workspace: string;
  /** Stops the stack's own nats-server and starts it again on its store; with `ownNats` only. */
  restartNats?: () => Promise<void>;
}

export interface EvalStackSettings {
  logDir: string;
  /** Variables for every process of the stack (`TROUPE_SCRIPTS`, …). */
  childEnv: NodeJS.ProcessEnv;
  say: (line: string) => void;
}

/** How many members each pool gets: two for a pool whose tools (or every tool, `*`) may crash, else one. */
function membersFor(faults: FaultSpecification | undefined): (pool: string) => number {
  const crashing = Object.entries(faults ?? {}).filter(([, rules]) => rules.some((rule) => rule.kind === FaultKind.crash)).map(([tool]) => tool);
  // Tools are named <domain>_<name>; a specialist's tool delegate_<agent> crashes its own pool.
  return (pool) => (crashing.some((tool) => tool === anyTool || tool.startsWith(`${pool}_`) || tool === `delegate_${pool}`) ? 2 : 1);
}

/**
 * Starts a stack for `plan` in a namespace of its own (its sessions, pools and streams never mix
 * with a deployment's or another stack's), runs `run` on it, and stops it and removes what it made
 * whatever happens.
 */
export async function onEvalStack<T>(plan: EvalStackPlan, settings: EvalStackSettings, run: (stack: EvalStack) => Promise<T>): Promise<T> {
  const namespace = `eval-${randomBytes(4).toString('hex')}`;
  const scratch = mkdtempSync(join(tmpdir(), `troupe-${namespace}-`));
  let nats: NatsServerProcess | undefined;
  try {
    const workspace = join(scratch, 'workspace');
    mkdirSync(workspace);
    if (plan.ownNats) nats = await startNatsServer({ storeDir: join(scratch, 'nats'), logFile: join(settings.logDir, `nats-${namespace}.log`) });
    const database = plan.databaseFile === undefined ? undefined : join(scratch, 'database.sqlite');
    if (plan.databaseFile !== undefined && database !== undefined) placeCaseDatabase(plan.databaseFile, database);
    const faultCounts = plan.faults ? join(scratch, 'fault-counts') : undefined;
    if (faultCounts) mkdirSync(faultCounts);
    // The eval's own connection logs errors only: a case restarting NATS disconnects it on purpose.
    // One member per pool, two where a crash is injected (one must be left to take the call again):
    // a dataset's sessions are few, and every process a stack starts costs seconds of CPU.
    const stack = await startLocalStack({
      env: readEnvironment({ ...process.env, TROUPE_NAMESPACE: namespace, ...(nats ? { NATS_URL: nats.url } : {}) }),
      logger: createLogger({ name: 'eval', level: 'error' }), logDir: settings.logDir, workersPerDomain: membersFor(plan.faults), say: settings.say,
      ...(plan.refundDesk ? { refundDesk: true } : {}),
      // Unset ones are removed: a stack without faults gets none, even when this process was started with TROUPE_FAULTS.
      childEnv: {
        ...settings.childEnv,
        [faultsEnvVariable]: plan.faults ? JSON.stringify(plan.faults) : undefined,
        [faultCountsEnvVariable]: faultCounts,
        TROUPE_WORKSPACE: workspace,
        TROUPE_DB_FILE: database,
      },
    });
    // Sessions of a repeated case reach their step together: they share one restart, never two at
    // once (a second start on the port would fail, and leave the first server running).
    let restarting: Promise<void> | undefined;
    const restartNats = () => (restarting ??= (async () => {
      nats = await (nats as NatsServerProcess).restart();
    })().finally(() => {
      restarting = undefined;
    }));
    try {
      return await run({ stack, namespace, workspace, ...(nats ? { restartNats } : {}) });
    } finally {
      await stack.stop();
    }
  } finally {
    await nats?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}
