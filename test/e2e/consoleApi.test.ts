import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type ToolWorker } from '../../actors/worker/toolWorker.ts';
import { assistantAgent } from '../../agents/assistant.ts';
import { refundDeskAgent } from '../../agents/refundDesk.ts';
import { startSession } from '../../client/sessionClient.ts';
import { ApiError, ControlResponse, SessionDetail, SessionList, StatechartGraph, PoolList } from '../../console/consoleApi.ts';
import { startConsoleServer, type ConsoleServer } from '../../console/server/consoleServer.ts';
import { silentLogger } from '../../observability/logger.ts';
import { exampleDomains } from '../../domains/exampleDomains.ts';
import { filesTools } from '../../domains/files/filesTools.ts';
import { slowWait, vaultTool } from '../fixtures/testTools.ts';
import { startInProcessStack, type InProcessStack } from '../fixtures/inProcessStack.ts';
import { ensureConsoleAppBuilt } from '../fixtures/consoleApp.ts';

/** The console's HTTP API against a real stack: reads, live streams, controls and every kind of bad request. */
describe('the operator console API', () => {
  let stack: InProcessStack;
  let nc: NatsConnection;
  let console_: ConsoleServer;
  let tokenConsole: ConsoleServer;
  const workers: ToolWorker[] = [];

  beforeAll(async () => {
    ensureConsoleAppBuilt();
    stack = await startInProcessStack();
    nc = await stack.connection('person');
    const { workspace } = stack;
    // The refund desk's pools too (db, calc, refunds; files above), for the session with a workflow.
    for (const [domain, tools] of [
      ['vault', [vaultTool()]], ['slow', [slowWait]], ['files', filesTools({ workspace })],
      ['db', exampleDomains.db({ workspace })], ['calc', exampleDomains.calc({ workspace })], ['refunds', exampleDomains.refunds({ workspace })],
    ] as const) {
      workers.push(await startWorker({ namespace: stack.namespace, domain, tools: [...tools], nats: await stack.connection(`worker-${domain}`) }));
    }
    await stack.startOrchestrator({ agents: [assistantAgent, refundDeskAgent] });
    console_ = await startConsoleServer({ nc: await stack.connection('console'), namespace: stack.namespace, port: 0, logger: silentLogger(), jaegerUrl: 'http://jaeger.example:16686' });
    tokenConsole = await startConsoleServer({ nc: await stack.connection('console-token'), namespace: stack.namespace, port: 0, logger: silentLogger(), token: 'a-token-of-sixteen-chars', maxOpenStreams: 1 });
  }, 120_000);
  afterAll(async () => {
    await console_?.close();
    await tokenConsole?.close();
    for (const worker of workers) await worker.stop();
    await stack?.stop();
  });

  const api = (path: string, init?: RequestInit) => fetch(new URL(path, console_.url), init);
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    api(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const eventually = async <T>(read: () => Promise<T | undefined>, what: string, withinMs = 30_000): Promise<T> => {
    for (const deadline = Date.now() + withinMs; Date.now() < deadline;) {
      const found = await read();
      if (found !== undefined) return found;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  it('lists a session waiting for approval, draws its state from the machine, and approves it for a named person', async () => {
    const run = await startSession(nc, { namespace: stack.namespace, task: 'Please open the vault.' });
    const row = await eventually(async () => {
      const list = SessionList.parse(await (await api('/api/sessions')).json());
      return list.sessions.find((s) => s.sessionId === run.sessionId && s.waitingForApproval === 1);
    }, 'the session waiting in the list');
    expect(row).toMatchObject({ agent: 'assistant', status: 'parked', state: 'awaiting_approval', outcome: null });

    const detail = SessionDetail.parse(await (await api(`/api/sessions/${run.sessionId}`)).json());
    expect(detail.activeStateIds).toEqual(['session.awaiting_approval']);
    expect(detail.waiting).toEqual([expect.objectContaining({ tool: 'vault_open', arguments: { door: 'north' } })]);
    expect(detail.controls).toEqual(expect.arrayContaining(['approve', 'deny', 'cancel']));
    expect(detail.traceUrl).toMatch(/^http:\/\/jaeger\.example:16686\/trace\/[\da-f]{32}$/);
    expect(detail.workflow).toBeNull();

    const graph = StatechartGraph.parse(await (await api('/api/statechart')).json());
    const ids = new Set(graph.nodes.map((n) => n.id));
    for (const id of detail.activeStateIds) expect(ids.has(id)).toBe(true);
    expect(graph.edges.every((e) => ids.has(e.source) && ids.has(e.target))).toBe(true);

    const approved = ControlResponse.parse(await (await post(`/api/sessions/${run.sessionId}/approve`, { by: 'ada' })).json());
    expect(approved).toMatchObject({ status: 'applied', accepted: true, by: 'ada (console)' });
    expect(await run.finished).toMatchObject({ status: 'completed' });
    const ended = await eventually(async () => {
      const now = SessionDetail.parse(await (await api(`/api/sessions/${run.sessionId}`)).json());
      return now.summary.status === 'ended' ? now : undefined;
    }, 'the ended checkpoint');
    expect(ended).toMatchObject({ summary: { outcome: 'completed' }, activeStateIds: ['session.completed'], controls: [] });
    expect(ended.summary.costUsd).toBeGreaterThan(0);
    expect(ended.interventions).toEqual([expect.objectContaining({ kind: 'approved', by: 'ada (console)' })]);
    expect(((await (await api('/api/actions')).json()) as { actions: unknown[] }).actions[0]).toMatchObject({ sessionId: run.sessionId, control: 'approve', status: 'applied', by: 'ada (console)' });

    // A control on a finished session is refused, saying why.
    const late = await post(`/api/sessions/${run.sessionId}/cancel`, {});
    expect(late.status).toBe(409);
    expect(ApiError.parse(await late.json()).error.message).toMatch(/has ended \(completed\)/);
  });

  it('streams a session from its first event with the state each one marks, then its detail as it changes', async () => {
    const run = await startSession(nc, { namespace: stack.namespace, task: 'Please take a very long step.' });
    const response = await api(`/api/sessions/${run.sessionId}/stream`);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const seen = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended before ${pattern}: ${text}`);
        text += value;
      }
    };
    await seen(/"type":"tool\.call\.started"[^\n]*"stateId":"session\.running_tools"/);
    expect(text).toMatch(/event: event\ndata: \{"kind":"event","event":\{[^\n]*"type":"session\.started"[^\n]*"stateId":"session\.preparing"/);
    expect(text).toMatch(/event: detail\n/);
    const cancelled = ControlResponse.parse(await (await post(`/api/sessions/${run.sessionId}/cancel`, { reason: 'too slow', by: 'bo' })).json());
    expect(cancelled).toMatchObject({ status: 'applied', accepted: true });
    const stopped = await eventually(async () => {
      const d = SessionDetail.parse(await (await api(`/api/sessions/${run.sessionId}`)).json());
      return d.summary.status === 'ended' ? d : undefined;
    }, 'the cancelled checkpoint');
    expect(stopped.interventions).toEqual([expect.objectContaining({ kind: 'cancelled', by: 'bo (console)', detail: 'too slow' })]);
    await seen(/"type":"session\.finished"[^\n]*"stateId":"session\.cancelled"/);
    await seen(/"kind":"detail","detail":\{"summary":\{[^\n]*"status":"ended"[^\n]*"outcome":"cancelled"/);
    await reader.cancel();
  });

  it('carries a refund-desk session’s workflow: its phases, propose active while the move to execute waits, the moves taken; approved, on to report', async () => {
    const reason = 'The proposal is in proposals/order-1002.md: refund 5900 cents for one broken speaker.';
    const run = await startSession(nc, { namespace: stack.namespace, task: 'Refund request from Diego Lopez for order 1002: one of the two portable speakers arrived broken.', agent: 'refund_desk' });
    const detailNow = async () => {
      const parsed = SessionDetail.safeParse(await (await api(`/api/sessions/${run.sessionId}`)).json());
      return parsed.success ? parsed.data : undefined;
    };
    const waiting = await eventually(async () => {
      const d = await detailNow();
      return d?.summary.state === 'awaiting_phase_approval' ? d : undefined;
    }, 'the move to execute waiting', 60_000);

    expect(waiting.workflow?.graph.nodes.map((n) => n.id)).toEqual(expect.arrayContaining(['triage', 'investigate', 'propose', 'execute', 'report']));
    expect(waiting.workflow?.graph.edges.map((e) => `${e.source}->${e.target}: ${e.event}`)).toContain('propose->execute: next_phase (approval)');
    expect(waiting.workflow).toMatchObject({ active: ['propose'], pendingExit: { to: 'execute', reason } });
    expect(waiting.workflow?.path.map((m) => [m.trigger, m.from, m.to])).toEqual([['choice', ['triage'], ['investigate']], ['choice', ['investigate'], ['propose']]]);
    expect(waiting.activeStateIds).toEqual(['session.awaiting_phase_approval']);
    expect(waiting.controls).toEqual(['approve', 'deny', 'interrupt', 'cancel']);
    expect(waiting.waiting).toEqual([expect.objectContaining({ callId: 'next_phase:execute', tool: 'next_phase', arguments: { to: 'execute', reason } })]);
    expect(waiting.summary.waitingForApproval).toBe(1);
    expect(SessionList.parse(await (await api('/api/sessions')).json()).sessions.find((s) => s.sessionId === run.sessionId)).toMatchObject({ status: 'parked', waitingForApproval: 1 });

    // The stream marks each move and the request on the loop's statechart.
    const stream = await api(`/api/sessions/${run.sessionId}/stream`);
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!/"type":"approval\.requested"/.test(text)) text += (await reader.read()).value ?? '';
    await reader.cancel();
    expect(text).toMatch(/"type":"session\.started"[^\n]*"phases":\["triage"\][^\n]*"stateId":"session\.preparing"/);
    expect(text).toMatch(/"type":"workflow\.transitioned"[^\n]*"trigger":"choice"[^\n]*"stateId":"session\.observing"/);
    expect(text).toMatch(/"type":"approval\.requested"[^\n]*"stateId":"session\.awaiting_phase_approval"/);

    const approved = ControlResponse.parse(await (await post(`/api/sessions/${run.sessionId}/approve`, { by: 'ana', callIds: ['next_phase:execute'] })).json());
    expect(approved).toMatchObject({ status: 'applied', accepted: true });
    expect(await run.finished).toMatchObject({ status: 'completed' });
    const ended = await eventually(async () => {
      const d = await detailNow();
      return d?.summary.status === 'ended' ? d : undefined;
    }, 'the ended checkpoint');
    expect(ended.workflow).toMatchObject({ active: ['report'], pendingExit: null });
    expect(ended.workflow?.path.map((m) => `${m.trigger}:${m.to.join('›')}`)).toEqual(['choice:investigate', 'choice:propose', 'approval:execute', 'tool:report']);
    expect(ended.workflow?.path[2]).toMatchObject({ from: ['propose'], to: ['execute'], by: 'ana (console)', detail: reason });
    expect(JSON.parse(await readFile(join(stack.workspace, 'refunds', 'order-1002.json'), 'utf8'))).toMatchObject({ orderId: 1002, amountCents: 5900 });
  }, 120_000);

  it('answers the sessions table live, pools from the service protocol, and the health of its NATS link', async () => {
    const health = await (await api('/api/health')).json();
    expect(health).toMatchObject({ namespace: stack.namespace, nats: 'connected', readOnly: false, jaegerUrl: 'http://jaeger.example:16686' });
    const pools = PoolList.parse(await (await api('/api/pools')).json());
    expect(pools.pools.map((p) => [p.name, p.kind, p.tools])).toEqual(expect.arrayContaining([
      [`${stack.namespace}-vault`, 'tools', ['vault_open']],
      [`${stack.namespace}-slow`, 'tools', ['slow_wait']],
    ]));
    expect(pools.pools.find((p) => p.name === `${stack.namespace}-vault`)?.members).toHaveLength(1);

    const response = await api('/api/sessions/stream');
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!/event: sessions\n/.test(text)) text += (await reader.read()).value ?? '';
    expect(text).toMatch(/event: nats\ndata: \{"kind":"nats","state":"connected"\}/);
    const run = await startSession(nc, { namespace: stack.namespace, task: 'Please open the vault.' });
    while (!text.includes(run.sessionId)) text += (await reader.read()).value ?? '';
    await reader.cancel();
    // After the first list, only the rows that changed.
    const later = text.slice(text.indexOf('event: sessions\n') + 1);
    expect(later).not.toContain('event: sessions\n');
    expect(later).toMatch(new RegExp(`event: changes\ndata: \\{"kind":"changes","upserted":\\[\\{"sessionId":"${run.sessionId}"`));
    await post(`/api/sessions/${run.sessionId}/deny`, { reason: 'not today' });
    expect(await run.finished).toMatchObject({ status: 'completed' });
  });

  it('takes an escalated session over: calls a tool through it by hand, then hands it back; answers another', async () => {
    const taken = await startSession(nc, { namespace: stack.namespace, task: 'Please get stuck on the report.' });
    expect(await taken.finished).toMatchObject({ status: 'escalated' });
    const parked = await eventually(async () => {
      const d = SessionDetail.parse(await (await api(`/api/sessions/${taken.sessionId}`)).json());
      return d.summary.state === 'escalated' ? d : undefined;
    }, 'the escalated checkpoint');
    expect(parked.controls).toEqual(['answer', 'takeover', 'rollback', 'cancel']);
    expect(ControlResponse.parse(await (await post(`/api/sessions/${taken.sessionId}/takeover`, { by: 'gus' })).json())).toMatchObject({ status: 'applied', by: 'gus (console)' });
    const call = ControlResponse.parse(await (await post(`/api/sessions/${taken.sessionId}/call`, { tool: 'files_write', arguments: { path: 'notes/console.txt', content: 'by hand' } })).json());
    expect(call.status).toBe('applied');
    expect(JSON.parse(call.answer ?? '{}')).toMatchObject({ ok: true, result: { path: 'notes/console.txt' } });
    expect(ControlResponse.parse(await (await post(`/api/sessions/${taken.sessionId}/handback`, { instruction: 'Summarise it.' })).json()).status).toBe('applied');
    const back = await eventually(async () => {
      const d = SessionDetail.parse(await (await api(`/api/sessions/${taken.sessionId}`)).json());
      return d.summary.status === 'ended' ? d : undefined;
    }, 'the handed-back session to end');
    expect(back.summary.outcome).toBe('completed');
    expect(back.interventions.map((i) => [i.kind, i.by])).toEqual([['took_over', 'gus (console)'], ['handed_back', expect.anything()]]);
    expect(back.ledger.filter((e) => e.tool === 'files_write')).toEqual([expect.objectContaining({ status: 'ok', arguments: { path: 'notes/console.txt', content: 'by hand' } })]);

    const answered = await startSession(nc, { namespace: stack.namespace, task: 'Please get stuck on the report.' });
    expect(await answered.finished).toMatchObject({ status: 'escalated' });
    expect(ControlResponse.parse(await (await post(`/api/sessions/${answered.sessionId}/answer`, { answer: 'It is in notes/console.txt.' })).json()).status).toBe('applied');
    const done = await eventually(async () => {
      const d = SessionDetail.parse(await (await api(`/api/sessions/${answered.sessionId}`)).json());
      return d.summary.status === 'ended' ? d : undefined;
    }, 'the answered session to end');
    expect(done.output).toBe('back in control; I was told: It is in notes/console.txt.');
  });

  it('refuses bad requests with a clear reason and loses nothing', async () => {
    const unknown = await api('/api/sessions/no-such-session');
    expect(unknown.status).toBe(404);
    expect(ApiError.parse(await unknown.json()).error).toMatchObject({ code: 'not_found', message: 'There is no session no-such-session.' });
    expect((await api('/api/sessions/no-such-session/stream')).status).toBe(404);
    expect((await post('/api/sessions/no-such-session/approve', {})).status).toBe(404);
    expect((await api('/api/sessions/bad%ZZid')).status).toBe(400);
    expect((await api('/api/nothing-here')).status).toBe(404);
    expect((await api('/api/sessions', { method: 'DELETE' })).status).toBe(405);

    const run = await startSession(nc, { namespace: stack.namespace, task: 'Please open the vault.' });
    await eventually(async () => (SessionList.parse(await (await api('/api/sessions')).json()).sessions.find((s) => s.sessionId === run.sessionId && s.waitingForApproval > 0)), 'the session waiting');
    const notJson = await post(`/api/sessions/${run.sessionId}/approve`, '{"by":');
    expect(notJson.status).toBe(400);
    expect(ApiError.parse(await notJson.json()).error.message).toMatch(/not JSON/);
    const wrongField = await post(`/api/sessions/${run.sessionId}/redirect`, { instruction: '', extra: 1 });
    expect(wrongField.status).toBe(400);
    const issues = ApiError.parse(await wrongField.json()).error.issues ?? [];
    expect(issues.map((i) => i.path)).toEqual(expect.arrayContaining(['instruction', '(body)']));
    const rollbackTurn = await post(`/api/sessions/${run.sessionId}/rollback`, { toTurn: -1 });
    expect(ApiError.parse(await rollbackTurn.json()).error.issues?.[0]?.path).toBe('toTurn');
    const asText = await api(`/api/sessions/${run.sessionId}/approve`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    expect(asText.status).toBe(415);
    expect((await post(`/api/sessions/${run.sessionId}/launch`, {})).status).toBe(404);
    // A name that is not this machine: refused, as a page elsewhere rebinding a DNS name to 127.0.0.1 would be.
    // (fetch may not set Host: a plain request can.)
    const rebound = await new Promise<number>((resolve, reject) => {
      const url = new URL('/api/health', console_.url);
      request({ host: url.hostname, port: url.port, path: url.pathname, headers: { host: 'evil.example:7070' } }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      }).on('error', reject).end();
    });
    expect(rebound).toBe(403);

    // Nothing was lost: the session still waits, and is decided properly.
    const detail = SessionDetail.parse(await (await api(`/api/sessions/${run.sessionId}`)).json());
    expect(detail.waiting).toHaveLength(1);
    expect(ControlResponse.parse(await (await post(`/api/sessions/${run.sessionId}/deny`, { reason: 'bad requests first' })).json()).accepted).toBe(true);
    expect(await run.finished).toMatchObject({ status: 'completed' });
  });

  it('needs its token when it has one: a header for requests, a query parameter for event streams; the page itself loads without', async () => {
    const at = (path: string) => new URL(path, tokenConsole.url);
    // The browser fetches the page's files without the token; they hold no data.
    const page = await fetch(at('/?token=whatever'));
    expect(page.status).toBe(200);
    const asset = /src="\.?\/?(assets\/[^"]+\.js)"/.exec(await page.text())?.[1];
    expect(asset).toBeDefined();
    expect((await fetch(at(`/${asset}`))).status).toBe(200);
    expect((await fetch(at('/api/health'))).status).toBe(401);
    expect((await fetch(at('/api/health'), { headers: { authorization: 'Bearer wrong-token-of-sixteen' } })).status).toBe(401);
    expect((await fetch(at('/api/health'), { headers: { authorization: 'Bearer a-token-of-sixteen-chars' } })).status).toBe(200);
    const stream = await fetch(at('/api/sessions/stream?token=a-token-of-sixteen-chars'));
    expect(stream.status).toBe(200);
    // Its limit of live views (one here): another is refused until the first closes.
    const second = await fetch(at('/api/sessions/stream?token=a-token-of-sixteen-chars'));
    expect(second.status).toBe(503);
    expect(ApiError.parse(await second.json()).error.message).toMatch(/live views open, its limit/);
    await stream.body?.cancel();
    await expect.poll(async () => {
      const again = await fetch(at('/api/sessions/stream?token=a-token-of-sixteen-chars'));
      await again.body?.cancel();
      return again.status;
    }).toBe(200);
  });

  it('refuses to listen beyond this machine without a token, and serves the page with a strict policy', async () => {
    await expect(startConsoleServer({ nc, namespace: stack.namespace, host: '0.0.0.0', port: 0, logger: silentLogger() })).rejects.toThrow(/--token/);
    const page = await api('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    expect(await page.text()).toMatch(/<div id="app"|<body/);
    expect((await api('/../../etc/passwd')).headers.get('content-type')).toMatch(/text\/html/);
  });
});
