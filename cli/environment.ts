import * as z from 'zod';
import { BudgetOverrides } from '../machines/budgets.ts';
import { TimerDelayMs } from '../machines/timerDelay.ts';
import { RoutingPolicy } from '../machines/modelRouting.ts';
import { AlertThresholds } from '../observability/alertMonitor.ts';
import { PriceTable } from '../models/priceTable.ts';
import { ModelTable } from '../models/modelTable.ts';
import { maxJetStreamReplicas } from '../transport/jetStreamReplicas.ts';
import { defaultNatsUrl } from '../transport/natsConnection.ts';
import { defaultNamespace, namespacePattern, namespaceRule } from '../transport/subjects.ts';
import { formatIssuePath } from '../tools/validation.ts';
import { parseOperatorKeys } from '../transport/controlSignatures.ts';
import { isUserPublicKey } from '../transport/signatures.ts';
import { redactUrlCredentials } from '../observability/redactUrl.ts';

const jsonOf = <T extends z.ZodType>(schema: T) =>
  z.string().transform((text, ctx): z.output<T> => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'is not valid JSON' });
      return z.NEVER;
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: `${formatIssuePath(issue.path)}: ${issue.message}` });
      return z.NEVER;
    }
    return parsed.data;
  });

/** Every environment variable Troupe reads, in one place, validated at start-up. */
export const Environment = z.object({
  NATS_URL: z.string().regex(/^(nats|tls|ws|wss):\/\//, 'must be a nats:// (or tls://, ws://) URL').default(defaultNatsUrl),
  /**
   * The deployment's namespace (`--namespace`): it prefixes every subject, queue group, service,
   * stream, bucket and object store, so deployments sharing a NATS cluster need different ones.
   */
  TROUPE_NAMESPACE: z.string().regex(namespacePattern, `must be ${namespaceRule}`).default(defaultNamespace),
  /**
   * How to authenticate to NATS and check its certificate, named as the `nats` CLI names them
   * (`--user`, `--password`, `--token`, `--nkey`, `--creds`, `--tlsca`, `--tlscert`, `--tlskey` set
   * them): at most one way of authenticating; the files are read at connect time.
   */
  NATS_USER: z.string().optional(),
  NATS_PASSWORD: z.string().optional(),
  NATS_TOKEN: z.string().optional(),
  /** A file holding an nkey seed, e.g. a role's `<role>.nk` from `troupe auth init`; an orchestrator also signs approvals with it, an operator its commands. */
  NATS_NKEY: z.string().optional(),
  NATS_CREDS: z.string().optional(),
  NATS_CA: z.string().optional(),
  NATS_CERT: z.string().optional(),
  NATS_KEY: z.string().optional(),
  /**
   * How many copies of each JetStream stream, bucket and object store Troupe creates (existing
   * ones keep theirs): 1 to 5. Without it, 1 on a single server and up to 3 on a cluster, as many
   * as it has servers (`transport/jetStreamReplicas.ts`).
   */
  TROUPE_JETSTREAM_REPLICAS: z.string().regex(/^\d+$/, `must be a whole number of replicas from 1 to ${maxJetStreamReplicas}`).transform(Number)
    .pipe(z.number().min(1, 'must be at least 1 (one copy)').max(maxJetStreamReplicas, `must be at most ${maxJetStreamReplicas}: JetStream keeps no more copies of a stream`)).optional(),
  /**
   * Orchestrator nkey public keys whose signatures a worker requires on approved calls and undo
   * requests, comma-separated. Without them a worker accepts unsigned approvals (and says so).
   */
  TROUPE_ORCHESTRATOR_KEYS: z.string().transform((text, ctx) => {
    const keys = text.split(',').map((k) => k.trim()).filter((k) => k !== '');
    for (const key of keys.filter((k) => !isUserPublicKey(k))) ctx.addIssue({ code: 'custom', message: `"${key}" is not an nkey public key (a user key starts with U)` });
    return keys;
  }).optional(),
  /**
   * The operators whose signed commands orchestrators accept, as `name:<public key>` (or the key
   * alone), comma-separated; sessions record the name. Without them any peer may command a session.
   */
  TROUPE_OPERATOR_KEYS: z.string().transform((text, ctx) => {
    try {
      return parseOperatorKeys(text);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  }).optional(),
  OPENAI_BASE_URL: z.url().optional(),
  OPENAI_API_KEY: z.string().optional(),
  TROUPE_MODEL: z.string().min(1).optional(),
  TROUPE_MODEL_PROVIDER: z.string().min(1).default('openai'),
  /** Set by `troupe demo|up` when they start the scripted model; marks the endpoint as offline. */
  TROUPE_SCRIPTED_MODEL: z.enum(['0', '1']).default('0'),
  TROUPE_WORKSPACE: z.string().min(1).default('./workspace'),
  /** The `db` example domain's SQLite file, opened read-only; a fresh copy of the sample shop when unset. */
  TROUPE_DB_FILE: z.string().min(1).optional(),
  /** JSON `{"Authorization": "Bearer …"}`: headers `troupe worker --mcp-url` sends its MCP server, kept out of the process list. */
  TROUPE_MCP_HEADERS: jsonOf(z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'an HTTP header name'), z.string())).optional(),
  TROUPE_PRICES: jsonOf(PriceTable).optional(),
  /** JSON `{"model-or-prefix": {"contextWindow": 128000, "tokenizer": "o200k_base"}}`, merged over the defaults. */
  TROUPE_MODELS: jsonOf(ModelTable).optional(),
  TROUPE_BUDGETS: jsonOf(BudgetOverrides).optional(),
  /** JSON routing policy for the agent this process runs: `{"rules":[{"name":…,"model":…,"when":{…}}]}`. */
  TROUPE_ROUTING: jsonOf(RoutingPolicy).optional(),
  /** Models to fall back to, in order, when the agent's model keeps failing: comma-separated. */
  TROUPE_FALLBACK_MODELS: z.string().regex(/^[^,\s]+(,[^,\s]+)*$/, 'model names separated by commas, no spaces').transform((s) => s.split(',')).optional(),
  /** How many levels of specialists the agent this process runs may delegate to (0 forbids delegation). */
  TROUPE_MAX_DELEGATION_DEPTH: z.coerce.number().int().min(0).max(10).optional(),
  TROUPE_SCRIPTS: z.string().optional(),
  /** A module exporting agents (built with defineAgent) for `troupe orchestrator` and `troupe worker --agent`. */
  TROUPE_AGENTS: z.string().min(1).optional(),
  /** The agent of sessions whose start names none; `assistant` by default. */
  TROUPE_DEFAULT_AGENT: z.string().min(1).optional(),
  /** Tools that need a person's approval in this deployment: names or `<domain>_*`, comma-separated. */
  TROUPE_REQUIRE_APPROVAL: z.string().regex(/^[a-z0-9_*]+(,[a-z0-9_*]+)*$/, 'tool names or <domain>_*, separated by commas').optional(),
  /** How long a call waits for approval before it is denied (a timer: at most 2^31−1 ms). */
  TROUPE_APPROVAL_TIMEOUT_MS: z.coerce.number().pipe(TimerDelayMs).optional(),
  /** A pool's per-attempt deadline for every tool it serves, overriding the tools' own `timeoutMs` (a timer: at most 2^31−1 ms). */
  TROUPE_TOOL_TIMEOUT_MS: z.coerce.number().pipe(TimerDelayMs).optional(),
  /**
   * How long a session's lease lasts without renewal, for orchestrators and specialist pools: a dead
   * host's sessions are resumed elsewhere within about this long (renewed every third of it).
   */
  TROUPE_LEASE_TTL_MS: z.coerce.number().pipe(TimerDelayMs).pipe(z.number().min(1_000, 'at least 1000 ms: renewals every third of it must outrun a busy event loop')).optional(),
  TROUPE_HEARTBEAT_TTL_MS: z.coerce.number().pipe(TimerDelayMs).pipe(z.number().min(300, 'at least 300 ms: beats every third of it must outrun a busy event loop')).optional(),
  /**
   * JSON circuit-breaker settings for processes that run sessions, e.g. `{"failureThreshold":20}`:
   * with many sessions at once, one pool member dying times out that many calls together.
   */
  TROUPE_CIRCUIT_BREAKER: jsonOf(z.strictObject({ failureThreshold: z.number().int().min(1).optional(), cooldownMs: TimerDelayMs.optional() })).optional(),
  /** JSON alert thresholds for processes that run sessions (orchestrators, specialist pools). */
  TROUPE_ALERTS: jsonOf(AlertThresholds).optional(),
  /** Record message contents and tool arguments and results on spans (they may hold personal data). */
  TROUPE_CAPTURE_CONTENT: z.enum(['0', '1', 'false', 'true']).transform((v) => v === '1' || v === 'true').default(false),
  TROUPE_NATS_ASYNC_TRACES: z.enum(['0', '1', 'false', 'true']).transform((v) => v === '1' || v === 'true').default(false),
  /** Serve metrics for Prometheus to scrape on this port (`/metrics`); read again with the `OTEL_*` variables by `observability/otelEnvironment.ts`. */
  TROUPE_PROMETHEUS_PORT: z.coerce.number().int().min(1).max(65_535).optional(),
  TROUPE_PROMETHEUS_HOST: z.string().min(1).optional(),
  /** More log fields to redact, as pino paths, comma-separated (e.g. `customer.email,*.ssn`). */
  TROUPE_REDACT: z.string().regex(/^[\w.*\[\]"'-]+(,[\w.*\[\]"'-]+)*$/, 'pino paths separated by commas, no spaces').transform((s) => s.split(',')).optional(),
  /** Jaeger's query API (the UI's address, e.g. http://localhost:16686), for `troupe trace`. */
  JAEGER_URL: z.url().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type Environment = z.infer<typeof Environment>;

/** A setting that is present but wrong: the process stops before doing anything. */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  // An empty variable means "not set", as in most shells' `VAR= cmd`.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = Environment.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${formatIssuePath(i.path)}: ${i.message}`).join('\n');
    throw new ConfigurationError(`Invalid environment:\n${problems}`);
  }
  return parsed.data;
}

/**
 * The environment as a process may log it: credentials in URLs and NATS passwords and tokens
 * replaced (keys such as `OPENAI_API_KEY` are redacted by the logger itself), operator keys as
 * the names and keys they are.
 */
export function loggableEnvironment(env: Environment): Record<string, unknown> {
  const shown: Record<string, unknown> = { ...env };
  for (const key of ['NATS_URL', 'OPENAI_BASE_URL', 'JAEGER_URL'] as const) {
    const value = env[key];
    if (value !== undefined) shown[key] = redactUrlCredentials(value);
  }
  for (const key of ['NATS_PASSWORD', 'NATS_TOKEN'] as const) if (env[key] !== undefined) shown[key] = '[redacted]';
  if (env.TROUPE_OPERATOR_KEYS) shown.TROUPE_OPERATOR_KEYS = Object.fromEntries(env.TROUPE_OPERATOR_KEYS);
  // Header names only: their values are an MCP server's credentials.
  if (env.TROUPE_MCP_HEADERS) shown.TROUPE_MCP_HEADERS = Object.fromEntries(Object.keys(env.TROUPE_MCP_HEADERS).map((name) => [name, '[redacted]']));
  return shown;
}

/** The model agents use when they name none: the scripted one offline, a small real one otherwise. */
export function defaultModelOf(env: Environment): string {
  return env.TROUPE_MODEL ?? (env.TROUPE_SCRIPTED_MODEL === '1' ? 'scripted' : 'gpt-4.1-mini');
}
