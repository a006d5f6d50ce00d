/**
 * What hosting a session takes and gives: the dependencies a session-hosting process provides, how
 * a session starts (new or resumed from a checkpoint), and the handle on a hosted session.
 */
import type { ToolProgressInbox } from '../toolCalls/toolProgressInbox.ts';
import type { Context, Tracer } from '@opentelemetry/api';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Actor, InspectionEvent } from 'xstate';
import type { AgentDefinition } from '../../agents/defineAgent.ts';
import type { Budgets } from '../../machines/budgets.ts';
import type { SessionMachine } from '../../machines/session.ts';
import type { ResultShapingLimits } from '../../tools/resultShaping.ts';
import type { SessionFinished } from '../../transport/messages.ts';
import type { WireNames } from '../../transport/subjects.ts';
import type { Checkpoint, CheckpointStore } from '../durability/checkpointStore.ts';
import type { CircuitBreakerRegistry } from '../toolCalls/circuitBreakerRegistry.ts';
import type { ModelEndpoint } from '../model/modelCall.ts';
import type { ResultStore } from '../toolCalls/resultStore.ts';
import type { Lease, SessionLeases } from '../durability/sessionLeases.ts';
import type { ToolCatalog } from '../toolCalls/toolCatalog.ts';
import type { ApprovalPolicy } from '../toolCalls/toolCallTriage.ts';
import type { AlertMonitor } from '../../observability/alertMonitor.ts';
import type { ModelTable } from '../../models/modelTable.ts';
import type { ResponseCache } from '../model/responseCache.ts';
import type { OperatorKeys } from '../../transport/controlSignatures.ts';
import type { StatementSigner } from '../../transport/signatures.ts';
import type { RecordedControlInbox } from './recordedControls.ts';

/** Where sessions are made durable; absent when NATS has no JetStream. */
export interface Durability {
  checkpoints: CheckpointStore;
  leases: SessionLeases;
  /** This process's name on leases and checkpoints (a new one after another process took it for dead). */
  readonly owner: string;
  /**
   * Whether this process may act for its sessions now: its heartbeat is alive (see `HostHeartbeat.alive`).
   * Absent: leases are renewed per session instead.
   */
  alive?: () => boolean;
}

export interface SessionHostDependencies {
  nats: NatsConnection;
  /** The deployment's names: the session's events, controls and tool calls use its subjects. */
  names: WireNames;
  catalog: ToolCatalog;
  breakers: CircuitBreakerRegistry;
  largeResults: ResultShapingLimits;
  results?: ResultStore;
  durability?: Durability;
  approvalPolicy?: ApprovalPolicy;
  approvalTimeoutMs: number;
  endpoint: ModelEndpoint;
  defaultModel: string;
  tracer: Tracer;
  logger: Logger;
  /** Record message contents and tool arguments and results on spans (`TROUPE_CAPTURE_CONTENT`); off by default. */
  captureContent?: boolean;
  /** Context windows and tokenizers per model. */
  models?: ModelTable;
  /** Answers kept for reuse (per the agents' caching settings), shared by the process's sessions. */
  responses?: ResponseCache;
  /** Where workers report the progress of this process's calls, shared by its sessions. */
  progress?: ToolProgressInbox;
  /** Watches tool-call error rates and spend; raises alerts when thresholds are crossed. */
  alerts?: AlertMonitor;
  /** Sees every actor event of the session (XState inspection), e.g. for the Stately inspector. */
  inspect?: (event: InspectionEvent) => void;
  /** Signs approved calls and undo requests for the workers (see `SessionRuntimeOptions.signer`). */
  signer?: StatementSigner;
  /** The operators whose signed commands the session's control subject accepts (see `SessionRuntimeOptions.operatorKeys`). */
  operators?: OperatorKeys;
}

/** A session to start. With durability its first checkpoint is written as it starts, and a start is accepted once that is stored. */
export interface NewSession {
  kind: 'new';
  sessionId: string;
  task: string;
  agent: AgentDefinition;
  /**
   * What the session may spend: its agent's budgets, or tighter ones (a client's, a delegating
   * session's share). Kept in its checkpoints, so a resumed session keeps them whatever its agent says.
   */
  budgets: Budgets;
  /** The trace context the start request carried: the session span becomes its child. */
  parent: Context;
  /** The lease this orchestrator took on the session id (with durability). */
  lease?: Lease;
  /** 0 for a client's session; a specialist's session is one deeper than the session that delegated to it. */
  depth: number;
  /** How many levels of specialists the session may still delegate to. */
  delegationDepthLeft: number;
  /** The session that delegated to this one, for a specialist's session. */
  parentSessionId?: string;
  /** Whom the session works for, when the caller said. */
  tenant?: string;
  user?: string;
  /**
   * Where its event numbering starts: past the events an earlier attempt under the same id published
   * before its host died, unaccepted (see `Lease.replaced`); 0 when absent.
   */
  firstEventSeq?: number;
}

/** A session taken over from its checkpoint, after its previous host stopped renewing its lease. */
export interface ResumedSession {
  kind: 'resume';
  checkpoint: Checkpoint;
  revision: number;
  lease: Lease;
  agent: AgentDefinition;
  /** The session's recorded commands, caught up to its resume (see `resumeSession`); opened by the host when absent. */
  controls?: RecordedControlInbox;
}

/** A session running in this process. */
export interface HostedSession {
  readonly sessionId: string;
  readonly traceId: string;
  readonly actor: Actor<SessionMachine>;
  /**
   * Resolves with the first `session.finished` event: a final state, or `escalated` (the session is
   * then parked, waiting for a person, and may go on). Never rejects.
   */
  readonly finished: Promise<SessionFinished>;
  /** Resolves when the session reaches a final state, is handed over, or is taken by another owner. */
  readonly ended: Promise<void>;
  cancel(reason: string): void;
  /** Stops hosting the session at once, writing nothing: another process owns it now. */
  abandon(reason: string): void;
  /**
   * Resolves once the session's state as of now is durably stored (at once without durability);
   * rejects when it never will be here (handed over, taken by another owner, too large to store).
   */
  stored(): Promise<void>;
  /** Stops hosting the session without ending it, so another orchestrator resumes it from its checkpoint. */
  handOver(): Promise<void>;
}
