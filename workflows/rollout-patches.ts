/**
 * The patch ids of the rollout workflow, each with what changed at it. Keep every one: a history recorded
 * before a patch replays only while the code still asks for it (see test/replay.test.ts).
 */

/**
 * Since this patch: scoring as a pipeline (options above, the rollout's evaluators, counted failures and
 * cost in status and decision reasons, the "no quality evidence" alert), and canary statistics and
 * triggers on the candidate's own answers (a fallback's answer is its primary's failure).
 */
export const SCORING_PIPELINE = 'scoring-pipeline';

/**
 * Since this patch the sequential policy's final gate also checks the error rate. It is asked at every
 * decision of rollouts without POLICY_RESOLVED_AT_START: their recorded decisions replay unchanged, and a
 * rollout that was running when the patch was deployed checks errors from its next decision on.
 */
export const FINAL_GATE_ERRORS = 'final-gate-error-rate';
/** Since this patch a canary step held longer than `alerts.holdAfter` raises a "hold" alert. */
export const HOLD_ALERT = 'hold-alert';
/** Since this patch search attributes and memo are upserted only when they change. */
export const PUBLISH_CHANGES_ONLY = 'publish-changes-only';
/** Since this patch the workflow waits for its "completed" alert before it completes. */
export const COMPLETED_ALERT_AWAITED = 'completed-alert-awaited';

/**
 * Since this patch the sequential policy's defaults are tuned for speed (hold only on material evidence of
 * "worse", likelihood-ratio final gate). A rollout without POLICY_RESOLVED_AT_START asks once, when its
 * canary phase starts: one whose canary started under the v1 defaults keeps them to the end, and its history
 * replays.
 */
export const PROMOTION_V2 = 'promotion-v2-speed';

/**
 * Since this patch canary steps are cut by routing version (the version each step's routing change
 * produced) instead of by the workflow's clock, so a router whose clock is off cannot move events between
 * steps, and the error and slow-request tests get each earlier step's counts (one segment per step). Asked
 * once, when the canary starts; a run that continued as new knows from the versions it carries.
 */
export const STEP_WINDOWS_BY_VERSION = 'step-windows-by-routing-version';

/**
 * Alerts go to channels named in the spec (URLs only on the worker). Rollouts started before this patch
 * may carry `alerts.webhookUrl` in their input and keep alerting there; new ones are refused such a spec.
 */
export const ALERT_CHANNELS = 'alert-channels';

/**
 * Since this patch the policy config is resolved in full when the rollout starts, by a local activity whose
 * result is recorded in the history (the clients also resolve it into the input; see parseRolloutSpec's
 * `resolvePolicy`), and every decision uses it: a change of the code's defaults no longer changes a running
 * rollout's decisions, and neither of the two patches above is asked again. Rollouts without it merge the
 * config with the defaults at every decision, as before.
 */
export const POLICY_RESOLVED_AT_START = 'policy-resolved-at-start';

/**
 * Since this patch a rollout is bounded: `progressDeadline` per canary step and per rollout, and approval
 * timeouts that end ('rollback' or 'approve', alerted). Asked once, when the rollout starts.
 */
export const BOUNDED_ROLLOUTS = 'bounded-rollouts';

/**
 * Since this patch a rollout continues as new when the server suggests it (its history has grown long), at
 * the top of a phase's loop with no handler running, carrying its whole state (see rollout-carry.ts).
 * Asked only when the server suggests it, so the histories before it replay unchanged.
 */
export const CONTINUE_AS_NEW = 'rollout-continue-as-new';
