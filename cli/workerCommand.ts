import { resolve } from 'node:path';
import { startSpecialistPool } from '../actors/worker/specialistPool.ts';
import { startWorker } from '../actors/worker/toolWorker.ts';
import { faultCountsFromEnv } from '../actors/worker/faultCounts.ts';
import { faultSpecificationFromEnv, unknownFaultTools } from '../actors/worker/workerFaults.ts';
import { exampleAgents } from '../agents/exampleAgents.ts';
import { exampleDomains, type ExampleDomain } from '../domains/exampleDomains.ts';
import { toolsRequiringApproval } from '../actors/toolCalls/toolCallTriage.ts';
import { loadAgents } from './agentModules.ts';
import { modelEndpointOf, withDeploymentSettings } from './agentSettings.ts';
import { defaultModelOf, loggableEnvironment, readEnvironment } from './environment.ts';
import { connectProcess, nkeySignerOf } from './natsSettings.ts';
import { startProcessRole } from './processLifecycle.ts';
import { UsageError } from './usageError.ts';
import { startInspector } from '../observability/inspector.ts';
import { defaultModelTable } from '../models/modelTable.ts';
import { inspectOptions, inspectionOf, parseCommandArgs } from './inspectArgs.ts';
import { loadToolModule } from './toolModules.ts';
import type { McpServerTarget } from '../mcp/mcpServerConnection.ts';
import { subjectTokenPattern } from '../transport/subjects.ts';
import { startMcpPool } from '../mcp/mcpPool.ts';
import { mcpTargetOf, mcpWorkerUsage } from './mcpWorkerArgs.ts';

const workerUsage = `usage: troupe worker <domain>                   serve an example domain (${Object.keys(exampleDomains).join(', ')})
       troupe worker <domain> --module <file>   serve the tools your module exports as the <domain> pool
       troupe worker --agent <name> [--agents <file>] [--inspect [--inspect-port 8080]]
                                                serve an agent as a specialist pool (${Object.keys(exampleAgents).join(', ')}, or yours)
${mcpWorkerUsage}`;

const workerOptions = {
  agent: { type: 'string' },
  agents: { type: 'string' },
  module: { type: 'string' },
  mcp: { type: 'boolean' },
  'mcp-url': { type: 'string' },
  'mcp-header': { type: 'string', multiple: true },
  'mcp-no-approval': { type: 'boolean' },
  ...inspectOptions,
} as const;

/**
 * `troupe worker <domain> [--module <file>]` or `troupe worker --agent <name> [--agents <file>]`:
 * one member of a pool, until SIGTERM drains it.
 */
export async function workerCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(args, workerOptions, workerUsage, true);
  if (values.agent !== undefined) {
    if (positionals.length > 0 || values.module !== undefined) throw new UsageError(`--agent serves a specialist, not a tool domain: drop ${positionals.length > 0 ? `"${positionals[0]}"` : '--module'}.\n${workerUsage}`);
    await serveSpecialist(values.agent, values.agents, inspectionOf(values, workerUsage));
    return;
  }
  if (values.inspect || values['inspect-port'] !== undefined) {
    throw new UsageError('A tool pool runs no statecharts (its tools are plain handlers): --inspect applies to `troupe orchestrator` and `troupe worker --agent <name>`.');
  }
  if (values.agents !== undefined) throw new UsageError(`--agents goes with --agent <name> (or troupe orchestrator).\n${workerUsage}`);
  const [domain, ...extra] = positionals;
  if (!domain) throw new UsageError(workerUsage);
  if (!subjectTokenPattern.test(domain)) throw new UsageError(`"${domain}" is not a domain name: use letters, digits, "-" or "_".`);
  const mcpTarget = mcpTargetOf(values, extra, readEnvironment().TROUPE_MCP_HEADERS);
  if (mcpTarget) {
    if (values.module !== undefined) throw new UsageError(`--module and --mcp serve two different things: give one of them.\n${workerUsage}`);
    // Its tools are named <domain>_<tool>, and a tool's domain is lower-case letters and digits.
    if (!/^[a-z][a-z0-9]{0,31}$/.test(domain)) throw new UsageError(`"${domain}" cannot name an MCP pool: its tools are called ${domain}_<tool>, so use lower-case letters and digits (at most 32), starting with a letter.`);
    await serveMcpServer(domain, mcpTarget, values['mcp-no-approval'] !== true);
    return;
  }
  if (values['mcp-no-approval']) throw new UsageError(`--mcp-no-approval goes with --mcp or --mcp-url\n${workerUsage}`);
  const known = Object.keys(exampleDomains);
  if (values.module === undefined && !known.includes(domain)) {
    throw new UsageError(`There is no domain "${domain}". Domains: ${known.join(', ')}; serve your own with \`troupe worker ${domain} --module <file>\`.`);
  }
  const env = readEnvironment();
  // A module that cannot be served stops the process before it starts telemetry or joins the pool.
  const defined = values.module !== undefined ? await loadToolModule(values.module, domain) : exampleDomains[domain as ExampleDomain]({ workspace: resolve(env.TROUPE_WORKSPACE), ...(env.TROUPE_DB_FILE ? { databaseFile: resolve(env.TROUPE_DB_FILE) } : {}) });
  const role = startProcessRole(`worker-${domain}`, env.LOG_LEVEL, env.TROUPE_REDACT);
  const tools = env.TROUPE_TOOL_TIMEOUT_MS ? defined.map((t) => ({ ...t, timeoutMs: env.TROUPE_TOOL_TIMEOUT_MS as number })) : defined;
  const faults = faultSpecificationFromEnv();
  // Checked even without faults, so a wrong directory is found before a run that needs it.
  const faultCounts = faultCountsFromEnv();
  if (faults) {
    const unknown = unknownFaultTools(faults, tools.map((t) => t.name));
    role.logger.warn(
      { faults, ...(unknown.length > 0 ? { unknownTools: unknown } : {}), ...(faultCounts ? { sharedFaultCounts: faultCounts.directory } : {}) },
      'fault injection is on (TROUPE_FAULTS)',
    );
  }
  const nc = await connectProcess(env, { name: `troupe-worker-${domain}`, logger: role.logger, longRunning: true });
  const worker = await startWorker({
    domain, tools, nats: nc, namespace: env.TROUPE_NAMESPACE, logger: role.logger, ...(faults ? { faults } : {}), ...(faultCounts ? { faultCounts } : {}),
    ...(env.TROUPE_ORCHESTRATOR_KEYS ? { trustedOrchestrators: env.TROUPE_ORCHESTRATOR_KEYS } : {}),
    // The deployment's approval rule binds the pool too, so a peer cannot skip the orchestrator's.
    ...(env.TROUPE_REQUIRE_APPROVAL ? { approvalPolicy: toolsRequiringApproval(env.TROUPE_REQUIRE_APPROVAL.split(',')) } : {}),
  });
  role.onShutdown(async () => {
    await worker.stop();
    await nc.drain();
  });
}

/** A member of a pool backed by an MCP server: its own connection to the server, its tools as <domain>_<tool>. */
async function serveMcpServer(domain: string, target: McpServerTarget, approveDestructive: boolean): Promise<void> {
  const env = readEnvironment();
  const role = startProcessRole(`worker-${domain}`, env.LOG_LEVEL, env.TROUPE_REDACT);
  const faults = faultSpecificationFromEnv();
  const faultCounts = faultCountsFromEnv();
  if (faults) role.logger.warn({ faults, ...(faultCounts ? { sharedFaultCounts: faultCounts.directory } : {}) }, 'fault injection is on (TROUPE_FAULTS)');
  const nc = await connectProcess(env, { name: `troupe-worker-${domain}`, logger: role.logger, longRunning: true });
  const pool = await startMcpPool({
    domain, target, nats: nc, namespace: env.TROUPE_NAMESPACE, logger: role.logger,
    mapping: { approveDestructive, ...(env.TROUPE_TOOL_TIMEOUT_MS ? { timeoutMs: env.TROUPE_TOOL_TIMEOUT_MS } : {}) },
    ...(faults ? { faults } : {}), ...(faultCounts ? { faultCounts } : {}),
    ...(env.TROUPE_ORCHESTRATOR_KEYS ? { trustedOrchestrators: env.TROUPE_ORCHESTRATOR_KEYS } : {}),
    ...(env.TROUPE_REQUIRE_APPROVAL ? { approvalPolicy: toolsRequiringApproval(env.TROUPE_REQUIRE_APPROVAL.split(',')) } : {}),
  }).catch(async (error: unknown) => {
    await nc.drain().catch(() => undefined);
    throw error;
  });
  role.onShutdown(async () => {
    await pool.stop();
    await nc.drain();
  });
}

/** A member of a specialist's pool: its sessions run here, calling the tool pools over NATS. */
async function serveSpecialist(name: string, agentsFlag: string | undefined, inspection: { port: number } | undefined): Promise<void> {
  const env = readEnvironment();
  const known = await loadAgents(env, agentsFlag);
  const defined = known[name];
  if (!defined) throw new UsageError(`There is no agent "${name}". Agents: ${Object.keys(known).join(', ')} (add your own with --agents <file>).`);
  const role = startProcessRole(`specialist-${name}`, env.LOG_LEVEL, env.TROUPE_REDACT);
  role.logger.info({ config: loggableEnvironment(env) }, 'configuration');
  const inspector = inspection ? startInspector({ port: inspection.port, logger: role.logger, captureContent: env.TROUPE_CAPTURE_CONTENT }) : undefined;
  const signer = nkeySignerOf(env);
  const nc = await connectProcess(env, { name: `troupe-specialist-${name}`, logger: role.logger, longRunning: true });
  const pool = await startSpecialistPool({
    namespace: env.TROUPE_NAMESPACE,
    agent: withDeploymentSettings(defined, env),
    nats: nc,
    model: modelEndpointOf(env),
    defaultModel: defaultModelOf(env),
    logger: role.logger,
    ...(env.TROUPE_ALERTS ? { alerts: env.TROUPE_ALERTS } : {}),
    source: `troupe-specialist-${name}`,
    ...(env.TROUPE_LEASE_TTL_MS ? { leaseTtlMs: env.TROUPE_LEASE_TTL_MS } : {}),
    ...(env.TROUPE_HEARTBEAT_TTL_MS ? { heartbeatTtlMs: env.TROUPE_HEARTBEAT_TTL_MS } : {}),
    ...(env.TROUPE_CIRCUIT_BREAKER ? { circuitBreaker: env.TROUPE_CIRCUIT_BREAKER } : {}),
    ...(env.TROUPE_MODELS ? { models: { ...defaultModelTable, ...env.TROUPE_MODELS } } : {}),
    // A specialist's sessions wait for a person like the orchestrator's: a delegation is no way around the rule.
    // And they sign what was approved, as an orchestrator does, for workers that trust this member's key.
    ...(env.TROUPE_REQUIRE_APPROVAL ? { approvalPolicy: toolsRequiringApproval(env.TROUPE_REQUIRE_APPROVAL.split(',')) } : {}),
    ...(signer ? { signer } : {}),
    captureContent: env.TROUPE_CAPTURE_CONTENT,
    ...(inspector ? { inspect: inspector.inspect } : {}),
    ...(env.TROUPE_OPERATOR_KEYS ? { operatorKeys: env.TROUPE_OPERATOR_KEYS } : {}),
  });
  role.onShutdown(async () => {
    await pool.stop();
    await nc.drain();
    inspector?.stop();
  });
}
