import * as z from 'zod';

/** How a model's tokens are counted: a real tokenizer for OpenAI's encodings, an estimate otherwise. */
export const TokenizerName = z.enum(['o200k_base', 'cl100k_base', 'estimate']);
export type TokenizerName = z.infer<typeof TokenizerName>;

/** What the context budget needs to know about a model. */
export const ModelProfile = z.strictObject({
  /** Input plus output tokens one request may hold. */
  contextWindow: z.number().int().positive(),
  tokenizer: TokenizerName.default('estimate'),
});
export type ModelProfile = z.infer<typeof ModelProfile>;

/** Model name (or prefix) → profile. Longer prefixes win, as in the price table. */
export const ModelTable = z.record(z.string().min(1), ModelProfile);
export type ModelTable = z.infer<typeof ModelTable>;

/**
 * Context windows of common models at the time of writing; override or extend with `TROUPE_MODELS`
 * or the `models` option. `scripted` gets a small window, so that offline sessions meet the budget.
 */
export const defaultModelTable: ModelTable = {
  'gpt-5': { contextWindow: 400_000, tokenizer: 'o200k_base' },
  'gpt-4.1': { contextWindow: 1_047_576, tokenizer: 'o200k_base' },
  'gpt-4o': { contextWindow: 128_000, tokenizer: 'o200k_base' },
  o3: { contextWindow: 200_000, tokenizer: 'o200k_base' },
  'o4-mini': { contextWindow: 200_000, tokenizer: 'o200k_base' },
  'gpt-4-turbo': { contextWindow: 128_000, tokenizer: 'cl100k_base' },
  'gpt-4': { contextWindow: 8_192, tokenizer: 'cl100k_base' },
  'gpt-3.5-turbo': { contextWindow: 16_385, tokenizer: 'cl100k_base' },
  scripted: { contextWindow: 32_000, tokenizer: 'o200k_base' },
};

/** What a model the table does not know gets: a small window, so a request never overflows one. */
export const unknownModelProfile: ModelProfile = { contextWindow: 8_192, tokenizer: 'estimate' };

/** The profile of `model`, by exact name or longest matching prefix, else the conservative default. */
export function profileOf(model: string, table: ModelTable): ModelProfile {
  if (table[model]) return table[model];
  let best: string | undefined;
  for (const name of Object.keys(table)) {
    if (model.startsWith(name) && (best === undefined || name.length > best.length)) best = name;
  }
  return best === undefined ? unknownModelProfile : (table[best] as ModelProfile);
}
