import { Component, type ComponentChildren } from 'preact';

interface Props {
  /** What failed to render, for the message: "the page", "the statechart". */
  what: string;
  children: ComponentChildren;
}

/**
 * Catches what a part of the page throws while rendering and shows it in that part's place, so a
 * bug in one view never leaves a blank screen. "Try again" renders the children afresh.
 */
export class ErrorBoundary extends Component<Props, { error: unknown }> {
  override state = { error: null as unknown };

  static override getDerivedStateFromError(error: unknown) {
    return { error };
  }

  override render() {
    const { error } = this.state;
    if (error === null) return this.props.children;
    return (
      <div class="failure" role="alert" data-testid="render-error">
        <strong>{this.props.what} could not be shown.</strong>
        <pre>{error instanceof Error ? `${error.name}: ${error.message}` : String(error)}</pre>
        <button type="button" onClick={() => this.setState({ error: null })}>
          Try again
        </button>
      </div>
    );
  }
}
