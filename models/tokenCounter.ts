import { countTokens as countO200k } from 'gpt-tokenizer/encoding/o200k_base';
import { countTokens as countCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import type { TokenizerName } from './modelTable.ts';

/** Counts the tokens of a text for one model family. */
export type TokenCounter = (text: string) => number;

/**
 * The estimate for models without a known tokenizer: one token per four characters, rounded up,
 * which runs slightly high for English prose and code with OpenAI-like tokenizers. The session
 * corrects it from the usage the model reports (see `calibrated`).
 */
export const estimateTokens: TokenCounter = (text) => Math.ceil(text.length / 4);

/**
 * Remembers counts of texts seen before: a session's messages do not change, so each is tokenized
 * once, not at every turn, and assembling a request costs little more as the history grows.
 * (V8 keeps a string's hash with the string, so looking up the same message text is cheap.)
 */
function remembering(count: TokenCounter, capacity = 50_000): TokenCounter {
  const seen = new Map<string, number>();
  return (text) => {
    const known = seen.get(text);
    if (known !== undefined) return known;
    const counted = count(text);
    if (seen.size >= capacity) seen.clear();
    seen.set(text, counted);
    return counted;
  };
}

// Text that looks like a special token (`<|endoftext|>`, say in a file being read) is counted as
// plain text, as the endpoint treats it in a message; anything the tokenizer still refuses is estimated.
const noSpecialTokens = { disallowedSpecial: new Set<string>() };
const safely = (count: TokenCounter): TokenCounter => (text) => {
  try {
    return count(text);
  } catch {
    return estimateTokens(text);
  }
};

const counters: Record<TokenizerName, TokenCounter> = {
  o200k_base: remembering(safely((text) => countO200k(text, noSpecialTokens))),
  cl100k_base: remembering(safely((text) => countCl100k(text, noSpecialTokens))),
  estimate: estimateTokens,
};

/** The counter for a tokenizer: OpenAI's BPE encodings counted exactly, anything else estimated. */
export function tokenCounterFor(tokenizer: TokenizerName): TokenCounter {
  return counters[tokenizer];
}
