import { startOrchestrator } from '../actors/orchestrator/orchestrator.ts';
import { toolsRequiringApproval } from '../actors/toolCalls/toolCallTriage.ts';
import { loadAgents } from './agentModules.ts';
import { modelEndpointOf, withDeploymentSettings } from './agentSettings.ts';
import { ConfigurationError, defaultModelOf, loggableEnvironment, readEnvironment } from './environment.ts';
import { connectProcess, nkeySignerOf } from './natsSettings.ts';
import { startProcessRole } from './processLifecycle.ts';
import { startInspector } from '../observability/inspector.ts';
import { defaultModelTable } from '../models/modelTable.ts';
import { inspectOptions, inspectionOf, parseCommandArgs } from './inspectArgs.ts';

const orchestratorUsage = 'usage: troupe orchestrator [--agents <file>] [--inspect [--inspect-port 8080]]';

/** `troupe orchestrator [--agents <file>] [--inspect [--inspect-port N]]`: hosts sessions until SIGTERM, then lets running ones finish. */
export async function orchestratorCommand(args: string[]): Promise<void> {
  const { values } = parseCommandArgs(args, { agents: { type: 'string' }, ...inspectOptions }, orchestratorUsage);
  const inspection = inspectionOf(values, orchestratorUsage);
  const env = readEnvironment();
  const role = startProcessRole('orchestrator', env.LOG_LEVEL, env.TROUPE_REDACT);
  // What this process runs with, for whoever reads its log; keys and other secrets are redacted.
  role.logger.info({ config: loggableEnvironment(env) }, 'configuration');
  const signer = nkeySignerOf(env);
  if (signer) role.logger.info({ publicKey: signer.publicKey }, 'approved calls and undo requests are signed with this process\'s nkey');
  else role.logger.warn('approved calls and undo requests are NOT signed (no NATS_NKEY): only workers that trust no orchestrator key will run them');
  if (!env.TROUPE_OPERATOR_KEYS) {
    role.logger.warn('session commands are NOT authenticated: no operator keys are configured (TROUPE_OPERATOR_KEYS), so any peer that may publish to a session\'s control subject can approve, deny or roll back under any name');
  }
  const known = await loadAgents(env, values.agents);
  // Without TROUPE_DEFAULT_AGENT, a deployment's own first agent, else the example assistant.
  const defaultAgent = env.TROUPE_DEFAULT_AGENT ?? (Object.keys(known)[0] as string);
  const chosen = known[defaultAgent];
  if (!chosen) throw new ConfigurationError(`TROUPE_DEFAULT_AGENT: there is no agent "${defaultAgent}". Agents: ${Object.keys(known).join(', ')}.`);
  // The deployment's overrides (budgets, routing, fallbacks, depth) apply to the default agent.
  const agents = [withDeploymentSettings(chosen, env), ...Object.values(known).filter((a) => a.name !== defaultAgent)];
  const inspector = inspection ? startInspector({ port: inspection.port, logger: role.logger, captureContent: env.TROUPE_CAPTURE_CONTENT }) : undefined;
  const nc = await connectProcess(env, { name: 'troupe-orchestrator', logger: role.logger, longRunning: true });
  const orchestrator = await startOrchestrator({
    nats: nc,
    namespace: env.TROUPE_NAMESPACE,
    model: modelEndpointOf(env),
    defaultModel: defaultModelOf(env),
    agents,
    defaultAgent,
    logger: role.logger,
    ...(env.TROUPE_REQUIRE_APPROVAL ? { approvalPolicy: toolsRequiringApproval(env.TROUPE_REQUIRE_APPROVAL.split(',')) } : {}),
    ...(env.TROUPE_APPROVAL_TIMEOUT_MS ? { approvalTimeoutMs: env.TROUPE_APPROVAL_TIMEOUT_MS } : {}),
    ...(env.TROUPE_LEASE_TTL_MS ? { leaseTtlMs: env.TROUPE_LEASE_TTL_MS } : {}),
    ...(env.TROUPE_HEARTBEAT_TTL_MS ? { heartbeatTtlMs: env.TROUPE_HEARTBEAT_TTL_MS } : {}),
    ...(env.TROUPE_CIRCUIT_BREAKER ? { circuitBreaker: env.TROUPE_CIRCUIT_BREAKER } : {}),
    ...(env.TROUPE_ALERTS ? { alerts: env.TROUPE_ALERTS } : {}),
    source: 'troupe-orchestrator',
    ...(env.TROUPE_MODELS ? { models: { ...defaultModelTable, ...env.TROUPE_MODELS } } : {}),
    captureContent: env.TROUPE_CAPTURE_CONTENT,
    ...(inspector ? { inspect: inspector.inspect } : {}),
    ...(signer ? { signer } : {}),
    ...(env.TROUPE_OPERATOR_KEYS ? { operatorKeys: env.TROUPE_OPERATOR_KEYS } : {}),
  });
  role.onShutdown(async () => {
    await orchestrator.stop();
    await nc.drain();
    inspector?.stop();
  });
}
