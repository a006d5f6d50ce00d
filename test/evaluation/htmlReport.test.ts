import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scoreCase } from '../../evaluation/caseScore.ts';
import { buildReport, compareToBaseline, type EvalReport } from '../../evaluation/evalReport.ts';
import { reportToHtml } from '../../evaluation/htmlReport.ts';
import { caseRun, loadedCase, made } from './evalFixtures.ts';

/** Debian's chromium, as the brief says: never a browser download. */
const launchBrowser = () => chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

/** Three cases: one passing, one failing its trajectory, one with two runs, on two agents. */
function sampleReport(): EvalReport {
  const trajectory = { mode: 'strict' as const, calls: [{ tool: 'calc_add', arguments: { a: 1, b: 2 } }] };
  const sum = loadedCase({ id: 'calc-add', expect: { trajectory } });
  const wrong = loadedCase({ id: 'calc-wrong-order', agent: 'analyst', task: 'Add <then> multiply & report', expect: { trajectory: { mode: 'strict', calls: [{ tool: 'calc_mul' }, { tool: 'calc_add' }] } } });
  const twice = loadedCase({ id: 'db-count', expect: { output: { contains: '3' } } }, '/evals/db.yaml');
  return buildReport({
    startedAt: '2026-11-30T10:00:00.000Z', finishedAt: '2026-11-30T10:01:00.000Z', datasets: ['evals/'], model: 'scripted',
    cases: [
      scoreCase(sum, [caseRun({ traceId: '0af7651916cd43dd8448eb211c80319c' })]),
      scoreCase(wrong, [caseRun({ caseId: 'calc-wrong-order', toolCalls: [made('calc_add', { a: 1, b: 2 }), made('calc_mul', { a: 3, b: 4 })], usage: { inputTokens: 300, outputTokens: 50, costUsd: 0.031 }, steps: 3 })]),
      scoreCase(twice, [caseRun({ caseId: 'db-count', toolCalls: [] }), caseRun({ caseId: 'db-count', attempt: 2, toolCalls: [], usage: { inputTokens: 90, outputTokens: 10, costUsd: 0.002 } })]),
    ],
  });
}

describe('reportToHtml', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('renders the totals, the charts, each case and its trajectories in a real browser, with no script and nothing fetched', async () => {
    const report = sampleReport();
    const baseline = { ...report, cases: report.cases.map((c) => ({ ...c, passed: true })) };
    const html = reportToHtml(report, { baseline: { file: 'main.json', report: baseline, regressions: compareToBaseline(report, baseline) }, jaegerUrl: 'http://jaeger.example:16686' });
    expect(html).not.toMatch(/<script/i);
    const dir = mkdtempSync(join(tmpdir(), 'troupe-eval-html-'));
    const file = join(dir, 'report.html');
    writeFileSync(file, html);

    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const requests: string[] = [];
    const problems: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    page.on('console', (message) => { if (message.type() === 'error') problems.push(message.text()); });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`file://${file}`);
    expect(await page.title()).toBe('Troupe eval: 2/3 passed');
    // Five charts, each a drawn SVG: pass rate by agent and dataset, steps and cost per case, cost per run.
    expect(await page.locator('figure.chart svg').count()).toBe(5);
    expect(await page.locator('figure.chart', { hasText: 'Steps per case' }).locator('rect').count()).toBe(3);
    const bars = await page.locator('figure.chart', { hasText: 'Cost per case' }).locator('rect').evaluateAll((rects) => rects.map((r) => Number(r.getAttribute('width'))));
    expect(Math.max(...bars)).toBe(bars[1]);
    // The failing case is open, with its failure and both trajectories side by side; text is escaped, not markup.
    const failing = page.locator('details#case-calc-wrong-order');
    expect(await failing.getAttribute('open')).not.toBeNull();
    expect(await failing.locator('.trajectories ol').count()).toBe(2);
    expect(await failing.locator('ul.failures').innerText()).toMatch(/trajectory: call 1: expected calc_mul/);
    expect(await failing.locator('.task').innerText()).toBe('Add <then> multiply & report');
    expect(await page.locator('details#case-calc-add').getAttribute('open')).toBeNull();
    // The trace is a link into Jaeger; the baseline's diff names the regression.
    expect(await page.locator('a[href="http://jaeger.example:16686/trace/0af7651916cd43dd8448eb211c80319c"]').count()).toBe(1);
    expect(await page.locator('section', { hasText: 'Against the baseline' }).innerText()).toMatch(/calc-wrong-order/);
    expect(problems).toEqual([]);
    expect(requests).toEqual([`file://${file}`]);

    const screenshot = join(dir, 'report.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    const png = readFileSync(screenshot);
    // A PNG of the whole page: its signature, and a height past the first screen (the runs below the charts).
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.readUInt32BE(20)).toBeGreaterThan(900);
    if (process.env.TROUPE_EVAL_SCREENSHOT) writeFileSync(process.env.TROUPE_EVAL_SCREENSHOT, png);
    await page.close();
  }, 60_000);
});
