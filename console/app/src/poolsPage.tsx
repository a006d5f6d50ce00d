import { useEffect, useState } from 'preact/hooks';
import type { AlertList, PoolList, PoolView } from '../../consoleApi.ts';
import { readAlerts, readPools } from './api.ts';
import { describeFailure } from './errors.ts';
import { textOf, type EventRecord } from './eventFields.ts';
import { clock, count, fullDate, oneLine } from './format.ts';

const refreshMs = 2_000;

/** `#/pools`: the worker pools as discovery sees them, refreshed every 2 s, and the recent alerts. */
export function PoolsPage() {
  const [pools, setPools] = useState<PoolList | null>(null);
  const [alerts, setAlerts] = useState<AlertList | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    const refresh = async () => {
      const [poolAnswer, alertAnswer] = await Promise.allSettled([readPools(), readAlerts()]);
      if (!live) return;
      if (poolAnswer.status === 'fulfilled') setPools(poolAnswer.value);
      if (alertAnswer.status === 'fulfilled') setAlerts(alertAnswer.value);
      const failure = [poolAnswer, alertAnswer].find((answer) => answer.status === 'rejected');
      // Keeps showing the last answer: a refresh that fails says so above it.
      setError(failure ? describeFailure(failure.reason) : null);
    };
    void refresh();
    const timer = setInterval(refresh, refreshMs);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);

  return (
    <section class="pools-page">
      <div class="page-title">
        <h1>Pools</h1>
        {pools && <span class="muted">{pools.pools.length} pools, refreshed every 2 s</span>}
      </div>
      {error !== null && (
        <p class="banner error" role="alert">
          {error}
        </p>
      )}
      {pools === null ? (
        error === null && <p class="empty">Loading pools…</p>
      ) : pools.pools.length === 0 ? (
        <p class="empty">No pool answers discovery.</p>
      ) : (
        <div class="table-scroll">
          <table class="pools">
            <thead>
              <tr>
                <th scope="col">Pool</th>
                <th scope="col">Kind</th>
                <th scope="col">Members</th>
                <th scope="col">Tools</th>
                <th scope="col" class="number">Requests</th>
                <th scope="col" class="number">Errors</th>
                <th scope="col" class="number">Avg latency</th>
                <th scope="col">Circuits</th>
              </tr>
            </thead>
            <tbody>
              {[...pools.pools].sort((a, b) => a.name.localeCompare(b.name)).map((pool) => (
                <PoolRow key={pool.name} pool={pool} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      <section class="alerts" aria-labelledby="alerts-title">
        <h2 id="alerts-title">Recent alerts</h2>
        {alerts === null ? null : alerts.alerts.length === 0 ? (
          <p class="empty">No alerts.</p>
        ) : (
          <ul>
            {alerts.alerts.map((alert, i) => (
              <AlertItem key={i} alert={alert} />
            ))}
          </ul>
        )}
      </section>
    </section>
  );
}

function PoolRow({ pool }: { pool: PoolView }) {
  const errorRate = pool.requests > 0 ? pool.errors / pool.requests : 0;
  return (
    <tr data-testid="pool-row" data-pool={pool.name}>
      <td>
        <code>{pool.name}</code>
      </td>
      <td>
        <span class={`kind ${pool.kind}`}>{pool.kind}</span>
      </td>
      <td>
        <strong>{pool.members.length}</strong>
        <ul class="members">
          {pool.members.map((member) => (
            <li key={member.id} title={`${count(member.requests)} requests, ${count(member.errors)} errors, ${member.averageLatencyMs.toFixed(1)} ms average`}>
              <code>{member.id}</code> <span class="muted">v{member.version}</span>
            </li>
          ))}
        </ul>
      </td>
      <td class="tools">
        {pool.tools.length === 0 ? <span class="muted">—</span> : pool.tools.map((tool) => <code class="tool" key={tool}>{tool}</code>)}
      </td>
      <td class="number">{count(pool.requests)}</td>
      <td class={`number${pool.errors > 0 ? ' has-errors' : ''}`}>
        {count(pool.errors)}
        {pool.errors > 0 && <span class="muted"> ({(errorRate * 100).toFixed(1)}%)</span>}
      </td>
      <td class="number">{pool.averageLatencyMs.toFixed(1)} ms</td>
      <td>
        {pool.circuits.length === 0 ? (
          <span class="muted">all closed</span>
        ) : (
          <ul class="circuits">
            {pool.circuits.map((circuit) => (
              <li key={circuit.tool} class={`circuit ${circuit.state}`} title={`since ${fullDate(circuit.at)}`}>
                <code>{circuit.tool}</code> {circuit.state}
              </li>
            ))}
          </ul>
        )}
      </td>
    </tr>
  );
}

/** An alert (`alert.raised`: kind, subject, detail, source, at), or any other record as JSON. */
function AlertItem({ alert }: { alert: EventRecord }) {
  const detail = textOf(alert, 'detail');
  return (
    <li data-testid="alert" class="alert">
      <time title={fullDate(textOf(alert, 'at'))}>{clock(textOf(alert, 'at'))}</time>
      {textOf(alert, 'kind') && <span class="badge">{textOf(alert, 'kind')}</span>}
      {textOf(alert, 'subject') && <code>{textOf(alert, 'subject')}</code>}
      <span>{detail ?? oneLine(alert, 300)}</span>
      {textOf(alert, 'source') && <span class="muted">from {textOf(alert, 'source')}</span>}
    </li>
  );
}
