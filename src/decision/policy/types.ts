/**
 * Boundary types of the decision code. The numbers come from SQL over `request_events` (computed by
 * an activity); the decision goes back to the rollout workflow, which acts on it and records it.
 */

/** Windowed statistics of one tag ('stable' | 'canary'), computed by SQL elsewhere. */
export interface ArmStats {
  /** All requests in the window. */
  requests: number;
  /** Requests that failed (after the fallback chain). */
  errors: number;
  /** Requests slower than the stable p95 of the pre-period. */
  slow: number;
  /** Number of quality scores. */
  scored: number;
  /** Mean of the scores (1-5 scale, or any scale); null when scored = 0. */
  qualityMean: number | null;
  /** Sample variance (n - 1 denominator) of the scores; null when scored < 2. */
  qualityVariance: number | null;
  /** Total cost in USD. */
  costUsd: number;
  p95LatencyMs: number | null;
  /**
   * Requests the arm refused (400, content policy, an unsupported parameter, a field that cannot be
   * translated): not in `requests`, compared per arm by the refusal test. Absent (0) in statistics from
   * before refusals were counted.
   */
  refusals?: number;
  /** Refusals per kind (`bad_request`, `unsupported_parameter`, ...), for the reason. */
  refusalKinds?: Record<string, number>;
  /** Provider calls made for `requests` (retries and fallbacks included). Absent: one per request. */
  attempts?: number;
  /** Of those, the ones that failed for the model's reasons, including retries that later succeeded. */
  attemptErrors?: number;
}

/** The two arms of a canary, over the same window. */
export interface ArmPair {
  stable: ArmStats;
  canary: ArmStats;
}

export interface StepContext {
  /** Current canary share, 0..10000 basis points. */
  shareBps: number;
  /** Index of the current share in `steps`. */
  stepIndex: number;
  /** The share ladder, e.g. [500, 1000, 2000, 4000, 8000, 10000]. */
  steps: number[];
  /** True when the next step reaches 10000. */
  isFinalStep: boolean;
}

export type PolicyName = 'ratio' | 'sequential';

export type DecisionAction = 'promote-step' | 'hold' | 'rollback';

/** What made a decision: a canary policy, the shadow phase's sign test, the rollback triggers, or a deadline. */
export type DecisionSource =
  | PolicyName
  | 'shadow-sign-test'
  | 'triggers'
  | 'progress-deadline'
  | 'eval-gate'
  /** A metric check of the team's own monitoring (src/decision/analysis). */
  | 'analysis'
  /** A webhook gate's answer. */
  | 'webhook';

export interface Decision {
  action: DecisionAction;
  policy: DecisionSource;
  /** Human-readable, one line per check, with the numbers behind it. */
  reasons: string[];
  /** Flat, JSON-safe numbers behind the decision (never NaN or ±Infinity; null when not computed). */
  stats: Record<string, number | string | null>;
}

/**
 * What a policy sees at each check.
 *
 * - `cumulative`: both arms since the canary phase started (all steps). The sequential tests need it:
 *   their guarantees hold for the whole canary phase, checked as often as you like.
 * - `step`: both arms since the current step started. It gives the per-step minimum sample, and it
 *   lets the count tests use the current traffic split exactly (see bad-event-test.ts).
 */
export interface PolicyInput {
  cumulative: ArmPair;
  step: ArmPair;
  context: StepContext;
  /**
   * The canary steps before the current one, oldest first, each over its own window (its own traffic
   * split): the count tests then keep one likelihood-ratio factor per step, so their evidence is one test
   * martingale over the whole canary phase (bad-event-test.ts).
   */
  previousSteps: StepCounts[];
}

/** Requests and bad events of both arms over one canary step. */
export interface StepCounts {
  stable: BadEventCounts;
  canary: BadEventCounts;
}

export type BadEventCounts = Pick<
  ArmStats,
  'requests' | 'errors' | 'slow' | 'refusals' | 'attempts' | 'attemptErrors'
>;
