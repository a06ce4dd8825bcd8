/**
 * The Grafana dashboard (deploy/grafana/dashboards/model-rollout.json) against a running system: a real gateway
 * and a real worker, each started as `model-rollout gateway|worker` in a process of its own on the provider
 * simulator, serve traffic through a rollout whose shaky candidate is shadowed, canaried and rolled back for
 * its errors (or rolled back before its canary step). Then every PromQL query of the dashboard must parse (Prometheus's own grammar) and
 * name only metrics, labels and label values that the two processes' /metrics really have, and every SQL
 * query (the scoring panels, the decision and routing-change annotations) must run on the real database as
 * the read-only role Grafana connects with, and show the rollback.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { rolloutWorkflow } from '../workflows';
import type { RolloutSpecInput } from '../src/decision/config/rollout-spec';
import { CLIENT_CAUSED_CLASSES } from '../src/data-plane/providers/blame';
import { startSimulator, type SimulatorHandle } from '../src/tooling/simulator';
import { openDatabase, type Database } from '../src/store/database';
import { createRoute, listChanges } from '../src/store/routing-state';
import { parseTargetWithFallbacks } from '../src/decision/config/target';
import { ROOT, startCli, type CliProcess } from './helpers/cli-process';
import { createEmptyDatabase } from './helpers/db';
import { OPEN_PROMPTS } from './helpers/open-prompts';
import { expandGrafanaIntervals, parseExposition, queryNames, type Exposition } from './helpers/promql';
import { temporalTestEnv } from './helpers/temporal';

interface Target {
  refId: string;
  datasource: { type: string; uid: string };
  expr?: string;
  rawSql?: string;
  format?: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  templating: { list: { name: string; type: string; query: unknown; definition?: string }[] };
  annotations: { list: { name: string; datasource: { type: string; uid: string }; target?: Target }[] };
  panels: Panel[];
}

const DASHBOARD_FILE = path.join(ROOT, 'deploy', 'grafana', 'dashboards', 'model-rollout.json');
const READER_SQL = path.join(ROOT, 'deploy', 'postgres', 'initdb', '10-grafana-reader.sql');
const dashboard = JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
const ROUTE = 'dash-canary';
const REFUSING_ROUTE = 'dash-refusals';
/** Labels Prometheus itself adds to every scraped series. */
const SCRAPE_LABELS = new Set(['instance', 'job']);

const panelTargets = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, target: t })));
const promQueries = panelTargets.filter(({ target }) => target.expr !== undefined);
const sqlQueries = [
  ...panelTargets
    .filter(({ target }) => target.rawSql !== undefined)
    .map(({ panel, target }) => ({ name: `${panel.title} ${target.refId}`, target })),
  ...dashboard.annotations.list
    .filter((a) => a.target?.rawSql)
    .map((a) => ({ name: `annotation ${a.name}`, target: a.target! })),
];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Grafana's Postgres macros for a time range, as its SQL data source expands them (any other macro fails). */
function expandSqlMacros(sql: string, from: Date, to: Date, routes: string[]): string {
  const at = (d: Date) => `'${d.toISOString()}'`;
  const expanded = sql
    .replace(
      /\$__timeFilter\(([^)]+)\)/g,
      (_m, col: string) => `${col.trim()} BETWEEN ${at(from)} AND ${at(to)}`,
    )
    .replace(/\$__timeFrom\(\)/g, at(from))
    .replace(/\$__timeTo\(\)/g, at(to))
    .replace(/\$__timeGroupAlias\(([^,]+),\s*'(\d+)m'\)/g, (_m, col: string, minutes: string) => {
      const seconds = Number(minutes) * 60;
      return `floor(extract(epoch from ${col.trim()})/${seconds})*${seconds} AS "time"`;
    })
    // A multi-value variable in SQL: Grafana quotes each value and joins them with commas.
    .replace(/\$route\b/g, routes.map((r) => `'${r.replace(/'/g, "''")}'`).join(','));
  const unknown = /\$\w+/.exec(expanded);
  if (unknown) throw new Error(`unexpanded Grafana variable or macro ${unknown[0]} in:\n${sql}`);
  return expanded;
}

describe('Grafana dashboard against a real gateway, worker and database', () => {
  const env = temporalTestEnv();
  let database: Awaited<ReturnType<typeof createEmptyDatabase>>;
  let db: Database;
  let reader: pg.Pool;
  let sim: SimulatorHandle;
  let gateway: CliProcess;
  let worker: CliProcess;
  let client: Client;
  let started: Date;
  let metricsPort: number;
  let finished: Date;
  const metrics: { gateway: Exposition; worker: Exposition } = { gateway: new Map(), worker: new Map() };
  let outcome: { result: string; reason?: string };

  beforeAll(async () => {
    started = new Date(Date.now() - 1000);
    database = await createEmptyDatabase();
    // The postgres image runs deploy/postgres/initdb/ on an empty database, before any migration: the
    // reader's SELECT must reach the tables the migrations create afterwards.
    const admin = new pg.Client({ connectionString: database.connectionString });
    await admin.connect();
    await admin.query(fs.readFileSync(READER_SQL, 'utf8'));
    await admin.query(`ALTER ROLE grafana_reader PASSWORD 'grafana-reader-test'`);
    await admin.end();
    const readerUrl = new URL(database.connectionString);
    readerUrl.username = 'grafana_reader';
    readerUrl.password = 'grafana-reader-test';
    reader = new pg.Pool({ connectionString: readerUrl.toString(), max: 2 });

    sim = await startSimulator({
      scenario: {
        seed: 22,
        default: { latencyMs: { median: 40, p99: 200 } },
        models: {
          'flaky-primary': { errorRate: 0.3, errorKinds: { server_error: 1 } },
          refuser: { errorRate: 1, errorKinds: { bad_request: 1 } },
          'shaky-candidate': { errorRate: 0.5, errorKinds: { server_error: 1 } },
        },
      },
    });
    const common = { DATABASE_URL: database.connectionString };
    gateway = startCli(
      ['gateway', '--simulator', sim.url, '--no-auth', '--port', '0', '--admin-port', '0'],
      common,
    );
    const [, adminUrl] = await gateway.waitFor(/admin:\s+(http:\/\/\S+)\/metrics/);
    const [, gatewayUrl] = await gateway.waitFor(/gateway:\s+(http:\/\/\S+)\/v1/);
    db = await openDatabase({ url: database.connectionString }); // migrated by the gateway at its start
    await createRoute(
      db.pool,
      {
        name: ROUTE,
        blue: parseTargetWithFallbacks({
          target: 'openai:flaky-primary',
          fallbacks: ['deepseek:deepseek-chat'],
        }),
      },
      { actor: 'test', reason: 'dashboard test route' },
    );
    await createRoute(
      db.pool,
      { name: REFUSING_ROUTE, blue: parseTargetWithFallbacks({ target: 'openai:refuser' }) },
      { actor: 'test', reason: 'dashboard test route' },
    );

    metricsPort = await freePort();
    worker = startCli(['worker', '--simulator', sim.url, '--metrics-port', String(metricsPort)], {
      ...common,
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: env.namespace,
      TEMPORAL_TASK_QUEUE: env.taskQueue,
    });
    await worker.waitFor(/worker running on task queue/);

    client = await env.client();
    const spec: RolloutSpecInput = {
      route: ROUTE,
      candidate: 'openai:shaky-candidate',
      actor: 'test',
      shadow: { enabled: true, rate: 0.5, minComparisons: 10, maxDuration: '10s', require: 'none' },
      canary: { steps: [2000, 10000] },
      evaluation: { interval: '1s', scoreBatch: 500 },
      triggers: { interval: '1s', minRequests: 20, minScores: 0, thresholds: { error_rate: 0.2 } },
      bake: { duration: '2s' },
    } as RolloutSpecInput;
    const handle = await client.workflow.start(rolloutWorkflow, {
      taskQueue: env.taskQueue,
      workflowId: `rollout-${ROUTE}-${env.taskQueue}`,
      args: [spec],
    });

    // Users of an application behind the gateway, until the rollout ends.
    const openai = new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: 'unused', maxRetries: 0 });
    let running = true;
    const ask = async (route: string, user: string, prompt: string) => {
      await openai.chat.completions
        .create({ model: route, user, messages: [{ role: 'user', content: prompt }] })
        .catch(() => {}); // failures are what the error panels show
    };
    const users = Array.from({ length: 8 }, async (_, u) => {
      for (let i = 0; running; i++) {
        await ask(ROUTE, `user-${u}-${i % 50}`, OPEN_PROMPTS[(u * 7 + i) % OPEN_PROMPTS.length]);
        if (i % 10 === 0) await ask(REFUSING_ROUTE, `user-${u}`, OPEN_PROMPTS[i % OPEN_PROMPTS.length]);
      }
    });
    outcome = await handle.result();
    running = false;
    await Promise.all(users);
    // Scoring and the events of the last requests are written within a few seconds.
    await new Promise((r) => setTimeout(r, 3000));
    finished = new Date(Date.now() + 1000);

    parseExposition(await (await fetch(`${adminUrl}/metrics`)).text(), metrics.gateway);
    parseExposition(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(), metrics.worker);
  }, 300_000);

  afterAll(async () => {
    await gateway?.stop();
    await worker?.stop();
    await client?.connection.close();
    await reader?.end();
    await db?.close();
    await sim?.close();
    await database?.drop();
  });

  it('runs the rollout the panels are about: shadowed, then rolled back for its errors', () => {
    // By its error-rate trigger or by the canary policy's error test, whichever sees enough first: at the
    // 20% step, or (one run in six here) before it, on the errors its shadow calls made.
    expect(outcome.result).toBe('rolled_back');
    expect(outcome.reason).toMatch(/error/);
  });

  it('every PromQL query parses and names only metrics, labels and label values the gateway or worker exposes', () => {
    const problems: string[] = [];
    const all: Exposition = new Map([...metrics.gateway, ...metrics.worker]);
    expect(promQueries.length).toBeGreaterThan(25);
    for (const { panel, target } of promQueries) {
      const where = `"${panel.title}" ${target.refId}`;
      const names = queryNames(expandGrafanaIntervals(target.expr!));
      for (const error of names.errors) problems.push(`${where}: ${error}`);
      for (const selector of names.selectors) {
        const series = all.get(selector.metric);
        if (!series) {
          problems.push(`${where}: no ${selector.metric} in /metrics`);
          continue;
        }
        for (const { label, op, value } of selector.matchers) {
          if (SCRAPE_LABELS.has(label)) continue;
          const seen = series.get(label);
          if (!seen) {
            problems.push(`${where}: ${selector.metric} has no label "${label}"`);
            continue;
          }
          if (value.includes('$')) continue; // a dashboard variable, filled from label_values (checked below)
          const alternatives = op === '=~' || op === '!~' ? value.split('|') : [value];
          for (const v of alternatives) {
            // A class no call here happened to fail with is still a real one when the code counts it so.
            const known =
              seen.has(v) || (label === 'outcome' && (CLIENT_CAUSED_CLASSES as ReadonlySet<string>).has(v));
            if (!known) problems.push(`${where}: ${selector.metric}{${label}} never has the value "${v}"`);
          }
        }
      }
      for (const grouping of names.groupings) {
        for (const label of grouping.labels) {
          if (SCRAPE_LABELS.has(label)) continue;
          if (!grouping.metrics.some((m) => all.get(m)?.has(label)))
            problems.push(
              `${where}: grouped by "${label}", which none of ${grouping.metrics.join(', ')} has`,
            );
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('excludes from model errors exactly the failures the code blames on the client', () => {
    const exclusions = promQueries
      .filter(({ panel }) => /error ratio/i.test(panel.title))
      .flatMap(({ target }) => queryNames(expandGrafanaIntervals(target.expr!)).selectors)
      .flatMap((s) => s.matchers.filter((m) => m.label === 'outcome' && m.op === '!~'))
      .map((m) => new Set(m.value.split('|').filter((v) => v !== 'ok')));
    expect(exclusions.length).toBeGreaterThanOrEqual(4);
    for (const set of exclusions) expect([...set].sort()).toEqual([...CLIENT_CAUSED_CLASSES].sort());
  });

  it('its variables list label values that exist, and every variable a query uses is defined', () => {
    const defined = new Set(dashboard.templating.list.map((v) => v.name));
    const all: Exposition = new Map([...metrics.gateway, ...metrics.worker]);
    for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
      const [, metric, label] = /^label_values\((\w+),\s*(\w+)\)$/.exec(variable.definition ?? '') ?? [];
      expect(all.get(metric)?.get(label)?.size, `${variable.name}: ${variable.definition}`).toBeGreaterThan(
        0,
      );
    }
    expect(metrics.gateway.get('model_rollout_requests_total')!.get('route')).toEqual(
      new Set([ROUTE, REFUSING_ROUTE]),
    );
    const used = [
      ...promQueries.map(({ target }) => target.expr!),
      ...sqlQueries.map(({ target }) => target.rawSql!),
      ...dashboard.panels.map((p) => p.datasource?.uid ?? ''),
    ].flatMap((text) => [...text.matchAll(/\$\{?([a-z_]+)\}?/g)].map((m) => m[1]));
    for (const name of used) if (!name.startsWith('__')) expect(defined, `variable $${name}`).toContain(name);
  });

  it('every SQL query runs on the database as the read-only Grafana role and shows the rollout', async () => {
    const results = new Map<string, pg.QueryResult>();
    for (const { name, target } of sqlQueries) {
      const sql = expandSqlMacros(target.rawSql!, started, finished, [ROUTE, REFUSING_ROUTE]);
      const result = await reader.query(sql);
      const columns = result.fields.map((f) => f.name);
      if (target.format === 'time_series') expect(columns, name).toEqual(['time', 'metric', 'value']);
      if (name.startsWith('annotation')) expect(columns, name).toEqual(['time', 'text', 'tags']);
      results.set(name, result);
    }
    expect(results.size).toBe(sqlQueries.length);

    const rows = (name: string) => results.get(name)!.rows;
    const decisions = rows('annotation Rollout decisions');
    expect(decisions.map((r) => r.text as string)).toContainEqual(
      expect.stringMatching(/^dash-canary: rollback at \d+(\.\d+)?% \(\w[\w-]*\): .*error/),
    );
    expect(decisions.every((r) => !/: hold at/.test(r.text))).toBe(true);
    // Every change of both routes, oldest first, each with its version, actor and reason.
    const changes = [...(await listChanges(db.pool, ROUTE)), ...(await listChanges(db.pool, REFUSING_ROUTE))];
    changes.sort((a, b) => a.id - b.id);
    expect(changes.length).toBeGreaterThanOrEqual(5); // two routes made, claimed, shadowed, ... restored
    expect(rows('annotation Routing changes').map((r) => r.text)).toEqual(
      changes.map((c) => `${c.route} v${c.version} by ${c.actor}: ${c.reason}`),
    );
    expect(rows('Rollout decisions A').some((r) => r.action === 'rollback')).toBe(true);
    const scoring = [
      ...rows('Captured and scored answers per minute A'),
      ...rows('Captured and scored answers per minute B'),
    ].map((r) => r.metric as string);
    expect(scoring).toContain(`${ROUTE} captured`);
    expect(scoring).toContain(`${ROUTE} scored`);
  });

  it("names the flag when the worker's metrics port is taken", async () => {
    const second = startCli(['worker', '--simulator', sim.url, '--metrics-port', String(metricsPort)], {
      DATABASE_URL: database.connectionString,
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: env.namespace,
      TEMPORAL_TASK_QUEUE: `${env.taskQueue}-second`,
    });
    const code = await new Promise((resolve) => second.child.once('close', resolve));
    expect(code).toBe(1);
    expect(second.output()).toMatch(
      new RegExp(
        `error: metrics on 127\\.0\\.0\\.1:${metricsPort}: Address already in use.*; pick another --metrics-port`,
      ),
    );
  }, 120_000);

  it('cannot write through the role Grafana connects with', async () => {
    await expect(reader.query(`DELETE FROM rollout_decisions`)).rejects.toThrow(/permission denied/);
    await expect(reader.query(`UPDATE routes SET canary_bps = 0`)).rejects.toThrow(/permission denied/);
  });
});
