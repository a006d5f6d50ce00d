import { oneLine, prettyJson } from './format.ts';

/** A tool's arguments or result: on one line when short, else folded into indented JSON. */
export function Payload({ label, value, open = false }: { label: string; value: unknown; open?: boolean }) {
  if (value === undefined) return null;
  const line = oneLine(value, 400);
  if (line.length <= 110 && !line.endsWith('…')) {
    return (
      <div class="payload-line">
        <span class="muted">{label}</span> <code>{line}</code>
      </div>
    );
  }
  const pretty = prettyJson(value);
  return (
    <details class="payload" open={open}>
      <summary>
        <span class="muted">{label}</span> <code>{oneLine(value, 90)}</code>
      </summary>
      <pre>{pretty}</pre>
    </details>
  );
}
