import { describe, expect, it } from 'vitest';
import { createUser } from '@nats-io/nkeys';
import { ConfigurationError, defaultModelOf, loggableEnvironment, readEnvironment } from '../../cli/environment.ts';
import { createLogger } from '../../observability/logger.ts';

function configurationErrorOf(env: NodeJS.ProcessEnv): ConfigurationError {
  try {
    readEnvironment(env);
  } catch (error) {
    if (error instanceof ConfigurationError) return error;
    throw error;
  }
  throw new Error(`readEnvironment accepted ${JSON.stringify(env)}`);
}

describe('readEnvironment', () => {
  it('fills the defaults when nothing is set', () => {
    expect(readEnvironment({})).toStrictEqual({
      NATS_URL: 'nats://127.0.0.1:4222',
      TROUPE_NAMESPACE: 'troupe',
      TROUPE_MODEL_PROVIDER: 'openai',
      TROUPE_SCRIPTED_MODEL: '0',
      TROUPE_WORKSPACE: './workspace',
      TROUPE_CAPTURE_CONTENT: false,
      TROUPE_NATS_ASYNC_TRACES: false,
      LOG_LEVEL: 'info',
    });
  });

  it('keeps the values that are set and ignores variables it does not know', () => {
    const env = readEnvironment({
      NATS_URL: 'tls://nats.example.com:4222',
      OPENAI_BASE_URL: 'http://127.0.0.1:8080/v1',
      OPENAI_API_KEY: 'sk-test',
      TROUPE_MODEL: 'gpt-5-mini',
      TROUPE_SCRIPTED_MODEL: '1',
      LOG_LEVEL: 'debug',
      HOME: '/root',
    });
    expect(env).toMatchObject({
      NATS_URL: 'tls://nats.example.com:4222',
      OPENAI_BASE_URL: 'http://127.0.0.1:8080/v1',
      OPENAI_API_KEY: 'sk-test',
      TROUPE_MODEL: 'gpt-5-mini',
      TROUPE_SCRIPTED_MODEL: '1',
      LOG_LEVEL: 'debug',
    });
    expect(env).not.toHaveProperty('HOME');
  });

  it('refuses a NATS_URL that is not a NATS URL, naming the variable', () => {
    const error = configurationErrorOf({ NATS_URL: 'http://127.0.0.1:4222' });
    expect(error.message).toContain('NATS_URL: must be a nats:// (or tls://, ws://) URL');
    expect(error.name).toBe('ConfigurationError');
  });

  it('takes a TROUPE_NAMESPACE and refuses one that cannot prefix NATS names, saying what would', () => {
    expect(readEnvironment({ TROUPE_NAMESPACE: 'staging' }).TROUPE_NAMESPACE).toBe('staging');
    const error = configurationErrorOf({ TROUPE_NAMESPACE: 'Staging.EU' });
    expect(error.message).toBe('Invalid environment:\n  TROUPE_NAMESPACE: must be a lower-case letter, then lower-case letters, digits, "-" or "_", at most 32 characters');
  });

  it('refuses an OPENAI_BASE_URL that is not a URL and an unknown LOG_LEVEL', () => {
    const error = configurationErrorOf({ OPENAI_BASE_URL: 'localhost 8080', LOG_LEVEL: 'loud' });
    expect(error.message).toMatch(/^Invalid environment:\n/);
    expect(error.message).toContain('OPENAI_BASE_URL: ');
    expect(error.message).toContain('LOG_LEVEL: ');
  });

  it('treats empty strings as unset', () => {
    expect(readEnvironment({ NATS_URL: '', TROUPE_MODEL: '', TROUPE_PRICES: '', TROUPE_BUDGETS: '', LOG_LEVEL: '' })).toStrictEqual(readEnvironment({}));
  });

  it('parses TROUPE_PRICES as a price table', () => {
    const env = readEnvironment({ TROUPE_PRICES: '{"my-model":{"inputPerMTok":0.5,"outputPerMTok":2}}' });
    expect(env.TROUPE_PRICES).toEqual({ 'my-model': { inputPerMTok: 0.5, outputPerMTok: 2 } });
  });

  it('refuses TROUPE_PRICES that is not JSON, naming the variable', () => {
    const error = configurationErrorOf({ TROUPE_PRICES: '{my-model: 1}' });
    expect(error.message).toContain('TROUPE_PRICES: is not valid JSON');
  });

  it('refuses TROUPE_PRICES with a bad field, naming the variable and the field', () => {
    const error = configurationErrorOf({ TROUPE_PRICES: '{"my-model":{"inputPerMTok":-1,"outputPerMTok":2}}' });
    expect(error.message).toMatch(/TROUPE_PRICES: my-model\.inputPerMTok: /);
    expect(error.message).not.toContain('outputPerMTok');
  });

  it('parses TROUPE_BUDGETS with the fields it sets', () => {
    const env = readEnvironment({ TROUPE_BUDGETS: '{"maxSteps":5,"maxCostUsd":0.25}' });
    expect(env.TROUPE_BUDGETS).toMatchObject({ maxSteps: 5, maxCostUsd: 0.25 });
  });

  it('refuses TROUPE_BUDGETS that is not JSON or has a bad field, naming the variable', () => {
    expect(configurationErrorOf({ TROUPE_BUDGETS: 'maxSteps=5' }).message).toContain('TROUPE_BUDGETS: is not valid JSON');
    const error = configurationErrorOf({ TROUPE_BUDGETS: '{"maxSteps":0,"maxCostUsd":"cheap"}' });
    expect(error.message).toMatch(/TROUPE_BUDGETS: maxSteps: /);
    expect(error.message).toMatch(/TROUPE_BUDGETS: maxCostUsd: /);
  });

  // Node keeps timer delays in 32 bits: a longer timeout fires after 1 ms instead of never.
  it('refuses timeouts a timer cannot wait (over 2^31−1 ms) instead of letting them fire at once', () => {
    const bound = 'must be at most 2147483647 ms (about 24.8 days), the longest delay a timer can wait';
    expect(configurationErrorOf({ TROUPE_APPROVAL_TIMEOUT_MS: '2147483648' }).message).toContain(`TROUPE_APPROVAL_TIMEOUT_MS: ${bound}`);
    expect(configurationErrorOf({ TROUPE_TOOL_TIMEOUT_MS: '1e12' }).message).toContain(`TROUPE_TOOL_TIMEOUT_MS: ${bound}`);
    expect(configurationErrorOf({ TROUPE_BUDGETS: '{"maxWallClockMs":3000000000}' }).message).toContain(`TROUPE_BUDGETS: maxWallClockMs: ${bound}`);
    expect(readEnvironment({ TROUPE_APPROVAL_TIMEOUT_MS: '2147483647', TROUPE_TOOL_TIMEOUT_MS: '60000' })).toMatchObject({
      TROUPE_APPROVAL_TIMEOUT_MS: 2_147_483_647, TROUPE_TOOL_TIMEOUT_MS: 60_000,
    });
  });
});

describe('agent settings', () => {
  it('reads TROUPE_HEARTBEAT_TTL_MS and refuses a heartbeat too short to renew in time', () => {
    expect(readEnvironment({ TROUPE_HEARTBEAT_TTL_MS: '1500' })).toMatchObject({ TROUPE_HEARTBEAT_TTL_MS: 1_500 });
    expect(configurationErrorOf({ TROUPE_HEARTBEAT_TTL_MS: '100' }).message).toMatch(/TROUPE_HEARTBEAT_TTL_MS: at least 300 ms/);
    expect(configurationErrorOf({ TROUPE_HEARTBEAT_TTL_MS: 'soon' }).message).toContain('TROUPE_HEARTBEAT_TTL_MS');
  });

  it('reads TROUPE_LEASE_TTL_MS and refuses a lease too short to renew in time', () => {
    expect(readEnvironment({ TROUPE_LEASE_TTL_MS: '2000' })).toMatchObject({ TROUPE_LEASE_TTL_MS: 2_000 });
    expect(configurationErrorOf({ TROUPE_LEASE_TTL_MS: '500' }).message).toMatch(/TROUPE_LEASE_TTL_MS: at least 1000 ms/);
    expect(configurationErrorOf({ TROUPE_LEASE_TTL_MS: 'soon' }).message).toContain('TROUPE_LEASE_TTL_MS');
  });

  it('parses TROUPE_CIRCUIT_BREAKER and refuses a misspelt or bad field, naming it', () => {
    expect(readEnvironment({ TROUPE_CIRCUIT_BREAKER: '{"failureThreshold":20}' })).toMatchObject({ TROUPE_CIRCUIT_BREAKER: { failureThreshold: 20 } });
    expect(configurationErrorOf({ TROUPE_CIRCUIT_BREAKER: '{"failureTreshold":20}' }).message).toMatch(/TROUPE_CIRCUIT_BREAKER.*failureTreshold/);
    expect(configurationErrorOf({ TROUPE_CIRCUIT_BREAKER: '{"failureThreshold":0}' }).message).toMatch(/TROUPE_CIRCUIT_BREAKER.*failureThreshold/);
  });

  it('parses TROUPE_ROUTING as a routing policy', () => {
    const env = readEnvironment({ TROUPE_ROUTING: '{"rules":[{"name":"plan","model":"gpt-5","when":{"turnKinds":["first"]}}]}' });
    expect(env.TROUPE_ROUTING).toEqual({ rules: [{ name: 'plan', model: 'gpt-5', when: { turnKinds: ['first'] } }] });
  });

  it('refuses a TROUPE_ROUTING rule with a misspelt condition or an unknown turn kind, naming the field', () => {
    expect(configurationErrorOf({ TROUPE_ROUTING: '{"rules":[{"model":"m","when":{"turnKind":["first"]}}]}' }).message).toContain('TROUPE_ROUTING: rules[0].when: Unrecognized key: "turnKind"');
    expect(configurationErrorOf({ TROUPE_ROUTING: '{"rules":[{"model":"m","when":{"turnKinds":["second"]}}]}' }).message).toContain('TROUPE_ROUTING: rules[0].when.turnKinds[0]: ');
    expect(configurationErrorOf({ TROUPE_ROUTING: '{"rules":[]}' }).message).toContain('TROUPE_ROUTING: rules: a routing policy needs at least one rule');
  });

  it('splits TROUPE_FALLBACK_MODELS and refuses spaces or empty names', () => {
    expect(readEnvironment({ TROUPE_FALLBACK_MODELS: 'gpt-5-mini,gpt-4.1-mini' }).TROUPE_FALLBACK_MODELS).toEqual(['gpt-5-mini', 'gpt-4.1-mini']);
    expect(configurationErrorOf({ TROUPE_FALLBACK_MODELS: 'a, b' }).message).toContain('TROUPE_FALLBACK_MODELS');
    expect(configurationErrorOf({ TROUPE_FALLBACK_MODELS: 'a,,b' }).message).toContain('TROUPE_FALLBACK_MODELS');
  });

  it('reads TROUPE_MAX_DELEGATION_DEPTH as a small whole number', () => {
    expect(readEnvironment({ TROUPE_MAX_DELEGATION_DEPTH: '0' }).TROUPE_MAX_DELEGATION_DEPTH).toBe(0);
    expect(configurationErrorOf({ TROUPE_MAX_DELEGATION_DEPTH: '-1' }).message).toContain('TROUPE_MAX_DELEGATION_DEPTH');
    expect(configurationErrorOf({ TROUPE_MAX_DELEGATION_DEPTH: 'deep' }).message).toContain('TROUPE_MAX_DELEGATION_DEPTH');
  });
});

describe('TROUPE_BUDGETS', () => {
  // Regression: a partial override came back with every budget filled in, replacing an agent's own budgets.
  it('holds only the budgets it sets', () => {
    expect(readEnvironment({ TROUPE_BUDGETS: '{"maxSteps":5}' }).TROUPE_BUDGETS).toEqual({ maxSteps: 5 });
  });
});

describe('defaultModelOf', () => {
  it('returns TROUPE_MODEL when it is set', () => {
    expect(defaultModelOf(readEnvironment({ TROUPE_MODEL: 'o3', TROUPE_SCRIPTED_MODEL: '1' }))).toBe('o3');
  });

  it('returns the scripted model when the scripted endpoint is in use', () => {
    expect(defaultModelOf(readEnvironment({ TROUPE_SCRIPTED_MODEL: '1' }))).toBe('scripted');
  });

  it('returns a small real model otherwise', () => {
    expect(defaultModelOf(readEnvironment({}))).toBe('gpt-4.1-mini');
  });
});

describe('observability settings', () => {
  it('parses alert thresholds, filling the windows', () => {
    const env = readEnvironment({ TROUPE_ALERTS: '{"toolErrorRate":{"threshold":0.5},"tenantSpendUsd":{"threshold":10}}' });
    expect(env.TROUPE_ALERTS).toEqual({ toolErrorRate: { threshold: 0.5, minCalls: 5, windowMs: 60_000 }, tenantSpendUsd: { threshold: 10, windowMs: 3_600_000 } });
  });

  it('refuses an error-rate threshold of 0 or over 1, and a misspelt alert', () => {
    expect(configurationErrorOf({ TROUPE_ALERTS: '{"toolErrorRate":{"threshold":0}}' }).message).toContain('TROUPE_ALERTS: toolErrorRate.threshold: ');
    expect(configurationErrorOf({ TROUPE_ALERTS: '{"toolErrorRate":{"threshold":1.5}}' }).message).toContain('TROUPE_ALERTS: toolErrorRate.threshold: ');
    expect(configurationErrorOf({ TROUPE_ALERTS: '{"toolErrorRatio":{"threshold":0.5}}' }).message).toContain('Unrecognized key: "toolErrorRatio"');
  });

  it('reads content capture as a switch, the Prometheus port as a port and extra redactions as paths', () => {
    expect(readEnvironment({ TROUPE_CAPTURE_CONTENT: 'true' }).TROUPE_CAPTURE_CONTENT).toBe(true);
    expect(readEnvironment({ TROUPE_CAPTURE_CONTENT: '0' }).TROUPE_CAPTURE_CONTENT).toBe(false);
    expect(configurationErrorOf({ TROUPE_CAPTURE_CONTENT: 'yes' }).message).toContain('TROUPE_CAPTURE_CONTENT');
    expect(readEnvironment({ TROUPE_NATS_ASYNC_TRACES: '1' }).TROUPE_NATS_ASYNC_TRACES).toBe(true);
    expect(configurationErrorOf({ TROUPE_NATS_ASYNC_TRACES: 'on' }).message).toContain('TROUPE_NATS_ASYNC_TRACES');
    expect(readEnvironment({ TROUPE_PROMETHEUS_PORT: '9464' }).TROUPE_PROMETHEUS_PORT).toBe(9464);
    expect(configurationErrorOf({ TROUPE_PROMETHEUS_PORT: '70000' }).message).toContain('TROUPE_PROMETHEUS_PORT');
    expect(readEnvironment({ TROUPE_REDACT: 'customer.email,*.ssn' }).TROUPE_REDACT).toEqual(['customer.email', '*.ssn']);
    expect(configurationErrorOf({ TROUPE_REDACT: 'customer email' }).message).toContain('TROUPE_REDACT');
    expect(configurationErrorOf({ JAEGER_URL: 'jaeger' }).message).toContain('JAEGER_URL');
  });
});

describe('NATS credentials and signing keys', () => {
  const orchestrator = createUser().getPublicKey();
  const operator = createUser().getPublicKey();

  it('reads the orchestrator keys workers trust and the operators sessions take commands from', () => {
    const env = readEnvironment({ TROUPE_ORCHESTRATOR_KEYS: `${orchestrator}, ${orchestrator}`, TROUPE_OPERATOR_KEYS: `ada:${operator}`, NATS_NKEY: '/keys/orchestrator.nk' });
    expect(env.TROUPE_ORCHESTRATOR_KEYS).toEqual([orchestrator, orchestrator]);
    expect([...(env.TROUPE_OPERATOR_KEYS ?? [])]).toEqual([[operator, 'ada']]);
    expect(env.NATS_NKEY).toBe('/keys/orchestrator.nk');
  });

  it('refuses a key that is not an nkey public key, naming the variable', () => {
    expect(configurationErrorOf({ TROUPE_ORCHESTRATOR_KEYS: 'SUAFAKESEED' }).message).toContain('TROUPE_ORCHESTRATOR_KEYS: "SUAFAKESEED" is not an nkey public key');
    expect(configurationErrorOf({ TROUPE_OPERATOR_KEYS: 'ada:nope' }).message).toContain('TROUPE_OPERATOR_KEYS: "ada:nope" is not [name:]<nkey public key>');
  });
});

describe('TROUPE_JETSTREAM_REPLICAS', () => {
  it('is absent unless set, so the count is picked from the server', () => {
    expect(readEnvironment({})).not.toHaveProperty('TROUPE_JETSTREAM_REPLICAS');
  });

  it('reads a whole number of replicas from 1 to 5', () => {
    expect(readEnvironment({ TROUPE_JETSTREAM_REPLICAS: '1' }).TROUPE_JETSTREAM_REPLICAS).toBe(1);
    expect(readEnvironment({ TROUPE_JETSTREAM_REPLICAS: '5' }).TROUPE_JETSTREAM_REPLICAS).toBe(5);
  });

  it('refuses any other value, naming the variable and the range', () => {
    expect(configurationErrorOf({ TROUPE_JETSTREAM_REPLICAS: '0' }).message).toBe('Invalid environment:\n  TROUPE_JETSTREAM_REPLICAS: must be at least 1 (one copy)');
    expect(configurationErrorOf({ TROUPE_JETSTREAM_REPLICAS: '6' }).message).toBe('Invalid environment:\n  TROUPE_JETSTREAM_REPLICAS: must be at most 5: JetStream keeps no more copies of a stream');
    for (const value of ['three', '2.5', '-1', '3 ']) {
      expect(configurationErrorOf({ TROUPE_JETSTREAM_REPLICAS: value }).message).toBe('Invalid environment:\n  TROUPE_JETSTREAM_REPLICAS: must be a whole number of replicas from 1 to 5');
    }
  });
});

describe('loggableEnvironment', () => {
  it('keeps credentials in URLs, NATS passwords and tokens out of the configuration a process logs', () => {
    const env = readEnvironment({
      NATS_URL: 'nats://ada:n4ts-secret@nats.example.com:4222', NATS_PASSWORD: 'pw-secret', NATS_TOKEN: 'token-secret',
      OPENAI_BASE_URL: 'https://key:openai-secret@llm.example.com/v1', JAEGER_URL: 'http://u:jaeger-secret@jaeger:16686',
    });
    let line = '';
    const logger = createLogger({ name: 'orchestrator', destination: { write: (text: string) => void (line += text) } });
    logger.info({ config: loggableEnvironment(env) }, 'configuration');
    for (const secret of ['n4ts-secret', 'pw-secret', 'token-secret', 'openai-secret', 'jaeger-secret']) expect(line).not.toContain(secret);
    expect(JSON.parse(line).config).toMatchObject({ NATS_URL: 'nats://[redacted]@nats.example.com:4222', NATS_PASSWORD: '[redacted]', NATS_TOKEN: '[redacted]' });
  });
});
