import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { CheckpointStore } from '../../actors/durability/checkpointStore.ts';
import { ToolCatalog } from '../../actors/toolCalls/toolCatalog.ts';
import { orchestratorAnswers } from '../../client/orchestratorProbe.ts';
import { attachSession, SessionRejectedError, startSession } from '../../client/sessionClient.ts';
import type { SessionEvent, SessionFinished } from '../../transport/messages.ts';
import { wireNames } from '../../transport/subjects.ts';
import { startNatsCluster, type NatsCluster } from '../../testing/natsCluster.ts';
import { freePort } from '../../testing/natsServer.ts';
import { testScriptsDir } from '../fixtures/inProcessStack.ts';
import { EffectLedger, type RecordedEffect } from '../fixtures/ledger/effectLedger.ts';
import { int, pick, seededRandom } from '../fixtures/seededRandom.ts';
import { testNamespace } from '../fixtures/testNamespace.ts';
import { eventually, startTroupe, type TroupeProcess } from '../fixtures/troupeProcess.ts';

const ledgerModule = fileURLToPath(new URL('../fixtures/ledger/ledgerTools.ts', import.meta.url));
const ledgerAgents = fileURLToPath(new URL('../fixtures/agents/ledgerAgents.ts', import.meta.url));

/** What a chaos run does; every random choice comes from `seed`, so a failing run can be replayed. */
export interface ChaosOptions {
  seed: number;
  /** Sessions run while processes are killed. */
  sessions: number;
  /** Sessions run before any kill, to measure how long an undisturbed one takes. */
  calmSessions: number;
  /** Sessions running at once, at most. */
  concurrency: number;
  /** Kills (orchestrators, tool workers, specialists; a worker's own crash at a fault point counts) to reach before killing stops. */
  minKills: number;
  /** The pause between two kills is drawn from this range. */
  killEveryMs: readonly [number, number];
  /** Kill one nats-server node (and bring it back) halfway through. */
  killNatsNode: boolean;
  /** How long sessions get to finish once the killing stopped, before one still running counts as lost. */
  settleWithinMs: number;
  log?: (line: string) => void;
  /** The deployment's namespace; the running test file's when absent. */
  namespace?: string;
  /** Keep every process's log (at info) and every nats-server's log here, to explain a lost session. */
  logDir?: string;
}

type Role = 'orchestrator' | 'ledger' | 'auditor';
type Kind = 'book' | 'post';

interface SessionRecord {
  index: number;
  kind: Kind;
  sessionId: string;
  task: string;
  phase: 'calm' | 'chaos';
  status: SessionFinished['status'] | 'lost';
  stopReason: string;
  durationMs: number;
  toolFailures: string[];
  /** Failed attempts that were retried, by tool, code and message. */
  retried: string[];
  /** The latest events seen, for a session that gets lost. */
  lastEvents: string[];
  /** Why a session failed, in full, with its latest events. */
  error?: string;
}

/** What a chaos run found. `lost` and `duplicated` must be 0. */
export interface ChaosReport {
  seed: number;
  started: number;
  completed: number;
  /** Parked for a person because a side effect may or may not have happened (a tool without reconcile). */
  escalatedInDoubt: number;
  /** Ended otherwise (failed, out of budget, …), by status and stop reason. */
  otherEnds: Record<string, number>;
  /** For each kind of other end, the first such session's error in full, with its latest events. */
  firstErrors: Record<string, string>;
  /** Started and never finished, nor parked for a person. */
  lost: number;
  /** Tool calls that ended in an error the model was told about, by tool and code. */
  toolFailures: Record<string, number>;
  /** Attempts that failed and were retried, by tool and code. */
  retriedAttempts: Record<string, number>;
  /** What is known of each lost session: its checkpoint's state and owner, its latest events. */
  lostSessions: string[];
  /** The deployment's streams (buckets and object stores included) and their replicas, as the cluster holds them at the end. */
  streams: Record<string, number>;
  /** References that took effect more than once, each time with the process (chaos slot and pid) that ran it. */
  duplicated: { ref: string; n: number; effects: (RecordedEffect & { ranBy: string })[] }[];
  /** Completed sessions one of whose effects is missing from the ledger. */
  missingEffects: string[];
  kills: Record<Role | 'fault_crash' | 'nats_node', number>;
  /** How much longer than an undisturbed session (the calm phase's median) chaos-phase sessions took. */
  recoveryExtraMs: { p50: number; p99: number; baselineMs: number };
  durationMs: number;
}

interface Slot {
  /** The member's name in logs: its role and a letter. */
  name: string;
  role: Role;
  args: string[];
  process?: TroupeProcess;
  /** When the running process was launched. */
  launchedAt: number;
  /** Set by the driver right before it kills the process, so the exit is not counted as a fault crash. */
  killedByDriver: boolean;
}

const tally = (items: string[]) => items.reduce<Record<string, number>>((byKind, item) => ({ ...byKind, [item]: (byKind[item] ?? 0) + 1 }), {});
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const percentile = (sorted: number[], p: number) => (sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number));

/**
 * Runs sessions whose tools write to a ledger outside Troupe on a three-node NATS cluster, while
 * SIGKILLing orchestrators, ledger workers and auditor specialists at random moments (and letting
 * workers crash at chosen points of a call: after the claim, after the effect), kills one
 * nats-server node halfway, then counts what every session came to and what every effect did.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const began = Date.now();
  const log = options.log ?? (() => {});
  const random = seededRandom(options.seed);
  const namespace = options.namespace ?? testNamespace();
  const runTag = `${options.seed}-${randomUUID().slice(0, 8)}`;
  const ledgerPath = join(mkdtempSync(join(tmpdir(), 'troupe-chaos-')), 'effects.sqlite');
  const ledger = new EffectLedger(ledgerPath);
  if (options.logDir) mkdirSync(options.logDir, { recursive: true });
  const cluster: NatsCluster = await startNatsCluster({ nodes: 3, ...(options.logDir ? { logDir: options.logDir } : {}) });
  const modelPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    NATS_URL: cluster.servers,
    TROUPE_NAMESPACE: namespace,
    OPENAI_BASE_URL: `http://127.0.0.1:${modelPort}/v1`,
    OPENAI_API_KEY: 'scripted',
    TROUPE_AGENTS: ledgerAgents,
    TROUPE_DEFAULT_AGENT: 'bookkeeper',
    // The run measures recovery, not failing fast: while both members of a pool are down (one killed, one
    // crashed at a fault point) the calls wait out the outage with their retries instead of opening the circuit.
    TROUPE_CIRCUIT_BREAKER: JSON.stringify({ failureThreshold: 1_000 }),
    TROUPE_TEST_LEDGER: ledgerPath,
    LOG_LEVEL: options.logDir ? 'info' : 'warn',
  };
  const model = startTroupe(['model', 'serve', '--port', String(modelPort), '--scripts', testScriptsDir], env);
  const slots: Slot[] = [
    ...(['a', 'b'] as const).map((m) => ({ name: `orchestrator-${m}`, role: 'orchestrator' as const, args: ['orchestrator'], killedByDriver: false, launchedAt: 0 })),
    ...(['a', 'b'] as const).map((m) => ({ name: `ledger-${m}`, role: 'ledger' as const, args: ['worker', 'ledger', '--module', ledgerModule], killedByDriver: false, launchedAt: 0 })),
    ...(['a', 'b'] as const).map((m) => ({ name: `auditor-${m}`, role: 'auditor' as const, args: ['worker', '--agent', 'auditor'], killedByDriver: false, launchedAt: 0 })),
  ];
  const kills: ChaosReport['kills'] = { orchestrator: 0, ledger: 0, auditor: 0, fault_crash: 0, nats_node: 0 };
  let supervising = true;
  const slotOfPid = new Map<number, string>();
  let chaos = false;

  /** A ledger worker restarted during chaos may be set to crash itself at a point of its Nth call. */
  const faultsFor = (slot: Slot): NodeJS.ProcessEnv => {
    if (slot.role !== 'ledger' || !chaos) return {};
    const at = pick(random, ['none', 'none', 'before_handler', 'after_effect'] as const);
    if (at === 'none') return {};
    const rule = { kind: 'crash', at, afterCalls: int(random, 0, 4), times: 1 };
    return { TROUPE_FAULTS: JSON.stringify({ ledger_record: [rule], ledger_post: [rule] }) };
  };
  const launch = (slot: Slot) => {
    slot.killedByDriver = false;
    slot.launchedAt = Date.now();
    const started = startTroupe(slot.args, { ...env, ...faultsFor(slot) });
    if (started.child.pid !== undefined) slotOfPid.set(started.child.pid, `${slot.name} launched ${new Date(slot.launchedAt).toISOString()}`);
    slot.process = started;
    const launchedAt = slot.launchedAt;
    void started.exited.then(async (code) => {
      if (options.logDir) appendFileSync(join(options.logDir, `${slot.name}.log`), `--- launched ${new Date(launchedAt).toISOString()}, exited ${code}\n${started.output()}`);
      if (slot.process !== started) return;
      if (code === 'SIGKILL' && !slot.killedByDriver) kills.fault_crash += 1;
      if (!supervising) return;
      await sleep(int(random, 200, 1_000));
      if (supervising && slot.process === started) launch(slot);
    });
  };
  for (const slot of slots) launch(slot);

  const client: NatsConnection = await connect({ servers: [...cluster.urls], name: 'chaos-driver', maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const names = wireNames(namespace);
  const processes = () => [model, ...slots.flatMap((s) => (s.process ? [s.process] : []))];
  const catalog = new ToolCatalog({ nats: client, namespace, quietPeriodMs: 200 });
  await eventually('the chaos deployment up', async () => {
    await catalog.refresh();
    const ready = (await fetch(`http://127.0.0.1:${modelPort}/healthz`).catch(() => undefined))?.ok === true;
    return ready && (await orchestratorAnswers(client, { namespace })) && (catalog.get('ledger_record')?.instances.size ?? 0) === 2 && (catalog.get('delegate_auditor')?.instances.size ?? 0) === 2;
  }, 120_000, processes());
  catalog.stop();

  const records: SessionRecord[] = [];
  const runOne = async (index: number, phase: 'calm' | 'chaos'): Promise<void> => {
    const kind: Kind = random() < 0.25 ? 'post' : 'book';
    const sessionId = randomUUID();
    const task = `[ledger-${kind}] chaos ${runTag} #${index}`;
    const record: SessionRecord = { index, kind, sessionId, task, phase, status: 'lost', stopReason: 'never finished', durationMs: 0, toolFailures: [], retried: [], lastEvents: [] };
    records.push(record);
    const t0 = Date.now();
    let run: { finished: Promise<SessionFinished>; events: AsyncIterable<SessionEvent> } | undefined;
    for (let attempt = 0; !run; attempt++) {
      try {
        run = await startSession(client, { namespace, sessionId, task, acceptTimeoutMs: 5_000 });
      } catch (error) {
        // An orchestrator that accepted the start may have died before its reply: the session exists.
        if (error instanceof SessionRejectedError && error.code === 'in_use') run = await attachSession(client, sessionId, { namespace });
        else if (attempt > 60) throw error;
        else await sleep(500);
      }
    }
    const { events } = run;
    // Not awaited: a session parked for a person has no last event.
    void (async () => {
      for await (const event of events) {
        record.lastEvents = [...record.lastEvents.slice(-7), event.type === 'specialist.event' ? `auditor ${event.event.type}` : event.type];
        if (event.type === 'tool.call.retrying') record.retried.push(`${event.tool} ${event.failure.code}: ${event.failure.message.slice(0, 70)}`);
        if (event.type === 'tool.call.finished' && event.status === 'error') record.toolFailures.push(`${event.tool} ${event.failure?.code}: ${(event.failure?.message ?? "").slice(0, 90)}`);
        if (event.type === 'specialist.event' && event.event.type === 'tool.call.finished' && event.event.status === 'error') record.toolFailures.push(`auditor: ${event.event.tool} ${event.event.failure?.code}: ${(event.event.failure?.message ?? "").slice(0, 90)}`);
      }
    })().catch(() => undefined);
    const finished = await run.finished;
    record.durationMs = Date.now() - t0;
    // Refused once accepted (an orchestrator accepts a start only once it is stored): lost all the same.
    if (finished.stopReason === 'rejected') {
      record.stopReason = `refused after it was accepted: ${finished.status === 'failed' ? finished.error : ''}`;
      return;
    }
    record.status = finished.status;
    record.stopReason = finished.stopReason;
    if (finished.status === 'failed') record.error = `${finished.error}; events ${record.lastEvents.join(' → ')}`;
  };
  const runAll = async (count: number, phase: 'calm' | 'chaos', first: number, paceMs: number, onStarted: (n: number) => void) => {
    const running = new Set<Promise<void>>();
    for (let i = 0; i < count; i++) {
      while (running.size >= options.concurrency) await Promise.race(running);
      const one = runOne(first + i, phase).finally(() => running.delete(one));
      running.add(one);
      onStarted(i + 1);
      if (paceMs > 0) await sleep(paceMs);
    }
    return Promise.all(running);
  };

  log(`calm phase: ${options.calmSessions} sessions`);
  await runAll(options.calmSessions, 'calm', 0, 0, () => {});

  log(`chaos phase: ${options.sessions} sessions, at least ${options.minKills} kills, seed ${options.seed}`);
  chaos = true;
  const meanKillMs = (options.killEveryMs[0] + options.killEveryMs[1]) / 2;
  // Starts are spread over the time the kills take, so every kill lands among running sessions.
  const paceMs = Math.floor((options.minKills * meanKillMs) / Math.max(1, options.sessions));
  let nodeKilled: Promise<void> | undefined;
  const sessionsDone = runAll(options.sessions, 'chaos', options.calmSessions, paceMs, (n) => {
    if (options.killNatsNode && !nodeKilled && n >= options.sessions / 2) {
      const node = pick(random, cluster.nodes);
      log(`killing nats-server ${node.name}`);
      kills.nats_node += 1;
      nodeKilled = node.kill().then(() => sleep(3_000)).then(() => node.restart()).then(() => log(`${node.name} back`));
    }
  });
  // A member is killed only while its whole role is up and settled: the pool always keeps a member
  // serving, as a deployment with two of each does, and every kill lands on a process doing work.
  const settledMs = 4_000;
  const killerDone = (async () => {
    const total = () => kills.orchestrator + kills.ledger + kills.auditor + kills.fault_crash;
    while (total() < options.minKills) {
      await sleep(int(random, options.killEveryMs[0], options.killEveryMs[1]));
      const role = pick(random, ['orchestrator', 'ledger', 'auditor'] as const);
      const members = slots.filter((s) => s.role === role);
      const up = (s: Slot) => s.process !== undefined && s.process.exitCode() === null && s.process.child.signalCode === null && Date.now() - s.launchedAt >= settledMs;
      if (!members.every(up)) continue;
      const victim = pick(random, members);
      victim.killedByDriver = true;
      victim.process?.child.kill('SIGKILL');
      kills[role] += 1;
    }
    log(`killing stopped: ${JSON.stringify(kills)}`);
  })();
  await killerDone;
  await nodeKilled;
  let settleTimer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([sessionsDone.then(() => true), new Promise<boolean>((resolve) => (settleTimer = setTimeout(() => resolve(false), options.settleWithinMs)))]);
  // Not left running: it kept `npm run chaos` alive minutes after its report.
  clearTimeout(settleTimer);
  if (!settled) log('some sessions did not finish in time; reading their checkpoints');

  // A session whose end event was missed is read from its checkpoint before it counts as lost.
  const checkpoints = await CheckpointStore.open(client, names);
  const lostSessions: string[] = [];
  for (const record of records.filter((r) => r.status === 'lost')) {
    const stored = await checkpoints.read(record.sessionId).catch(() => undefined);
    lostSessions.push(`${record.sessionId} (#${record.index}, ${record.kind}) ${record.stopReason}: checkpoint ${stored ? `${stored.checkpoint.status} ${JSON.stringify(stored.checkpoint.snapshot.value)} owner ${stored.checkpoint.owner} in flight ${JSON.stringify(stored.checkpoint.inFlightToolCalls)}` : 'none'}; events ${record.lastEvents.join(' → ')}`);
    const outcome = (stored?.checkpoint.snapshot as { context?: { outcome?: { status: SessionFinished['status']; stopReason: string } | null } } | undefined)?.context?.outcome;
    if (stored && stored.checkpoint.status !== 'running' && outcome) {
      record.status = outcome.status;
      record.stopReason = outcome.stopReason;
    }
  }
  supervising = false;
  const streams: Record<string, number> = {};
  const jsm = await jetstreamManager(client);
  for await (const info of jsm.streams.list()) {
    if (info.config.name.toLowerCase().includes(namespace.toLowerCase())) streams[info.config.name] = info.config.num_replicas;
  }

  const counts = ledger.counts();
  const ofRun = (ref: string) => ref.includes(runTag);
  const missingEffects: string[] = [];
  for (const r of records.filter((x) => x.status === 'completed')) {
    const wanted = r.kind === 'book' ? [`${r.task} / record`] : [`${r.task} / post`];
    for (const ref of wanted) if ((counts.get(ref) ?? 0) === 0) missingEffects.push(ref);
    if (r.kind === 'book' && ![...counts.keys()].some((ref) => ref.endsWith(`${r.task} / audit`))) missingEffects.push(`${r.task} (audit)`);
  }
  const baseline = (() => {
    const calm = records.filter((r) => r.phase === 'calm' && r.status === 'completed').map((r) => r.durationMs).sort((a, b) => a - b);
    return percentile(calm, 50);
  })();
  const extra = records.filter((r) => r.phase === 'chaos' && r.status !== 'lost').map((r) => Math.max(0, r.durationMs - baseline)).sort((a, b) => a - b);
  const otherEnds: Record<string, number> = {};
  const firstErrors: Record<string, string> = {};
  for (const r of records) {
    if (r.status === 'completed' || r.status === 'lost' || (r.status === 'escalated' && r.stopReason.includes('in doubt'))) continue;
    const key = `${r.status}: ${r.stopReason}`;
    otherEnds[key] = (otherEnds[key] ?? 0) + 1;
    if (r.error && !firstErrors[key]) firstErrors[key] = `#${r.index} ${r.sessionId}: ${r.error}`;
  }
  const report: ChaosReport = {
    seed: options.seed,
    started: records.length,
    completed: records.filter((r) => r.status === 'completed').length,
    escalatedInDoubt: records.filter((r) => r.status === 'escalated' && r.stopReason.includes('in doubt')).length,
    otherEnds,
    firstErrors,
    lost: records.filter((r) => r.status === 'lost').length,
    toolFailures: tally(records.flatMap((r) => r.toolFailures)),
    retriedAttempts: tally(records.flatMap((r) => r.retried)),
    lostSessions,
    streams,
    duplicated: ledger.duplicated().filter((d) => ofRun(d.ref)).map((d) => ({ ...d, effects: d.effects.map((e) => ({ ...e, ranBy: slotOfPid.get(e.pid) ?? `pid ${e.pid}` })) })),
    missingEffects,
    kills,
    recoveryExtraMs: { p50: percentile(extra, 50), p99: percentile(extra, 99), baselineMs: baseline },
    durationMs: Date.now() - began,
  };

  await Promise.all(slots.map((s) => s.process?.stop()));
  await model.stop();
  await client.close();
  await cluster.stop();
  ledger.close();
  return report;
}

/** The report as the lines a person reads. */
export function describeChaos(report: ChaosReport): string {
  const otherEnds = Object.entries(report.otherEnds).map(([why, n]) => `${n} × ${why}`).join('; ') || 'none';
  return [
    `chaos run, seed ${report.seed}, ${(report.durationMs / 1000).toFixed(0)} s`,
    `  sessions started            ${report.started}`,
    `  completed                   ${report.completed}`,
    `  escalated as in doubt       ${report.escalatedInDoubt}`,
    `  other ends                  ${otherEnds}`,
    ...Object.values(report.firstErrors).map((e) => `    first: ${e}`),
    `  lost                        ${report.lost}`,
    `  tool calls failed           ${Object.entries(report.toolFailures).map(([what, n]) => `${n} × ${what}`).join('; ') || 'none'}`,
    `  attempts retried            ${Object.entries(report.retriedAttempts).map(([what, n]) => `${n} × ${what}`).join('; ') || 'none'}`,
    ...report.lostSessions.map((l) => `  lost: ${l}`),
    `  side effects duplicated     ${report.duplicated.length}`,
    ...report.duplicated.flatMap((d) => [`  duplicated: ${d.ref}`, ...d.effects.map((e) => `    at ${e.at} call ${e.callId} fencing token ${e.fencingToken ?? 'none'} by ${e.ranBy}`)]),
    `  replicas                    ${Object.entries(report.streams).map(([name, n]) => `${name} ${n}`).join(', ')}`,
    `  effects missing             ${report.missingEffects.length}`,
    `  kills                       ${Object.entries(report.kills).map(([role, n]) => `${role} ${n}`).join(', ')}`,
    `  recovery, extra time        p50 ${report.recoveryExtraMs.p50} ms, p99 ${report.recoveryExtraMs.p99} ms (undisturbed session ${report.recoveryExtraMs.baselineMs} ms)`,
  ].join('\n');
}
