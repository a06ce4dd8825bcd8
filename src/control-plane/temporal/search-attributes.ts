import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * The custom search attributes that make rollouts findable in the Temporal UI and `temporal workflow list`.
 * Defined once, used by the workflows (upserts), the client (queries) and the dev server (registration).
 * Pure: safe to import from workflow code.
 */
export const RolloutRoute = defineSearchAttributeKey('RolloutRoute', SearchAttributeType.KEYWORD);
export const RolloutPhase = defineSearchAttributeKey('RolloutPhase', SearchAttributeType.KEYWORD);
export const RolloutCandidate = defineSearchAttributeKey('RolloutCandidate', SearchAttributeType.KEYWORD);
export const RolloutStrategy = defineSearchAttributeKey('RolloutStrategy', SearchAttributeType.KEYWORD);
export const CanaryBasisPoints = defineSearchAttributeKey('CanaryBasisPoints', SearchAttributeType.INT);
/** The step of its list a rollout is at (1-based; 0 before the first and after the last), and its kind. */
export const RolloutStep = defineSearchAttributeKey('RolloutStep', SearchAttributeType.INT);
export const RolloutStepKind = defineSearchAttributeKey('RolloutStepKind', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [
  RolloutRoute,
  RolloutPhase,
  RolloutCandidate,
  RolloutStrategy,
  CanaryBasisPoints,
  RolloutStep,
  RolloutStepKind,
];

/** `--search-attribute` values for `temporal server start-dev` (its type names differ in case from the SDK's). */
export function devServerSearchAttributeFlags(): string[] {
  const names: Record<string, string> = {
    KEYWORD: 'Keyword',
    INT: 'Int',
    TEXT: 'Text',
    DOUBLE: 'Double',
    BOOL: 'Bool',
  };
  return SEARCH_ATTRIBUTES.flatMap((key) => [
    '--search-attribute',
    `${key.name}=${names[key.type] ?? key.type}`,
  ]);
}
