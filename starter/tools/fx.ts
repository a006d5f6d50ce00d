import { defineTool, ToolError, ToolFailureCode } from 'troupe';
import * as z from 'zod';

// Fixed rates keep the starter offline and its test exact; a real pool would ask a rates service
// here, passing `signal` so a call past its deadline stops waiting.
const usdPer: Record<string, number> = { USD: 1, EUR: 1.08, GBP: 1.27, JPY: 0.0067, CHF: 1.13 };

const Currency = z.string().length(3).toUpperCase().describe('An ISO 4217 code, e.g. EUR');

/** Every tool this module exports is served by `troupe worker fx --module ./tools/fx.ts`. */
export const convert = defineTool({
  name: 'fx_convert',
  description: 'Converts an amount of money from one currency to another at today\'s rate.',
  input: z.object({ amount: z.number().nonnegative(), from: Currency, to: Currency }),
  output: z.object({ amount: z.number(), rate: z.number(), from: z.string(), to: z.string() }),
  handler: ({ amount, from, to }) => {
    const fromUsd = usdPer[from];
    const toUsd = usdPer[to];
    if (fromUsd === undefined || toUsd === undefined) {
      // A structured failure the model can act on: it is told which codes exist.
      throw new ToolError(ToolFailureCode.INVALID_INPUT, `Unknown currency ${fromUsd === undefined ? from : to}. Known: ${Object.keys(usdPer).join(', ')}.`);
    }
    const rate = fromUsd / toUsd;
    return { amount: Math.round(amount * rate * 100) / 100, rate: Math.round(rate * 10_000) / 10_000, from, to };
  },
});

export const rates = defineTool({
  name: 'fx_rates',
  description: 'Lists the currencies fx_convert knows, with their value in US dollars.',
  input: z.object({}),
  output: z.object({ usdPer: z.record(z.string(), z.number()) }),
  handler: () => ({ usdPer }),
});
