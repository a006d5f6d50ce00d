import type { ConsoleHealth, NatsLinkState } from '../../consoleApi.ts';
import { poolsHref, sessionsHref, type Route } from './route.ts';

interface Props {
  route: Route;
  health: ConsoleHealth | null;
  healthError: string | null;
  unauthorized: boolean;
  nats: NatsLinkState | null;
  operator: string;
  onOperatorChange: (name: string) => void;
}

const natsText: Record<NatsLinkState, string> = { connected: 'NATS connected', reconnecting: 'NATS reconnecting', closed: 'NATS closed' };

/** The bar on every page: where the console is (namespace, NATS link, read-only), the navigation, and who the operator is. */
export function ConsoleHeader({ route, health, healthError, unauthorized, nats, operator, onOperatorChange }: Props) {
  return (
    <header class="console-header">
      <div class="brand">
        <strong>Troupe</strong> console
      </div>
      <nav aria-label="Pages">
        <a href={sessionsHref} aria-current={route.page === 'sessions' || route.page === 'session' ? 'page' : undefined}>
          Sessions
        </a>
        <a href={poolsHref} aria-current={route.page === 'pools' ? 'page' : undefined}>
          Pools
        </a>
      </nav>
      <div class="facts">
        {health && (
          <span class="fact" title="the NATS namespace the console reads">
            namespace <code data-testid="namespace">{health.namespace}</code>
          </span>
        )}
        {nats && (
          <span class={`link-state ${nats}`} data-testid="nats-state" data-state={nats}>
            {natsText[nats]}
          </span>
        )}
        {health?.readOnly && <span class="badge">read-only</span>}
        {healthError !== null && (
          <span class="link-state closed" title={healthError} data-testid="console-state">
            {unauthorized ? 'not authorised' : 'console unreachable'}
          </span>
        )}
        {health && <span class="version">v{health.version}</span>}
      </div>
      <label class="operator">
        Your name
        <input
          type="text"
          value={operator}
          maxLength={100}
          placeholder="sent with your actions"
          data-testid="operator-name"
          onInput={(event) => onOperatorChange(event.currentTarget.value)}
        />
      </label>
    </header>
  );
}
