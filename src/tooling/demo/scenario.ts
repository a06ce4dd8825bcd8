import type { Scenario } from '../simulator';
import type { RolloutSpecInput } from '../../decision/config/rollout-spec';

/**
 * The demo's world: simulated providers with realistic latency and accuracy, the route, and the rollout
 * specs of each act. Intervals are seconds instead of production's minutes so the story fits in a few
 * minutes; the statistics are the production ones, with smaller per-step sample minimums.
 */
export const ROUTE = 'support-bot';

export const PRIMARY_CHAIN = {
  target: 'anthropic:claude-sonnet-4',
  fallbacks: ['openai:gpt-4o', 'google:gemini-2.5-pro', 'deepseek:deepseek-chat'],
};

// A cheaper model of the same family: the migration a cost-conscious team makes.
export const GOOD_CANDIDATE = 'anthropic:claude-haiku-4-5';
export const DEGRADED_CANDIDATE = 'openai:gpt-4o-mini';
export const MANUAL_CANDIDATE = 'google:gemini-2.5-pro';

export const DEMO_SCENARIO: Scenario = {
  seed: 42,
  default: { latencyMs: { median: 6, p99: 25 }, accuracy: 0.9 },
  models: {
    'claude-sonnet-4': { accuracy: 0.92, latencyMs: { median: 8, p99: 30 } },
    'claude-haiku-4-5': { accuracy: 0.92, latencyMs: { median: 5, p99: 20 } },
    'gpt-4o': { accuracy: 0.91 },
    'gemini-2.5-pro': { accuracy: 0.9 },
    'deepseek-chat': { accuracy: 0.88 },
    // The degraded candidate: 20 points less accurate than what it would replace.
    'gpt-4o-mini': { accuracy: 0.72, latencyMs: { median: 4, p99: 15 } },
  },
};

/** The alert channel the demo's worker posts to (its URL is the local receiver's, known to the worker only). */
export const DEMO_ALERT_CHANNEL = 'demo-slack';

/** Shared by the demo's rollouts: short intervals, alerts to the demo's channel. */
export function demoSpec(
  candidate: RolloutSpecInput['candidate'],
  extra: Partial<RolloutSpecInput> = {},
): RolloutSpecInput {
  return {
    route: ROUTE,
    candidate,
    actor: 'demo',
    evaluation: { interval: '2s', scoreBatch: 2000 },
    triggers: { interval: '2s', windowMinutes: { short: 1, long: 2 } },
    bake: { duration: '6s' },
    policy: {
      policy: 'sequential',
      sequential: {
        promotion: { minCanaryScoredPerStep: 20, minCanaryRequestsPerStep: 30 },
        finalGate: { toleranceRel: 0.1 },
      },
    },
    alerts: { channels: [DEMO_ALERT_CHANNEL] },
    ...extra,
  } as RolloutSpecInput;
}
