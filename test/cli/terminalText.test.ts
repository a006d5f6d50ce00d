import { describe, expect, it } from 'vitest';
import { terminalJson, terminalLine, terminalText } from '../../cli/terminalText.ts';

const controls = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

describe('terminalText', () => {
  it('removes whole escape sequences, parameters included, in their 7-bit and 8-bit forms', () => {
    expect(terminalText('a\x1b[31;1mb\x1b[0m')).toBe('ab');
    expect(terminalText('a\x9b2Jb')).toBe('ab');
    expect(terminalText('title\x1b]0;pwned\x07 set')).toBe('title set');
    expect(terminalText('\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\')).toBe('click');
    expect(terminalText('clip\x1b]52;c;aGk=\x9c board')).toBe('clip board');
    expect(terminalText('dcs\x1bP1$r0m\x1b\\ gone')).toBe('dcs gone');
    expect(terminalText('keypad\x1b= \x1b(0mode')).toBe('keypad mode');
  });

  it('removes what is left of unterminated sequences and every other control, so nothing reaches the terminal', () => {
    const out = terminalText('open\x1b]0;no end\x07? \x1b\x1b[ \x00\x07\x08\x7f\x85\u202e\u2066done');
    expect(out).not.toMatch(controls);
    expect(out).toContain('done');
  });

  it('keeps line breaks and tabs, reading \\r\\n and a lone \\r as a line break', () => {
    expect(terminalText('one\r\ntwo\tcols\rthree\n')).toBe('one\ntwo\tcols\nthree\n');
  });
});

describe('terminalLine', () => {
  it('turns line breaks and tabs into one space', () => {
    expect(terminalLine('one\r\n\ttwo\u2028three')).toBe('one two three');
  });
});

describe('terminalJson', () => {
  it('escapes the C1 controls and separators JSON.stringify leaves raw, and stays the same JSON', () => {
    const value = { text: 'a\x1b[2Jb\x9b2J\u2028\u202ec', n: 1 };
    const line = terminalJson(value);
    expect(line).not.toMatch(controls);
    expect(line).not.toMatch(/[\u2028\u2029]/);
    expect(JSON.parse(line)).toEqual(value);
  });
});
