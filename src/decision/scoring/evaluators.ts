import type pg from 'pg';
import type { EvaluatorConfig } from '../config/evaluators';
import type { FallbackChain } from '../../data-plane/providers/fallback-chain';
import { ProviderError, ChainExhaustedError } from '../../data-plane/providers/errors';
import type { Target } from '../../data-plane/providers/types';
import { findQuestionByPrompt, loadQuestions, type Question } from './reference-set/questions';
import type { CombineMode, EvaluatorOutcome } from './combine';
import { feedbackScore, heuristicScore } from './heuristics';
import { judgeScore } from './judge';
import { gradeAnswer } from './reference';
import { compiledRegex, compiledSchema, matchesRegex, matchesSchema } from './checks';

/**
 * Evaluators: one interface for everything that turns an answer into a quality score. Each returns a
 * 1-5 score, `null` when it does not apply to this answer (no feedback yet, no reference answer), or throws
 * when it should have scored and could not (judge timeout, eval service down). See docs/evaluators.md.
 */
export interface EvaluationItem {
  requestId: string;
  route: string;
  /** stable | canary | shadow */
  tag: string;
  /** The chat messages as captured (may be redacted). */
  messages: unknown;
  /** The last user message: what the answer answers. */
  question: string;
  answer: string;
  referenceId: string | null;
}

export interface Evaluator {
  readonly name: string;
  readonly weight: number;
  evaluate(item: EvaluationItem, signal: AbortSignal): Promise<{ score: number; costUsd?: number } | null>;
}

/** An evaluator that should have scored and could not; `reason` is short and safe to show (no secrets). */
export class EvaluatorError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'EvaluatorError';
  }
}

/** An eval service of the team's, configured on the worker by name (a spec names it, never a URL). */
/** An evaluator config the worker cannot build (a JSON Schema that does not compile): the spec's fault. */
export class InvalidEvaluatorError extends Error {
  constructor(
    /** The spec field, e.g. `evaluation.evaluators[1].jsonSchema`. */
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'InvalidEvaluatorError';
  }
}

export interface HttpEvaluatorService {
  url: string;
  /** Sent with every call, e.g. an Authorization header; never logged or reported. */
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export interface EvaluatorDeps {
  pool: pg.Pool;
  chain?: FallbackChain;
  httpServices?: Record<string, HttpEvaluatorService>;
  judgeTimeoutMs?: number;
}

/** Reads HTTP eval services from the environment: MODEL_ROLLOUT_EVALUATOR_<NAME>_URL (and _TOKEN). */
export function httpServicesFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): Record<string, HttpEvaluatorService> {
  const services: Record<string, HttpEvaluatorService> = {};
  for (const [key, value] of Object.entries(env)) {
    const match = /^MODEL_ROLLOUT_EVALUATOR_([A-Z0-9_-]+)_URL$/.exec(key);
    if (!match || !value) continue;
    const token = env[`MODEL_ROLLOUT_EVALUATOR_${match[1]}_TOKEN`];
    services[match[1].toLowerCase()] = {
      url: value,
      headers: token ? { authorization: `Bearer ${token}` } : undefined,
    };
  }
  return services;
}

export function createEvaluator(config: EvaluatorConfig, deps: EvaluatorDeps): Evaluator {
  switch (config.kind) {
    case 'judge':
      return judgeEvaluator(config.target, config.rubric, config.weight, deps);
    case 'http':
      return httpEvaluator(config.name, config.weight, deps);
    case 'checks':
      return checksEvaluator(config);
    case 'feedback':
      return feedbackEvaluator(config.weight, deps.pool);
    case 'reference':
      return referenceEvaluator(config.weight);
  }
}

/**
 * The evaluators of a rollout and how they combine. With an explicit list: all of them, weighted. Without
 * one (the default): reference, then feedback, then the judge when there is one (else the heuristic); the
 * first that applies decides.
 */
export function evaluatorsFor(
  configs: readonly EvaluatorConfig[] | undefined,
  judge: Target | undefined,
  deps: EvaluatorDeps,
): { evaluators: Evaluator[]; mode: CombineMode } {
  if (configs && configs.length > 0) {
    const evaluators = configs.map((c, i) => {
      try {
        return createEvaluator(c, deps);
      } catch (err) {
        if (!(err instanceof InvalidEvaluatorError)) throw err;
        throw new InvalidEvaluatorError(`evaluation.evaluators[${i}].${err.field}`, err.reason);
      }
    });
    return { evaluators, mode: 'weighted' };
  }
  const last: Evaluator =
    judge && deps.chain ? judgeEvaluator(judge, undefined, 1, deps) : heuristicEvaluator();
  return {
    evaluators: [referenceEvaluator(1), feedbackEvaluator(1, deps.pool), last],
    mode: 'first',
  };
}

/** Runs the evaluators on one answer: lazily in order for `first`, all at once for `weighted`. */
export async function runEvaluators(
  evaluators: readonly Evaluator[],
  mode: CombineMode,
  item: EvaluationItem,
  signal: AbortSignal,
): Promise<EvaluatorOutcome[]> {
  const one = async (e: Evaluator): Promise<EvaluatorOutcome> => {
    try {
      const result = await e.evaluate(item, signal);
      return result === null
        ? { name: e.name, weight: e.weight, notApplicable: true }
        : { name: e.name, weight: e.weight, score: result.score, costUsd: result.costUsd };
    } catch (err) {
      return { name: e.name, weight: e.weight, error: failureReason(err) };
    }
  };
  if (mode === 'weighted') return Promise.all(evaluators.map(one));
  const outcomes: EvaluatorOutcome[] = [];
  for (const e of evaluators) {
    const outcome = await one(e);
    outcomes.push(outcome);
    if (!('notApplicable' in outcome)) break;
  }
  return outcomes;
}

function failureReason(err: unknown): string {
  if (err instanceof EvaluatorError) return err.reason;
  if (err instanceof ChainExhaustedError || err instanceof ProviderError)
    return (err as { errorClass?: string }).errorClass ?? 'provider error';
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'timeout';
  return 'error';
}

// ---- the evaluators ----------------------------------------------------------------------------------

function judgeEvaluator(
  target: Target,
  rubric: string | undefined,
  weight: number,
  deps: EvaluatorDeps,
): Evaluator {
  return {
    name: 'judge',
    weight,
    async evaluate(item, signal) {
      if (!deps.chain) throw new EvaluatorError('no judge provider configured on the worker');
      const judged = await judgeScore(deps.chain, target, item.question, item.answer, {
        rubric,
        signal,
        timeoutMs: deps.judgeTimeoutMs,
      });
      if (judged.score === null) throw new EvaluatorError('judge reply had no 1-5 score');
      return { score: judged.score, costUsd: judged.costUsd };
    },
  };
}

function httpEvaluator(name: string, weight: number, deps: EvaluatorDeps): Evaluator {
  return {
    name: `http:${name}`,
    weight,
    async evaluate(item, signal) {
      const services = deps.httpServices ?? {};
      const service = services[name] ?? services[name.toLowerCase().replace(/-/g, '_')];
      if (!service) throw new EvaluatorError(`eval service "${name}" is not configured on the worker`);
      const timeout = AbortSignal.timeout(service.timeoutMs ?? 10_000);
      let response: Response;
      try {
        response = await fetch(service.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...service.headers },
          body: JSON.stringify({
            requestId: item.requestId,
            route: item.route,
            arm: item.tag,
            messages: item.messages,
            question: item.question,
            answer: item.answer,
          }),
          signal: AbortSignal.any([signal, timeout]),
          // The request carries the service's token and captured prompts: a redirect is refused, not
          // followed, so neither ever reaches a host other than the one configured on the worker.
          redirect: 'manual',
        });
      } catch {
        throw new EvaluatorError(
          timeout.aborted ? 'timeout' : signal.aborted ? 'cancelled' : 'connection failed',
        );
      }
      if (!response.ok) {
        await response.body?.cancel();
        if (response.status >= 300 && response.status < 400)
          throw new EvaluatorError(`HTTP ${response.status}: redirect not followed`);
        throw new EvaluatorError(`HTTP ${response.status}`);
      }
      const body = (await response.json().catch(() => undefined)) as { score?: unknown } | null | undefined;
      if (body && body.score === null) return null; // the service says: not mine to judge
      const score = body?.score;
      if (typeof score !== 'number' || !Number.isFinite(score) || score < 1 || score > 5)
        throw new EvaluatorError('response had no "score" between 1 and 5');
      return { score };
    },
  };
}

function checksEvaluator(config: Extract<EvaluatorConfig, { kind: 'checks' }>): Evaluator {
  // Compiled once per distinct text for the worker's life (see checks.ts), not once per batch.
  const build = <T>(field: string, make: () => T): T => {
    try {
      return make();
    } catch (err) {
      throw new InvalidEvaluatorError(field, (err as Error).message.slice(0, 300));
    }
  };
  const { jsonSchema, regex: source } = config;
  const validate = jsonSchema ? build('jsonSchema', () => compiledSchema(jsonSchema)) : undefined;
  const regex = source !== undefined ? build('regex', () => compiledRegex(source)) : undefined;
  return {
    name: 'checks',
    weight: config.weight,
    async evaluate(item) {
      const text = item.answer.trim();
      const pass =
        (config.minLength === undefined || text.length >= config.minLength) &&
        (config.maxLength === undefined || text.length <= config.maxLength) &&
        (regex === undefined || matchesRegex(regex, text)) &&
        (validate === undefined || matchesSchema(validate, text));
      return { score: pass ? 5 : 1 };
    },
  };
}

function feedbackEvaluator(weight: number, pool: pg.Pool): Evaluator {
  return {
    name: 'feedback',
    weight,
    async evaluate(item) {
      const { rows } = await pool.query<{ score: number | null; thumbs: string | null }>(
        'SELECT score, thumbs FROM feedback WHERE request_id = $1 ORDER BY id DESC LIMIT 1',
        [item.requestId],
      );
      const score = rows[0] ? feedbackScore(rows[0]) : null;
      return score === null ? null : { score };
    },
  };
}

let questionsById: Map<string, Question> | undefined;

/** The known question an answer answers: by the id the caller sent, else by the prompt's exact text. */
export function referenceQuestion(referenceId: string | null, question: string): Question | undefined {
  questionsById ??= new Map(loadQuestions().map((q) => [q.id, q]));
  return (referenceId ? questionsById.get(referenceId) : undefined) ?? findQuestionByPrompt(question);
}

function referenceEvaluator(weight: number): Evaluator {
  return {
    name: 'reference',
    weight,
    async evaluate(item) {
      const question = referenceQuestion(item.referenceId, item.question);
      return question ? { score: gradeAnswer(question, item.answer).score } : null;
    },
  };
}

/** Only in the default list without a judge: a weak signal that catches plainly broken answers. */
function heuristicEvaluator(): Evaluator {
  return {
    name: 'heuristic',
    weight: 1,
    async evaluate(item) {
      return { score: heuristicScore(item.answer, /\bjson\b/i.test(JSON.stringify(item.messages ?? ''))) };
    },
  };
}
