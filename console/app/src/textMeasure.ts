/** The statechart's font; styles.css sets the same on the drawing's text. */
export const diagramFont = '12px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';

let context: CanvasRenderingContext2D | null | undefined;
const widths = new Map<string, number>();

/** The width of one line of the statechart's text, in pixels, as the browser will render it. */
export function measureText(text: string): number {
  const known = widths.get(text);
  if (known !== undefined) return known;
  context ??= document.createElement('canvas').getContext('2d');
  let width = text.length * 7;
  if (context) {
    context.font = diagramFont;
    width = Math.ceil(context.measureText(text).width);
  }
  widths.set(text, width);
  return width;
}
