/**
 * Troupe's public API. Values first, then types; nothing internal is re-exported wholesale. What
 * only tests need (a nats-server, the scripted model, a whole deployment in one process) is in
 * `troupe/testing`.
 */
export { defineTool, notDone, toolInputJsonSchema, ToolDefinitionError } from './tools/defineTool.ts';
export { ToolError, ToolFailureCode, toToolFailure } from './tools/toolFailure.ts';
export { defineAgent, AgentDefinitionError, delegateToolName } from './agents/defineAgent.ts';
export { assistantAgent } from './agents/assistant.ts';
export { analystAgent } from './agents/analyst.ts';
export { startSpecialistPool } from './actors/worker/specialistPool.ts';
export { DelegatedTask, SpecialistAnswer } from './agents/specialistAnswer.ts';
export { RoutingPolicy, RoutingRule, TurnKind, routeTurn } from './machines/modelRouting.ts';
export { startWorker, WorkerConfigurationError } from './actors/worker/toolWorker.ts';
export { DirectoryFaultCounts, MemoryFaultCounts, FaultCountsDirectoryError } from './actors/worker/faultCounts.ts';
export { startMcpPool, type McpPool, type McpPoolOptions } from './mcp/mcpPool.ts';
export { McpServerUnreachableError, type McpServerTarget } from './mcp/mcpServerConnection.ts';
export { mcpToolRetry, type McpToolMappingOptions } from './mcp/mcpToolMapping.ts';
export { startOrchestrator } from './actors/orchestrator/orchestrator.ts';
export { ToolCatalog } from './actors/toolCalls/toolCatalog.ts';
export { toolsRequiringApproval } from './actors/toolCalls/toolCallTriage.ts';
export {
  startSession, attachSession, answerSession, cancelSession, approveSession, denySession, interruptSession, redirectSession, continueSession,
  rollbackSession, takeOverSession, callToolInSession, handBackSession,
  NoOrchestratorError, SessionRejectedError,
} from './client/sessionClient.ts';
export { connectToNats, NatsUnreachableError, NatsAccessDeniedError, defaultNatsUrl } from './transport/natsConnection.ts';
export { NatsCredentialsError, readNkeySeed } from './transport/natsCredentials.ts';
// Least privilege on the bus: the roles' permissions, and the nkey signatures approvals, undo requests and operators' commands carry.
export { rolePermissions, roleName, roleOf } from './transport/rolePermissions.ts';
export { statementSigner } from './transport/signatures.ts';
export { parseOperatorKeys } from './transport/controlSignatures.ts';
// Every NATS name of a deployment comes from its namespace: wireNames('staging').subjects.tool('calc', 'calc_evaluate').
export { wireNames, defaultNamespace, namespacePattern, InvalidNamespaceError, serviceDiscoverySubject } from './transport/subjects.ts';
export { decodeSessionEvents } from './transport/messages.ts';
export { orchestratorAnswers } from './client/orchestratorProbe.ts';
export { sessionMachine } from './machines/session.ts';
export { Budgets, BudgetName, BudgetOverrides } from './machines/budgets.ts';
export { SessionStatus } from './machines/sessionOutcome.ts';
export { defaultPriceTable, priceOf } from './models/priceTable.ts';
export { startTelemetry } from './observability/telemetry.ts';
export { readOtelSettings, TelemetryConfigurationError } from './observability/otelEnvironment.ts';
export { startInspector } from './observability/inspector.ts';
export { troupeMetrics, MetricName } from './observability/metrics.ts';
export { AlertMonitor, AlertThresholds } from './observability/alertMonitor.ts';
export { createLogger } from './observability/logger.ts';
export { exampleDomains } from './domains/exampleDomains.ts';

export type { ToolContext, ToolDefinition, ToolReconciler, ToolSpec } from './tools/defineTool.ts';
export type { ToolFailure, ValidationIssue } from './tools/toolFailure.ts';
export type { AgentDefinition, AgentSpec } from './agents/defineAgent.ts';
export { defineGuardrail, GuardrailDefinitionError } from './guardrails/defineGuardrail.ts';
export type { Guardrail, GuardrailDecision, GuardrailInput, GuardrailModel, GuardrailPoint, GuardrailVerdict } from './guardrails/defineGuardrail.ts';
export { injectionGuardrail, piiGuardrail, secretsGuardrail, sizeLimitGuardrail } from './guardrails/builtInGuardrails.ts';
export { findPii, maskPii } from './guardrails/piiDetection.ts';
export { findSecrets, redactSecrets } from './guardrails/secretDetection.ts';
export { findInjectionMarkers } from './guardrails/injectionMarkers.ts';
export type { WorkflowSpec, WorkflowDefinition } from './machines/workflowDefinition.ts';
export type { ToolWorker, WorkerOptions } from './actors/worker/toolWorker.ts';
export type { FaultCounts, FaultRuleRef } from './actors/worker/faultCounts.ts';
export type { Orchestrator, OrchestratorOptions } from './actors/orchestrator/orchestrator.ts';
export type { ModelEndpoint } from './actors/model/modelCall.ts';
export type { SpecialistPool, SpecialistPoolOptions } from './actors/worker/specialistPool.ts';
export type { SessionRuntimeOptions } from './actors/session/sessionRuntime.ts';
export type { RoutingDecision, TurnFacts } from './machines/modelRouting.ts';
export type { Delegation, DelegatedSpending, DelegationLimits } from './machines/delegation.ts';
export type { SessionRun, StartSessionOptions, NamespaceOption, ControlOptions, ControlResult } from './client/sessionClient.ts';
export type { NatsCredentials, NkeySeed } from './transport/natsCredentials.ts';
export type { NatsConnectionSettings } from './transport/natsConnection.ts';
export type { Role, SubjectPermissions } from './transport/rolePermissions.ts';
export type { StatementSigner } from './transport/signatures.ts';
export type { OperatorKeys } from './transport/controlSignatures.ts';
export type { WireNames } from './transport/subjects.ts';
export type { ToolCatalogOptions } from './actors/toolCalls/toolCatalog.ts';
export type { CatalogConflict } from './actors/toolCalls/catalogConflicts.ts';
export type { DecodedSessionEvents, SessionEvent, SessionFinished } from './transport/messages.ts';
export type { SessionResult, SessionOutcome } from './machines/sessionOutcome.ts';
export type { PriceTable, ModelPrice } from './models/priceTable.ts';
export type { Telemetry, TelemetryOptions } from './observability/telemetry.ts';
export type { OtelSettings } from './observability/otelEnvironment.ts';
export type { StatechartInspector } from './observability/inspector.ts';
export type { Alert, AlertKind } from './transport/messages.ts';
