/**
 * The registry of step kinds: a rollout is a list of steps, in the manner of Argo Rollouts' canary steps,
 * each written `{ "<kind>": value }`:
 *
 *   "steps": [
 *     { "shadow": { "rate": 0.1 } },
 *     { "setShare": 500 }, { "setShare": "20%" },
 *     { "pause": { "duration": "1h" } },
 *     { "approve": { "timeout": "4h", "onTimeout": "rollback" } },
 *     { "setShare": 10000 },
 *     { "bake": { "duration": "30m" } }
 *   ]
 *
 * Without `steps`, the spec's `strategy`, `shadow`, `canary.steps`, `approval` and `bake` fields make the
 * default list (./default-list.ts).
 *
 * ## Adding a step kind (e.g. `webhook`)
 * 1. `src/decision/config/steps/webhook.ts`: `export const webhook = defineStepKind({ kind: 'webhook',
 *    schema, describe, phase, ... })` (see ./kind.ts: `share`, `gate`, `report`, `check` are optional),
 *    and add it to KINDS below (one line).
 * 2. `workflows/steps/webhook.ts`: `export const webhookStep = defineStepExecutor(webhook, async (r, value,
 *    { resume }) => { ... })`, what the rollout does at the step with the run `r` (`workflows/run/run.ts`:
 *    routing, decisions, alerts, `r.tick`, `r.checkTriggers`, `r.maybeContinue(state)` at the top of its
 *    loop so a long step survives continue-as-new, `r.takePromote()` when a person may end it early;
 *    `checkDeadlines(r)` when it waits on evidence), and add it to `workflows/steps/index.ts` (one line).
 * 3. Tests: the schema and description in test/unit/steps-<kind>.test.ts, the executor in the fast
 *    workflow layer (test/rollout-stories.test.ts, scripted activities on the real dev server).
 * Nothing else changes: the spec schema, `start`'s plan, `status`, the UI's details and the search
 * attributes read the registry; test/unit/step-registry.test.ts checks each kind has an executor.
 */
import { z } from 'zod';
import { analysis } from './analysis';
import { approve } from './approve';
import { bake } from './bake';
import { evalGate } from './eval';
import type { ListContext, Step, StepKind } from './kind';
import { pause } from './pause';
import { setShare } from './set-share';
import { shadow } from './shadow';
import { webhook } from './webhook';

export type { ListContext, Step, StepKind } from './kind';
export { defineStepKind } from './kind';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each entry keeps its own value type
const KINDS: ReadonlyArray<StepKind<any>> = [
  evalGate,
  shadow,
  setShare,
  pause,
  approve,
  bake,
  webhook,
  analysis,
];

export const STEP_KINDS: ReadonlyMap<string, StepKind> = new Map(KINDS.map((k) => [k.kind, k as StepKind]));

/** A step taken apart: its kind's definition and its (parsed) value. */
export interface StepEntry {
  kind: string;
  value: unknown;
  def: StepKind;
}

export function entryOf(step: Step): StepEntry {
  const [kind] = Object.keys(step);
  const def = STEP_KINDS.get(kind);
  if (!def) throw new Error(`unknown step kind '${kind}'`);
  return { kind, value: step[kind], def };
}

/** How a step reads for people: "canary share 5%". */
export function describeStep(step: Step): string {
  const { value, def } = entryOf(step);
  return def.describe(value as never);
}

/** The share a step sets (basis points), if it moves traffic. */
export function shareOf(step: Step): number | undefined {
  const { value, def } = entryOf(step);
  return def.share?.(value as never);
}

/** The shares the list walks through, in order (the canary policy's ladder). */
export function sharesOf(steps: readonly Step[]): number[] {
  return steps.flatMap((s) => {
    const share = shareOf(s);
    return share === undefined ? [] : [share];
  });
}

const kindNames = () => [...STEP_KINDS.keys()].map((k) => `'${k}'`).join(', ');

/** One step: an object with exactly one key, a registered kind, whose value that kind's schema parses. */
export const stepSchema = z.unknown().transform((input, ctx): Step => {
  const keys = input && typeof input === 'object' && !Array.isArray(input) ? Object.keys(input) : [];
  const def = keys.length === 1 ? STEP_KINDS.get(keys[0]) : undefined;
  if (!def) {
    ctx.addIssue({
      code: 'custom',
      message:
        keys.length === 1
          ? `unknown step kind '${keys[0]}' (known: ${kindNames()})`
          : `a step is an object with one key, its kind (${kindNames()}), e.g. { "setShare": 500 }`,
    });
    return z.NEVER;
  }
  const parsed = def.schema.safeParse((input as Record<string, unknown>)[keys[0]]);
  if (!parsed.success) {
    for (const issue of parsed.error.issues)
      ctx.addIssue({
        code: 'custom',
        message:
          issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message,
        path: [keys[0], ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
      });
    return z.NEVER;
  }
  return { [def.kind]: parsed.data };
});

/** Problems with a parsed list as a whole and with each step's place in it, by index. */
export function listProblems(steps: readonly Step[]): Array<{ index?: number; message: string }> {
  const entries = steps.map((s) => {
    const e = entryOf(s);
    return { kind: e.kind, value: e.value, share: e.def.share?.(e.value as never), def: e.def };
  });
  const problems: Array<{ index?: number; message: string }> = [];
  let promoted = false;
  entries.forEach((e, index) => {
    const context: ListContext = { index, steps: entries, promotedBefore: promoted };
    for (const message of e.def.check?.(context) ?? []) problems.push({ index, message });
    if (e.share === 10000) promoted = true;
  });
  if (!promoted && !entries.some((e) => e.def.report))
    problems.push({
      message:
        'the list must promote the candidate (a setShare of 10000) or end with a report (a shadow step)',
    });
  return problems;
}

export const stepsSchema = z
  .array(stepSchema)
  .min(1, 'a rollout needs at least one step')
  .max(100, 'at most 100 steps')
  .superRefine((steps, ctx) => {
    for (const p of listProblems(steps))
      ctx.addIssue({ code: 'custom', message: p.message, path: p.index === undefined ? [] : [p.index] });
  });

/** The strategy a list amounts to: the label `status`, `list` and the search attribute show. */
export function strategyOf(steps: readonly Step[]): 'canary' | 'blue-green' | 'shadow-only' {
  const shares = sharesOf(steps);
  if (shares.length === 0) return 'shadow-only';
  return shares.length === 1 ? 'blue-green' : 'canary';
}
