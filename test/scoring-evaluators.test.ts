import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScoringActivities } from '../activities/scoring';
import type { EvaluatorConfig } from '../src/decision/config/evaluators';
import { InvalidSpecError, parseRolloutSpec } from '../src/decision/config/rollout-spec';
import { cachedSchemaCount } from '../src/decision/scoring/checks';
import { startCli } from './helpers/cli-process';
import { createTestDatabase, type TestDatabase } from './helpers/db';

/**
 * Evaluators that must not stall or break the worker (issue 19, finding 8), on the real scoring activity and
 * Postgres: a JSON Schema with `$id` across batches, a regex that would backtrack for ever on a JavaScript
 * engine, a pattern that needs backtracking refused at `start`, and an eval service that redirects.
 */
describe('evaluators that cannot break the worker', () => {
  let db: TestDatabase;
  const servers: http.Server[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const s of servers) s.close();
    await db?.close();
  });

  async function answers(route: string, texts: string[]): Promise<void> {
    await db.pool.query(
      `INSERT INTO request_events (request_id, route, tag, target, latency_ms, prompt, answer)
       SELECT $1::text || '-' || gen_random_uuid(), $1::text, CASE WHEN i % 2 = 0 THEN 'canary' ELSE 'stable' END,
              'openai:gpt-4o', 100, '[{"role":"user","content":"Give me the order as JSON"}]'::jsonb, t
         FROM unnest($2::text[]) WITH ORDINALITY AS u(t, i)`,
      [route, texts],
    );
  }

  const checks = (c: Omit<Extract<EvaluatorConfig, { kind: 'checks' }>, 'kind' | 'weight'>) => [
    { kind: 'checks' as const, weight: 1, ...c },
  ];

  it('scores three batches in a row with a JSON Schema that has an $id, compiling it once', async () => {
    const scoring = createScoringActivities({ pool: db.pool });
    const jsonSchema = {
      $id: 'https://example.com/schemas/order.json',
      type: 'object',
      required: ['order'],
      properties: { order: { type: 'string' } },
    };
    const before = cachedSchemaCount();
    for (let batch = 0; batch < 3; batch++) {
      await answers('schema-id', ['{"order":"A-1"}', '{"order":"B-2"}', 'not json', '{"other":1}']);
      const report = await scoring.scoreAnswers({
        route: 'schema-id',
        fromMs: 0,
        limit: 100,
        evaluators: checks({ jsonSchema }),
      });
      expect(report, `batch ${batch + 1}`).toMatchObject({ scored: 4, failed: 0 });
    }
    expect(cachedSchemaCount()).toBe(before + 1);
    const { rows } = await db.pool.query<{ answer: string; n: number; score: number }>(
      `SELECT answer, count(*)::int AS n, min(quality_score)::float8 AS score FROM request_events
        WHERE route = 'schema-id' GROUP BY answer ORDER BY answer`,
    );
    const top = Math.max(...rows.map((r) => r.score)); // a pass scores the top of the scale
    expect(rows.map((r) => [r.answer, r.n, r.score === top ? 'pass' : 'fail'])).toEqual([
      ['not json', 3, 'fail'],
      ['{"order":"A-1"}', 3, 'pass'],
      ['{"order":"B-2"}', 3, 'pass'],
      ['{"other":1}', 3, 'fail'],
    ]);
  });

  it('runs a regex that backtracks catastrophically in JavaScript on a linear-time engine', async () => {
    // `^(a+)+$` against 40 a's and a "b" takes ~2^40 steps on a backtracking engine: the worker would hang.
    const evil = 'a'.repeat(40) + 'b';
    expect(parseRolloutSpec(spec({ regex: '^(a+)+$' })).evaluation.evaluators).toHaveLength(1);
    await answers('evil-regex', [evil, 'aaaa']);
    const report = await createScoringActivities({ pool: db.pool }).scoreAnswers({
      route: 'evil-regex',
      fromMs: 0,
      limit: 10,
      evaluators: checks({ regex: '^(a+)+$' }),
    });
    expect(report).toMatchObject({ scored: 2, failed: 0 });
    const { rows } = await db.pool.query<{ answer: string; score: number }>(
      `SELECT answer, quality_score::float8 AS score FROM request_events WHERE route = 'evil-regex' ORDER BY answer`,
    );
    const top = Math.max(...rows.map((r) => r.score));
    expect(rows.map((r) => [r.answer, r.score === top ? 'pass' : 'fail'])).toEqual([
      ['aaaa', 'pass'],
      [evil, 'fail'],
    ]);
  });

  function spec(check: { regex?: string; jsonSchema?: Record<string, unknown> }) {
    return {
      route: 'r',
      candidate: 'openai:gpt-4o',
      actor: 'test',
      evaluation: { evaluators: [{ kind: 'checks', ...check }] },
    };
  }

  it('refuses at start a pattern that needs backtracking, naming the field and why', () => {
    for (const regex of ['^(\\w+) \\1$', '^(?!.*As an AI)', '(?<=x)y']) {
      let error: unknown;
      try {
        parseRolloutSpec(spec({ regex }));
      } catch (err) {
        error = err;
      }
      expect(error, regex).toBeInstanceOf(InvalidSpecError);
      expect((error as InvalidSpecError).issues).toEqual([
        {
          field: 'evaluation.evaluators.0.regex',
          reason: expect.stringMatching(/^regex needs a backtracking engine \(.+\); checks run on RE2/),
        },
      ]);
    }
  });

  it('does not follow a redirect from an eval service: the redirect target receives nothing', async () => {
    const received: Array<{ url?: string; authorization?: string; body: string }> = [];
    const listen = async (handler: http.RequestListener) => {
      const server = http.createServer(handler);
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    const elsewhere = await listen((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ url: req.url, authorization: req.headers.authorization, body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"score":5}');
      });
    });
    let redirected = 0;
    // 307 and 308 keep the method and body: a client following them would re-send the token and prompts.
    const service = await listen((req, res) => {
      req.resume();
      redirected += 1;
      res.writeHead(redirected % 2 ? 307 : 308, { location: `${elsewhere}/steal` }).end();
    });
    await answers('redirect', ['first answer', 'second answer', 'third answer', 'fourth answer']);
    const scoring = createScoringActivities({
      pool: db.pool,
      httpServices: { evals: { url: service, headers: { authorization: 'Bearer eval-token-123' } } },
    });
    const report = await scoring.scoreAnswers({
      route: 'redirect',
      fromMs: 0,
      limit: 10,
      evaluators: [{ kind: 'http', name: 'evals', weight: 1 }],
    });
    expect(redirected).toBe(4);
    expect(received).toEqual([]);
    expect(report.scored).toBe(0);
    expect(report.failed).toBe(4);
    expect(Object.keys(report.failures).sort()).toEqual([
      'http:evals: HTTP 307: redirect not followed',
      'http:evals: HTTP 308: redirect not followed',
    ]);
  });

  it('refuses at start a JSON Schema that does not compile, naming the field', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'schema-'));
    const file = path.join(dir, 'schema.json');
    fs.writeFileSync(file, JSON.stringify({ type: 'objekt' }));
    const cli = startCli(
      ['start', 'support-bot', '--candidate', 'openai:gpt-4o', '--check-json-schema', file],
      {},
    );
    const code = await new Promise<number | null>((resolve) => cli.child.once('exit', resolve));
    fs.rmSync(dir, { recursive: true, force: true });
    expect(code).toBe(2);
    expect(cli.output()).toMatch(
      /evaluation\.evaluators\.0\.jsonSchema: jsonSchema does not compile: schema is invalid: data\/type must be/,
    );
  });

  it('refuses a judge budget whose judge has no price, at start and on the worker', async () => {
    // Through the CLI as a user types it: refused before anything is started.
    const cli = startCli(
      [
        'start',
        'support-bot',
        '--candidate',
        'openai:gpt-4o',
        '--judge',
        'openai:in-house-judge',
        '--judge-budget',
        '5',
      ],
      {},
    );
    const code = await new Promise<number | null>((resolve) => cli.child.once('exit', resolve));
    expect(code).toBe(2);
    expect(cli.output()).toMatch(
      /evaluation\.budgetUsd: the judge openai:in-house-judge \(evaluation\.judge\) has no price, so its calls cost 0 and the budget would never bind.*\(--judge-budget\)/,
    );
    // A spec sent by any other Temporal client: the worker refuses it for good, naming the field.
    const refused = await createScoringActivities({ pool: db.pool })
      .scoreAnswers({
        route: 'unpriced',
        fromMs: 0,
        limit: 10,
        evaluators: [{ kind: 'judge', target: { provider: 'openai', model: 'in-house-judge' }, weight: 1 }],
        budgetUsd: 5,
      })
      .catch((err: unknown) => err);
    expect(refused).toMatchObject({
      type: 'InvalidSpec',
      nonRetryable: true,
      message: expect.stringContaining('evaluation.budgetUsd: the judge openai:in-house-judge'),
    });
  });

  it('puts every evaluator on [0, 1]: an eval service on its declared scale, a check as pass/fail', async () => {
    let next = 0;
    const scores = [80, 25, 120];
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () =>
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ score: scores[next++ % scores.length] })),
      );
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await answers('scales', ['one', 'two', 'three']);
    const scoring = createScoringActivities({ pool: db.pool, httpServices: { evals: { url } } });
    const report = await scoring.scoreAnswers({
      route: 'scales',
      fromMs: 0,
      limit: 10,
      concurrency: 1,
      evaluators: [{ kind: 'http', name: 'evals', scale: { min: 0, max: 100 }, weight: 1 }],
    });
    expect(report.failures).toEqual({ 'http:evals: response had no "score" between 0 and 100': 1 });
    const { rows } = await db.pool.query<{ score: number }>(
      `SELECT quality_score::float8 AS score FROM request_events
        WHERE route = 'scales' AND quality_score IS NOT NULL ORDER BY quality_score`,
    );
    expect(rows.map((r) => r.score)).toEqual([0.25, 0.8]);

    await answers('pass-fail', ['short', 'a much longer answer']);
    await scoring.scoreAnswers({
      route: 'pass-fail',
      fromMs: 0,
      limit: 10,
      evaluators: checks({ maxLength: 10 }),
    });
    const { rows: checked } = await db.pool.query<{ answer: string; score: number }>(
      `SELECT answer, quality_score::float8 AS score FROM request_events WHERE route = 'pass-fail' ORDER BY answer`,
    );
    expect(checked).toEqual([
      { answer: 'a much longer answer', score: 0 },
      { answer: 'short', score: 1 },
    ]);
    // A trigger threshold on the old 1-5 scale would fire on every rollout: refused, saying how to convert.
    expect(() =>
      parseRolloutSpec({ ...spec({ regex: 'x' }), triggers: { thresholds: { avg_quality_score: 3 } } }),
    ).toThrow(/triggers\.thresholds\.avg_quality_score: avg_quality_score is a mean score on \[0, 1\]/);
  });
});
