import { useState } from 'preact/hooks';
import type { Act } from './controlAction.ts';

/** While the session is taken over: call one tool by hand, with JSON arguments, and see its answer. */
export function ManualCallControl({ busy, act }: { busy: boolean; act: Act }) {
  const [tool, setTool] = useState('');
  const [argumentsText, setArgumentsText] = useState('{}');
  const [problem, setProblem] = useState<string | null>(null);
  const [answer, setAnswer] = useState<{ tool: string; text: string } | null>(null);

  const call = async (event: Event) => {
    event.preventDefault();
    let parsed: unknown;
    try {
      parsed = JSON.parse(argumentsText);
    } catch (error) {
      setProblem(`The arguments are not JSON: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      setProblem('The arguments must be a JSON object, such as {"path": "notes.txt"}.');
      return;
    }
    setProblem(null);
    const name = tool.trim();
    const response = await act('call', { tool: name, arguments: parsed as Record<string, unknown> }, `call ${name}`);
    setAnswer(response && response.accepted ? { tool: name, text: response.answer ?? '(no answer)' } : null);
  };

  return (
    <form class="control manual-call" onSubmit={call}>
      <label>
        Tool
        <input type="text" value={tool} data-testid="call-tool" onInput={(event) => setTool(event.currentTarget.value)} />
      </label>
      <label>
        Arguments (JSON)
        <textarea rows={3} class="code" value={argumentsText} data-testid="call-arguments" spellcheck={false} onInput={(event) => setArgumentsText(event.currentTarget.value)} />
      </label>
      {problem !== null && (
        <p class="field-error" role="alert">
          {problem}
        </p>
      )}
      <button type="submit" disabled={busy || tool.trim() === ''} data-testid="call-button">
        Call the tool
      </button>
      {answer && (
        <div class="call-answer" data-testid="call-answer">
          <span class="muted">
            <code class="tool">{answer.tool}</code> answered:
          </span>
          <pre>{answer.text}</pre>
        </div>
      )}
    </form>
  );
}
