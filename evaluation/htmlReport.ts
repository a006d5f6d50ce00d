import type { Regression } from './baselineComparison.ts';
import { verdictOf, type CaseResult } from './caseScore.ts';
import type { EvalReport } from './evalReport.ts';
import { durationText } from './reportTable.ts';
import { usdText } from './usdText.ts';

export interface HtmlReportOptions {
  /** The report compared against, and what regressed: shown as a diff. */
  baseline?: { file: string; report: EvalReport; regressions: readonly Regression[] };
  /** Jaeger's UI (`JAEGER_URL`): each run's trace id becomes a link into it. */
  jaegerUrl?: string;
}

const escape = (text: unknown): string =>
  String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
const percent = (share: number) => `${Math.round(share * 1000) / 10}%`;

const passColor = '#2e7d32';
const failColor = '#c62828';
const barColor = '#3f6fb5';

/** A horizontal bar chart: one labelled bar per item, its value written at its end. */
function barChart(title: string, items: ReadonlyArray<{ label: string; value: number; text: string; color?: string }>): string {
  const rowHeight = 22;
  const labelWidth = 170;
  const barWidth = 260;
  const max = Math.max(...items.map((i) => i.value), Number.MIN_VALUE);
  const rows = items.map((item, i) => {
    const y = i * rowHeight;
    const width = Math.max(1, (item.value / max) * barWidth);
    return `<text x="${labelWidth - 6}" y="${y + 15}" text-anchor="end">${escape(item.label)}</text>`
      + `<rect x="${labelWidth}" y="${y + 4}" width="${width.toFixed(1)}" height="${rowHeight - 8}" fill="${item.color ?? barColor}"><title>${escape(`${item.label}: ${item.text}`)}</title></rect>`
      + `<text x="${(labelWidth + width + 6).toFixed(1)}" y="${y + 15}">${escape(item.text)}</text>`;
  });
  const height = Math.max(rowHeight, items.length * rowHeight);
  return `<figure class="chart"><figcaption>${escape(title)}</figcaption><svg role="img" aria-label="${escape(title)}" width="${labelWidth + barWidth + 90}" height="${height}" viewBox="0 0 ${labelWidth + barWidth + 90} ${height}">${rows.join('')}</svg></figure>`;
}

/** A histogram of `values` in `bins` equal bins, each bar labelled with its range. */
function histogram(title: string, values: readonly number[], bins: number, format: (n: number) => string): string {
  if (values.length === 0) return '';
  const min = Math.min(...values);
  const max = Math.max(...values);
  const width = max > min ? (max - min) / bins : 1;
  const counts = Array.from({ length: bins }, () => 0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor((v - min) / width))]! += 1;
  return barChart(title, counts.map((count, i) => ({ label: `${format(min + i * width)} – ${format(min + (i + 1) * width)}`, value: count, text: `${count} run${count === 1 ? '' : 's'}` })));
}

/** A call as a line: `tool(arguments)`, the bare name for an expected call that names no arguments, and a refused call's status. */
function callText(call: { tool: string; arguments?: unknown; status?: string; handlerRuns?: number }): string {
  if (call.arguments === undefined) return call.tool;
  const args = call.arguments === null ? '' : JSON.stringify(call.arguments);
  const ranAgain = (call.handlerRuns ?? 0) > 1 ? ` — its handler ran ${call.handlerRuns} times` : '';
  return `${call.tool}(${args})${call.status && call.status !== 'ok' ? ` — ${call.status}` : ''}${ranAgain}`;
}

function caseDetails(result: CaseResult, options: HtmlReportOptions): string {
  const expected = result.expectedTrajectory;
  const runs = result.runs.map((run) => {
    const trace = run.traceId
      ? (options.jaegerUrl ? `<a href="${escape(`${options.jaegerUrl.replace(/\/$/, '')}/trace/${run.traceId}`)}">${escape(run.traceId)}</a>` : `<code>${escape(run.traceId)}</code>`)
      : 'none';
    const made = run.toolCalls.map((call) => `<li>${escape(callText(call))}</li>`).join('') || '<li class="none">no tool calls</li>';
    const wanted = expected ? expected.calls.map((call) => `<li>${escape(callText(call))}</li>`).join('') : '';
    const failures = run.failures.map((f) => `<li>${escape(f)}</li>`).join('');
    return `<div class="run ${run.passed ? 'pass' : 'fail'}">
<p><b>run ${run.attempt}</b>: ${run.passed ? 'passed' : 'failed'} · ${escape(run.status)} · ${run.steps} steps · ${run.toolCallCount} tool calls · ${escape(usdText(run.usage.costUsd))} · ${escape(durationText(run.durationMs))} · session <code>${escape(run.sessionId)}</code> · trace ${trace}</p>
${failures ? `<ul class="failures">${failures}</ul>` : ''}
<div class="trajectories">
<div><h4>expected${expected ? ` (${escape(expected.mode)}, arguments ${escape(expected.arguments ?? 'exact')})` : ''}</h4>${expected ? `<ol>${wanted}</ol>` : '<p class="none">no trajectory expected</p>'}</div>
<div><h4>the run</h4><ol>${made}</ol></div>
</div>
<p class="output"><b>output</b>: ${run.output === null ? '<span class="none">none</span>' : escape(run.output)}</p>
</div>`;
  });
  const verdict = verdictOf(result);
  return `<details id="case-${escape(result.id)}"${result.passed ? '' : ' open'}><summary><span class="badge ${result.passed ? 'pass' : 'fail'}">${verdict}</span> ${escape(result.id)}${result.agent ? ` · ${escape(result.agent)}` : ''}</summary>
<p class="task">${escape(result.task)}</p>
${result.meantToFail !== undefined ? `<p class="meant"><b>meant to fail</b>: ${escape(result.meantToFail)}${result.passed ? '; it did, as below' : '; yet every run met every expectation'}</p>` : ''}
${result.recovery ? `<p class="recovery"><b>faults</b> ${escape(result.recovery.faultKinds.join(', '))}: ${result.recovery.recovered ? 'recovered' : 'did not recover'}, ${result.recovery.extraSteps >= 0 ? '+' : ''}${result.recovery.extraSteps.toFixed(1)} steps and ${escape(usdText(result.recovery.extraCostUsd))} against the same case without them${result.recovery.controlPassed ? '' : ' (which failed too)'}; ${result.recovery.duplicatedSideEffects === 0 ? 'no side effect ran twice' : `<b>${result.recovery.duplicatedSideEffects} side-effecting call(s) ran more than once</b>`}</p>` : ''}
${runs.join('\n')}
</details>`;
}

function baselineSection(report: EvalReport, baseline: NonNullable<HtmlReportOptions['baseline']>): string {
  const before = new Map(baseline.report.cases.map((c) => [c.id, c]));
  const rows = report.cases.filter((c) => before.has(c.id)).map((c) => {
    const b = before.get(c.id) as CaseResult;
    const change = (now: number, then: number, text: (n: number) => string) => `${text(then)} → ${text(now)}`;
    return `<tr><td>${escape(c.id)}</td><td>${b.passed ? 'pass' : 'FAIL'} → ${c.passed ? 'pass' : 'FAIL'}</td><td>${change(c.scores.steps, b.scores.steps, (n) => n.toFixed(1))}</td><td>${change(c.scores.costUsd, b.scores.costUsd, usdText)}</td></tr>`;
  });
  const regressions = baseline.regressions.map((r) => `<li><b>${escape(r.caseId)}</b>: ${escape(r.what)}</li>`).join('');
  return `<section><h2>Against the baseline</h2><p>${escape(baseline.file)} (${escape(baseline.report.startedAt)}): pass rate ${percent(baseline.report.totals.passRate)} → ${percent(report.totals.passRate)}.</p>
${regressions ? `<ul class="failures">${regressions}</ul>` : '<p>No regression.</p>'}
<table><thead><tr><th>case</th><th>result</th><th>steps</th><th>cost</th></tr></thead><tbody>${rows.join('')}</tbody></table></section>`;
}

/**
 * The report as one self-contained HTML page (`troupe eval --html`): totals, charts drawn as inline
 * SVG (pass rate by agent, by dataset and by fault kind, steps and cost per case, the distribution
 * of cost per run), the diff against a baseline, and each case's runs with the expected trajectory beside the
 * one the run made. No script and nothing fetched: it opens offline, and its content security
 * policy forbids both. The charts are hand-drawn SVG rather than a charting library, which would
 * have to be inlined whole into every report.
 */
export function reportToHtml(report: EvalReport, options: HtmlReportOptions = {}): string {
  const { totals } = report;
  const caseColor = (c: CaseResult) => (c.passed ? passColor : failColor);
  const byAgent = Object.entries(report.byAgent).map(([agent, t]) => ({ label: agent, value: t.passRate, text: `${percent(t.passRate)} of ${t.cases}` }));
  const byDataset = Object.entries(report.byDataset).map(([file, t]) => ({ label: file.split('/').slice(-2).join('/'), value: t.passRate, text: `${percent(t.passRate)} of ${t.cases}` }));
  const runCosts = report.cases.flatMap((c) => c.runs.map((r) => r.usage.costUsd));
  const rows = report.cases.map((c) => `<tr class="${c.passed ? 'pass' : 'fail'}"><td><a href="#case-${escape(c.id)}">${escape(c.id)}</a></td><td>${verdictOf(c)}</td><td>${c.scores.steps.toFixed(1)}</td><td>${c.scores.toolCalls.toFixed(1)}</td><td>${escape(usdText(c.scores.costUsd))}</td><td>${escape(durationText(c.scores.wallMs))}</td><td>${escape(c.runs.flatMap((r) => r.failures)[0] ?? '')}</td></tr>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Troupe eval: ${totals.passed}/${totals.cases} passed</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1b1b1b; max-width: 1100px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; } h4 { margin: 4px 0; font-size: 13px; }
.meta { color: #555; } .none { color: #888; }
.totals { display: flex; gap: 12px; flex-wrap: wrap; margin: 16px 0; }
.totals div { border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; min-width: 110px; }
.totals b { display: block; font-size: 20px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px 32px; }
figure.chart { margin: 0; } figcaption { font-weight: 600; margin-bottom: 4px; }
svg text { font: 12px system-ui, sans-serif; fill: #1b1b1b; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
tr.fail td:nth-child(2), .badge.fail { color: ${failColor}; font-weight: 600; } tr.pass td:nth-child(2), .badge.pass { color: ${passColor}; font-weight: 600; }
details { border: 1px solid #ddd; border-radius: 6px; margin: 8px 0; padding: 6px 10px; } summary { cursor: pointer; font-weight: 600; }
.run { border-left: 3px solid ${passColor}; padding-left: 10px; margin: 8px 0; } .run.fail { border-color: ${failColor}; }
.trajectories { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; } ol { margin: 0; padding-left: 20px; font-family: ui-monospace, monospace; font-size: 12px; }
ul.failures { color: ${failColor}; } .task { font-style: italic; } code { font-size: 12px; }
</style></head>
<body>
<h1>Troupe eval</h1>
<p class="meta">${escape(report.startedAt)} to ${escape(report.finishedAt)} · model ${escape(report.model ?? 'scripted')} · ${report.datasets.map(escape).join(', ')}</p>
<div class="totals">
<div><b>${totals.passed}/${totals.cases}</b>cases passed (${percent(totals.passRate)})</div>
<div><b>${totals.failed}</b>failed</div>
<div><b>${totals.toolPrecision.toFixed(2)} / ${totals.toolRecall.toFixed(2)}</b>tool precision / recall</div>
<div><b>${totals.steps.toFixed(1)}</b>steps a case</div>
<div><b>${escape(usdText(totals.costUsd))}</b>cost in all</div>
<div><b>${totals.tokens}</b>tokens</div>
</div>
${options.baseline ? baselineSection(report, options.baseline) : ''}
<h2>Charts</h2>
<div class="charts">
${barChart('Pass rate by agent', byAgent.map((i) => ({ ...i, color: i.value === 1 ? passColor : failColor })))}
${barChart('Pass rate by dataset', byDataset.map((i) => ({ ...i, color: i.value === 1 ? passColor : failColor })))}
${Object.keys(report.byFaultKind).some((kind) => kind !== 'none') ? barChart('Pass rate by fault kind', Object.entries(report.byFaultKind).map(([kind, t]) => ({ label: kind, value: t.passRate, text: `${percent(t.passRate)} of ${t.cases}`, color: t.passRate === 1 ? passColor : failColor }))) : ''}
${barChart('Steps per case', report.cases.map((c) => ({ label: c.id, value: c.scores.steps, text: c.scores.steps.toFixed(1), color: caseColor(c) })))}
${barChart('Cost per case', report.cases.map((c) => ({ label: c.id, value: c.scores.costUsd, text: usdText(c.scores.costUsd), color: caseColor(c) })))}
${histogram('Cost per run', runCosts, Math.min(6, Math.max(1, runCosts.length)), usdText)}
</div>
<h2>Cases</h2>
<table><thead><tr><th>case</th><th>result</th><th>steps</th><th>tool calls</th><th>cost</th><th>wall</th><th>first failure</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table>
<h2>Runs</h2>
${report.cases.map((c) => caseDetails(c, options)).join('\n')}
</body></html>
`;
}
