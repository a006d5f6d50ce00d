/** How the page writes numbers, money, times and payloads, in one place so every view agrees. */

/** Dollars to four decimals: model calls cost fractions of a cent. */
export const usd = (value: number) => `$${value.toFixed(4)}`;

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
/** A whole number with thousands separators. */
export const count = (value: number) => integer.format(value);

/** `1 event`, `3 events`. */
export const plural = (n: number, noun: string) => `${count(n)} ${noun}${n === 1 ? '' : 's'}`;

/** An age or a duration in words: `42 s`, `3 min`, `2 h 5 min`, `3 d 4 h`. */
export function age(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** A duration: milliseconds under a second, seconds above. */
export function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** A timestamp as the local time of day (`14:03:27`); the text as is when it is not a date. */
export function clock(at: unknown): string {
  if (typeof at !== 'string' && typeof at !== 'number') return '';
  const date = new Date(at);
  return Number.isNaN(date.getTime()) ? String(at) : date.toLocaleTimeString('en-GB', { hour12: false });
}

/** A timestamp as local date and time, for tooltips; the text as is when it is not a date. */
export function fullDate(at: unknown): string {
  if (typeof at !== 'string' && typeof at !== 'number') return '';
  const date = new Date(at);
  return Number.isNaN(date.getTime()) ? String(at) : date.toLocaleString('en-GB', { hour12: false });
}

/** A payload as indented JSON (strings as they are). */
export function prettyJson(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A payload on one line, cut at `max` characters. */
export function oneLine(value: unknown, max = 160): string {
  let text: string;
  try {
    text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  text = text.replace(/\s+/g, ' ');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
