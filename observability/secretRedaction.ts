import { stdSerializers } from 'pino';
import { redactUrlCredentials } from './redactUrl.ts';

/**
 * Field names whose values are never written in clear, at any depth and in any case: a key is
 * secret when, lower-cased and without `-`, `_` or `.`, it ends with one of these. So `apiKey`,
 * `OPENAI_API_KEY`, `x-api-key`, `Authorization`, `proxy-authorization`, `NATS_PASSWORD`,
 * `accessToken`, `clientSecret`, `set-cookie`, `privateKey` and an nkey `seed` are; `tokens`,
 * `inputTokens`, `tokenizer` and `publicKey` are not.
 */
export const secretKeySuffixes = ['apikey', 'authorization', 'password', 'passwd', 'secret', 'token', 'cookie', 'privatekey', 'seed'] as const;

/** What a redacted value is written as. */
export const redactedText = '[redacted]';

// Beyond this depth pino itself prints `[Object]` (its depthLimit is 5, counted from each field).
const maxDepth = 12;

const secretKeyCache = new Map<string, boolean>();

/** Whether a field of this name holds a secret (see {@link secretKeySuffixes}). */
export function isSecretKey(key: string): boolean {
  let secret = secretKeyCache.get(key);
  if (secret === undefined) {
    const normalized = key.toLowerCase().replace(/[-_.\s]/g, '');
    secret = secretKeySuffixes.some((suffix) => normalized.endsWith(suffix));
    // Field names in logs are few and repeat: remembering them keeps the hot path to one lookup.
    if (secretKeyCache.size < 10_000) secretKeyCache.set(key, secret);
  }
  return secret;
}

function redactString(text: string): string {
  // Most strings hold no URL at all: one indexOf instead of a regular expression.
  return text.includes('://') ? redactUrlCredentials(text) : text;
}

/**
 * `value` as it may be logged: every field whose name is secret ({@link isSecretKey}) replaced by
 * `[redacted]` at any depth, the credentials of every URL in a string (`scheme://user:pass@host`)
 * replaced too, errors turned into pino's serialized form (type, message, stack and their own
 * fields, redacted alike), `URL` objects into their redacted text. Cycles become `[Circular]`.
 *
 * Never changes its argument: a value with nothing to redact is returned as it is (no copy), and
 * one with something to redact is copied along the path that leads to it only.
 */
export function redactSecrets(value: unknown): unknown {
  return walk(value, 0, []);
}

function walk(value: unknown, depth: number, ancestors: object[]): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= maxDepth) return value;
  if (ancestors.includes(value)) return '[Circular]';
  if (value instanceof Error) return walkObject(stdSerializers.err(value) as unknown as Record<string, unknown>, depth, ancestors, true);
  if (value instanceof URL) return redactUrlCredentials(value.href);
  // Bytes and dates hold no field names; walking a buffer's every byte would cost for nothing.
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date) return value;
  if (Array.isArray(value)) {
    ancestors.push(value);
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const next = walk(item, depth + 1, ancestors);
      if (next !== item) (copy ??= value.slice())[i] = next;
    }
    ancestors.pop();
    return copy ?? value;
  }
  return walkObject(value as Record<string, unknown>, depth, ancestors, false);
}

function walkObject(value: Record<string, unknown>, depth: number, ancestors: object[], fresh: boolean): unknown {
  ancestors.push(value);
  let copy: Record<string, unknown> | undefined = fresh ? value : undefined;
  for (const key of Object.keys(value)) {
    const field = value[key];
    const next = isSecretKey(key) && field !== undefined && field !== null ? redactedText : walk(field, depth + 1, ancestors);
    if (next !== field) (copy ??= { ...value })[key] = next;
  }
  ancestors.pop();
  return copy ?? value;
}
