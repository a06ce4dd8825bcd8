import type pg from 'pg';
import type { EvaluatorConfig, EvaluatorKind } from '../../config/evaluators';
import type { FallbackChain } from '../../../data-plane/providers/fallback-chain';

/**
 * Evaluators: one interface for everything that turns an answer into a quality score. Each returns a
 * score on [0, 1] (its own scale normalised: a judge's 1-5 as (s-1)/4, a check's pass/fail as 1/0, an eval
 * service's declared range), `null` when it does not apply to this answer (no feedback yet, no reference
 * answer), or throws when it should have scored and could not (judge timeout, eval service down). One
 * scale for all: the policy's relative tolerances and the triggers' thresholds mean the same whichever
 * evaluators a rollout uses, and a weighted mean of a judge and a check is a mean of like things.
 * See docs/evaluators.md.
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

/** A score on the judge's and the reference grader's 1-5 scale, on [0, 1]. */
export function fromOneToFive(score: number): number {
  return (score - 1) / 4;
}

/** How one evaluator kind is built from its spec entry: src/decision/scoring/evaluators/<kind>.ts. */
export interface EvaluatorFactory<K extends EvaluatorKind = EvaluatorKind> {
  kind: K;
  create(config: Extract<EvaluatorConfig, { kind: K }>, deps: EvaluatorDeps): Evaluator;
}

export function defineEvaluator<K extends EvaluatorKind>(
  kind: K,
  create: EvaluatorFactory<K>['create'],
): EvaluatorFactory<K> {
  return { kind, create };
}
