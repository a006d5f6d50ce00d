/**
 * An amount of US dollars as people read a model bill: `$0.0132`, `$0.01`, `$1.50`; amounts under a
 * cent keep six decimals so that a cheap run does not read as free. Trailing zeros past the cents
 * are dropped.
 */
export function usdText(amount: number): string {
  if (!Number.isFinite(amount)) return `$${amount}`;
  const fixed = Math.abs(amount).toFixed(Math.abs(amount) >= 0.01 ? 4 : 6);
  const text = `$${fixed.replace(/(\.\d\d\d*?)0+$/, '$1')}`;
  // A difference of costs (a recovery's extra cost) can be below zero, or a rounding error of it.
  return amount < 0 && Number(fixed) !== 0 ? `-${text}` : text;
}
