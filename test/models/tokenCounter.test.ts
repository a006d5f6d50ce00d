import { describe, expect, it } from 'vitest';
import { defaultModelTable, profileOf, unknownModelProfile } from '../../models/modelTable.ts';
import { estimateTokens, tokenCounterFor } from '../../models/tokenCounter.ts';

describe('tokenCounterFor', () => {
  it('counts OpenAI models\' tokens with their own tokenizer', () => {
    expect(tokenCounterFor('o200k_base')('Hello, world! How are you?')).toBe(8);
    expect(tokenCounterFor('cl100k_base')('Hello, world! How are you?')).toBe(8);
  });

  it('counts text that looks like a special token as plain text instead of failing', () => {
    // A task or a file can hold these strings; the endpoint treats them as text too.
    expect(tokenCounterFor('o200k_base')('hello <|endoftext|> world')).toBeGreaterThan(3);
    expect(tokenCounterFor('cl100k_base')('<|fim_prefix|>x')).toBeGreaterThan(1);
  });

  it('estimates a token per four characters for other models', () => {
    expect(tokenCounterFor('estimate')('12345678')).toBe(2);
    expect(estimateTokens('123456789')).toBe(3);
  });
});

describe('profileOf', () => {
  it('finds a model by exact name or longest prefix, and gives unknown ones a conservative window', () => {
    expect(profileOf('gpt-4o-mini-2024-07-18', defaultModelTable)).toEqual({ contextWindow: 128_000, tokenizer: 'o200k_base' });
    expect(profileOf('gpt-4-turbo-preview', defaultModelTable).tokenizer).toBe('cl100k_base');
    expect(profileOf('llama3.1:8b', defaultModelTable)).toEqual(unknownModelProfile);
    expect(unknownModelProfile.contextWindow).toBe(8_192);
  });
});
