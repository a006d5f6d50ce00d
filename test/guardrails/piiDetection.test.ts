import { describe, expect, it } from 'vitest';
import { findPii, maskPii, passesIbanCheck, passesLuhn } from '../../guardrails/piiDetection.ts';

const kindsIn = (text: string) => findPii(text).map((f) => [f.kind, text.slice(f.start, f.end)]);

describe('personal data in text', () => {
  it('checks card numbers with Luhn and IBANs with mod 97', () => {
    expect(passesLuhn('4242424242424242')).toBe(true);
    expect(passesLuhn('4242424242424241')).toBe(false);
    expect(passesIbanCheck('GB82WEST12345698765432')).toBe(true);
    expect(passesIbanCheck('DE89370400440532013000')).toBe(true);
    expect(passesIbanCheck('GB82WEST12345698765433')).toBe(false);
  });

  it('finds emails, valid card numbers written in groups, valid IBANs and phone numbers, each once', () => {
    const text = 'Refund ada@example.co.uk on card 4242 4242 4242 4242 (not 4242 4242 4242 4241), IBAN GB82 WEST 1234 5698 7654 32, call +44 20 7946 0958.';
    expect(kindsIn(text)).toEqual([
      ['email', 'ada@example.co.uk'],
      ['payment_card', '4242 4242 4242 4242'],
      ['iban', 'GB82 WEST 1234 5698 7654 32'],
      ['phone', '+44 20 7946 0958'],
    ]);
  });

  it('leaves alone what only looks alike: amounts, dates, short numbers, made-up cards', () => {
    expect(kindsIn('Order 12345 cost 1,234.56 EUR on 2026-11-30; card 1234 5678 9012 3456 is made up.')).toEqual([]);
  });

  it('masks what it found, keeping the last four of cards and IBANs, and says how many of each without the data', () => {
    const text = 'Card 4242-4242-4242-4242, mail ada@example.com, mail bo@example.com.';
    expect(maskPii(text, findPii(text))).toEqual({
      text: 'Card [card ending 4242], mail [email], mail [email].',
      masked: { payment_card: 1, email: 2 },
    });
    expect(maskPii('nothing here', [])).toEqual({ text: 'nothing here', masked: {} });
  });

  it('looks only for the kinds asked for', () => {
    expect(findPii('ada@example.com +44 20 7946 0958', ['phone']).map((f) => f.kind)).toEqual(['phone']);
  });
});
