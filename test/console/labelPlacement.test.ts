import { describe, expect, it } from 'vitest';
import { placeLabels, type Box } from '../../console/app/src/labelPlacement.ts';

const label = (id: string, x: number, y: number, width = 60, height = 15) => ({ id, text: id, x, y, width, height });
const overlap = (a: Box, b: Box) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

describe('placeLabels', () => {
  it('leaves labels that cover nothing where they want to be, keeping their other fields', () => {
    const wanted = [label('a', 0, 0), label('b', 100, 0)];

    expect(placeLabels(wanted, [])).toEqual(wanted);
  });

  it('moves a label that would cover one already placed up by its height and a gap first', () => {
    const [first, second] = placeLabels([label('a', 0, 100), label('b', 10, 101)], []);

    expect(first).toEqual(label('a', 0, 100));
    expect(second).toEqual(label('b', 10, 101 - 17));
    expect(overlap(first!, second!)).toBe(false);
  });

  it('moves it down when up is covered by an obstacle, and further when both near places are', () => {
    const state = { x: 0, y: 70, width: 200, height: 30 };
    const [, down] = placeLabels([label('a', 0, 100), label('b', 0, 100)], [state]);
    expect(down!.y).toBe(117);

    const [, , third] = placeLabels([label('a', 0, 100), label('b', 0, 117), label('c', 0, 100)], [state]);
    expect(third!.y).toBe(134);
  });

  it('counts boxes that only touch as apart', () => {
    const placed = placeLabels([label('a', 0, 0, 50, 15), label('b', 50, 0, 50, 15), label('c', 0, 15, 50, 15)], []);

    expect(placed.map((p) => p.y)).toEqual([0, 0, 15]);
  });

  it('leaves a label where it wanted to be when every place within three moves is covered', () => {
    const wall = { x: -10, y: 0, width: 100, height: 400 };

    expect(placeLabels([label('a', 0, 200)], [wall])).toEqual([label('a', 0, 200)]);
  });

  it('places no label over another when there is room', () => {
    const wanted = Array.from({ length: 5 }, (_, i) => label(`l${i}`, i * 5, 200));
    const placed = placeLabels(wanted, []);

    for (const [i, a] of placed.entries()) for (const b of placed.slice(i + 1)) expect(overlap(a, b), `${a.id} and ${b.id}`).toBe(false);
    expect(placed.map((p) => p.x)).toEqual(wanted.map((w) => w.x));
  });
});
