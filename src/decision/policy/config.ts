/**
 * Policy settings: plain data with defaults, no schema library, so a workflow can carry them in its
 * input and replay them. `resolve*Config` merges overrides onto the defaults and validates the result.
 */
import type { PolicyName } from './types';

/** The canary share ladder in basis points: 5%, 10%, 20%, 40%, 80%, 100%. */
export const DEFAULT_STEPS: readonly number[] = Object.freeze([500, 1000, 2000, 4000, 8000, 10000]);

export interface SequentialConfig {
  /** Share ladder the workflow walks (the policy reads the live ladder from StepContext). */
  steps: number[];
  /**
   * Probability budget for rolling back a candidate that is exactly as good as stable, over the whole
   * canary phase however often it is checked. Split across the three tests by `alphaSplit`.
   */
  alpha: number;
  /**
   * Fractions of `alpha` for quality, error rate, slow share, refusal rate and attempt-error rate
   * (Bonferroni; must sum to ≤ 1). `refusals` and `attemptErrors` absent (a policy resolved before they
   * existed, carried by a running rollout): those two tests are off.
   */
  alphaSplit: AlphaSplit;
  quality: {
    /** The quality test stays silent until the canary has this many scores (normal approximation). */
    minCanaryScored: number;
    /**
     * Roll back when the confidence sequence shows the canary worse than stable by more than this
     * fraction of the stable mean. 0 = any evidenced drop: a model that is demonstrably worse is not
     * worth promoting, and the false-rollback guarantee is unchanged.
     */
    rollbackMarginRel: number;
    /** Relative drop the mixture is tuned to detect fastest (sets the mixing variance). */
    mixtureRelEffect: number;
    /** Standard-deviation floor as a fraction of |stable mean|: keeps zero-variance arms sane. */
    stdFloorRel: number;
    /** Pseudo-observations shrinking the canary variance toward stable's while the canary is small. */
    variancePriorWeight: number;
  };
  /** Error-rate and slow-share tests: a mixture over these canary/stable rate ratios (all > 1). */
  badEvents: { rateRatios: number[] };
  /**
   * When the current step may advance: once it has its own minimum sample, and while no test's
   * e-value (likelihood ratio of "canary worse" to "equal") is above `maxEValue`. 1 holds whenever the
   * data favour "worse" at all, which an equal candidate's noise does half the time; a few (the default)
   * holds only while the evidence is material, so a regression is still caught at the current share.
   */
  promotion: { minCanaryScoredPerStep: number; minCanaryRequestsPerStep: number; maxEValue: number };
  /**
   * Non-inferiority gate before the last steps: promote to a share ≥ `fromBps` only once the data show the
   * canary at most `toleranceRel` × |stable mean| worse. `alpha` bounds the chance that a candidate exactly
   * `toleranceRel` worse (or worse still) ever passes it, however often it is checked. `method`:
   *   - 'likelihood-ratio' (Wald's SPRT): the data must favour "canary as good as stable" over "canary
   *     `toleranceRel` worse" by 1/alpha. The alternative is the candidate we hope to promote, so an equal
   *     candidate passes with the fewest scores (about 2·log(1/α)·Var / tolerance², e.g. ~1 200 canary
   *     scores at 2%, α 5%, sd 2 on a mean of 7);
   *   - 'confidence-sequence': the always-valid lower bound (mixture over effects, `mixtureRelEffect`)
   *     must be above −tolerance; the same guarantee, tuned for no alternative in particular, so it needs
   *     more scores (1.3× on noiseless equal arms).
   * Errors too: the data must favour "same error rate" over "`errorRatio` × stable's" by 1/alpha, so a
   * candidate that many times more error-prone passes with probability ≤ alpha. Skipped while the canary's
   * error rate is at most `errorFloorRate` (too rare to matter, and too rare to tell apart); `errorRatio`
   * 0 turns the error part off.
   */
  finalGate: {
    enabled: boolean;
    method: 'likelihood-ratio' | 'confidence-sequence';
    fromBps: number;
    toleranceRel: number;
    alpha: number;
    mixtureRelEffect: number;
    errorRatio: number;
    errorFloorRate: number;
  };
}

export interface AlphaSplit {
  quality: number;
  errors: number;
  slow: number;
  /** Requests the candidate refuses (400s, content policy, unsupported parameters) more often than stable. */
  refusals?: number;
  /** Provider attempts that failed (retried or not) more often on the candidate than on stable. */
  attemptErrors?: number;
}

/** Freezes nested groups too, so nobody edits the defaults in place by accident. */
function deepFreeze<T extends object>(value: T): Readonly<T> {
  for (const v of Object.values(value)) if (v && typeof v === 'object') deepFreeze(v);
  return Object.freeze(value);
}

/**
 * Defaults, tuned with bench/policy.ts on the scores the evaluators produce, normalised to [0, 1] (a 1-5
 * judge's (g-1)/4: mean 0.73, sd 0.23; a check's pass/fail; an eval service's 0-1), 1% errors, 5% slow on
 * stable. The quality settings are relative to the stable mean, and on the normalised scale they hold on
 * every shape (bench/policy.ts, README):
 * - alpha 1% per rollout: half for quality, a fifth each for errors and slow requests, a twentieth each for
 *   refusals and attempt errors (a model that refuses what stable serves, or fails a share of its calls
 *   that retries hide, does so by many times stable's rate: little alpha catches it within a few dozen
 *   events; see test/unit/policy-refusals.test.ts);
 * - 1000 canary requests per step: about what a 3× error rate on a 1% base needs to show at a 5%
 *   share; with fewer, a fast route reaches 40% before a regression is visible, and at 40% the
 *   smaller stable arm makes every canary request less informative;
 * - 50 canary scores per step;
 * - hold while a test's e-value is above MAX_E_VALUE (material evidence of "worse"), not above 1;
 * - before 80% and 100%, a likelihood-ratio gate: the data favour "as good as stable" over "2% worse" by
 *   1/0.05 (an equal candidate needs ~1 500 canary scores at sd 0.23 on a mean of 0.73), and the error rate is
 *   shown below 1.5× stable's once the canary's errors exceed 0.5%.
 */
export const DEFAULT_SEQUENTIAL_CONFIG: Readonly<SequentialConfig> = deepFreeze({
  steps: [...DEFAULT_STEPS],
  alpha: 0.01,
  alphaSplit: { quality: 0.5, errors: 0.2, slow: 0.2, refusals: 0.05, attemptErrors: 0.05 },
  quality: {
    minCanaryScored: 20,
    rollbackMarginRel: 0,
    mixtureRelEffect: 0.1,
    stdFloorRel: 0.05,
    variancePriorWeight: 10,
  },
  badEvents: { rateRatios: [1.5, 2, 3] },
  promotion: { minCanaryScoredPerStep: 50, minCanaryRequestsPerStep: 1000, maxEValue: 4 },
  finalGate: {
    enabled: true,
    method: 'likelihood-ratio',
    fromBps: 8000,
    toleranceRel: 0.02,
    alpha: 0.05,
    mixtureRelEffect: 0.02,
    errorRatio: 1.5,
    errorFloorRate: 0.005,
  },
});

/** The seed's rules, as written (see ratio.ts). */
export interface RatioConfig {
  /** Roll back when canary mean < rollbackBelow × stable mean. */
  rollbackBelow: number;
  /** Promote (double) when canary mean ≥ promoteAtOrAbove × stable mean. */
  promoteAtOrAbove: number;
  /** Which window's means to compare. The seed reads the last 24 h, i.e. roughly the whole canary. */
  window: 'cumulative' | 'step';
}

export const DEFAULT_RATIO_CONFIG: Readonly<RatioConfig> = deepFreeze({
  rollbackBelow: 0.95,
  promoteAtOrAbove: 0.99,
  window: 'cumulative',
});

/** Overrides: every group may be given partially. */
export type SequentialConfigOverrides = {
  [K in keyof SequentialConfig]?: SequentialConfig[K] extends unknown[]
    ? SequentialConfig[K]
    : SequentialConfig[K] extends object
      ? Partial<SequentialConfig[K]>
      : SequentialConfig[K];
};

export interface PolicyConfig {
  /** Default 'sequential'. */
  policy?: PolicyName;
  sequential?: SequentialConfigOverrides;
  ratio?: Partial<RatioConfig>;
}

/** Problems with a sequential config, as sentences; empty when it is usable. */
export function validateSequentialConfig(c: SequentialConfig): string[] {
  const problems: string[] = [];
  const inOpen = (x: number, lo: number, hi: number) => Number.isFinite(x) && x > lo && x < hi;
  if (!inOpen(c.alpha, 0, 0.5)) problems.push(`alpha must be in (0, 0.5), got ${c.alpha}`);
  const split = c.alphaSplit;
  for (const [name, share] of Object.entries(split)) {
    if (share === undefined && (name === 'refusals' || name === 'attemptErrors')) continue;
    if (!inOpen(share, 0, 1.000001)) problems.push(`alphaSplit.${name} must be in (0, 1], got ${share}`);
  }
  const total = Object.values(split).reduce<number>((a, b) => a + (b ?? 0), 0);
  if (total > 1 + 1e-9) problems.push(`alphaSplit must sum to at most 1, got ${Number(total.toFixed(6))}`);
  if (!(c.quality.minCanaryScored >= 2)) problems.push('quality.minCanaryScored must be at least 2');
  if (!(c.quality.rollbackMarginRel >= 0)) problems.push('quality.rollbackMarginRel must be ≥ 0');
  if (!(c.quality.mixtureRelEffect > 0)) problems.push('quality.mixtureRelEffect must be > 0');
  if (!(c.quality.stdFloorRel >= 0)) problems.push('quality.stdFloorRel must be ≥ 0');
  if (!(c.quality.variancePriorWeight >= 0)) problems.push('quality.variancePriorWeight must be ≥ 0');
  if (
    c.badEvents.rateRatios.length === 0 ||
    !c.badEvents.rateRatios.every((r) => Number.isFinite(r) && r > 1)
  ) {
    problems.push('badEvents.rateRatios must be a non-empty list of numbers > 1');
  }
  if (!(c.promotion.minCanaryScoredPerStep >= 0) || !(c.promotion.minCanaryRequestsPerStep >= 0)) {
    problems.push('promotion minimums must be ≥ 0');
  }
  if (!(c.promotion.maxEValue > 0)) problems.push('promotion.maxEValue must be > 0 (Infinity disables it)');
  const g = c.finalGate;
  if (!inOpen(g.alpha, 0, 0.5)) problems.push(`finalGate.alpha must be in (0, 0.5), got ${g.alpha}`);
  if (!(g.toleranceRel >= 0)) problems.push('finalGate.toleranceRel must be ≥ 0');
  if (g.method !== 'likelihood-ratio' && g.method !== 'confidence-sequence') {
    problems.push(
      `finalGate.method must be 'likelihood-ratio' or 'confidence-sequence', got ${String(g.method)}`,
    );
  } else if (g.method === 'likelihood-ratio' && !(g.toleranceRel > 0)) {
    problems.push('finalGate.toleranceRel must be > 0 with the likelihood-ratio gate');
  }
  if (!(g.mixtureRelEffect > 0)) problems.push('finalGate.mixtureRelEffect must be > 0');
  if (!(g.fromBps >= 0 && g.fromBps <= 10000)) problems.push('finalGate.fromBps must be in 0..10000');
  if (!(g.errorRatio === 0 || (Number.isFinite(g.errorRatio) && g.errorRatio > 1))) {
    problems.push(`finalGate.errorRatio must be > 1 (or 0: off), got ${g.errorRatio}`);
  }
  if (!(g.errorFloorRate >= 0 && g.errorFloorRate < 1))
    problems.push('finalGate.errorFloorRate must be in [0, 1)');
  problems.push(...validateSteps(c.steps));
  return problems;
}

/** A ladder must rise strictly within 1..10000 and end at 10000. */
export function validateSteps(steps: readonly number[]): string[] {
  if (steps.length === 0) return ['steps must not be empty'];
  const problems: string[] = [];
  steps.forEach((s, i) => {
    if (!Number.isInteger(s) || s < 1 || s > 10000)
      problems.push(`steps[${i}] must be an integer in 1..10000`);
    if (i > 0 && !(s > steps[i - 1])) problems.push('steps must be strictly increasing');
  });
  if (steps[steps.length - 1] !== 10000) problems.push('steps must end at 10000');
  return problems;
}

/** The defaults with `overrides` merged group by group; throws on an unusable result. */
export function resolveSequentialConfig(overrides: SequentialConfigOverrides = {}): SequentialConfig {
  const d = DEFAULT_SEQUENTIAL_CONFIG;
  const config: SequentialConfig = {
    steps: [...(overrides.steps ?? d.steps)],
    alpha: overrides.alpha ?? d.alpha,
    alphaSplit: { ...d.alphaSplit, ...overrides.alphaSplit },
    quality: { ...d.quality, ...overrides.quality },
    badEvents: { rateRatios: [...(overrides.badEvents?.rateRatios ?? d.badEvents.rateRatios)] },
    promotion: { ...d.promotion, ...overrides.promotion },
    finalGate: { ...d.finalGate, ...overrides.finalGate },
  };
  const problems = validateSequentialConfig(config);
  if (problems.length > 0) throw new Error(`invalid sequential policy config: ${problems.join('; ')}`);
  return config;
}

export function resolveRatioConfig(overrides: Partial<RatioConfig> = {}): RatioConfig {
  const config: RatioConfig = { ...DEFAULT_RATIO_CONFIG, ...overrides };
  if (!(config.rollbackBelow > 0) || !(config.promoteAtOrAbove >= config.rollbackBelow)) {
    throw new Error('invalid ratio policy config: need 0 < rollbackBelow ≤ promoteAtOrAbove');
  }
  if (config.window !== 'cumulative' && config.window !== 'step') {
    throw new Error(`invalid ratio policy config: window must be 'cumulative' or 'step'`);
  }
  return config;
}
