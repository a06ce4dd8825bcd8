import { ApplicationFailure } from '@temporalio/activity';
import type pg from 'pg';
import type {
  ArmPair,
  ArmStats,
  Decision,
  PeriodCounts,
  StepCounts,
  TriggerMetric,
  TriggerMetricName,
  TriggerSpec,
} from '../src/decision/policy';
import { triggerMetricsByWindow } from '../src/decision/policy';
import { armStats, armStatsSinceVersion, stableP95, stepCounts, type Tag } from '../src/store/arm-statistics';

/**
 * The numbers a rollout decides on, computed in SQL, and the record of each decision. Only aggregates
 * leave the database, so workflow histories stay small however much traffic a route serves.
 */
export interface EvaluationDeps {
  pool: pg.Pool;
}

export interface PairRequest {
  route: string;
  /** Start of the canary phase, epoch ms: it only narrows the scan (the windows are cut by version). */
  fromMs: number;
  slowThresholdMs: number | null;
  /** Each arm judged on its primary model's own answers (a fallback's answer is the primary's failure). */
  candidateOwnEvidence?: boolean;
  /**
   * The routing version each canary step's routing change produced, oldest first. The windows are cut by
   * the version an event was served under, not by its timestamp, so a router whose clock is off cannot
   * move events between steps; the answer carries each earlier step's counts.
   */
  stepVersions: number[];
}

export interface TriggerMetricsRequest {
  route: string;
  tag: Tag;
  /** Only data since the watched model took this role (epoch ms). */
  sinceMs: number;
  nowMs: number;
  triggers: TriggerSpec[];
  target?: string;
  /** As in PairRequest: a fallback's answer counts as an error of the watched slot's primary. */
  candidateOwnEvidence?: boolean;
}

/** The route's stable model since it took over, and the previous model over the period before. */
export interface ComparisonRequest {
  route: string;
  target: string;
  sinceMs: number;
  nowMs: number;
  previousTarget: string;
  /** How far before `sinceMs` the previous model's period reaches (default 24 h). */
  lookbackMs?: number;
}

export const COMPARISON_LOOKBACK_MS = 24 * 3_600_000;

const periodCounts = (a: ArmStats): PeriodCounts => ({
  requests: a.requests,
  refusals: a.refusals ?? 0,
  refusalKinds: a.refusalKinds ?? {},
  attempts: a.attempts ?? a.requests,
  attemptErrors: a.attemptErrors ?? 0,
});

export interface DecisionRecord {
  route: string;
  workflowId: string;
  runId: string;
  phase: string;
  shareBps: number;
  action: string;
  policy?: string | null;
  reasons: string[];
  stats: Record<string, unknown>;
}

export function createEvaluationActivities(deps: EvaluationDeps) {
  const { pool } = deps;
  return {
    /** Stable vs canary, cumulative since the canary began and since the current step began. */
    async canaryStats(req: PairRequest): Promise<{
      cumulative: ArmPair;
      step: ArmPair;
      /** Each earlier step's counts, oldest first. */
      previousSteps: StepCounts[];
      /** Answers a fallback gave since the canary began, per arm (errors of the primary). */
      fallbacks: { stable: number; canary: number };
    }> {
      const versions = req.stepVersions;
      if (versions.length === 0) throw ApplicationFailure.nonRetryable('canaryStats needs the step versions');
      const common = {
        route: req.route,
        slowThresholdMs: req.slowThresholdMs,
        primaryOnly: req.candidateOwnEvidence,
      };
      const since = (tag: Tag, fromVersion: number) =>
        armStatsSinceVersion(pool, { ...common, tag, fromVersion, fromMs: req.fromMs });
      const current = versions[versions.length - 1];
      const [cs, cc, ss, sc, steps] = await Promise.all([
        since('stable', versions[0]),
        since('canary', versions[0]),
        since('stable', current),
        since('canary', current),
        stepCounts(pool, { ...common, stepVersions: versions, fromMs: req.fromMs }),
      ]);
      return {
        cumulative: { stable: cs, canary: cc },
        step: { stable: ss, canary: sc },
        previousSteps: steps.slice(0, -1),
        fallbacks: { stable: cs.fallbacks, canary: cc.fallbacks },
      };
    },

    /** The stable p95 latency before the canary started: above it a request counts as slow. */
    async baselineP95(req: { route: string; fromMs: number; toMs: number }): Promise<number | null> {
      return stableP95(pool, req.route, req.fromMs, req.toMs);
    },

    /** The trigger metrics of one tag, each over its own window (clipped to `sinceMs`). */
    async triggerMetrics(
      req: TriggerMetricsRequest,
    ): Promise<Partial<Record<TriggerMetricName, TriggerMetric>>> {
      const windows = [...new Set(req.triggers.map((t) => t.windowMinutes))];
      const byWindow: Record<number, ArmStats> = {};
      await Promise.all(
        windows.map(async (minutes) => {
          byWindow[minutes] = await armStats(pool, {
            route: req.route,
            tag: req.tag,
            fromMs: Math.max(req.sinceMs, req.nowMs - minutes * 60_000),
            toMs: req.nowMs + 60_000,
            target: req.target,
            primaryOnly: req.candidateOwnEvidence,
          });
        }),
      );
      return triggerMetricsByWindow(req.triggers, byWindow);
    },

    /**
     * Refusals and attempt errors of the stable model since it took over and of the previous model while it
     * served (stable events of its target), for the guardian's comparison (guardian-comparison.ts).
     */
    async guardianComparison(
      req: ComparisonRequest,
    ): Promise<{ current: PeriodCounts; previous: PeriodCounts }> {
      const lookback = req.lookbackMs ?? COMPARISON_LOOKBACK_MS;
      const [current, previous] = await Promise.all([
        armStats(pool, {
          route: req.route,
          tag: 'stable',
          fromMs: req.sinceMs,
          toMs: req.nowMs + 60_000,
          target: req.target,
        }),
        armStats(pool, {
          route: req.route,
          tag: 'stable',
          fromMs: req.sinceMs - lookback,
          toMs: req.sinceMs,
          target: req.previousTarget,
        }),
      ]);
      return { current: periodCounts(current), previous: periodCounts(previous) };
    },

    async recordDecision(record: DecisionRecord): Promise<void> {
      await pool.query(
        `INSERT INTO rollout_decisions (route, workflow_id, run_id, phase, share_bps, action, policy, reasons, stats)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [
          record.route,
          record.workflowId,
          record.runId,
          record.phase,
          record.shareBps,
          record.action,
          record.policy ?? null,
          JSON.stringify(record.reasons),
          JSON.stringify(record.stats),
        ],
      );
    },
  };
}

export type { Decision };
