/**
 * Scripted activities for the fast workflow layer: the real rollout workflow on the real Temporal dev
 * server, with activities that read their statistics from a table and keep routing in memory (the same
 * compare-and-set, owner fence and idempotency keys as Postgres's routing state), so a story's branch runs
 * in seconds without Postgres, the simulator or a router. Alerts go through the real alert activity to
 * the channels this worker is given. What only the real components can show stays in the end-to-end tests.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { createAlertActivities } from '../../activities/alerts';
import { createAnalysisActivities } from '../../activities/analysis';
import { createGateActivities } from '../../activities/gates';
import type { AlertChannels } from '../../src/control-plane/alerts/channels';
import type { MetricSources } from '../../src/control-plane/gates/sources';
import type { WebhookGates } from '../../src/control-plane/gates/webhooks';
import type { SlotConfig } from '../../src/store/routing-state';
import { formatTarget, parseTargetWithFallbacks } from '../../src/decision/config/target';
import {
  resolvePolicy,
  triggerMetricsByWindow,
  type ArmStats,
  type PolicyConfig,
  type StepCounts,
  type TriggerSpec,
} from '../../src/decision/policy';
import { emptyReport, type ScoreReport } from '../../src/decision/scoring/evidence';
import type { Activities } from '../../activities';

export interface ScriptedRoute {
  name: string;
  version: number;
  stableSlot: 'blue' | 'green';
  blue: SlotConfig;
  green: SlotConfig | null;
  canaryBps: number;
  shadowRate: number;
  owner: string | null;
  /** Every change, oldest first (the audit trail). */
  changes: Array<{ version: number; reason: string; patch: Record<string, unknown> }>;
  keys: Map<string, number>;
}

/** One arm over one canary step, as the SQL would report it. */
export function arm(requests: number, mean: number | null, extra: Partial<ArmStats> = {}): ArmStats {
  const scored = mean === null ? 0 : Math.round(requests / 2);
  return {
    requests,
    errors: 0,
    slow: 0,
    scored,
    qualityMean: mean,
    qualityVariance: mean === null ? null : 0.25,
    costUsd: 0,
    p95LatencyMs: 400,
    ...extra,
  };
}

/** What a route's statistics look like in a story (defaults: an equal candidate with plenty of data). */
export interface RouteScript {
  /** Both arms over the canary step at this share (basis points). */
  step?: (shareBps: number) => { stable: ArmStats; canary: ArmStats };
  /** The trigger metrics' arm for a request (default: no traffic, so no trigger can fire). */
  triggers?: (req: { tag: string; sinceMs: number; target?: string }) => ArmStats;
  /** Shadow comparisons per check. */
  shadow?: { shadowBetter: number; stableBetter: number; ties: number };
}

const EQUAL = (share: number) => ({
  stable: arm(40_000 * (1 - share / 10_000), 4.8),
  canary: arm(40_000 * (share / 10_000), 4.8),
});

function combine(arms: ArmStats[]): ArmStats {
  const n = arms.reduce((s, a) => s + a.scored, 0);
  const mean = n > 0 ? arms.reduce((s, a) => s + a.scored * (a.qualityMean ?? 0), 0) / n : null;
  const ss =
    mean === null
      ? 0
      : arms.reduce(
          (s, a) =>
            s + (a.scored - 1) * (a.qualityVariance ?? 0) + a.scored * ((a.qualityMean ?? 0) - mean) ** 2,
          0,
        );
  return {
    requests: arms.reduce((s, a) => s + a.requests, 0),
    errors: arms.reduce((s, a) => s + a.errors, 0),
    slow: arms.reduce((s, a) => s + a.slow, 0),
    scored: n,
    qualityMean: mean,
    qualityVariance: n > 1 ? ss / (n - 1) : null,
    costUsd: arms.reduce((s, a) => s + a.costUsd, 0),
    p95LatencyMs: 400,
  };
}

const counts = (a: ArmStats) => ({ requests: a.requests, errors: a.errors, slow: a.slow });

export interface ScriptedWorld {
  routes: Map<string, ScriptedRoute>;
  scripts: Map<string, RouteScript>;
  decisions: Array<{ route: string; runId: string; phase: string; action: string; policy: string | null }>;
  guardians: Array<{ route: string }>;
  /** Activity calls by name (a story can assert what was and was not called). */
  calls: Map<string, number>;
  createRoute(name: string, blue?: string): ScriptedRoute;
  activities: Activities;
}

export function scriptedWorld(
  options: { alertChannels?: AlertChannels; webhookGates?: WebhookGates; metricSources?: MetricSources } = {},
): ScriptedWorld {
  const routes = new Map<string, ScriptedRoute>();
  const scripts = new Map<string, RouteScript>();
  const decisions: ScriptedWorld['decisions'] = [];
  const guardians: ScriptedWorld['guardians'] = [];
  const calls = new Map<string, number>();
  /** The share each routing version served (the step windows are cut by version, as in Postgres). */
  const shareAt = new Map<string, Map<number, number>>();
  const count = (name: string) => calls.set(name, (calls.get(name) ?? 0) + 1);
  const shadowSeen = new Map<string, number>();

  const routeOf = (name: string) => {
    const r = routes.get(name);
    if (!r) throw ApplicationFailure.nonRetryable(`route "${name}" does not exist`, 'RouteNotFound');
    return r;
  };
  /** Compare-and-set, owner-fenced, idempotent by key: Postgres's changeRoute, in memory. */
  const change = (
    name: string,
    o: {
      expectedVersion: number;
      requireOwner: string | null;
      idempotencyKey: string;
      patch: Record<string, unknown>;
      reason: string;
    },
  ): ScriptedRoute => {
    const r = routeOf(name);
    const done = r.keys.get(o.idempotencyKey);
    if (done !== undefined) return { ...r, version: done };
    if (r.owner !== o.requireOwner)
      throw ApplicationFailure.nonRetryable(`route "${name}" is owned by ${r.owner}`, 'RoutingConflict');
    if (r.version !== o.expectedVersion)
      throw ApplicationFailure.nonRetryable(
        `route "${name}" is at version ${r.version}, not ${o.expectedVersion}`,
        'RoutingConflict',
      );
    Object.assign(r, o.patch);
    r.version += 1;
    r.keys.set(o.idempotencyKey, r.version);
    r.changes.push({ version: r.version, reason: o.reason, patch: o.patch });
    const shares = shareAt.get(name) ?? new Map();
    shares.set(r.version, r.canaryBps);
    shareAt.set(name, shares);
    return r;
  };
  const candidateSlot = (r: ScriptedRoute) => (r.stableSlot === 'blue' ? 'green' : 'blue');
  const summary = (r: ScriptedRoute) => {
    const stable = r.stableSlot === 'blue' ? r.blue : r.green!;
    const cand = candidateSlot(r) === 'blue' ? r.blue : r.green;
    return {
      version: r.version,
      stableSlot: r.stableSlot,
      candidateSlot: candidateSlot(r),
      stable: formatTarget(stable.target),
      candidate: cand ? formatTarget(cand.target) : '',
    } as const;
  };
  const stepArms = (route: string, version: number) => {
    const share = shareAt.get(route)?.get(version) ?? 0;
    return (scripts.get(route)?.step ?? EQUAL)(share);
  };

  const alerts = createAlertActivities({ channels: options.alertChannels ?? new Map() });
  // Webhooks and metric sources are the real activities, posting to the servers the test runs.
  const sources = options.metricSources ?? new Map();
  const activities = {
    ...createGateActivities({ hooks: options.webhookGates ?? new Map(), sources }),
    ...createAnalysisActivities({ sources }),
    async resolvePolicy(policy: PolicyConfig) {
      return resolvePolicy(policy);
    },
    async claimRoute(req: {
      route: string;
      owner: string;
      idempotencyKey: string;
      candidate: SlotConfig;
      salt: string;
      actor: string;
    }) {
      count('claimRoute');
      const r = routeOf(req.route);
      if (r.owner && r.owner !== req.owner)
        throw ApplicationFailure.nonRetryable(`route "${req.route}" is owned by ${r.owner}`, 'RouteOwned');
      const slot = candidateSlot(r);
      return summary(
        change(req.route, {
          expectedVersion: r.version,
          requireOwner: r.owner,
          idempotencyKey: req.idempotencyKey,
          patch: { [slot]: req.candidate, canaryBps: 0, shadowRate: 0, owner: req.owner },
          reason: `rollout ${req.owner} claims the route`,
        }),
      );
    },
    async applyRouting(req: {
      route: string;
      owner: string;
      idempotencyKey: string;
      expectedVersion: number;
      patch: Record<string, unknown>;
      reason: string;
    }) {
      count('applyRouting');
      return change(req.route, { ...req, requireOwner: req.owner }).version;
    },
    async restoreStable(req: {
      route: string;
      owner: string;
      idempotencyKey: string;
      stableSlot: 'blue' | 'green';
      reason: string;
    }) {
      count('restoreStable');
      const r = routeOf(req.route);
      if (r.owner !== req.owner) return r.version; // already restored (a retry after a lost reply)
      return change(req.route, {
        expectedVersion: r.version,
        requireOwner: req.owner,
        idempotencyKey: req.idempotencyKey,
        patch: { stableSlot: req.stableSlot, canaryBps: 0, shadowRate: 0, owner: null },
        reason: req.reason,
      }).version;
    },
    async releaseRoute(req: {
      route: string;
      owner: string;
      idempotencyKey: string;
      expectedVersion: number;
      reason: string;
    }) {
      count('releaseRoute');
      return change(req.route, { ...req, requireOwner: req.owner, patch: { owner: null, shadowRate: 0 } })
        .version;
    },
    async readRoute(route: string) {
      const r = routes.get(route);
      return r ? { ...summary(r), owner: r.owner, canaryBps: r.canaryBps } : null;
    },
    async switchStableSlot(req: {
      route: string;
      toSlot: 'blue' | 'green';
      expectedVersion: number;
      idempotencyKey: string;
      reason: string;
    }) {
      count('switchStableSlot');
      return change(req.route, {
        ...req,
        requireOwner: null,
        patch: { stableSlot: req.toSlot, canaryBps: 0, shadowRate: 0 },
      }).version;
    },
    async baselineP95() {
      return 1000;
    },
    async canaryStats(req: { route: string; stepVersions: number[] }) {
      count('canaryStats');
      const steps = req.stepVersions.map((v) => stepArms(req.route, v));
      const current = steps[steps.length - 1];
      const previousSteps: StepCounts[] = steps
        .slice(0, -1)
        .map((s) => ({ stable: counts(s.stable), canary: counts(s.canary) }));
      return {
        cumulative: {
          stable: combine(steps.map((s) => s.stable)),
          canary: combine(steps.map((s) => s.canary)),
        },
        step: current,
        previousSteps,
        fallbacks: { stable: 0, canary: 0 },
      };
    },
    async triggerMetrics(req: {
      route: string;
      tag: string;
      sinceMs: number;
      target?: string;
      triggers: TriggerSpec[];
    }) {
      count('triggerMetrics');
      const a = scripts.get(req.route)?.triggers?.(req) ?? arm(0, null);
      const windows = Object.fromEntries(req.triggers.map((t) => [t.windowMinutes, a]));
      return triggerMetricsByWindow(req.triggers, windows);
    },
    /** The guardian's comparison with the previous model: the script's arms for both periods. */
    async guardianComparison(req: {
      route: string;
      sinceMs: number;
      target: string;
      previousTarget: string;
    }) {
      count('guardianComparison');
      const script = scripts.get(req.route)?.triggers;
      const period = (sinceMs: number, target: string) => {
        const a = script?.({ tag: 'stable', sinceMs, target }) ?? arm(0, null);
        return {
          requests: a.requests,
          refusals: a.refusals ?? 0,
          refusalKinds: a.refusalKinds ?? {},
          attempts: a.attempts ?? a.requests,
          attemptErrors: a.attemptErrors ?? 0,
        };
      };
      return { current: period(req.sinceMs, req.target), previous: period(0, req.previousTarget) };
    },
    async scoreAnswers(): Promise<ScoreReport> {
      count('scoreAnswers');
      // Every batch judges a few answers of each arm: the rollout has quality evidence.
      const report = emptyReport();
      report.scored = 20;
      report.bySource = { reference: 20 };
      report.byArm = { stable: { scored: 10, failed: 0 }, candidate: { scored: 10, failed: 0 } };
      return report;
    },
    async compareShadowPairs(req: { route: string }) {
      count('compareShadowPairs');
      const per = scripts.get(req.route)?.shadow ?? { shadowBetter: 4, stableBetter: 4, ties: 2 };
      const n = (shadowSeen.get(req.route) ?? 0) + 1;
      shadowSeen.set(req.route, n);
      return {
        shadowBetter: per.shadowBetter * n,
        stableBetter: per.stableBetter * n,
        ties: per.ties * n,
        costUsd: 0,
        pending: 0,
        failed: 0,
      };
    },
    async recordDecision(d: {
      route: string;
      runId: string;
      phase: string;
      action: string;
      policy?: string | null;
    }) {
      decisions.push({
        route: d.route,
        runId: d.runId,
        phase: d.phase,
        action: d.action,
        policy: d.policy ?? null,
      });
    },
    async ensureGuardian(watch: { route: string }) {
      guardians.push({ route: watch.route });
      return `guardian-${watch.route}`;
    },
    sendAlert: alerts.sendAlert,
    async describeRoute(route: string) {
      const r = routes.get(route);
      return { route, exists: !!r, version: r?.version ?? null };
    },
  };

  return {
    routes,
    scripts,
    decisions,
    guardians,
    calls,
    createRoute(name, blue = 'anthropic:claude-sonnet-4') {
      const r: ScriptedRoute = {
        name,
        version: 1,
        stableSlot: 'blue',
        blue: parseTargetWithFallbacks({ target: blue }),
        green: null,
        canaryBps: 0,
        shadowRate: 0,
        owner: null,
        changes: [],
        keys: new Map(),
      };
      routes.set(name, r);
      return r;
    },
    activities: activities as unknown as Activities,
  };
}
