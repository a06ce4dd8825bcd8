import type { Client } from '@temporalio/client';
import type { AlertChannels } from '../src/control-plane/alerts/channels';
import type { Database } from '../src/store/database';
import type { FallbackChain } from '../src/data-plane/providers/fallback-chain';
import { createAlertActivities } from './alerts';
import { createAnalysisActivities } from './analysis';
import { createGateActivities } from './gates';
import { loadWebhookGates, type WebhookGates } from '../src/control-plane/gates/webhooks';
import { loadMetricSources, type MetricSources } from '../src/control-plane/gates/sources';
import { createEvaluationActivities } from './statistics';
import { createGuardianActivities } from './guardian';
import { createRoutingActivities } from './routing';
import { createRetentionActivities } from './retention';
import { createScoringActivities } from './scoring';
import { createUndoActivities } from './undo';
import { createEvalGateActivities } from './eval-gate';
import { deploymentRegistry } from '../src/data-plane/providers/providers-file';
import type { ProviderRegistry } from '../src/data-plane/providers/registry';
import { httpServicesFromEnv, type HttpEvaluatorService } from '../src/decision/scoring/evaluators';
import { resolvePolicy, type PolicyConfig, type ResolvedPolicy } from '../src/decision/policy';

/**
 * Activities are created with their dependencies injected, so the worker, tests and the demo wire them to
 * the same real Postgres, providers and Temporal client without globals.
 */
export interface ActivityDeps {
  db: Database;
  /** Provider chain for the LLM judge (optional: reference grading, feedback and heuristics need none). */
  chain?: FallbackChain;
  /** For starting the route guardian when a rollout completes. */
  client?: Client;
  taskQueue?: string;
  /** The team's eval services by name (default: MODEL_ROLLOUT_EVALUATOR_<NAME>_URL from the environment). */
  httpServices?: Record<string, HttpEvaluatorService>;
  /** Named alert channels (default: ALERT_CHANNELS_FILE / ALERT_CHANNELS of this process). */
  alertChannels?: AlertChannels;
  /**
   * The providers this worker may call (default: MODEL_ROLLOUT_PROVIDERS_FILE and the environment): a spec's
   * target may name a `baseUrl` only from its allowlist.
   */
  providers?: ProviderRegistry;
  /** Named webhook gates (default: WEBHOOK_GATES_FILE / WEBHOOK_GATES of this process). */
  webhookGates?: WebhookGates;
  /** Named metric sources for analysis (default: METRIC_SOURCES_FILE / METRIC_SOURCES). */
  metricSources?: MetricSources;
}

export function createActivities(deps: ActivityDeps) {
  const pool = deps.db.pool;
  const providers = deps.providers ?? deploymentRegistry();
  const sources = deps.metricSources ?? loadMetricSources();
  return {
    ...createRoutingActivities({ pool, providers }),
    ...createEvaluationActivities({ pool }),
    ...createScoringActivities({
      pool,
      chain: deps.chain,
      httpServices: deps.httpServices ?? httpServicesFromEnv(),
      providers,
    }),
    ...createAlertActivities({ channels: deps.alertChannels }),
    ...createGateActivities({ hooks: deps.webhookGates ?? loadWebhookGates(), sources }),
    ...createAnalysisActivities({ sources }),
    ...createRetentionActivities({ pool }),
    ...createUndoActivities({ pool }),
    ...createEvalGateActivities({ chain: deps.chain }),
    ...createGuardianActivities({ client: deps.client, taskQueue: deps.taskQueue }),
    /**
     * The policy config resolved in full on this worker's defaults. A rollout calls it once, as a local
     * activity, when it starts: the result is recorded in its history, so a later change of the defaults
     * neither changes its decisions nor breaks its replay, whoever started it.
     */
    async resolvePolicy(policy: PolicyConfig): Promise<ResolvedPolicy> {
      return resolvePolicy(policy);
    },
    /** Reads one route's routing state (or null when the route does not exist). */
    async describeRoute(route: string): Promise<{ route: string; exists: boolean; version: number | null }> {
      const { rows } = await pool.query<{ version: string }>('SELECT version FROM routes WHERE name = $1', [
        route,
      ]);
      return { route, exists: rows.length > 0, version: rows.length ? Number(rows[0].version) : null };
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
