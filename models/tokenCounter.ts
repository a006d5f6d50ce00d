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

/** The counter for a tokenizer: OpenAI's BPE encodings counted exactly, anything else estimated. */
export function tokenCounterFor(tokenizer: TokenizerName): TokenCounter {
  switch (tokenizer) {
    case 'o200k_base':
      return (text) => countO200k(text);
    case 'cl100k_base':
      return (text) => countCl100k(text);
    case 'estimate':
      return estimateTokens;
  }
}
