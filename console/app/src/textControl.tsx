import { useState } from 'preact/hooks';

interface Props {
  /** The field's label. */
  label: string;
  /** The button's label. */
  action: string;
  testId: string;
  busy: boolean;
  /** Whether the field may be left empty. */
  optional?: boolean;
  placeholder?: string;
  /** Sends the text; answers whether it was accepted, to clear the field. */
  onSubmit: (text: string) => Promise<boolean>;
}

/** A control that carries a text (redirect, answer, hand back): a labelled field and its button (Ctrl+Enter sends too). */
export function TextControl({ label, action, testId, busy, optional = false, placeholder, onSubmit }: Props) {
  const [text, setText] = useState('');
  const submit = async (event: Event) => {
    event.preventDefault();
    if (await onSubmit(text)) setText('');
  };
  return (
    <form class="control text-control" onSubmit={submit}>
      <label>
        {label}
        {optional && <span class="muted"> (optional)</span>}
        <textarea rows={2} value={text} placeholder={placeholder} data-testid={`${testId}-input`} onInput={(event) => setText(event.currentTarget.value)}
          onKeyDown={(event) => {
            if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) void submit(event);
          }}
        />
      </label>
      <button type="submit" disabled={busy || (!optional && text.trim() === '')} data-testid={`${testId}-button`}>
        {action}
      </button>
    </form>
  );
}
