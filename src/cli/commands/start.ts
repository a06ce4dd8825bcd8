/**
 * `model-rollout start ROUTE --candidate provider:model [...]`: validates the rollout spec, checks the route
 * in Postgres, and starts the rollout workflow `rollout-<route>` (one running rollout per route; a new one
 * may start once the previous one has finished).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import type { Client } from '@temporalio/client';
import type { rolloutWorkflow } from '../../../workflows/rollout';
import type { RolloutSpec } from '../../decision/config/rollout-spec';
import { formatDuration } from '../../decision/config/duration';
import { UsageError } from '../errors';
import { defaultActor, share, uiLink } from '../format';
import { readJsonObject, withDatabase } from './routes';
import { ownerExecution, withClient } from './status';

interface StartOptions {
  candidate?: string;
  fallback: string[];
  strategy?: string;
  shadowRate?: string;
  steps?: string;
  interval?: string;
  triggerInterval?: string;
  bake?: string;
  policy?: string;
  requireApproval?: boolean;
  webhook?: string;
  judge?: string;
  judgeRubric?: string;
  judgeTimeout?: string;
  judgeBudget?: string;
  judgeSample?: string;
  evalHttp: string[];
  evalFeedback?: boolean;
  evalReference?: boolean;
  checkRegex?: string;
  checkJsonSchema?: string;
  checkMinLength?: string;
  checkMaxLength?: string;
  scoreConcurrency?: string;
  evidenceTimeout?: string;
  alert: string[];
  spec?: string;
  actor?: string;
  json?: boolean;
}

/** Which flag sets which spec field, so a validation error can point at what the user typed. */
const FLAG_OF_FIELD: Array<[string, Exclude<keyof StartOptions, 'fallback' | 'evalHttp'> | 'route', string]> =
  [
    ['route', 'route', 'ROUTE'],
    ['candidate', 'candidate', '--candidate/--fallback'],
    ['strategy', 'strategy', '--strategy'],
    ['shadow.rate', 'shadowRate', '--shadow-rate'],
    ['canary.steps', 'steps', '--steps'],
    ['evaluation.interval', 'interval', '--interval'],
    ['triggers.interval', 'triggerInterval', '--trigger-interval'],
    ['bake.duration', 'bake', '--bake'],
    ['policy', 'policy', '--policy'],
    ['alerts.webhookUrl', 'webhook', '--webhook'],
    ['evaluation.judge', 'judge', '--judge'],
    ['evaluation.evaluators', 'judge', '--judge/--eval-*/--check-*'],
    ['evaluation.judgeTimeout', 'judgeTimeout', '--judge-timeout'],
    ['evaluation.budgetUsd', 'judgeBudget', '--judge-budget'],
    ['evaluation.sample', 'judgeSample', '--judge-sample'],
    ['evaluation.concurrency', 'scoreConcurrency', '--score-concurrency'],
    ['evaluation.noEvidenceAfter', 'evidenceTimeout', '--evidence-timeout'],
    ['alerts.channels', 'alert', '--alert'],
    ['actor', 'actor', '--actor'],
  ];

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('Start a rollout of a candidate model on a route (workflow rollout-<route>)')
    .argument('[route]', 'the route to roll out on (may come from --spec instead)')
    .option('--candidate <provider:model>', 'the model to roll out, e.g. openai:gpt-4o')
    .option(
      '--fallback <provider:model>',
      'a fallback of the candidate, tried in order (repeatable)',
      collect,
      [],
    )
    .addOption(
      new Option('--strategy <strategy>', 'how to move traffic (default canary)').choices([
        'canary',
        'blue-green',
        'shadow-only',
      ]),
    )
    .option(
      '--shadow-rate <fraction>',
      'run a shadow phase first, mirroring this fraction (0-1) of stable requests to the candidate',
    )
    .option(
      '--steps <bps,...>',
      'canary share ladder in basis points, ending at 10000 (default 500,1000,2000,4000,8000,10000)',
    )
    .option('--interval <duration>', 'time between policy checks (default 5m)')
    .option('--trigger-interval <duration>', 'time between rollback-trigger checks (default 5m)')
    .option(
      '--bake <duration>',
      'how long the promoted model is watched before the rollout completes (default 30m)',
    )
    .addOption(
      new Option('--policy <policy>', 'decision policy (default sequential)').choices([
        'sequential',
        'ratio',
      ]),
    )
    .option('--require-approval', 'wait for `model-rollout approve` before promoting to 100%')
    .option(
      '--alert <channel[:kinds]>',
      'send alerts to this channel configured on the worker (ALERT_CHANNELS_FILE), e.g. ops-slack or pager:rollback,trigger (repeatable)',
      collect,
      [],
    )
    // Kept only to explain that URLs are no longer taken (a webhook URL is a secret).
    .addOption(new Option('--webhook <url>').hideHelp())
    .option('--judge <provider:model>', 'LLM judge scoring answers 1-5 (e.g. openai:gpt-4o-mini)')
    .option('--judge-rubric <file>', "the judge's rubric (a text file; it must ask for one digit 1-5)")
    .option('--judge-timeout <duration>', 'per judge call; slower is a counted failure (default 30s)')
    .option('--judge-budget <usd>', 'what scoring may cost this rollout in all, in USD')
    .option(
      '--judge-sample <stable[,candidate]>',
      "the fraction of the stable arm's answers scored (the candidate's: all, unless given), e.g. 0.1",
    )
    .option(
      '--eval-http <name>',
      'score with the eval service configured on the worker as MODEL_ROLLOUT_EVALUATOR_<NAME>_URL (repeatable)',
      collect,
      [],
    )
    .option('--eval-feedback', 'include user feedback (posted back by request id) in the score')
    .option('--eval-reference', 'include reference grading (the bundled question set) in the score')
    .option(
      '--check-regex <regex>',
      'deterministic check: the answer must match this regular expression (RE2: no backreferences or lookaround)',
    )
    .option('--check-json-schema <file>', 'deterministic check: the answer must be JSON matching this schema')
    .option('--check-min-length <chars>', 'deterministic check: the answer has at least this many characters')
    .option('--check-max-length <chars>', 'deterministic check: the answer has at most this many characters')
    .option('--score-concurrency <n>', 'evaluations in flight at most per scoring batch (default 16)')
    .option(
      '--evidence-timeout <duration>',
      'alert and show "no quality evidence" when the candidate gets no score for this long (default 15m)',
    )
    .option('--spec <file.json>', 'a full rollout spec (JSON); flags given as well override its fields')
    .option('--actor <who>', 'who starts it, for the audit trail (default cli:$USER)')
    .option('--json', 'print the workflow id, run id and UI link as JSON')
    .addHelpText(
      'after',
      `
Durations: 30s, 5m, 1h30m, 2d. Shares are basis points: 500 = 5%.

Examples:
  model-rollout start support-bot --candidate openai:gpt-4o
  model-rollout start support-bot --candidate openai:gpt-4o --fallback anthropic:claude-sonnet-4 --steps 1000,5000,10000 --interval 10m
  model-rollout start support-bot --candidate openai:gpt-4o --strategy shadow-only --shadow-rate 0.1
  model-rollout start support-bot --candidate openai:gpt-4o --judge openai:gpt-4o-mini --judge-budget 5
  model-rollout start support-bot --candidate openai:gpt-4o --eval-http evals --check-max-length 2000
  model-rollout start --spec examples/rollout-canary.json

Evaluators: --judge alone adds an LLM judge to the default list (reference answer, then user feedback,
then the judge: the first that applies scores). Any --eval-* or --check-* flag makes an explicit list
(the judge, the eval services, the checks, feedback, reference), all applied, scores averaged.`,
    )
    .action(async (route: string | undefined, opts: StartOptions) => {
      const spec = await buildSpec(route, opts);
      const workflowId = (await import('../../decision/config/rollout-spec')).rolloutWorkflowId(spec.route);
      const owner = await checkRoute(spec);
      await withClient(async (client) => {
        await checkOwner(client, spec.route, owner, workflowId);
        const started = await startRollout(client, spec, workflowId);
        const result = {
          workflowId,
          runId: started.runId,
          route: spec.route,
          candidate: started.candidate,
          strategy: spec.strategy,
          uiUrl: uiLink(workflowId, client.options.namespace),
        };
        if (opts.json) {
          console.log(JSON.stringify({ ...result, spec }, null, 2));
          return;
        }
        console.log(
          `started the rollout of ${result.candidate} on ${spec.route} (${await describePlan(spec)})`,
        );
        console.log(`workflow id:  ${workflowId}`);
        console.log(`run id:       ${started.runId}`);
        console.log(`Temporal UI:  ${result.uiUrl}`);
        console.log(`follow it:    model-rollout status ${spec.route} --watch`);
      });
    });
}

/** The spec from --spec (if any) with the flags laid over it, validated; bad input is a UsageError. */
async function buildSpec(route: string | undefined, opts: StartOptions): Promise<RolloutSpec> {
  let input: Record<string, unknown> = {};
  if (opts.spec) input = readJsonObject(opts.spec, '--spec');
  if (opts.spec) await inlineEvalDatasets(input, path.dirname(opts.spec));
  const sub = (key: string) => {
    const current = input[key];
    const obj =
      current && typeof current === 'object' && !Array.isArray(current)
        ? { ...(current as Record<string, unknown>) }
        : {};
    input[key] = obj;
    return obj;
  };
  if (route !== undefined) {
    if (typeof input.route === 'string' && input.route !== route) {
      throw new UsageError(`the route argument (${route}) and the spec's route (${input.route}) differ`);
    }
    input.route = route;
  }
  if (opts.candidate !== undefined || opts.fallback.length > 0) {
    if (opts.candidate === undefined) throw new UsageError('--fallback needs --candidate');
    input.candidate = opts.fallback.length
      ? { target: opts.candidate, fallbacks: opts.fallback }
      : opts.candidate;
  }
  if (input.route === undefined)
    throw new UsageError('which route? give it as the first argument (or "route" in --spec)');
  if (input.candidate === undefined)
    throw new UsageError('which model? give --candidate provider:model (or "candidate" in --spec)');
  if (opts.strategy !== undefined) input.strategy = opts.strategy;
  if (opts.shadowRate !== undefined) {
    const rate = Number(opts.shadowRate);
    if (opts.shadowRate.trim() === '' || !Number.isFinite(rate))
      throw new UsageError(`--shadow-rate must be a fraction between 0 and 1, got "${opts.shadowRate}"`);
    Object.assign(sub('shadow'), { enabled: true, rate });
  }
  if (opts.steps !== undefined) sub('canary').steps = parseSteps(opts.steps);
  if (opts.interval !== undefined) sub('evaluation').interval = opts.interval;
  if (opts.triggerInterval !== undefined) sub('triggers').interval = opts.triggerInterval;
  if (opts.bake !== undefined) sub('bake').duration = opts.bake;
  if (opts.policy !== undefined) sub('policy').policy = opts.policy;
  if (opts.requireApproval) sub('approval').required = true;
  if (opts.webhook !== undefined) sub('alerts').webhookUrl = opts.webhook;
  applyEvaluationFlags(sub('evaluation'), opts);
  if (opts.alert.length > 0) sub('alerts').channels = opts.alert.map(parseAlertFlag);
  input.actor = opts.actor ?? (typeof input.actor === 'string' ? input.actor : defaultActor());
  return parseSpecOrExplain(input, opts);
}

/** The scoring flags onto `evaluation` (see the help text for how they combine). */
function applyEvaluationFlags(evaluation: Record<string, unknown>, opts: StartOptions): void {
  const number = (value: string | undefined, flag: string): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n))
      throw new UsageError(`${flag} must be a number, got "${value}"`);
    return n;
  };
  const rubric = opts.judgeRubric !== undefined ? readText(opts.judgeRubric, '--judge-rubric') : undefined;
  const checks: Record<string, unknown> = { kind: 'checks' };
  if (opts.checkRegex !== undefined) checks.regex = opts.checkRegex;
  if (opts.checkJsonSchema !== undefined)
    checks.jsonSchema = readJsonObject(opts.checkJsonSchema, '--check-json-schema');
  if (opts.checkMinLength !== undefined) checks.minLength = number(opts.checkMinLength, '--check-min-length');
  if (opts.checkMaxLength !== undefined) checks.maxLength = number(opts.checkMaxLength, '--check-max-length');
  const explicit: Array<Record<string, unknown>> = [
    ...opts.evalHttp.map((name) => ({ kind: 'http', name })),
    ...(Object.keys(checks).length > 1 ? [checks] : []),
    ...(opts.evalFeedback ? [{ kind: 'feedback' }] : []),
    ...(opts.evalReference ? [{ kind: 'reference' }] : []),
  ];
  if (explicit.length > 0 || rubric !== undefined) {
    if (opts.judge !== undefined) explicit.unshift({ kind: 'judge', target: opts.judge, rubric });
    else if (rubric !== undefined) throw new UsageError('--judge-rubric needs --judge');
    evaluation.evaluators = explicit;
  } else if (opts.judge !== undefined) evaluation.judge = opts.judge;
  if (opts.judgeTimeout !== undefined) evaluation.judgeTimeout = opts.judgeTimeout;
  if (opts.judgeBudget !== undefined) evaluation.budgetUsd = number(opts.judgeBudget, '--judge-budget');
  if (opts.judgeSample !== undefined) {
    const [stable, candidate] = opts.judgeSample.split(',').map((v) => number(v, '--judge-sample'));
    evaluation.sample = candidate === undefined ? { stable } : { stable, candidate };
  }
  if (opts.scoreConcurrency !== undefined)
    evaluation.concurrency = number(opts.scoreConcurrency, '--score-concurrency');
  if (opts.evidenceTimeout !== undefined) evaluation.noEvidenceAfter = opts.evidenceTimeout;
}

/**
 * An eval step may name its dataset file (`{ "eval": { "dataset": "set.jsonl" } }`, relative to the spec);
 * the items travel in the spec, so the file is read here, checked line by line, and put in as `items`.
 */
async function inlineEvalDatasets(input: Record<string, unknown>, specDir: string): Promise<void> {
  if (!Array.isArray(input.steps)) return;
  const { parseDataset } = await import('../../decision/eval/dataset');
  input.steps = input.steps.map((step: unknown, index: number) => {
    const value = (step as { eval?: Record<string, unknown> } | null)?.eval;
    if (!value || typeof value !== 'object' || typeof value.dataset !== 'string') return step;
    const field = `steps.${index}.eval.dataset`;
    const file = path.resolve(specDir, value.dataset);
    try {
      const items = parseDataset(readText(file, field), file).map(({ line: _line, ...item }) => item);
      const { dataset: _dataset, ...rest } = value;
      return { eval: { ...rest, items } };
    } catch (err) {
      throw new UsageError(`${field}: ${(err as Error).message}`);
    }
  });
}

function readText(file: string, flag: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

async function parseSpecOrExplain(input: Record<string, unknown>, opts: StartOptions): Promise<RolloutSpec> {
  // Imported here: the spec schema pulls in the policy code, which `--help` does not need.
  const { parseRolloutSpec, InvalidSpecError } = await import('../../decision/config/rollout-spec');
  try {
    const spec = parseRolloutSpec(input); // the policy comes out resolved: the input holds every setting
    // Targets may name a baseUrl only from this deployment's allowlist (the worker refuses it too).
    const { deploymentRegistry, endpointIssues, specTargets } =
      await import('../../data-plane/providers/providers-file');
    const registry = deploymentRegistry();
    const { judgeBudgetIssues } = await import('../../decision/scoring/budget');
    const { schemaProblem } = await import('../../decision/scoring/checks');
    const issues = [
      ...endpointIssues(registry, specTargets(spec)),
      ...judgeBudgetIssues(spec.evaluation, registry.pricing),
      // A JSON Schema that does not compile would fail every scoring batch: refused here, by its field.
      ...(spec.evaluation.evaluators ?? []).flatMap((e, i) => {
        const problem = e.kind === 'checks' && e.jsonSchema ? schemaProblem(e.jsonSchema) : undefined;
        return problem ? [{ field: `evaluation.evaluators.${i}.jsonSchema`, reason: problem }] : [];
      }),
    ];
    if (issues.length > 0) throw new InvalidSpecError(issues);
    return spec;
  } catch (err) {
    if (!(err instanceof InvalidSpecError)) throw err;
    const lines = err.issues.map((issue) => {
      const flag = FLAG_OF_FIELD.find(
        ([field, key]) =>
          (issue.field === field || issue.field.startsWith(field + '.')) &&
          (key === 'route' ||
            (Array.isArray(opts[key]) ? (opts[key] as unknown[]).length > 0 : opts[key] !== undefined)),
      );
      return `  ${issue.field}: ${issue.reason}${flag ? ` (${flag[2]})` : ''}`;
    });
    throw new UsageError(`invalid rollout spec:\n${lines.join('\n')}`);
  }
}

/** `ops-slack` (every kind) or `pager:rollback,trigger` (those kinds only). */
function parseAlertFlag(text: string): { name: string; kinds?: string[] } {
  const i = text.indexOf(':');
  // A URL has a ':' too: leave it whole so the spec refuses it with its reason.
  if (i < 0 || /^https?:/i.test(text)) return { name: text };
  return {
    name: text.slice(0, i),
    kinds: text
      .slice(i + 1)
      .split(',')
      .map((k) => k.trim()),
  };
}

/** `500,1000,10000` or `5%,10%,100%` → basis points. */
function parseSteps(text: string): number[] {
  return text.split(',').map((part) => {
    const p = part.trim();
    const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(p);
    if (!m)
      throw new UsageError(`--steps: "${p}" is not a share (basis points like 500, or a percentage like 5%)`);
    return m[2] ? Math.round(Number(m[1]) * 100) : Number(m[1]);
  });
}

/** The route must exist. Returns its owner (the rollout that holds it, if any). */
async function checkRoute(spec: RolloutSpec): Promise<string | null> {
  const { getRoute } = await import('../../store/routing-state');
  const { formatTarget } = await import('../../decision/config/target');
  return withDatabase(async (db) => {
    const route = await getRoute(db.pool, spec.route);
    if (!route) {
      throw new Error(
        `route "${spec.route}" does not exist (database ${db.url}); create it first with 'model-rollout routes set --file route.json' ` +
          `(see 'model-rollout routes' for the existing ones)`,
      );
    }
    const stable = route.stableSlot === 'blue' ? route.blue : route.green!;
    if (formatTarget(stable.target) === formatTarget(spec.candidate.target) && !route.owner) {
      console.error(
        `warning: ${formatTarget(spec.candidate.target)} is already the stable model of ${spec.route}`,
      );
    }
    return route.owner;
  });
}

/** A route still owned by a rollout that is not running (say, terminated) would make the new one fail. */
async function checkOwner(
  client: Client,
  route: string,
  owner: string | null,
  workflowId: string,
): Promise<void> {
  if (!owner) return;
  const execution = await ownerExecution(client, owner);
  if (execution.running) {
    if (owner === workflowId) return; // the start below reports it, with its run id
    throw new Error(
      `route "${route}" is owned by the running workflow ${owner} (run ${execution.runId}); wait for it or roll it back`,
    );
  }
  const { state } = execution;
  throw new Error(
    `route "${route}" is still owned by ${owner}, which is not running (${state}) and did not release it ` +
      `(a terminated rollout skips its cleanup). Check the route with 'model-rollout routes show ${route}', then free it with ` +
      `'model-rollout routes release ${route} --reason ...' before starting again`,
  );
}

async function startRollout(
  client: Client,
  spec: RolloutSpec,
  workflowId: string,
): Promise<{ runId: string; candidate: string }> {
  const { WorkflowExecutionAlreadyStartedError } = await import('@temporalio/client');
  const { TASK_QUEUE } = await import('../../control-plane/temporal/connection');
  const sa = await import('../../control-plane/temporal/search-attributes');
  const { formatTarget } = await import('../../decision/config/target');
  const candidate = formatTarget(spec.candidate.target);
  try {
    const handle = await client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
      taskQueue: TASK_QUEUE,
      workflowId,
      args: [spec],
      // One running rollout per route; a finished one (whatever its outcome) does not block the next.
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      // Findable by `list` and in the UI from the first second (the workflow keeps them up to date).
      typedSearchAttributes: [
        { key: sa.RolloutRoute, value: spec.route },
        { key: sa.RolloutPhase, value: 'starting' },
        { key: sa.RolloutCandidate, value: candidate },
        { key: sa.RolloutStrategy, value: spec.strategy },
        { key: sa.CanaryBasisPoints, value: 0 },
      ],
      memo: { route: spec.route, candidate, phase: 'starting', shareBps: 0 },
      staticSummary: `${candidate} on ${spec.route} (${spec.strategy}), started by ${spec.actor}`,
    });
    return { runId: handle.firstExecutionRunId, candidate };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    let running = `workflow ${workflowId}`;
    try {
      const d = await client.workflow.getHandle(workflowId).describe();
      const phase = (d.memo as { phase?: string } | undefined)?.phase;
      running = `workflow ${workflowId}, run ${d.runId} (${d.status.name.toLowerCase()}${phase ? `, phase ${phase}` : ''}, started ${d.startTime.toISOString()})`;
    } catch {
      // the description is a nicety; the id alone names it
    }
    throw new Error(
      `a rollout is already running on route "${spec.route}": ${running}. ` +
        `Follow it with 'model-rollout status ${spec.route}', or end it with 'model-rollout rollback ${spec.route} --reason "..."'`,
    );
  }
}

/** "canary: shadow 10% ... -> 5% -> 10% -> approval ... -> 100% -> bake 30m, checked every 5m". */
async function describePlan(spec: RolloutSpec): Promise<string> {
  const { describeStep, shareOf } = await import('../../decision/config/steps');
  const steps = spec.steps.map((s) => {
    const bps = shareOf(s);
    return bps === undefined ? describeStep(s) : share(bps);
  });
  return `${spec.strategy}: ${steps.join(' -> ')}, checked every ${formatDuration(spec.evaluation.interval)}`;
}
