import http from 'node:http';
import path from 'node:path';
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { startTracing, tracingRequested, type Tracing } from '../src/control-plane/telemetry/tracing';
import { createGateway } from '../src/data-plane/gateway/server';
import { changeRoute } from '../src/store/routing-state';
import { startTestStack, type TestStack } from './helpers/stack';
import { until } from './helpers/rollout';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'model-rollout.js');

interface ReceivedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  /** The span's attributes, their OTLP JSON values unwrapped. */
  attrs: Record<string, unknown>;
}

type OtlpValue = {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values: OtlpValue[] };
};
const unwrap = (v: OtlpValue): unknown =>
  v.stringValue ??
  (v.intValue !== undefined ? Number(v.intValue) : undefined) ??
  v.doubleValue ??
  v.boolValue ??
  v.arrayValue?.values.map(unwrap);

/** An OTLP/HTTP collector as a team runs one: it takes JSON trace exports on /v1/traces and keeps the spans. */
async function startCollector() {
  const spans: ReceivedSpan[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        const data = JSON.parse(body) as {
          resourceSpans: Array<{
            resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
            scopeSpans: Array<{
              spans: Array<
                Omit<ReceivedSpan, 'service' | 'attrs'> & {
                  attributes?: Array<{ key: string; value: OtlpValue }>;
                }
              >;
            }>;
          }>;
        };
        for (const rs of data.resourceSpans) {
          const service =
            rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
          for (const ss of rs.scopeSpans)
            for (const { attributes, ...s } of ss.spans)
              spans.push({
                ...s,
                service,
                attrs: Object.fromEntries((attributes ?? []).map((a) => [a.key, unwrap(a.value)])),
              });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, spans, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('tracing with the OTEL_* variables', () => {
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let tracing: Tracing | null;
  let stack: TestStack;
  const saved = { ...process.env };

  beforeAll(async () => {
    collector = await startCollector();
    // This process is the worker: traced like `model-rollout worker` with the same variables.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = collector.url;
    process.env.OTEL_BSP_SCHEDULE_DELAY = '200';
    tracing = await startTracing('model-rollout-worker');
    stack = await startTestStack({ default: { latencyMs: { median: 250, p99: 800 }, accuracy: 0.95 } });
  });
  afterAll(async () => {
    await stack?.close();
    await tracing?.shutdown();
    await collector?.close();
    process.env = saved;
  });

  const cli = (args: string[], env: NodeJS.ProcessEnv) =>
    run(process.execPath, [BIN, ...args], {
      env: {
        ...process.env,
        ...env,
        DATABASE_URL: stack.db.connectionString,
        TEMPORAL_ADDRESS: stack.env.address,
        TEMPORAL_NAMESPACE: stack.env.namespace,
        TEMPORAL_TASK_QUEUE: stack.env.taskQueue,
        NO_COLOR: '1',
      },
    });

  it('is off unless a variable asks for it, and the spec off switches win', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(
      true,
    );
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'console' })).toBe(true);
    expect(
      tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }),
    ).toBe(false);
    expect(
      tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }),
    ).toBe(false);
  });

  it('puts `model-rollout start` and the activities of the rollout it starts in one trace', async () => {
    const route = 'traced';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    await cli(['start', route, '--candidate', 'openai:gpt-4o'], {});
    await until(
      () =>
        collector.spans.some(
          (s) => s.service === 'model-rollout-cli' && s.name === 'StartWorkflow:rolloutWorkflow',
        ) &&
        collector.spans.some(
          (s) => s.service === 'model-rollout-worker' && s.name === 'RunActivity:claimRoute',
        ),
      'the start span from the CLI and the claimRoute activity span from the worker',
      30_000,
    );
    const start = collector.spans.find((s) => s.name === 'StartWorkflow:rolloutWorkflow')!;
    const inTrace = collector.spans.filter((s) => s.traceId === start.traceId);
    expect(inTrace.map((s) => s.name)).toContain('RunActivity:claimRoute');
    expect(new Set(inTrace.map((s) => s.service))).toEqual(
      new Set(['model-rollout-cli', 'model-rollout-worker']),
    );

    // The workflow's own span ends with the rollout: rolled back by hand, it joins the same trace.
    await cli(['rollback', route, '--reason', 'done with the trace'], {});
    await until(
      () =>
        collector.spans.some((s) => s.traceId === start.traceId && s.name === 'RunWorkflow:rolloutWorkflow'),
      `the workflow span in the start command's trace (has ${JSON.stringify(collector.spans.filter((s) => s.traceId === start.traceId).map((s) => s.name))})`,
      30_000,
    );
    const names = collector.spans.filter((s) => s.traceId === start.traceId).map((s) => s.name);
    expect(names).toEqual(
      expect.arrayContaining(['RunActivity:restoreStable', 'RunWorkflow:rolloutWorkflow']),
    );
  }, 120_000);

  it('gives a gateway request one span with the GenAI attributes, and a child span per provider attempt', async () => {
    const route = 'traced-chat';
    stack.sim.setBehaviour('broken-primary', {
      errorRate: 1,
      errorKinds: { server_error: 1 },
      latencyMs: { median: 200 },
    });
    await stack.createRoute(route, {
      target: { provider: 'openai', model: 'broken-primary' },
      fallbacks: [{ provider: 'anthropic', model: 'claude-sonnet-4' }],
    });
    const gateway = createGateway({ router: stack.router, auth: { disabled: true } });
    const url = await gateway.listen({ port: 0 });
    try {
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const { response } = await client.chat.completions
        .create({ model: route, messages: [{ role: 'user', content: 'What is the capital of France?' }] })
        .withResponse();
      const requestId = response.headers.get('x-request-id');
      await until(
        () =>
          collector.spans.some(
            (s) => s.name === `chat ${route}` && s.attrs['gen_ai.response.id'] === requestId,
          ),
        'the request span',
        30_000,
      );
      const span = collector.spans.find((s) => s.attrs['gen_ai.response.id'] === requestId)!;
      expect(span.service).toBe('model-rollout-worker'); // this test process, traced as the worker
      expect(span.attrs).toMatchObject({
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': route,
        'gen_ai.provider.name': 'anthropic',
        'gen_ai.response.model': 'claude-sonnet-4',
        'gen_ai.response.finish_reasons': ['stop'],
        'model_rollout.route': route,
        'model_rollout.arm': 'stable',
        'model_rollout.target': 'anthropic:claude-sonnet-4',
        'model_rollout.fallback_depth': 1,
      });
      expect(span.attrs['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
      expect(span.attrs['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
      const attempts = collector.spans.filter((s) => s.parentSpanId === span.spanId);
      expect(attempts.length).toBeGreaterThanOrEqual(2);
      expect(attempts.every((a) => a.traceId === span.traceId)).toBe(true);
      const first = attempts.find((a) => a.attrs['model_rollout.attempt'] === 1)!;
      expect(first.attrs).toMatchObject({
        'gen_ai.request.model': 'broken-primary',
        'error.type': 'server_error',
      });
      expect(
        attempts.find((a) => a.attrs['gen_ai.request.model'] === 'claude-sonnet-4')!.attrs['error.type'],
      ).toBeUndefined();
    } finally {
      await gateway.close();
    }
  }, 60_000);

  it('adds the shadow call as a child span of the request it shadowed', async () => {
    const route = 'traced-shadow';
    await stack.createRoute(route, 'anthropic:claude-sonnet-4');
    await changeRoute(stack.db.pool, route, {
      expectedVersion: 1,
      patch: { green: { target: { provider: 'openai', model: 'gpt-4o' }, fallbacks: [] }, shadowRate: 1 },
      actor: 'test',
      reason: 'shadow every request',
    });
    await until(
      async () => stack.router.state(route)?.shadowRate === 1,
      'the router to see the shadow',
      10_000,
    );
    const gateway = createGateway({ router: stack.router, auth: { disabled: true } });
    const url = await gateway.listen({ port: 0 });
    try {
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const { response } = await client.chat.completions
        .create({ model: route, messages: [{ role: 'user', content: 'What is the capital of Spain?' }] })
        .withResponse();
      const requestId = response.headers.get('x-request-id');
      let request: ReceivedSpan | undefined;
      await until(
        () => {
          request = collector.spans.find((s) => s.attrs['gen_ai.response.id'] === requestId);
          return (
            !!request &&
            collector.spans.some((s) => s.parentSpanId === request!.spanId && s.name === 'shadow gpt-4o')
          );
        },
        'the request span and its shadow span',
        30_000,
      );
      const shadow = collector.spans.find(
        (s) => s.parentSpanId === request!.spanId && s.name === 'shadow gpt-4o',
      )!;
      expect(request!.attrs['gen_ai.response.model']).toBe('claude-sonnet-4');
      expect(shadow.traceId).toBe(request!.traceId);
      expect(shadow.attrs).toMatchObject({
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o',
        'model_rollout.shadow.outcome': 'ok',
        'model_rollout.shadow.paired': true,
      });
    } finally {
      await gateway.close();
    }
  }, 60_000);

  it('off, loads nothing of OpenTelemetry in the CLI, the worker or the gateway', async () => {
    const script = [
      "import { createRequire } from 'node:module';",
      "await import('./src/cli/main.ts');",
      "await import('./src/control-plane/temporal/worker.ts');",
      "await import('./src/data-plane/gateway/server.ts');",
      'const cache = Object.keys(createRequire(import.meta.url).cache);',
      "console.log(JSON.stringify({ modules: cache.length, otel: cache.filter((k) => k.includes('@opentelemetry')) }));",
    ].join('\n');
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('OTEL_')) delete env[k];
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      env,
    });
    const loaded = JSON.parse(stdout.trim().split('\n').at(-1)!) as { modules: number; otel: string[] };
    expect(loaded.modules).toBeGreaterThan(100);
    expect(loaded.otel).toEqual([]);
  });
});
