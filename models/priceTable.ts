import * as z from 'zod';

/** USD per one million tokens. */
export const ModelPrice = z.object({ inputPerMTok: z.number().nonnegative(), outputPerMTok: z.number().nonnegative() });
export type ModelPrice = z.infer<typeof ModelPrice>;

/** Model name (or name prefix) → price. Longer prefixes win: `gpt-4o-mini` before `gpt-4o`. */
export const PriceTable = z.record(z.string().min(1), ModelPrice);
export type PriceTable = z.infer<typeof PriceTable>;

/**
 * List prices of common models at the time of writing; override any of them (or add your own
 * endpoint's models) with `TROUPE_PRICES` or the orchestrator's `prices` option. `scripted` has a
 * nominal price so that cost reports and the USD budget are exercised offline.
 */
export const defaultPriceTable: PriceTable = {
  'gpt-5': { inputPerMTok: 1.25, outputPerMTok: 10 },
  'gpt-5-mini': { inputPerMTok: 0.25, outputPerMTok: 2 },
  'gpt-5-nano': { inputPerMTok: 0.05, outputPerMTok: 0.4 },
  'gpt-4.1': { inputPerMTok: 2, outputPerMTok: 8 },
  'gpt-4.1-mini': { inputPerMTok: 0.4, outputPerMTok: 1.6 },
  'gpt-4.1-nano': { inputPerMTok: 0.1, outputPerMTok: 0.4 },
  'gpt-4o': { inputPerMTok: 2.5, outputPerMTok: 10 },
  'gpt-4o-mini': { inputPerMTok: 0.15, outputPerMTok: 0.6 },
  o3: { inputPerMTok: 2, outputPerMTok: 8 },
  'o4-mini': { inputPerMTok: 1.1, outputPerMTok: 4.4 },
  scripted: { inputPerMTok: 1, outputPerMTok: 4 },
};

/** The price of `model`, by exact name or longest matching prefix; undefined when the table has no idea. */
export function priceOf(model: string, table: PriceTable): ModelPrice | undefined {
  if (table[model]) return table[model];
  let best: string | undefined;
  for (const name of Object.keys(table)) {
    if (model.startsWith(name) && (best === undefined || name.length > best.length)) best = name;
  }
  return best === undefined ? undefined : table[best];
}

/** USD for one call; 0 for a model the table does not price (the caller warns once). */
export function costOfCall(price: ModelPrice | undefined, usage: { inputTokens: number; outputTokens: number }): number {
  if (!price) return 0;
  return (usage.inputTokens * price.inputPerMTok + usage.outputTokens * price.outputPerMTok) / 1_000_000;
}
