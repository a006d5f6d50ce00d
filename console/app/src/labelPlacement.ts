/** A rectangle in the drawing's coordinates. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

const overlaps = (a: Box, b: Box) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

/**
 * Places labels one at a time where each wants to be, or moved up or down by its height (up to
 * three times each way) to the first place that covers neither a label already placed nor an
 * obstacle; where every place does, it stays where it wanted to be. Greedy, which is enough for
 * the handful of labels shown at once.
 */
export function placeLabels<L extends Box>(wanted: readonly L[], obstacles: readonly Box[]): L[] {
  const placed: L[] = [];
  for (const label of wanted) {
    const shifts = [0, -1, 1, -2, 2, -3, 3].map((step) => step * (label.height + 2));
    const free = shifts.map((dy) => ({ ...label, y: label.y + dy })).find((box) => !placed.some((other) => overlaps(box, other)) && !obstacles.some((other) => overlaps(box, other)));
    placed.push(free ?? label);
  }
  return placed;
}
