/**
 * Signs of a prompt injection in what a tool returns (a file, a web page, a database row), for the
 * tool-output guardrail: text addressed to the assistant that tries to change its instructions,
 * and text hidden from a person reading it (zero-width and bidirectional control characters, HTML
 * hidden by style or comments).
 *
 * What it does not do, honestly: it is a list of markers, not a classifier. Instructions phrased
 * in other words or languages, or spread over several fields, pass; a document that discusses
 * prompt injection (like this comment) is flagged. Use it to flag or to ask a person, and a
 * classifier model behind it where the stakes are high.
 */

export interface InjectionMarker {
  /** Which kind of marker: `instruction_override`, `role_impersonation`, `exfiltration_request`, `hidden_characters`, `hidden_html`. */
  kind: string;
  start: number;
  end: number;
}

const markers: Array<{ kind: string; pattern: RegExp }> = [
  {
    kind: 'instruction_override',
    pattern: /\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+)*(?:previous|prior|above|earlier|system|original)?\s*(?:instructions?|prompts?|rules|guidelines|directions)\b/gi,
  },
  { kind: 'instruction_override', pattern: /\b(?:new|updated|real)\s+(?:system\s+)?instructions?\s*:/gi },
  { kind: 'role_impersonation', pattern: /(?:^|\n)\s*(?:system|assistant|developer)\s*:|<\|?(?:im_start|system|endoftext)\|?>|\[\/?(?:INST|SYS)\]/gi },
  { kind: 'role_impersonation', pattern: /\byou\s+are\s+now\s+(?:a|an|the|in)\b/gi },
  {
    kind: 'exfiltration_request',
    pattern: /\b(?:send|email|e-mail|post|upload|forward|exfiltrate)\s+(?:the\s+|all\s+|this\s+|your\s+)*(?:database|credentials?|passwords?|api\s+keys?|secrets?|tokens?|conversation|system\s+prompt|files?)\s+to\b/gi,
  },
  // Zero-width characters, and bidirectional overrides that make text read differently than it is stored.
  { kind: 'hidden_characters', pattern: /[\u200B-\u200F\u2060-\u2064\uFEFF\u202A-\u202E\u2066-\u2069]+/g },
  { kind: 'hidden_html', pattern: /<[^>]+style\s*=\s*["'][^"']*(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0|opacity\s*:\s*0)[^"']*["'][^>]*>|<!--[\s\S]*?-->/gi },
];

/** Every marker in `text`, in order. */
export function findInjectionMarkers(text: string): InjectionMarker[] {
  const found: InjectionMarker[] = [];
  for (const { kind, pattern } of markers) {
    for (const match of text.matchAll(pattern)) found.push({ kind, start: match.index, end: match.index + match[0].length });
  }
  return found.sort((a, b) => a.start - b.start || a.end - b.end);
}

/** `text` without its hidden characters: what a person reading it would see is what the model reads. */
export function withoutHiddenCharacters(text: string): string {
  return text.replace(/[\u200B-\u200F\u2060-\u2064\uFEFF\u202A-\u202E\u2066-\u2069]/g, '');
}
