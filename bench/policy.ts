/**
 * Canary policy benchmark: drives `decide()` exactly as the rollout workflow does — a check every
 * 5 minutes with cumulative and per-step statistics, promote on 'promote-step', stop on 'rollback' —
 * over synthetic traffic, and measures what matters for a rollout:
 *
 *   - false rollbacks of a candidate exactly as good as stable (per rollout, up to 72 h);
 *   - how much canary traffic it takes to catch a quality drop, an error-rate or a latency regression;
 *   - whether an equal candidate reaches 100% within 72 h, and whether a 2%-worse one does;
 *   - how long an equal candidate takes to reach 100% at 2, 12 and 50 requests/s, with every answer judged
 *     and with a sampled judge, against the time the per-step minimums alone take on the same traffic;
 *   - how close the hold estimate (src/decision/policy/estimate.ts) shown at the start of each hold comes to the
 *     hold's actual length.
 *
 * Run: npx tsx bench/policy.ts [--runs N] [--seed S] [--json] [--quick] [--config '{"promotion":{...}}']
 *   [--groups speed,equal,quality,errors,latency] [--sequential-only]
 *   npx tsx bench/policy.ts --sweep [--runs N]   (the trade-off table the defaults were picked from)
 * (--config: overrides of the sequential policy's settings, as the workflow would pass them)
 *
 * Traffic model (stated, because the numbers depend on it):
 *   - judged scores are the real shapes, normalised to [0, 1] as the policy sees them (see FAMILY): a
 *     1-5 judge grade ("judge", the primary shape the targets are judged on), a check's pass/fail
 *     ("binary") and an eval service's 0-1 score ("unit");
 *   - quality drops are calibrated on the mean of the normalised scores (a "10% drop" lowers that mean by
 *     exactly 10%): the judge and unit shapes shift their centre, the binary one its pass rate;
 *   - "rate 2/10/50" = judged canary scores per 5 minutes at the first step (5%), with stable at 19×.
 *     Judged samples scale with the share as the canary is promoted: total traffic is fixed, the split
 *     moves (at 40% the canary gets 8× the rate-at-5%). 1 in 4 successful requests is judged. (Rate 2 is
 *     0.53 requests/s on the route, 10 is 2.7/s, 50 is 13/s.) The speed rows are in requests/s of the
 *     route instead, judged in full or 10% sampled (see `Judge`);
 *   - errors: stable 1%, canary 1% × factor; slow = above stable's p95, so 5% of stable requests;
 *     latency is lognormal with σ = 0.5 (log scale), so a canary k× slower is slow with probability
 *     1 − Φ(1.645 − ln k / 0.5): ×1.1 → 7.3%, ×1.2 → 10.0%, ×1.5 → 20.2%;
 *   - traffic volume is steady (each 5 minutes brings exactly the mean number of requests, so the
 *     detection sizes measure the tests, not arrival jitter); which requests fail, are slow or get
 *     judged is binomial, the scores multinomial (exact for small counts, a normal approximation
 *     only for large stable-arm counts).
 */
import {
  decide,
  estimate,
  normalCdf,
  resolvePolicy,
  resolveSequentialConfig,
  wilsonInterval,
  type ArmStats,
  type PolicyConfig,
  type PolicyName,
  type SequentialConfigOverrides,
  type StepCounts,
} from '../src/decision/policy/index';

// ───────────────────────────── random numbers (seeded, fast) ─────────────────────────────

/** sfc32 seeded through splitmix32: small, fast, and good enough for simulation. */
class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  constructor(...seeds: number[]) {
    let s = 0x9e3779b9;
    for (const x of seeds) s = Math.imul(s ^ (x >>> 0), 0x85ebca6b) ^ (s >>> 13);
    const mix = () => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
      return (z ^ (z >>> 15)) >>> 0;
    };
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix();
    for (let i = 0; i < 12; i++) this.uniform();
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u: number, v: number, s: number;
    do {
      u = 2 * this.uniform() - 1;
      v = 2 * this.uniform() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = Math.sqrt((-2 * Math.log(s)) / s);
    this.spare = v * f;
    return u * f;
  }

  /** Exact inversion while the expected count is small (the canary arm), normal approximation above. */
  binomial(n: number, p: number): number {
    if (n <= 0 || p <= 0) return 0;
    if (p >= 1) return n;
    if (p > 0.5) return n - this.binomial(n, 1 - p);
    const mean = n * p;
    if (mean < 25) {
      const q = 1 - p;
      const s = p / q;
      const a = (n + 1) * s;
      let r = Math.pow(q, n);
      let u = this.uniform();
      let x = 0;
      while (u > r && x < n) {
        u -= r;
        x++;
        r *= a / x - s;
      }
      return x;
    }
    const x = Math.round(mean + Math.sqrt(mean * (1 - p)) * this.normal());
    return Math.min(n, Math.max(0, x));
  }
}

// ───────────────────────────── score distributions ─────────────────────────────

/**
 * P(score = values[i]) for a normal mixture rounded to the nearest of `values` (ascending) and clipped:
 * each value takes the mass between the midpoints to its neighbours.
 */
function roundedMixture(
  values: number[],
  components: { weight: number; mean: number; sd: number }[],
): number[] {
  const last = values.length - 1;
  return values.map((v, i) => {
    let p = 0;
    for (const c of components) {
      const hi = i === last ? 1 : normalCdf(((v + values[i + 1]) / 2 - c.mean) / c.sd);
      const lo = i === 0 ? 0 : normalCdf(((values[i - 1] + v) / 2 - c.mean) / c.sd);
      p += c.weight * (hi - lo);
    }
    return p;
  });
}

/**
 * The score shapes the evaluators produce, as the policy sees them: normalised to [0, 1]
 * (src/decision/scoring/evaluators.ts).
 *   - judge: an LLM judge's (or the reference grader's) 1-5 grade g, as (g-1)/4: N(4, 1) rounded to 1..5;
 *   - binary: a check's (or a right/wrong reference grade's) pass/fail, 1/0: 85% pass;
 *   - unit: an eval service's 0-1 score in steps of 0.05: N(0.75, 0.2) rounded and clipped.
 */
type DistName = 'judge' | 'binary' | 'unit';
const DISTS: DistName[] = ['judge', 'binary', 'unit'];
const JUDGE_GRADES = [1, 2, 3, 4, 5];
const UNIT_STEPS = Array.from({ length: 21 }, (_, i) => i / 20);

/** Each shape as a family with one parameter that moves its mean up (base = no drop, lo = floor). */
const FAMILY: Record<DistName, { values: number[]; base: number; lo: number; at: (x: number) => number[] }> =
  {
    judge: {
      values: JUDGE_GRADES.map((g) => (g - 1) / 4),
      base: 4,
      lo: -2,
      at: (mu) => roundedMixture(JUDGE_GRADES, [{ weight: 1, mean: mu, sd: 1 }]),
    },
    binary: { values: [0, 1], base: 0.85, lo: 0, at: (p) => [1 - p, p] },
    unit: {
      values: UNIT_STEPS,
      base: 0.75,
      lo: -0.5,
      at: (mu) => roundedMixture(UNIT_STEPS, [{ weight: 1, mean: mu, sd: 0.2 }]),
    },
  };

const meanOf = (dist: DistName, probs: number[]) =>
  probs.reduce((s, p, i) => s + p * FAMILY[dist].values[i], 0);
const sdOf = (dist: DistName, probs: number[]) => {
  const m = meanOf(dist, probs);
  return Math.sqrt(probs.reduce((s, p, i) => s + p * (FAMILY[dist].values[i] - m) ** 2, 0));
};

/** Score probabilities whose (rounded, clipped, normalised) mean is (1 − drop) × the baseline's. */
function scoreDistribution(dist: DistName, drop: number): number[] {
  const f = FAMILY[dist];
  const target = (1 - drop) * meanOf(dist, f.at(f.base));
  let lo = f.lo;
  let hi = f.base;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (meanOf(dist, f.at(mid)) < target) lo = mid;
    else hi = mid;
  }
  return f.at((lo + hi) / 2);
}

// ───────────────────────────── traffic ─────────────────────────────

interface ArmModel {
  errorRate: number;
  slowRate: number;
  scoreCdf: Float64Array;
  scoreProbs: number[];
  /** The score of each outcome, on [0, 1]. */
  scoreValues: number[];
}

const BASE_ERROR_RATE = 0.01;
const LATENCY_SIGMA = 0.5;
const Z95 = 1.6448536269514722;
const JUDGED_FRACTION = 0.25;
const STEPS = [...resolveSequentialConfig().steps];
const CHECK_MINUTES = 5;

/** Share of a k× slower canary above stable's p95, for lognormal latency with σ = LATENCY_SIGMA. */
const slowShare = (latencyFactor: number) => 1 - normalCdf(Z95 - Math.log(latencyFactor) / LATENCY_SIGMA);

function armModel(dist: DistName, drop: number, errorFactor: number, latencyFactor: number): ArmModel {
  const scoreProbs = scoreDistribution(dist, drop);
  const scoreCdf = new Float64Array(scoreProbs.length);
  let acc = 0;
  scoreProbs.forEach((p, i) => (scoreCdf[i] = acc += p));
  scoreCdf[scoreProbs.length - 1] = 1;
  return {
    errorRate: BASE_ERROR_RATE * errorFactor,
    slowRate: slowShare(latencyFactor),
    scoreCdf,
    scoreProbs,
    scoreValues: FAMILY[dist].values,
  };
}

/** Running sums of one arm, turned into ArmStats the way the SQL would. */
class ArmAccumulator {
  requests = 0;
  errors = 0;
  slow = 0;
  scored = 0;
  sum = 0;
  sumSq = 0;

  add(o: ArmAccumulator): void {
    this.requests += o.requests;
    this.errors += o.errors;
    this.slow += o.slow;
    this.scored += o.scored;
    this.sum += o.sum;
    this.sumSq += o.sumSq;
  }

  stats(): ArmStats {
    const n = this.scored;
    const mean = n > 0 ? this.sum / n : null;
    const variance = n >= 2 ? Math.max(0, (this.sumSq - (this.sum * this.sum) / n) / (n - 1)) : null;
    return {
      requests: this.requests,
      errors: this.errors,
      slow: this.slow,
      scored: n,
      qualityMean: mean,
      qualityVariance: variance,
      costUsd: this.requests * 0.002,
      p95LatencyMs: null, // not read by either policy (triggers use it)
    };
  }
}

/** One 5-minute period of one arm. */
function simulatePeriod(
  rng: Rng,
  model: ArmModel,
  meanRequests: number,
  judged: number,
  out: ArmAccumulator,
): void {
  const requests = Math.round(meanRequests);
  const errors = rng.binomial(requests, model.errorRate);
  const slow = rng.binomial(requests, model.slowRate);
  const scored = rng.binomial(requests - errors, judged);
  let sum = 0;
  let sumSq = 0;
  if (scored <= 20) {
    for (let i = 0; i < scored; i++) {
      const u = rng.uniform();
      let k = 0;
      while (u > model.scoreCdf[k]) k++;
      const v = model.scoreValues[k];
      sum += v;
      sumSq += v * v;
    }
  } else {
    // Multinomial as a chain of conditional binomials.
    let left = scored;
    let massLeft = 1;
    const last = model.scoreProbs.length - 1;
    for (let k = 0; k <= last && left > 0; k++) {
      const p = model.scoreProbs[k];
      const c = k === last ? left : rng.binomial(left, Math.min(1, p / massLeft));
      massLeft -= p;
      left -= c;
      const v = model.scoreValues[k];
      sum += c * v;
      sumSq += c * v * v;
    }
  }
  out.requests = requests;
  out.errors = errors;
  out.slow = slow;
  out.scored = scored;
  out.sum = sum;
  out.sumSq = sumSq;
}

// ───────────────────────────── scenarios ─────────────────────────────

type Group = 'equal' | 'quality' | 'errors' | 'latency' | 'speed';

/**
 * Who gets judged. 'quarter': 1 in 4 answers of each arm (the detection rows). 'all': every answer (a
 * deterministic or reference evaluator). 'sampled': an LLM judge with a budget of JUDGE_BUDGET of all
 * requests, split evenly between the arms (stratified: the canary, the scarce side, is judged in full
 * while it is small; even arms minimise the variance of the difference for a given number of judge calls).
 */
type Judge = 'quarter' | 'all' | 'sampled';
const JUDGE_BUDGET = 0.1;

/** Judged fraction of each arm's answers at a canary share. */
function judgedFractions(judge: Judge, share: number): { canary: number; stable: number } {
  if (judge === 'quarter') return { canary: JUDGED_FRACTION, stable: JUDGED_FRACTION };
  if (judge === 'all') return { canary: 1, stable: 1 };
  return {
    canary: Math.min(1, JUDGE_BUDGET / 2 / share),
    stable: Math.min(1, JUDGE_BUDGET / 2 / (1 - share)),
  };
}

interface Scenario {
  id: string;
  group: Group;
  label: string;
  dist: DistName;
  /** Judged canary scores per 5 min at the first step (judge 'quarter'), or requests/s of the route. */
  rate: number;
  rateUnit: 'scores/5min' | 'requests/s';
  judge: Judge;
  drop: number;
  errorFactor: number;
  latencyFactor: number;
  hours: number;
}

/** One hold (consecutive 'hold' decisions at one share) that ended in a promotion. */
interface HoldRecord {
  /** The condition the estimate named as binding at the hold's start. */
  condition: string;
  estimatedHours: number | null;
  actualHours: number;
}

interface RunResult {
  holds: HoldRecord[];
  outcome: 'rollback' | 'reached' | 'horizon';
  hours: number;
  canaryScored: number;
  canaryRequests: number;
  /** First words of the rollback reasons: which test fired. */
  cause: string;
}

function simulateRun(
  s: Scenario,
  config: PolicyConfig,
  rng: Rng,
  stable: ArmModel,
  canary: ArmModel,
  trackHolds = false,
): RunResult {
  // Resolved once, as the rollout does when it starts.
  const policy = resolvePolicy(config);
  // Requests per 5 min, both arms.
  const totalRequests =
    s.rateUnit === 'requests/s' ? s.rate * 60 * CHECK_MINUTES : (s.rate * 20) / JUDGED_FRACTION;
  const cum = { stable: new ArmAccumulator(), canary: new ArmAccumulator() };
  let step = { stable: new ArmAccumulator(), canary: new ArmAccumulator() };
  // Closed steps' counts: the count tests keep one segment per step, as the workflow passes them.
  const previousSteps: StepCounts[] = [];
  const period = { stable: new ArmAccumulator(), canary: new ArmAccumulator() };
  let stepIndex = 0;
  let stepStart = 0;
  const holds: HoldRecord[] = [];
  let hold: { start: number; condition: string; estimatedHours: number | null } | null = null;
  const checks = (s.hours * 60) / CHECK_MINUTES;
  for (let t = 1; t <= checks; t++) {
    const share = STEPS[stepIndex] / 10000;
    const judged = judgedFractions(s.judge, share);
    simulatePeriod(rng, canary, totalRequests * share, judged.canary, period.canary);
    simulatePeriod(rng, stable, totalRequests * (1 - share), judged.stable, period.stable);
    cum.canary.add(period.canary);
    cum.stable.add(period.stable);
    step.canary.add(period.canary);
    step.stable.add(period.stable);
    const input = {
      cumulative: { stable: cum.stable.stats(), canary: cum.canary.stats() },
      step: { stable: step.stable.stats(), canary: step.canary.stats() },
      previousSteps,
      context: {
        shareBps: STEPS[stepIndex],
        stepIndex,
        steps: STEPS,
        isFinalStep: STEPS[stepIndex + 1] === 10000,
      },
      policy,
    };
    const d = decide(input);
    const at = {
      hours: (t * CHECK_MINUTES) / 60,
      canaryScored: cum.canary.scored,
      canaryRequests: cum.canary.requests,
    };
    if (d.action === 'rollback') {
      const cause = d.reasons.map((r) => r.split(':')[0]).join('+');
      return { outcome: 'rollback', cause, holds, ...at };
    }
    if (d.action === 'hold' && trackHolds && hold === null) {
      const e = estimate({
        ...input,
        stepElapsedMs: (t - stepStart) * CHECK_MINUTES * 60_000,
        canaryElapsedMs: t * CHECK_MINUTES * 60_000,
        checkIntervalMs: CHECK_MINUTES * 60_000,
      });
      hold = {
        start: t,
        condition: e?.binding.condition ?? 'none',
        estimatedHours: e?.etaMs == null ? null : e.etaMs / 3_600_000,
      };
    }
    if (d.action === 'promote-step') {
      if (hold)
        holds.push({
          condition: hold.condition,
          estimatedHours: hold.estimatedHours,
          actualHours: ((t - hold.start) * CHECK_MINUTES) / 60,
        });
      hold = null;
      stepIndex++;
      stepStart = t;
      if (STEPS[stepIndex] >= 10000) return { outcome: 'reached', cause: '', holds, ...at };
      previousSteps.push({ stable: step.stable.stats(), canary: step.canary.stats() });
      step = { stable: new ArmAccumulator(), canary: new ArmAccumulator() };
    }
  }
  return {
    outcome: 'horizon',
    cause: '',
    holds,
    hours: s.hours,
    canaryScored: cum.canary.scored,
    canaryRequests: cum.canary.requests,
  };
}

function scenarios(quick: boolean): Scenario[] {
  const rates = [2, 10, 50];
  const dists = DISTS;
  const list: Scenario[] = [];
  const base = {
    errorFactor: 1,
    latencyFactor: 1,
    drop: 0,
    rateUnit: 'scores/5min' as const,
    judge: 'quarter' as Judge,
  };
  for (const dist of dists) {
    for (const rate of rates) {
      for (const drop of [0, 0.02]) {
        list.push({
          ...base,
          id: `reach-${dist}-${rate}-${drop}`,
          group: 'equal',
          label: drop === 0 ? 'equal candidate' : '2% worse',
          dist,
          rate,
          drop,
          hours: 72,
        });
      }
    }
  }
  for (const dist of dists) {
    for (const rate of rates) {
      for (const drop of quick ? [0.1] : [0.05, 0.1, 0.2]) {
        list.push({
          ...base,
          id: `q-${dist}-${rate}-${drop}`,
          group: 'quality',
          label: `quality −${drop * 100}%`,
          dist,
          rate,
          drop,
          hours: 24,
        });
      }
    }
  }
  for (const rate of rates) {
    for (const f of quick ? [3] : [1.5, 2, 3, 5]) {
      list.push({
        ...base,
        id: `e-${rate}-${f}`,
        group: 'errors',
        label: `errors ×${f}`,
        dist: 'judge',
        rate,
        errorFactor: f,
        // Whether a 1.5× error rate reaches 100% is a target: give it the equal candidate's 72 h.
        hours: f === 1.5 ? 72 : 24,
      });
    }
    for (const f of quick ? [1.2] : [1.1, 1.2, 1.5]) {
      list.push({
        ...base,
        id: `l-${rate}-${f}`,
        group: 'latency',
        label: `latency ×${f}`,
        dist: 'judge',
        rate,
        latencyFactor: f,
        hours: 24,
      });
    }
  }
  // Time to 100% of an equal candidate at realistic route traffic, with every answer judged and with a
  // sampled judge, against the time the per-step minimums alone take on the same traffic.
  for (const rps of [2, 12, 50]) {
    for (const judge of ['all', 'sampled'] as Judge[]) {
      list.push({
        ...base,
        id: `speed-${rps}-${judge}`,
        group: 'speed',
        label: `equal, ${judge} judged`,
        dist: 'judge',
        rate: rps,
        rateUnit: 'requests/s',
        judge,
        hours: 72,
      });
    }
  }
  return list;
}

// ───────────────────────────── statistics of runs ─────────────────────────────

/** Empirical quantile, counting runs that never detected as +∞. */
function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Infinity;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

interface CellSummary {
  scenario: Scenario;
  policy: PolicyName;
  runs: number;
  rollbackRate: number;
  reachRate: number;
  /** Detection size: canary scores (quality) or canary requests (errors, latency); +∞ if not detected. */
  detectUnit: 'scores' | 'requests';
  detectP50: number;
  detectP80: number;
  detectP90: number;
  hoursToDecisionP50: number;
  hoursToReachP50: number;
  hoursToReachP95: number;
  causes: Record<string, number>;
}

function summarize(s: Scenario, policy: PolicyName, results: RunResult[]): CellSummary {
  const n = results.length;
  const unit = s.group === 'quality' || s.group === 'equal' ? 'scores' : 'requests';
  const detect = results.map((r) =>
    r.outcome === 'rollback' ? (unit === 'scores' ? r.canaryScored : r.canaryRequests) : Infinity,
  );
  const reached = results.filter((r) => r.outcome === 'reached').map((r) => r.hours);
  const reachHours = results.map((r) => (r.outcome === 'reached' ? r.hours : Infinity));
  const causes: Record<string, number> = {};
  for (const r of results) if (r.outcome === 'rollback') causes[r.cause] = (causes[r.cause] ?? 0) + 1;
  return {
    scenario: s,
    policy,
    runs: n,
    rollbackRate: results.filter((r) => r.outcome === 'rollback').length / n,
    reachRate: reached.length / n,
    detectUnit: unit,
    detectP50: quantile(detect, 0.5),
    detectP80: quantile(detect, 0.8),
    detectP90: quantile(detect, 0.9),
    hoursToDecisionP50: quantile(
      results.map((r) => (r.outcome === 'horizon' ? Infinity : r.hours)),
      0.5,
    ),
    hoursToReachP50: quantile(reachHours, 0.5),
    hoursToReachP95: quantile(reachHours, 0.95),
    causes,
  };
}

/** A speed cell: the policy's time to 100% against the per-step minimums alone, and the estimate's accuracy. */
interface SpeedSummary {
  scenario: Scenario;
  runs: number;
  reachRate: number;
  rollbackRate: number;
  minimumsP50: number;
  p50: number;
  p90: number;
  holds: number;
  /** Holds whose actual length was within a factor 2 of the estimate at their start. */
  withinFactor2: number;
  /** Holds the estimate called longer than a year (or could not estimate). */
  unestimated: number;
  /** The same for the holds whose binding condition was statistical (a gate or a lean), not a step minimum. */
  evidenceHolds: number;
  evidenceWithinFactor2: number;
}

/** Within a factor 2, with one check interval of slack (a hold cannot end between checks). */
function estimateWithin2(h: HoldRecord): boolean {
  if (h.estimatedHours === null) return false;
  const slack = CHECK_MINUTES / 60;
  return h.actualHours <= 2 * h.estimatedHours + slack && h.estimatedHours <= 2 * h.actualHours + slack;
}

function summarizeSpeed(s: Scenario, results: RunResult[], minimums: RunResult[]): SpeedSummary {
  const reachHours = (rs: RunResult[]) => rs.map((r) => (r.outcome === 'reached' ? r.hours : Infinity));
  const holds = results.flatMap((r) => r.holds);
  const evidence = holds.filter((h) => !h.condition.startsWith('step minimum'));
  return {
    scenario: s,
    runs: results.length,
    reachRate: results.filter((r) => r.outcome === 'reached').length / results.length,
    rollbackRate: results.filter((r) => r.outcome === 'rollback').length / results.length,
    minimumsP50: quantile(reachHours(minimums), 0.5),
    p50: quantile(reachHours(results), 0.5),
    p90: quantile(reachHours(results), 0.9),
    holds: holds.length,
    withinFactor2: holds.filter(estimateWithin2).length,
    unestimated: holds.filter((h) => h.estimatedHours === null).length,
    evidenceHolds: evidence.length,
    evidenceWithinFactor2: evidence.filter(estimateWithin2).length,
  };
}

function speedTable(rows: SpeedSummary[]): string {
  const header = [
    'route traffic',
    'judge',
    'reach',
    'rollback',
    'minimums p50',
    'policy p50',
    'p90',
    'p50/min',
    'p90/min',
    'holds',
    'estimate within ×2',
    'evidence holds',
    'within ×2',
  ];
  const dur = (h: number) =>
    !Number.isFinite(h) ? '—' : h < 1 ? `${Math.round(h * 60)}m` : `${h.toFixed(1)}h`;
  const ratio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '—');
  const body = rows.map((r) => [
    `${r.scenario.rate} req/s`,
    r.scenario.judge,
    pct(r.reachRate),
    pct(r.rollbackRate),
    dur(r.minimumsP50),
    dur(r.p50),
    dur(r.p90),
    ratio(r.p50 / r.minimumsP50),
    ratio(r.p90 / r.minimumsP50),
    String(r.holds),
    r.holds ? pct(r.withinFactor2 / r.holds) : '—',
    String(r.evidenceHolds),
    r.evidenceHolds ? pct(r.evidenceWithinFactor2 / r.evidenceHolds) : '—',
  ]);
  const widths = header.map((hd, i) => Math.max(hd.length, ...body.map((b) => b[i].length)));
  const line = (r: string[]) =>
    r.map((v, i) => (i < 2 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

function speedTargets(rows: SpeedSummary[]): Target[] {
  const where = (r: SpeedSummary) => `${r.scenario.rate}/s ${r.scenario.judge}`;
  const holds = rows.reduce((a, r) => a + r.holds, 0);
  const within = rows.reduce((a, r) => a + r.withinFactor2, 0);
  const evidence = rows.reduce((a, r) => a + r.evidenceHolds, 0);
  const evidenceWithin = rows.reduce((a, r) => a + r.evidenceWithinFactor2, 0);
  const ratio = (x: number) => `${x.toFixed(2)}×`;
  return [
    {
      name: 'equal candidate: median time to 100% ≤ 2× the per-step minimums alone',
      pass: rows.every((r) => r.p50 <= 2 * r.minimumsP50),
      bimodalPass: null,
      detail: rows.map((r) => `${where(r)} ${ratio(r.p50 / r.minimumsP50)}`).join(', '),
    },
    {
      name: 'equal candidate: p90 time to 100% ≤ 4× the per-step minimums alone',
      pass: rows.every((r) => r.p90 <= 4 * r.minimumsP50),
      bimodalPass: null,
      detail: rows.map((r) => `${where(r)} ${ratio(r.p90 / r.minimumsP50)}`).join(', '),
    },
    {
      name: 'hold estimate within a factor 2 of the actual hold in ≥ 80% of holds',
      pass: holds > 0 && within / holds >= 0.8,
      bimodalPass: null,
      detail: `${pct(within / Math.max(1, holds))} of ${holds} holds (of the ${evidence} held by a gate or a lean, not a step minimum: ${pct(evidenceWithin / Math.max(1, evidence))}); ${rows.map((r) => `${where(r)} ${pct(r.withinFactor2 / Math.max(1, r.holds))}`).join(', ')}`,
    },
  ];
}

// ───────────────────────────── targets ─────────────────────────────

interface Target {
  name: string;
  /** Judged on the primary shape (1-5 judge); the binary and 0-1 shapes are reported beside it. */
  pass: boolean;
  /** null when the target has no cells of the other shapes (error and latency rows use the judge's only). */
  bimodalPass: boolean | null;
  detail: string;
}

const fmtCount = (x: number) => (Number.isFinite(x) ? String(x) : '∞');
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function targets(cells: CellSummary[]): Target[] {
  const seq = cells.filter((c) => c.policy === 'sequential');
  const pick = (pred: (s: Scenario) => boolean) => seq.filter((c) => pred(c.scenario));
  const where = (c: CellSummary) =>
    c.scenario.group === 'speed'
      ? `${c.scenario.rate}/s-${c.scenario.judge}`
      : `${c.scenario.dist}@${c.scenario.rate}`;
  const check = (
    name: string,
    list: CellSummary[],
    ok: (c: CellSummary) => boolean,
    show: (c: CellSummary) => string,
  ): Target => {
    // Judged on the 1-5 judge's shape; the binary and 0-1 shapes are shown beside it.
    const judge = list.filter((c) => c.scenario.dist === 'judge');
    const others = list.filter((c) => c.scenario.dist !== 'judge');
    return {
      name,
      pass: judge.length > 0 && judge.every(ok),
      bimodalPass: others.length === 0 ? null : others.every(ok),
      detail: list.map((c) => `${where(c)} ${show(c)}${ok(c) ? '' : ' ✗'}`).join(', '),
    };
  };
  const equal = pick((s) => (s.group === 'equal' && s.drop === 0) || s.group === 'speed');
  // A cell's false-rollback rate is an estimate from `runs` rollouts: it fails only when its 95% Wilson
  // interval lies entirely above 1% (a cell at 1.1% of 1000 runs is noise around a true ~0.6%).
  const falseOk = (c: CellSummary) =>
    wilsonInterval(Math.round(c.rollbackRate * c.runs), c.runs).lower <= 0.01;
  const pooledRuns = equal.reduce((a, c) => a + c.runs, 0);
  const pooledFalse = equal.reduce((a, c) => a + c.rollbackRate * c.runs, 0);
  const pooled = wilsonInterval(Math.round(pooledFalse), pooledRuns);
  const falseTarget = check('false rollback of an equal candidate per rollout ≤ 1%', equal, falseOk, (c) =>
    pct(c.rollbackRate),
  );
  return [
    {
      ...falseTarget,
      pass: falseTarget.pass && pooledFalse / pooledRuns <= 0.01,
      detail: `pooled ${pct(pooledFalse / pooledRuns)} [95% CI ${pct(pooled.lower)}, ${pct(pooled.upper)}] of ${pooledRuns}; ${falseTarget.detail}`,
    },
    check(
      'quality −10% detected within 250 canary scores (p80)',
      pick((s) => s.group === 'quality' && s.drop === 0.1),
      (c) => c.detectP80 <= 250,
      (c) => fmtCount(c.detectP80),
    ),
    check(
      'errors ×3 detected within 1200 canary requests (p90)',
      pick((s) => s.group === 'errors' && s.errorFactor === 3),
      (c) => c.detectP90 <= 1200,
      (c) => fmtCount(c.detectP90),
    ),
    check(
      'latency ×1.2 detected within 800 canary requests (p90)',
      pick((s) => s.group === 'latency' && s.latencyFactor === 1.2),
      (c) => c.detectP90 <= 800,
      (c) => fmtCount(c.detectP90),
    ),
    check(
      'equal candidate reaches 100% within 72 h in ≥ 95%',
      equal,
      (c) => c.reachRate >= 0.95,
      (c) => pct(c.reachRate),
    ),
    check(
      'errors ×1.5 reach 100% within 72 h in ≤ 2%',
      pick((s) => s.group === 'errors' && s.errorFactor === 1.5),
      (c) => c.reachRate <= 0.02,
      (c) => pct(c.reachRate),
    ),
    check(
      '2%-worse candidate reaches 100% in ≤ 5%',
      pick((s) => s.group === 'equal' && s.drop === 0.02),
      (c) => c.reachRate <= 0.05,
      (c) => pct(c.reachRate),
    ),
  ];
}

// ───────────────────────────── output ─────────────────────────────

/** One row per scenario, the two policies side by side. */
function table(cells: CellSummary[]): string {
  const header = [
    'scenario',
    'scores',
    'rate',
    'ratio: rollback',
    'reach',
    'det p80',
    'sequential: rollback',
    'reach',
    'det p50',
    'p80',
    'p90',
    'unit',
    'h→100% p50/p95',
  ];
  const n = (x: number) => (Number.isFinite(x) ? String(x) : '—');
  const h = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '—');
  const rows: string[][] = [];
  for (const seq of cells.filter((c) => c.policy === 'sequential')) {
    const s = seq.scenario;
    const ratio = cells.find((c) => c.policy === 'ratio' && c.scenario.id === s.id);
    rows.push([
      `${s.label} (${s.hours}h)`,
      s.dist,
      String(s.rate),
      ratio ? pct(ratio.rollbackRate) : '',
      ratio ? pct(ratio.reachRate) : '',
      ratio ? n(ratio.detectP80) : '',
      pct(seq.rollbackRate),
      pct(seq.reachRate),
      n(seq.detectP50),
      n(seq.detectP80),
      n(seq.detectP90),
      seq.detectUnit,
      `${h(seq.hoursToReachP50)}/${h(seq.hoursToReachP95)}`,
    ]);
  }
  const widths = header.map((hd, i) => Math.max(hd.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((v, i) => (i < 2 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Runs `list` (a subset of `all`, whose indices seed the runs) with the sequential `overrides`. */
function runCells(
  all: Scenario[],
  list: Scenario[],
  overrides: SequentialConfigOverrides,
  runs: number,
  seed: number,
  policies: PolicyName[],
  progress: (done: number) => void = () => {},
): { cells: CellSummary[]; speed: SpeedSummary[] } {
  // The per-step minimums alone: the same policy with nothing else holding a step.
  const minimumsOnly: PolicyConfig = {
    policy: 'sequential',
    sequential: {
      ...overrides,
      promotion: { ...overrides.promotion, maxEValue: Infinity },
      finalGate: { ...overrides.finalGate, enabled: false },
    },
  };
  const cells: CellSummary[] = [];
  const speed: SpeedSummary[] = [];
  list.forEach((s, done) => {
    const si = all.indexOf(s); // seeds stay with the scenario whatever is filtered
    const stable = armModel(s.dist, 0, 1, 1);
    const canary = armModel(s.dist, s.drop, s.errorFactor, s.latencyFactor);
    for (const policy of s.group === 'speed' ? (['sequential'] as PolicyName[]) : policies) {
      const results: RunResult[] = [];
      for (let r = 0; r < runs; r++) {
        // Both policies see the same traffic streams (common random numbers): differences are the policy's.
        const config: PolicyConfig = policy === 'sequential' ? { policy, sequential: overrides } : { policy };
        results.push(simulateRun(s, config, new Rng(seed, si, r), stable, canary, s.group === 'speed'));
      }
      cells.push(summarize(s, policy, results));
      if (s.group === 'speed') {
        const minimums: RunResult[] = [];
        for (let r = 0; r < runs; r++)
          minimums.push(simulateRun(s, minimumsOnly, new Rng(seed, si, r), stable, canary));
        speed.push(summarizeSpeed(s, results, minimums));
      }
    }
    progress(done + 1);
  });
  return { cells, speed };
}

/**
 * The trade-off behind the defaults: speed (time to 100% of an equal candidate against the per-step
 * minimums) against safety (2%-worse and 1.5× error candidates reaching 100%, false rollbacks), for the
 * settings that decide it: how material the evidence must be to hold (maxEValue) and the final gate's
 * method, tolerance and alpha.
 */
function sweep(runs: number, seed: number): void {
  const settings: Array<{ name: string; overrides: SequentialConfigOverrides }> = [
    { name: 'v1: hold at e > 1, confidence-sequence gate', overrides: { ...V1_OVERRIDES } },
    { name: 'e > 1, likelihood-ratio gate', overrides: { promotion: { maxEValue: 1 } } },
    { name: 'e > 2, likelihood-ratio gate', overrides: { promotion: { maxEValue: 2 } } },
    { name: 'e > 4, likelihood-ratio gate (default)', overrides: {} },
    { name: 'e > 10, likelihood-ratio gate', overrides: { promotion: { maxEValue: 10 } } },
    { name: 'e > 4, confidence-sequence gate', overrides: { finalGate: { method: 'confidence-sequence' } } },
    { name: 'e > 4, LR gate α 0.1', overrides: { finalGate: { alpha: 0.1 } } },
    { name: 'e > 4, LR gate α 0.02', overrides: { finalGate: { alpha: 0.02 } } },
    { name: 'e > 4, LR gate tolerance 1.5%', overrides: { finalGate: { toleranceRel: 0.015 } } },
    { name: 'e > 4, LR gate tolerance 3%', overrides: { finalGate: { toleranceRel: 0.03 } } },
  ];
  const all = scenarios(false);
  const list = all.filter(
    (s) => s.group === 'speed' || s.group === 'equal' || (s.group === 'errors' && s.errorFactor === 1.5),
  );
  console.log(
    `Policy trade-off: ${runs} runs per cell, seed ${seed}. Worst cell of each column; p50/p90 against the per-step minimums` +
      `\nat 2, 12 and 50 requests/s with every answer and 10% judged; reach rates over the judge, binary and 0-1 rows.` +
      `\n"small minimums": 12 requests/s, every answer judged, 20 scores and 30 requests per step (where the gates,` +
      `\nnot the minimums, set the pace; the minimums alone take 25 min).\n`,
  );
  const header = [
    'setting',
    'p50/min',
    'p90/min',
    '12/s sampled p50',
    'small minimums p50/p90',
    '2% worse reach',
    'errors ×1.5 reach',
    'false rollback',
  ];
  const rows: string[][] = [];
  for (const setting of settings) {
    const { cells, speed } = runCells(all, list, setting.overrides, runs, seed, ['sequential']);
    const max = (xs: number[]) => Math.max(...xs);
    const equal = cells.filter(
      (c) => (c.scenario.group === 'equal' && c.scenario.drop === 0) || c.scenario.group === 'speed',
    );
    const falseRate = equal.reduce((a, c) => a + c.rollbackRate, 0) / equal.length;
    const s12 = speed.find((r) => r.scenario.rate === 12 && r.scenario.judge === 'sampled')!;
    // The issue's trial: 20 scores and 30 requests per step, every answer judged, 12 requests/s.
    const small = all.find((s) => s.id === 'speed-12-all')!;
    const smallRun = runCells(
      all,
      [small],
      { ...setting.overrides, promotion: { ...setting.overrides.promotion, ...SMALL_MINIMUMS } },
      runs,
      seed,
      ['sequential'],
    ).speed[0];
    const minutes = (h: number) => (Number.isFinite(h) ? `${Math.round(h * 60)}` : '—');
    rows.push([
      setting.name,
      `${max(speed.map((r) => r.p50 / r.minimumsP50)).toFixed(2)}×`,
      `${max(speed.map((r) => r.p90 / r.minimumsP50)).toFixed(2)}×`,
      `${(s12.p50 * 60).toFixed(0)} min`,
      `${minutes(smallRun.p50)}/${minutes(smallRun.p90)} min`,
      pct(
        max(
          cells
            .filter((c) => c.scenario.group === 'equal' && c.scenario.drop === 0.02)
            .map((c) => c.reachRate),
        ),
      ),
      pct(max(cells.filter((c) => c.scenario.group === 'errors').map((c) => c.reachRate))),
      pct(falseRate),
    ]);
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  console.log([line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n'));
  console.log('\nTargets: p50/min ≤ 2×, p90/min ≤ 4×, 2% worse ≤ 5%, errors ×1.5 ≤ 2%, false rollback ≤ 1%.');
}

const SMALL_MINIMUMS = { minCanaryScoredPerStep: 20, minCanaryRequestsPerStep: 30 };

/** The v1 promotion rule (rollouts started before the speed tuning), as overrides. */
const V1_OVERRIDES: SequentialConfigOverrides = {
  promotion: { maxEValue: 1 },
  finalGate: { method: 'confidence-sequence' },
};

function main(): void {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const json = args.includes('--json');
  const quick = args.includes('--quick');
  const runs = Number(arg('--runs') ?? (quick ? 200 : 1000));
  const seed = Number(arg('--seed') ?? 1);
  const overrides = JSON.parse(arg('--config') ?? '{}') as SequentialConfigOverrides;
  const sequentialConfig = resolveSequentialConfig(overrides); // validates the overrides up front
  const policies: PolicyName[] = args.includes('--sequential-only')
    ? ['sequential']
    : ['ratio', 'sequential'];
  const groups = arg('--groups')?.split(',');
  if (args.includes('--sweep')) {
    sweep(Number(arg('--runs') ?? 200), seed);
    return;
  }
  const started = performance.now();
  const all = scenarios(quick);
  const list = groups ? all.filter((s) => groups.includes(s.group)) : all;
  const { cells, speed } = runCells(all, list, overrides, runs, seed, policies, (done) => {
    if (!json)
      process.stderr.write(
        `\r${done}/${list.length} scenarios, ${((performance.now() - started) / 1000).toFixed(0)} s`,
      );
  });
  if (!json) process.stderr.write('\n');
  const result = [...targets(cells), ...(speed.length ? speedTargets(speed) : [])];
  const seconds = (performance.now() - started) / 1000;
  if (json) {
    const finiteOrNull = (x: number) => (Number.isFinite(x) ? x : null);
    const out = cells.map((c) => ({
      ...c,
      detectP50: finiteOrNull(c.detectP50),
      detectP80: finiteOrNull(c.detectP80),
      detectP90: finiteOrNull(c.detectP90),
      hoursToDecisionP50: finiteOrNull(c.hoursToDecisionP50),
      hoursToReachP50: finiteOrNull(c.hoursToReachP50),
      hoursToReachP95: finiteOrNull(c.hoursToReachP95),
    }));
    console.log(
      JSON.stringify({ runs, seed, seconds, config: sequentialConfig, cells: out, targets: result }, null, 2),
    );
    return;
  }
  const dists = DISTS.map((d) => {
    const p = scoreDistribution(d, 0);
    return `${d}: mean ${meanOf(d, p).toFixed(3)}, sd ${sdOf(d, p).toFixed(3)}`;
  });
  console.log(
    `Canary policy benchmark: ${runs} runs per cell, seed ${seed}, checks every ${CHECK_MINUTES} min, steps ${STEPS.join(' → ')} bps`,
  );
  console.log(`Scores ${dists.join('; ')}.`);
  console.log(
    'rollback/reach: share of runs rolled back / at 100% by the horizon. det pXX: canary scores (quality rows)',
  );
  console.log(
    'or requests (error, latency rows) seen when it rolled back, "—" when fewer than XX% rolled back.',
  );
  console.log(
    'Quality −0% and −2% are the 72 h rows. Targets are judged on the judge (1-5) shape, the others beside.\n',
  );
  console.log(table(cells.filter((c) => c.scenario.group !== 'speed')));
  if (speed.length) {
    console.log(
      `\nTime to 100% of an equal candidate (judge 1-5 scores, 1% errors, 72 h horizon). Judge "all": every answer;` +
        `\n"sampled": ${JUDGE_BUDGET * 100}% of requests judged, half per arm. "minimums": the same traffic with only the` +
        `\nper-step minimums holding a step. Estimate: the hold estimate at a hold's first check against the` +
        `\nhold's actual length (within ×2, ± one check), over the holds that ended in a promotion; "evidence holds":` +
        `\nthose whose binding condition was a gate or a lean rather than a step minimum.\n`,
    );
    console.log(speedTable(speed));
  }
  console.log('\nTargets (sequential policy):');
  for (const t of result) {
    const variant =
      t.bimodalPass === null
        ? ''
        : t.bimodalPass
          ? '   (binary and 0-1 shapes: pass)'
          : '   (binary and 0-1 shapes: miss)';
    console.log(`  ${t.pass ? 'PASS' : 'FAIL'}  ${t.name}${variant}\n        ${t.detail}`);
  }
  const seqEqual = cells.filter(
    (c) => c.policy === 'sequential' && c.scenario.group === 'equal' && c.scenario.drop === 0,
  );
  const causes: Record<string, number> = {};
  for (const c of seqEqual) for (const [k, v] of Object.entries(c.causes)) causes[k] = (causes[k] ?? 0) + v;
  console.log(`\nFalse rollbacks of the equal candidate by test (sequential): ${JSON.stringify(causes)}`);
  console.log(`Finished in ${seconds.toFixed(0)} s.`);
}

main();
