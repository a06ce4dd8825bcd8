/**
 * What a step kind is, for the spec: its schema and a pure description. The workflow's side of the same
 * kind (what it does with the run) is `workflows/steps/<kind>.ts`. See ./index.ts for how to add a kind.
 */
import type { z } from 'zod';

/** A step as written in a spec: one key, the kind, and its value, e.g. `{ "setShare": 500 }`. */
export type Step = Readonly<Record<string, unknown>>;

export interface StepKind<V = unknown> {
  /** The step's key in the spec (`{ "<kind>": value }`): a camelCase word. */
  readonly kind: string;
  /** The value's schema. zod only: the workflow re-checks the spec with it. */
  readonly schema: z.ZodType<V, unknown>;
  /** One line for people (status, the UI, `start`'s plan): "canary share 5%". */
  describe(value: V): string;
  /** The rollout's phase while this step runs (status, the `RolloutPhase` search attribute). */
  phase(value: V): string;
  /** The canary share the step sets, in basis points (10000: the promotion), for steps that move traffic. */
  share?(value: V): number;
  /** A person's `promote --full` does not pass it (an approval, a gate): the jump to 100% stops there. */
  readonly gate?: boolean;
  /** The step can end a rollout that never promotes with its report (the shadow step). */
  readonly report?: boolean;
  /** Problems with the step's place in the list, as sentences (the list is valid step by step). */
  check?(context: ListContext): string[];
}

/** What a kind's `check` sees: the whole list, parsed, and where the step is. */
export interface ListContext {
  index: number;
  steps: ReadonlyArray<{ kind: string; value: unknown; share?: number }>;
  /** Whether a step before this one promoted the candidate (a share of 10000). */
  promotedBefore: boolean;
}

/** Keeps a kind's value type when it is listed in the registry. */
export function defineStepKind<V>(kind: StepKind<V>): StepKind<V> {
  return kind;
}
