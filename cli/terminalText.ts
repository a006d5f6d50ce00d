/**
 * Text from models, tools and the bus made safe to print on a terminal. A model or a tool can put
 * anything in its text, and a terminal obeys escape sequences in what it prints: an OSC sequence
 * can set the window title, write the clipboard or make a link say one thing and open another; a
 * CSI sequence can move the cursor and overwrite earlier lines, or clear the screen; a carriage
 * return or backspaces can hide what was printed. So every escape sequence and control character
 * is removed (C0 and C1, DEL, and the bidirectional overrides that reorder what is shown) before
 * such text reaches a terminal; only the line breaks and tabs of multi-line text stay.
 */

// A complete sequence, removed whole so that its parameters do not show up as text: OSC, DCS, SOS,
// PM and APC strings (up to BEL or ST), CSI sequences, and the other ESC sequences; each in its
// 7-bit (ESC …) and its 8-bit (C1) form.
const escapeSequence = new RegExp(
  [
    String.raw`(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)`,
    String.raw`(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]`,
    String.raw`\x1b[ -/]*[0-~]`,
  ].join('|'),
  'g',
);
// What is left: lone or unterminated introducers and every other control character.
const controlsButLineBreaksAndTabs = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const lineBreaksAndTabs = /[\t\n\v\f\r\u2028\u2029]+/g;

/** Multi-line text (a final answer, a checkpoint's task): line breaks and tabs kept, `\r\n` and a lone `\r` read as `\n`. */
export function terminalText(text: string): string {
  return text.replace(escapeSequence, '').replace(/\r\n?|[\u2028\u2029]/g, '\n').replace(controlsButLineBreaksAndTabs, '');
}

/** Text for one line of output: line breaks and tabs become a space. */
export function terminalLine(text: string): string {
  return terminalText(text).replace(lineBreaksAndTabs, ' ');
}

/**
 * One JSON line, still the same JSON: `JSON.stringify` escapes C0 controls (ESC among them) but
 * leaves C1 controls and the line and bidirectional separators raw, so those are escaped as `\u…`
 * too. Every character outside strings is ASCII, so the escapes only ever fall inside strings.
 */
export function terminalJson(value: unknown): string {
  return (JSON.stringify(value) ?? 'null').replace(/[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
