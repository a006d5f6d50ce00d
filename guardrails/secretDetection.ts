/**
 * Credentials found in text, for the secrets guardrail: what must never leave in an answer, a span
 * or an event. Two ways: the published prefixes of well-known keys, and long random-looking tokens
 * (high Shannon entropy over a mix of character classes).
 *
 * What it does not do, honestly:
 * - A key with no known prefix and under 32 characters (many internal passwords) is not found.
 * - The entropy test takes some long random-looking values for keys: content hashes, UUIDs without
 *   dashes, base64 data. Hex of 40 or 64 characters (git commits, SHA-256 sums) is left alone.
 * - A key split across lines, or spelled out with spaces, is not found.
 */

export interface SecretFinding {
  /** Which kind: a known prefix's name, or `high_entropy`. */
  kind: string;
  start: number;
  end: number;
}

/** Well-known key formats by their published prefixes. */
const knownKeys: Array<{ kind: string; pattern: RegExp }> = [
  { kind: 'openai_key', pattern: /\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}/g },
  { kind: 'anthropic_key', pattern: /\bsk-ant-[A-Za-z0-9_-]{20,}/g },
  { kind: 'aws_access_key', pattern: /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g },
  { kind: 'github_token', pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{50,})\b/g },
  { kind: 'slack_token', pattern: /\bxox[abprs]-[A-Za-z0-9-]{10,}/g },
  { kind: 'stripe_key', pattern: /\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}/g },
  { kind: 'google_api_key', pattern: /\bAIza[A-Za-z0-9_-]{35}\b/g },
  { kind: 'nats_nkey_seed', pattern: /\bS[UNAOC][A-Z2-7]{56}\b/g },
  { kind: 'private_key', pattern: /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )?PRIVATE KEY-----/g },
  { kind: 'jwt', pattern: /\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/g },
];

const tokenPattern = /[A-Za-z0-9+/_=-]{32,}/g;
const minEntropyBitsPerChar = 4.0;

/** Shannon entropy of `text`, in bits per character. */
export function entropyOf(text: string): number {
  const counts = new Map<string, number>();
  for (const char of text) counts.set(char, (counts.get(char) ?? 0) + 1);
  let bits = 0;
  for (const count of counts.values()) {
    const p = count / text.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** Whether a long token looks like a generated secret: high entropy, letters of both cases and digits, and not plain hex. */
function looksGenerated(token: string): boolean {
  if (/^[0-9a-f]+$/i.test(token)) return false;
  if (!(/[a-z]/.test(token) && /[A-Z]/.test(token) && /\d/.test(token))) return false;
  return entropyOf(token) >= minEntropyBitsPerChar;
}

/** Every credential found in `text`, in order, none overlapping. */
export function findSecrets(text: string): SecretFinding[] {
  const found: SecretFinding[] = [];
  const taken = (start: number, end: number) => found.some((f) => start < f.end && end > f.start);
  for (const { kind, pattern } of knownKeys) {
    for (const match of text.matchAll(pattern)) {
      const start = match.index;
      const end = start + match[0].length;
      if (!taken(start, end)) found.push({ kind, start, end });
    }
  }
  for (const match of text.matchAll(tokenPattern)) {
    const start = match.index;
    const end = start + match[0].length;
    if (!taken(start, end) && looksGenerated(match[0])) found.push({ kind: 'high_entropy', start, end });
  }
  return found.sort((a, b) => a.start - b.start);
}

/** `text` with every credential replaced by `[secret: <kind>]`, and the kinds replaced (never the secret). */
export function redactSecrets(text: string, findings: readonly SecretFinding[] = findSecrets(text)): { text: string; redacted: string[] } {
  let out = '';
  let at = 0;
  const redacted: string[] = [];
  for (const finding of findings) {
    if (finding.start < at) continue;
    out += `${text.slice(at, finding.start)}[secret: ${finding.kind}]`;
    at = finding.end;
    redacted.push(finding.kind);
  }
  return { text: out + text.slice(at), redacted };
}
