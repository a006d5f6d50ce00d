/**
 * Personal data found in text, for the PII guardrail to mask or block: email addresses, payment
 * card numbers (with their Luhn check), IBANs (with their mod-97 check) and phone numbers.
 *
 * What it does not do, honestly:
 * - Names, postal addresses, dates of birth and national id numbers are not found at all.
 * - Phone numbers are found by shape only (a leading `+` or a bracketed area code, or digits in
 *   groups, 8 to 15 digits in all, dates left out): an order number written `0123 456 789` is
 *   taken for one, and a phone number written as one unbroken run of digits is not.
 * - Card numbers and IBANs must pass their check digits, so most typos and made-up numbers are
 *   left alone; a 16-digit reference that happens to pass Luhn (one in ten) is taken for a card.
 * - Email addresses are found by shape; obfuscated ones (`ada at example dot com`) are not.
 */

export const PiiKind = { email: 'email', paymentCard: 'payment_card', iban: 'iban', phone: 'phone' } as const;
export type PiiKind = (typeof PiiKind)[keyof typeof PiiKind];

/** Where a piece of personal data is: never the data itself, so a finding can be logged and published. */
export interface PiiFinding {
  kind: PiiKind;
  start: number;
  end: number;
}

const emailPattern = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;
const cardPattern = /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])/g;
const ibanPattern = /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/g;
// Dates have a phone number's shape: 2026-11-30, 30.11.2026, 11/30/2026.
const datePattern = /^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4})$/;
const phonePattern = /(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w])/g;

/** The Luhn check of a card number's digits. */
export function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let digit = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/** The ISO 13616 check of an IBAN (spaces removed): its country and check digits moved to the end, read as a number mod 97, is 1. */
export function passesIbanCheck(iban: string): boolean {
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const char of rearranged) {
    const value = char >= 'A' && char <= 'Z' ? String(char.charCodeAt(0) - 55) : char;
    for (const digit of value) remainder = (remainder * 10 + Number(digit)) % 97;
  }
  return remainder === 1;
}

/** Every piece of personal data of `kinds` (all of them when absent) in `text`, in order, none overlapping. */
export function findPii(text: string, kinds: readonly PiiKind[] = Object.values(PiiKind)): PiiFinding[] {
  const found: PiiFinding[] = [];
  const taken = (start: number, end: number) => found.some((f) => start < f.end && end > f.start);
  const scan = (kind: PiiKind, pattern: RegExp, accept: (match: string) => boolean) => {
    if (!kinds.includes(kind)) return;
    for (const match of text.matchAll(pattern)) {
      const start = match.index;
      const end = start + match[0].length;
      if (!taken(start, end) && accept(match[0])) found.push({ kind, start, end });
    }
  };
  // The checked kinds first: a card number also has a phone number's shape.
  scan(PiiKind.email, emailPattern, () => true);
  scan(PiiKind.iban, ibanPattern, (match) => passesIbanCheck(match.replaceAll(' ', '')));
  scan(PiiKind.paymentCard, cardPattern, (match) => {
    const digits = match.replace(/[ -]/g, '');
    return digits.length >= 13 && digits.length <= 19 && passesLuhn(digits);
  });
  scan(PiiKind.phone, phonePattern, (match) => {
    const digits = match.replace(/\D/g, '').length;
    return digits >= 8 && digits <= 15 && !datePattern.test(match);
  });
  return found.sort((a, b) => a.start - b.start);
}

/** What each kind is replaced by: enough to read the text, nothing to use. Cards and IBANs keep their last four characters. */
function maskOf(kind: PiiKind, original: string): string {
  const lastFour = original.replace(/[ -]/g, '').slice(-4);
  switch (kind) {
    case PiiKind.email: return '[email]';
    case PiiKind.paymentCard: return `[card ending ${lastFour}]`;
    case PiiKind.iban: return `[IBAN ending ${lastFour}]`;
    case PiiKind.phone: return '[phone]';
  }
}

/** `text` with each finding masked, and how many of each kind were: what a rewrite reports (never the data). */
export function maskPii(text: string, findings: readonly PiiFinding[]): { text: string; masked: Partial<Record<PiiKind, number>> } {
  const masked: Partial<Record<PiiKind, number>> = {};
  let out = '';
  let at = 0;
  for (const finding of [...findings].sort((a, b) => a.start - b.start)) {
    if (finding.start < at) continue;
    out += text.slice(at, finding.start) + maskOf(finding.kind, text.slice(finding.start, finding.end));
    at = finding.end;
    masked[finding.kind] = (masked[finding.kind] ?? 0) + 1;
  }
  return { text: out + text.slice(at), masked };
}
